//! Bakes into the binary which items of the source each stage kind's code reaches (derived from
//! the code: src/engine/code_graph.rs) with the blake3 of each, the blake3 of every source file (to
//! tell a binary built from other sources), and of the dependencies (versions in Cargo.lock,
//! declarations and features in Cargo.toml, vendored sources), so that a stage key changes exactly
//! when code its run function can reach changes.

include!("src/engine/code_graph.rs");

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=assets");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=vendor");
    let graph =
        CodeGraph::from_tree(Path::new(".")).unwrap_or_else(|e| panic!("cannot derive the stage kinds' code: {e}"));
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let manifest = std::fs::read_to_string("Cargo.toml").unwrap_or_default();
    let file_index: BTreeMap<&String, usize> = graph.files.keys().enumerate().map(|(i, f)| (f, i)).collect();
    let mut out = String::from(
        "/// (path from the crate root, blake3 of its bytes) of every source and embedded file; generated \
         by build.rs.\npub static FILES: &[(&str, &str)] = &[\n",
    );
    for (path, file) in &graph.files {
        out.push_str(&format!("    ({path:?}, {:?}),\n", file.hash));
    }
    // Only the items some kind reaches: the others enter no key.
    let reached: BTreeSet<String> = graph.kinds.keys().flat_map(|k| graph.kind_items(k).unwrap()).collect();
    let item_index: BTreeMap<&String, usize> = reached.iter().enumerate().map(|(i, id)| (id, i)).collect();
    out.push_str(
        "];\n/// (item id, index into FILES of its file, blake3 of its tokens) of every item a stage kind \
         reaches.\npub static ITEMS: &[(&str, usize, &str)] = &[\n",
    );
    for id in &reached {
        let item = &graph.items[id];
        out.push_str(&format!("    ({id:?}, {}, {:?}),\n", file_index[&item.file], item.hash));
    }
    out.push_str("];\n/// Every stage kind declared under src/.\npub static KINDS: &[BakedKind] = &[\n");
    for name in graph.kinds.keys() {
        let code = graph.kind_code(name).unwrap();
        let digests: Vec<String> = code.iter().map(|(f, d)| format!("({f:?}, {d:?})")).collect();
        let items: Vec<String> = graph.kind_items(name).unwrap().iter().map(|id| item_index[id].to_string()).collect();
        out.push_str(&format!(
            "    BakedKind {{ name: {name:?}, run_file: {:?}, files: &[{}], items: &[{}] }},\n",
            graph.run_file(name).unwrap(),
            digests.join(", "),
            items.join(", ")
        ));
    }
    out.push_str(&format!(
        "];\n/// blake3 of the dependency versions (Cargo.lock), declarations (Cargo.toml) and vendored \
         sources (vendor/).\npub static DEPENDENCIES: &str = {:?};\n",
        blake3::hash(
            format!("{}\n[vendor]\n{}", dependency_text(&lock, &manifest, env!("CARGO_PKG_NAME")), vendored_text())
                .as_bytes()
        )
        .to_hex()
        .to_string()
    ));
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("fingerprints.rs");
    std::fs::write(dest, out).unwrap();
    bake_git_commit();
}

/// Every file under vendor/ (patched dependencies, whose version in Cargo.lock does not move when
/// a patch does) as `path blake3` lines in path order.
fn vendored_text() -> String {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new("vendor"), &mut files);
    files.sort();
    files
        .iter()
        .map(|f| format!("{} {}\n", f.display(), blake3::hash(&std::fs::read(f).unwrap_or_default()).to_hex()))
        .collect()
}

/// `REPRO_GIT_COMMIT`: the commit the binary was built from, `-dirty` when the sources that enter
/// stage keys differ from it, `unknown` outside a git checkout. Reruns when HEAD moves.
fn bake_git_commit() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = Path::new(".git/HEAD");
    if head.is_file() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        if let Some(reference) =
            std::fs::read_to_string(head).ok().and_then(|h| h.strip_prefix("ref: ").map(str::to_string))
        {
            let path = Path::new(".git").join(reference.trim());
            if path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        if Path::new(".git/packed-refs").is_file() {
            println!("cargo:rerun-if-changed=.git/packed-refs");
        }
    }
    let commit = match git(&["rev-parse", "HEAD"]) {
        Some(commit) => {
            let changes = git(&[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "src",
                "assets",
                "build.rs",
                "Cargo.toml",
                "Cargo.lock",
            ]);
            if changes.is_some_and(|c| !c.is_empty()) { format!("{commit}-dirty") } else { commit }
        }
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=REPRO_GIT_COMMIT={commit}");
}
