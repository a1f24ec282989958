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

pub mod nats_server;
