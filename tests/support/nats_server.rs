//! A real nats-server with JetStream for one test: a free loopback port, a temporary store,
//! killed when dropped. Tests never share a server or its state.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    child: Child,
    pub port: u16,
    pub store: tempfile::TempDir,
}

fn binary() -> PathBuf {
    for candidate in ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    "nats-server".into()
}

fn spawn(port: u16, store: &std::path::Path) -> Child {
    let child = Command::new(binary())
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server must be installed (.ci/run installs Debian's nats-server package)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
        let store = tempfile::tempdir().expect("a store dir");
        let child = spawn(port, store.path());
        NatsServer { child, port, store }
    }

    /// SIGKILL, as a crash of the server or its machine would.
    #[allow(dead_code)] // Not every test binary that includes this module kills its server.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port with the same store.
    #[allow(dead_code)]
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.port, self.store.path());
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
