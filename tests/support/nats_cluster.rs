//! A three-node nats-server cluster with JetStream for one test, on loopback: each node its own
//! client, route and monitoring port and its own store directory, so a node (the stream leader,
//! say) can be SIGKILLed and started again with what it had stored.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsCluster {
    nodes: Vec<Node>,
    pub dir: tempfile::TempDir,
}

struct Node {
    name: String,
    client_port: u16,
    route_port: u16,
    monitor_port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn binary() -> PathBuf {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| "nats-server".into())
}

impl NatsCluster {
    pub fn start() -> NatsCluster {
        let dir = tempfile::tempdir().expect("a cluster dir");
        let mut nodes: Vec<Node> = (1..=3)
            .map(|i| Node {
                name: format!("node-{i}"),
                client_port: free_port(),
                route_port: free_port(),
                monitor_port: free_port(),
                child: None,
            })
            .collect();
        let routes: Vec<String> = nodes.iter().map(|n| format!("nats-route://127.0.0.1:{}", n.route_port)).collect();
        for node in &mut nodes {
            node.child = Some(spawn(node, &routes.join(","), dir.path()));
        }
        for node in &nodes {
            wait_listening(node.client_port);
        }
        NatsCluster { nodes, dir }
    }

    /// Every node's client URL, comma-separated (the seed list premia takes).
    pub fn urls(&self) -> String {
        self.nodes.iter().map(|n| format!("nats://127.0.0.1:{}", n.client_port)).collect::<Vec<_>>().join(",")
    }

    /// The index of the node that leads `stream`, as the nodes' monitoring endpoints say.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let url = format!("http://127.0.0.1:{}/jsz?streams=true", node.monitor_port);
            let Ok(response) = ureq::get(&url).timeout(Duration::from_secs(2)).call() else { continue };
            let Ok(text) = response.into_string() else { continue };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            let accounts = json["account_details"].as_array().cloned().unwrap_or_default();
            for account in accounts {
                for detail in account["stream_detail"].as_array().cloned().unwrap_or_default() {
                    if detail["name"] == stream {
                        let leader = detail["cluster"]["leader"].as_str().unwrap_or_default().to_string();
                        if let Some(i) = self.nodes.iter().position(|n| n.name == leader) {
                            return Some(i);
                        }
                    }
                }
            }
        }
        None
    }

    /// SIGKILL, as a crash of the node or its machine would.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again with its store.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let routes: Vec<String> =
            self.nodes.iter().map(|n| format!("nats-route://127.0.0.1:{}", n.route_port)).collect();
        let child = spawn(&self.nodes[i], &routes.join(","), self.dir.path());
        wait_listening(self.nodes[i].client_port);
        self.nodes[i].child = Some(child);
        self.wait_healthy(i);
    }

    /// Waits until node `i` says its JetStream is current (`/healthz`): a node that answers on
    /// its port may still be catching up, and killing another one meanwhile would leave a
    /// three-replica stream without a quorum (two nodes down at once, which the tests do not
    /// claim to survive).
    fn wait_healthy(&self, i: usize) {
        let url = format!("http://127.0.0.1:{}/healthz", self.nodes[i].monitor_port);
        // Catching up on a busy stream takes a while on a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(180);
        while !ureq::get(&url).timeout(Duration::from_secs(2)).call().is_ok_and(|r| r.status() == 200) {
            assert!(Instant::now() < deadline, "{} did not report healthy within three minutes", self.nodes[i].name);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn spawn(node: &Node, routes: &str, dir: &Path) -> Child {
    Command::new(binary())
        .args(["-a", "127.0.0.1", "-p", &node.client_port.to_string(), "-js", "-sd"])
        .arg(dir.join(&node.name))
        .args(["--server_name", &node.name, "--cluster_name", "premia-test"])
        .args(["--cluster", &format!("nats://127.0.0.1:{}", node.route_port), "--routes", routes])
        .args(["-m", &node.monitor_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server must be installed (.ci/run installs Debian's nats-server package)")
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
