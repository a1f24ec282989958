//! Shared by the end-to-end tests: running the real `premia` binary on a data dir.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub const PREMIA: &str = env!("CARGO_BIN_EXE_premia");

/// Runs premia on a data dir and returns its output, whatever its exit status.
pub fn premia_status(dir: &Path, args: &[&str]) -> Output {
    Command::new(PREMIA).arg("--data-dir").arg(dir).args(args).output().expect("run premia")
}

/// Runs premia on a data dir; it must exit 0 and must not panic.
pub fn premia(dir: &Path, args: &[&str]) -> Output {
    let out = premia_status(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "premia {args:?} panicked:\n{stderr}");
    assert!(out.status.success(), "premia {args:?} exited with {}:\n{stderr}", out.status);
    out
}

/// The last line of stdout, which `--format json` makes exactly one JSON object.
pub fn last_json_line(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().expect("some output");
    serde_json::from_str(line).expect("the last line is one JSON object")
}
/// A child process that is killed (SIGKILL) and reaped when dropped, so that a failing test
/// leaves no premia or nats-server running behind it.
#[allow(dead_code)] // Not every test binary that includes this module starts a long-running child.
pub struct Reaped {
    pub child: std::process::Child,
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `premia serve --http` on a free loopback port against `nats_url`, with a config file in
/// `work` holding the SHA-256 of each (token, role); stderr goes to `work/serve.stderr`.
/// Returns once `/readyz` answers 200 (the serving loop has set up both streams), with the base
/// URL of the API.
pub fn serve_http(work: &Path, nats_url: &str, tokens: &[(&str, &str)]) -> (Reaped, String) {
    serve_http_with(work, nats_url, tokens, &[])
}

/// [`serve_http`] with more arguments for serve.
pub fn serve_http_with(work: &Path, nats_url: &str, tokens: &[(&str, &str)], extra: &[&str]) -> (Reaped, String) {
    serve_http_configured(work, nats_url, tokens, "", extra)
}

/// [`serve_http_with`] with more keys of the config file's `[http]` section (lines of TOML).
pub fn serve_http_configured(
    work: &Path,
    nats_url: &str,
    tokens: &[(&str, &str)],
    http: &str,
    extra: &[&str],
) -> (Reaped, String) {
    use sha2::Digest;
    let config = work.join("premia.toml");
    let mut text = format!("[http]\n{http}\n\n");
    for (token, role) in tokens {
        let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        text.push_str(&format!("[[http.tokens]]\nsha256 = \"{hash}\"\nrole = \"{role}\"\n\n"));
    }
    std::fs::write(&config, text).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let stderr = work.join("serve.stderr");
    let child = Command::new(PREMIA)
        .arg("--data-dir")
        .arg(work.join("ledger"))
        .arg("--config")
        .arg(&config)
        .args(["serve", "--nats-url", nats_url, "--http", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start premia serve");
    let serve = Reaped { child };
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ureq::get(&format!("{base}/readyz")).call().is_ok_and(|r| r.status() == 200) {
        assert!(
            std::time::Instant::now() < deadline,
            "premia serve was not ready within a minute; its stderr:\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (serve, base)
}

pub mod nats_cluster;
pub mod nats_server;
pub mod soak;
