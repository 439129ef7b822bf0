//! The code part of stage keys, baked in by build.rs (see `code_graph.rs` for how it is derived),
//! with an override hook to see what an edit would rerun without rebuilding.

use std::collections::BTreeMap;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/fingerprints.rs"));

/// The name under which the dependencies (versions in Cargo.lock, declarations and features in
/// Cargo.toml) enter every key's code part.
pub const DEPENDENCIES_ENTRY: &str = "Cargo.lock";

/// (file, blake3) of every file that enters the key of stage kind `kind` (each file its run
/// function's file reaches), or `None` for a kind not declared under `src/` (a test's).
fn baked_code(kind: &str) -> Option<impl Iterator<Item = &'static (&'static str, &'static str)>> {
    KINDS.iter().find(|(name, _, _)| *name == kind).map(|(_, _, files)| files.iter().map(|&i| &FILES[i]))
}

/// The files whose blake3 enter the key of stage kind `kind` (see [`baked_code`]).
pub fn files_of(kind: &str) -> Option<Vec<&'static str>> {
    Some(baked_code(kind)?.map(|(file, _)| *file).collect())
}

/// The file that holds kind `kind`'s run function.
pub fn run_file(kind: &str) -> Option<&'static str> {
    KINDS.iter().find(|(name, _, _)| *name == kind).map(|(_, file, _)| *file)
}

/// The code part of kind `kind`'s key: file -> blake3 for every file in [`files_of`], and the
/// dependencies (Cargo.lock's versions, Cargo.toml's declarations and features), which any result
/// may depend on.
///
/// `REPRO_CODE_OVERRIDE=src/plot/mod.rs=abc,Cargo.lock=def` replaces fingerprints, to see what an
/// edit of those files would rerun without rebuilding (`repro status` answers at once).
///
/// `None` for a kind build.rs found no declaration of (`StageKind::plain("name", run)` and its
/// siblings, under `src/`, outside tests): its code could not be derived, so it has no key.
pub fn code_of(kind: &str) -> Option<BTreeMap<String, String>> {
    let overrides = overrides();
    let mut code: BTreeMap<String, String> =
        baked_code(kind)?.map(|(file, hash)| (file.to_string(), hash.to_string())).collect();
    code.insert(DEPENDENCIES_ENTRY.to_string(), DEPENDENCIES.to_string());
    for (file, hash) in code.iter_mut() {
        if let Some(v) = overrides.get(file) {
            *hash = v.clone();
        }
    }
    Some(code)
}

fn overrides() -> BTreeMap<String, String> {
    std::env::var("REPRO_CODE_OVERRIDE")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// How the sources under `root` differ from the ones the binary was built from: files edited,
/// added or removed since. `None` when `root` is not this crate's checkout.
pub fn drift(root: &Path) -> Option<Vec<String>> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).ok()?;
    if !manifest.contains(&format!("name = \"{}\"", env!("CARGO_PKG_NAME"))) || !root.join("src").is_dir() {
        return None;
    }
    let mut now = BTreeMap::new();
    for path in super::store::walk_files(&root.join("src")).ok()? {
        if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).ok()?.to_string_lossy().replace('\\', "/");
            now.insert(rel, super::hash_file(&path).ok()?);
        }
    }
    let mut changed = Vec::new();
    for (file, hash) in FILES {
        let current =
            if file.starts_with("src/") { now.remove(*file) } else { super::hash_file(&root.join(file)).ok() };
        match current {
            Some(h) if h == *hash => {}
            Some(_) => changed.push(format!("{file} edited")),
            None => changed.push(format!("{file} removed")),
        }
    }
    changed.extend(now.into_keys().map(|file| format!("{file} added")));
    Some(changed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn baked_code_matches_the_tree() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(super::drift(root), Some(Vec::new()), "the binary was built from other sources");
        let graph = crate::engine::code_graph::CodeGraph::from_tree(root).unwrap();
        for (kind, _, _) in super::KINDS {
            let mut derived: Vec<String> = graph.kind_code(kind).unwrap().into_keys().collect();
            derived.sort();
            let mut baked: Vec<String> = super::files_of(kind).unwrap().into_iter().map(str::to_string).collect();
            baked.sort();
            assert_eq!(derived, baked, "{kind}");
        }
    }
}
