// Source fingerprints per module. Shared, via `include!`, by build.rs (which bakes them into the
// binary) and by the tests (which recompute them from the tree to prove the baked ones are current).
//
// Modules: every directory directly under `src/` is one module named after it, except
// `src/experiments/`, where `mod.rs` is the module `experiments` and every other file is its own
// module `experiments/<file stem>`; every other top-level file is a module named after its stem.

use std::path::Path;

pub fn module_fingerprints(src: &Path) -> Vec<(String, String)> {
    let mut modules: Vec<(String, Vec<std::path::PathBuf>)> = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(src).expect("src/ is readable").flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() && name == "experiments" {
            let mut files: Vec<_> = std::fs::read_dir(&path).expect("readable").flatten().map(|e| e.path()).collect();
            files.sort();
            for file in files {
                let stem = file.file_stem().unwrap().to_string_lossy().to_string();
                let module = if stem == "mod" { "experiments".to_string() } else { format!("experiments/{stem}") };
                modules.push((module, rust_files(&file)));
            }
        } else if path.is_dir() {
            modules.push((name, rust_files(&path)));
        } else if path.extension().is_some_and(|e| e == "rs") {
            modules.push((name, vec![path]));
        }
    }
    modules
        .into_iter()
        .map(|(module, files)| {
            let mut hasher = blake3::Hasher::new();
            for file in files {
                let rel = file.strip_prefix(src).unwrap().to_string_lossy().replace('\\', "/");
                hasher.update(rel.as_bytes());
                hasher.update(&[0]);
                hasher.update(&std::fs::read(&file).expect("source file is readable"));
                hasher.update(&[0]);
            }
            (module, hasher.finalize().to_hex().to_string())
        })
        .collect()
}

fn rust_files(path: &Path) -> Vec<std::path::PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
