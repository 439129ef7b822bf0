//! One run at a time per cache: an OS file lock, released by the kernel even on kill -9.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub struct CacheLock {
    _file: File,
    info: PathBuf,
}

impl CacheLock {
    /// Takes the lock on `cache_dir`; when another process holds it, waits if `wait`, else fails
    /// with a message that says who holds it and what to do.
    pub fn acquire(cache_dir: &Path, wait: bool) -> Result<CacheLock> {
        let mut file = open_lock_file(cache_dir)?;
        let info = cache_dir.join("lock.owner");
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let owner = fs::read_to_string(&info).unwrap_or_else(|_| "another process".into());
                if !wait {
                    bail!(
                        "the cache {} is in use by {} \n\
                         Only one run at a time may use a cache. Wait for it to finish, pass --wait to queue \
                         behind it, or use another cache with --cache DIR.",
                        cache_dir.display(),
                        owner.trim()
                    );
                }
                eprintln!("waiting for {} to release {} ...", owner.trim(), cache_dir.display());
                file.lock().context("cannot wait for the cache lock")?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(e).context("cannot lock the cache"),
        }
        let _ = file.write_all(b"");
        let owner = format!("repro run (pid {})", std::process::id());
        let _ = fs::write(&info, owner);
        Ok(CacheLock { _file: file, info })
    }
}

impl CacheLock {
    /// A shared hold for cluster jobs: any number of jobs at once, but never beside a `repro run`
    /// of this host (which cleans scratch space and needs the cache to itself). Waits while one
    /// holds the cache.
    pub fn shared(cache_dir: &Path) -> Result<SharedCacheLock> {
        let file = open_lock_file(cache_dir)?;
        file.lock_shared().context("cannot take a shared lock on the cache")?;
        Ok(SharedCacheLock { _file: file })
    }
}

pub struct SharedCacheLock {
    _file: File,
}

/// `<cache>/lock`, created with the cache directory when missing; the lock is on this file.
fn open_lock_file(cache_dir: &Path) -> Result<File> {
    fs::create_dir_all(cache_dir).with_context(|| format!("cannot create {}", cache_dir.display()))?;
    let path = cache_dir.join("lock");
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
}

impl Drop for CacheLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.info);
    }
}
