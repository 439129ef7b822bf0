//! The pipeline engine: stage graph, content-addressed store, keys, scheduler, lock.
//!
//! Nothing in here knows about neural networks. A stage is a named function with typed params and
//! named input files; the engine decides whether it must run, runs it, and stores what it wrote.

pub mod artifacts;
pub mod atomic;
pub mod checkpoint;
pub mod cluster;
#[cfg(test)]
pub mod code_graph;
pub mod fingerprint;
pub mod graph;
pub mod key;
pub mod lineage;
pub mod lock;
pub mod placement;
pub mod progress;
pub mod remote;
pub mod run_log;
pub mod scheduler;
pub mod status;
pub mod store;
pub mod untrusted;

pub use graph::{Graph, InputRef, Stage, StageContext, StageKind};
pub use key::KeyParts;
pub use scheduler::{RunOptions, RunSummary};
pub use store::{Record, Store};

/// Every regular file below `dir` (two levels is all the store uses, but any depth works).
pub fn walk_files(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// blake3 of a byte slice as lowercase hex.
pub fn hash_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// blake3 of a file's contents as lowercase hex, streamed so large data files do not sit in memory.
pub fn hash_file(path: &std::path::Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex().to_string())
}
