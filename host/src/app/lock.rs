//! One host per SQLite database.
//!
//! SQLite is the single-host store: two hosts on one file would each fire
//! every job (nothing coordinates them). A second `wasmcron run` on the
//! same file is refused at start, by an exclusive `flock` on `PATH.lock`
//! held for the host's life; the kernel drops it when the process ends,
//! `kill -9` included, so a crash never leaves a stale lock. Several hosts
//! belong on PostgreSQL.

use anyhow::Context as _;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub(super) struct HostLock {
    _file: std::fs::File,
}

/// Takes the lock beside the SQLite database at `db` (a path, without the
/// `sqlite://` prefix).
///
/// # Errors
/// When another process holds it (the error names its pid when known),
/// or when the lock file cannot be created.
pub(super) fn lock_sqlite(db: &Path) -> anyhow::Result<HostLock> {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the database's folder {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    if !try_lock(&file)? {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        anyhow::bail!(
            "another wasmcron host{} is using the database {}: SQLite serves one host, and \
             two would each fire every job. Stop the other host, give this one another --db, \
             or put several hosts on PostgreSQL (--db postgres://USER@HOST/DB)",
            if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            },
            db.display()
        );
    }
    // Who holds it, for the message above; best effort.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(HostLock { _file: file })
}

/// An exclusive, non-blocking lock: `Ok(false)` when another holds it.
#[cfg(target_os = "linux")]
fn try_lock(file: &std::fs::File) -> anyhow::Result<bool> {
    use rustix::fs::{FlockOperation, flock};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(std::io::Error::from(e)).context("locking the database's lock file"),
    }
}

/// Elsewhere the lock is not taken (the store's own locking still keeps
/// the file intact; only double firing is not prevented).
#[cfg(not(target_os = "linux"))]
fn try_lock(_file: &std::fs::File) -> anyhow::Result<bool> {
    Ok(true)
}
