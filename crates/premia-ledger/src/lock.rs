//! One process at a time per data dir, and a clear sentence when another one holds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the data dir {dir} is in use by another premia process ({holder}); stop that process, or point this command at another directory with --data-dir")]
    Held { dir: PathBuf, holder: String },
    #[error("cannot create or open the data dir {dir}: {source}. Check that the path is writable")]
    Io { dir: PathBuf, source: std::io::Error },
}

/// An exclusive advisory lock on `DIR/premia.lock`, released when dropped (or when the process
/// dies, however it dies). The file names the holder so that others can say who it is.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path, command: &str) -> Result<DirLock, LockError> {
        let io = |source| LockError::Io { dir: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join("premia.lock");
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io)?;
                file.rewind().map_err(io)?;
                writeln!(file, "pid {} running `premia {command}`", std::process::id()).map_err(io)?;
                Ok(DirLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(held(dir, &mut file)),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// The same exclusive lock, for a command that must write nothing at all in the data dir
    /// (`verify`): the lock file is opened read-only and left as it is. A data dir without one
    /// has no holder to keep out (a holder keeps its file), so there is nothing to lock.
    pub fn acquire_read_only(dir: &Path) -> Result<Option<DirLock>, LockError> {
        let io = |source| LockError::Io { dir: dir.to_path_buf(), source };
        let mut file = match File::open(dir.join("premia.lock")) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        match file.try_lock() {
            Ok(()) => Ok(Some(DirLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(held(dir, &mut file)),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

/// The refusal when another process holds the lock, naming it from the file's line.
fn held(dir: &Path, file: &mut File) -> LockError {
    // The holder writes its line just after it takes the lock: give it a moment.
    let mut holder = String::new();
    for _ in 0..20 {
        holder.clear();
        let _ = file.rewind();
        let _ = file.read_to_string(&mut holder);
        if !holder.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let holder = holder.trim();
    let holder = if holder.is_empty() { "a process that did not say which".to_string() } else { holder.to_string() };
    LockError::Held { dir: dir.to_path_buf(), holder }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_who_has_the_dir() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), "serve").unwrap();
        let err = DirLock::acquire(dir.path(), "statement").unwrap_err().to_string();
        assert!(err.contains(&format!("pid {} running `premia serve`", std::process::id())), "{err}");
        drop(first);
        DirLock::acquire(dir.path(), "statement").unwrap();
    }

    #[test]
    fn a_read_only_holder_keeps_writers_out_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DirLock::acquire_read_only(dir.path()).unwrap().is_none(), "no lock file, nothing to hold");
        drop(DirLock::acquire(dir.path(), "ingest").unwrap());
        let before = std::fs::read(dir.path().join("premia.lock")).unwrap();
        let reader = DirLock::acquire_read_only(dir.path()).unwrap().expect("the lock file is there");
        let err = DirLock::acquire(dir.path(), "serve").unwrap_err().to_string();
        assert!(err.contains("pid"), "{err}");
        drop(reader);
        assert_eq!(std::fs::read(dir.path().join("premia.lock")).unwrap(), before);
        let writer = DirLock::acquire(dir.path(), "serve").unwrap();
        assert!(DirLock::acquire_read_only(dir.path()).is_err());
        drop(writer);
    }
}
