//! The code part of stage keys, baked in by build.rs (see `code_graph.rs` for how it is derived),
//! with an override hook to see what an edit would rerun without rebuilding.

use std::collections::BTreeMap;
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/fingerprints.rs"));

pub use super::key::DEPENDENCIES_ENTRY;

/// A stage kind as build.rs bakes it.
pub struct BakedKind {
    pub name: &'static str,
    /// The file of its run function.
    pub run_file: &'static str,
    /// (file, digest of the items it reaches there: `code_graph::file_digest`) per file.
    pub files: &'static [(&'static str, &'static str)],
    /// Indices into ITEMS of every item it reaches.
    pub items: &'static [usize],
}

fn kind_entry(kind: &str) -> Option<&'static BakedKind> {
    KINDS.iter().find(|k| k.name == kind)
}

/// The files in which stage kind `kind` reaches items (see [`items_of`]).
pub fn files_of(kind: &str) -> Option<Vec<&'static str>> {
    Some(kind_entry(kind)?.files.iter().map(|(file, _)| *file).collect())
}

/// (item id, its file) of every item whose tokens enter the key of stage kind `kind`: the items
/// its run function reaches. `None` for a kind not declared under `src/` (a test's).
pub fn items_of(kind: &str) -> Option<Vec<(&'static str, &'static str)>> {
    Some(kind_entry(kind)?.items.iter().map(|&i| (ITEMS[i].0, FILES[ITEMS[i].1].0)).collect())
}

/// Every baked item's id and blake3 as JSON, and the blake3 of that JSON. The cache keeps it
/// under that digest (`Store::keep_catalogue`) and each stage's last-run note names it, so that a
/// later binary can name the items an edit changed (`name_changed_items`).
pub fn catalogue() -> &'static (String, String) {
    static CATALOGUE: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let items: BTreeMap<&str, &str> = ITEMS.iter().map(|(id, _, hash)| (*id, *hash)).collect();
        let json = serde_json::to_string(&items).expect("strings serialise");
        (super::hash_bytes(json.as_bytes()), json)
    })
}

/// (item id, file, blake3) of every item whose tokens enter the key of stage kind `kind`.
pub fn item_hashes(kind: &str) -> Option<impl Iterator<Item = (&'static str, &'static str, &'static str)>> {
    Some(kind_entry(kind)?.items.iter().map(|&i| (ITEMS[i].0, FILES[ITEMS[i].1].0, ITEMS[i].2)))
}

/// The file that holds kind `kind`'s run function.
pub fn run_file(kind: &str) -> Option<&'static str> {
    kind_entry(kind).map(|k| k.run_file)
}

/// The code part of kind `kind`'s key: per file in [`files_of`], the digest of the items the kind
/// reaches there (`code_graph::file_digest`: an edit of an item it does not reach leaves it); and
/// the dependencies (Cargo.lock's versions, Cargo.toml's declarations and features), which any
/// result may depend on.
///
/// `REPRO_CODE_OVERRIDE=src/plot/mod.rs=abc,Cargo.lock=def` replaces fingerprints, to see what an
/// edit of those files would rerun without rebuilding (`repro status` answers at once).
///
/// `None` for a kind build.rs found no declaration of (`StageKind::plain("name", run)` and its
/// siblings, under `src/`, outside tests): its code could not be derived, so it has no key.
pub fn code_of(kind: &str) -> Option<BTreeMap<String, String>> {
    let overrides = overrides();
    let mut code: BTreeMap<String, String> =
        kind_entry(kind)?.files.iter().map(|(file, digest)| (file.to_string(), digest.to_string())).collect();
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
    for path in super::walk_files(&root.join("src")).ok()? {
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
        for super::BakedKind { name: kind, .. } in super::KINDS {
            let derived: Vec<String> = graph.kind_items(kind).unwrap().into_iter().collect();
            let baked: Vec<String> = super::items_of(kind).unwrap().into_iter().map(|(id, _)| id.to_string()).collect();
            assert_eq!(derived, baked, "{kind}");
            let mut code = super::code_of(kind).unwrap();
            code.remove(super::DEPENDENCIES_ENTRY);
            assert_eq!(graph.kind_code(kind).unwrap(), code, "{kind}");
        }
    }
}
