//! Crash-safe file writes: a reader sees the old file or the new one, never a torn one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary name beside `path`, unique across the hosts, processes and threads that share the
/// directory (a cache on a cluster filesystem has writers on many nodes).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|s| s.to_string_lossy()).unwrap_or_default();
    path.with_file_name(format!(".{name}{}{}.{n}", temp_marker(), std::process::id()))
}

/// What every temporary name written from this host contains: `.tmp.<host>.`.
pub fn temp_marker() -> String {
    format!(".tmp.{}.", host())
}

/// Whether `name` is a temporary this host wrote ([`temp_sibling`]) for a process that has since
/// ended, killed half-way through the write: only such a one may be removed from a directory
/// that runs holding different locks share (another process's may be in flight).
pub fn left_by_ended_process(name: &str) -> bool {
    let Some((_, writer)) = name.rsplit_once(&temp_marker()) else { return false };
    let Some(pid) = writer.split('.').next().and_then(|pid| pid.parse::<u32>().ok()) else { return false };
    pid != std::process::id() && !process_exists(pid)
}

#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
    // Signal 0 delivers nothing: it asks whether the process exists (EPERM: it does, as another user's).
    // SAFETY: kill with signal 0 has no effect on the target.
    let delivered = unsafe { libc::kill(pid, 0) } == 0;
    delivered || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_exists(_pid: u32) -> bool {
    true
}

/// This machine's host name (file-name safe), read once.
pub fn host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let raw = fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "host".to_string());
        raw.trim().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
    })
}

/// Writes `bytes` to `path` through a temporary sibling: write, fsync, rename, fsync the directory.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_through_temp(path, bytes, true)
}

/// As [`write`] without the fsyncs: a killed process leaves its writes in the page cache, so
/// readers still see the old file or the new one; a power cut may tear the new one, which suits
/// files that carry their own hash (checkpoints) and are cheaper rewritten often.
pub fn write_unsynced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_through_temp(path, bytes, false)
}

fn write_through_temp(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable { sync_dir(path) } else { Ok(()) }
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Copies `from`'s bytes to `to` atomically (same rules as [`write`]). The copy is a new file
/// with the mode the umask gives (0644 under the usual 022), not `from`'s: the store's read-only
/// objects become ordinary files of the user's.
pub fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = temp_sibling(to);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        std::io::copy(&mut File::open(from)?, &mut file)?;
        file.sync_all()?;
        fs::rename(&tmp, to)?;
        sync_dir(to)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename inside the directory of `path` durable.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

/// A temporary name beside `path` as a process of this host that has since ended would have
/// left it, for tests of the sweeps.
#[cfg(test)]
pub fn temp_sibling_of_ended_process(path: &Path) -> PathBuf {
    let mut child = std::process::Command::new("true").spawn().expect("`true` runs");
    let ended = child.id();
    child.wait().expect("`true` ends");
    let name = path.file_name().map(|s| s.to_string_lossy()).unwrap_or_default();
    path.with_file_name(format!(".{name}{}{ended}.0", temp_marker()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_ended_writers_temporary_counts_as_left() {
        let left = temp_sibling_of_ended_process(Path::new("train-images-idx3-ubyte"));
        let left = left.to_string_lossy().to_string();
        assert!(left_by_ended_process(&left), "its writer has exited");
        let named = |pid: u32| format!(".train-images-idx3-ubyte{}{pid}.0", temp_marker());
        assert!(!left_by_ended_process(&named(std::process::id())), "this process is writing it");
        assert!(!left_by_ended_process(&named(1)), "a live process (init)");
        assert!(!left_by_ended_process(&left.replace(&temp_marker(), ".tmp.othernode.")), "another host's");
        assert!(!left_by_ended_process("train-images-idx3-ubyte"), "not a temporary");
    }
}
