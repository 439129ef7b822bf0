//! Proof by mutation that stage keys can never serve a stale result: for every source file under
//! `src/` outside the engine, edit a copy of the tree, recompute every stage kind's code key with
//! the code build.rs bakes into the binary (`src/engine/code_graph.rs`), and check what the edit
//! makes stale, against the code graph and against what we know the code to do.

include!("../src/engine/code_graph.rs");

use std::collections::BTreeMap as Map;

/// One fingerprint per stage kind: blake3 over the files (and their hashes) that enter its key.
fn kind_keys(graph: &CodeGraph) -> Map<String, String> {
    graph
        .kinds
        .keys()
        .map(|kind| {
            let code = graph.kind_code(kind).expect("declared");
            let mut hasher = blake3::Hasher::new();
            for (file, hash) in code {
                hasher.update(file.as_bytes());
                hasher.update(hash.as_bytes());
            }
            (kind.clone(), hasher.finalize().to_hex().to_string())
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Kinds that compute results from data (trainings, data generation), as opposed to analyses,
/// figures and the report.
fn computes(kind: &str) -> bool {
    [".train", ".run", ".data", ".interpolate"].iter().any(|s| kind.ends_with(s))
}

/// The experiment a file or stage kind belongs to, if any.
fn experiment_of_file(file: &str) -> Option<&str> {
    file.strip_prefix("src/experiments/")?.split_once('/').map(|(id, _)| id)
}

fn experiment_of_kind(kind: &str) -> &str {
    kind.split_once('.').map_or(kind, |(id, _)| id)
}

struct Mutated {
    /// Edited file -> the kinds whose key the edit changed.
    stale: Map<String, BTreeSet<String>>,
    base: CodeGraph,
}

/// Edits every file under src/ (outside the engine) of a copy of the tree, one at a time, with a
/// no-op item appended, and records which kinds' keys change.
fn mutate_every_file() -> Mutated {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = CodeGraph::from_tree(root).unwrap();
    let before = kind_keys(&base);
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&root.join("src"), &copy.path().join("src"));
    copy_tree(&root.join("assets"), &copy.path().join("assets"));
    let mut stale = Map::new();
    for file in base.files.keys().filter(|f| f.starts_with("src/") && !f.starts_with(ENGINE_DIR)) {
        let path = copy.path().join(file);
        let original = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{original}\nconst _: () = ();\n")).unwrap();
        let after = kind_keys(&CodeGraph::from_tree(copy.path()).unwrap());
        std::fs::write(&path, original).unwrap();
        let changed = before.iter().filter(|(k, v)| after.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect();
        stale.insert(file.clone(), changed);
    }
    Mutated { stale, base }
}

fn mutated() -> &'static Mutated {
    static ONCE: std::sync::OnceLock<Mutated> = std::sync::OnceLock::new();
    ONCE.get_or_init(mutate_every_file)
}

#[test]
fn an_edit_makes_stale_every_kind_whose_run_function_reaches_the_file() {
    let m = mutated();
    for (file, stale) in &m.stale {
        let reaching: BTreeSet<String> = m
            .base
            .kinds
            .iter()
            .filter(|(_, run_file)| m.base.closure(run_file).contains(file))
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(stale, &reaching, "editing {file}");
    }
    for (kind, run_file) in &m.base.kinds {
        assert!(m.stale[run_file].contains(kind), "editing its own run function's file leaves {kind} fresh");
    }
}

#[test]
fn an_edit_of_a_figure_or_of_the_report_retrains_nothing() {
    for (file, stale) in &mutated().stale {
        let figure_or_report = file.ends_with("/plot.rs")
            || file.ends_with("/report.rs")
            || file.starts_with("src/plot/")
            || file.starts_with("src/report/");
        if figure_or_report {
            let computed: Vec<&String> = stale.iter().filter(|k| computes(k)).collect();
            assert!(computed.is_empty(), "editing {file} reruns {computed:?}");
        }
    }
}

#[test]
fn an_edit_of_one_experiment_reruns_no_other_experiments_stages() {
    for (file, stale) in &mutated().stale {
        let Some(owner) = experiment_of_file(file) else { continue };
        let others: Vec<&String> = stale.iter().filter(|k| *k != "report" && experiment_of_kind(k) != owner).collect();
        assert!(others.is_empty(), "editing {file} reruns {others:?}");
    }
}

/// What reading the code says each shared file feeds: the edges whose absence would serve stale
/// results (hand-written, independent of the code graph).
#[test]
fn shared_code_invalidates_the_stages_that_run_it() {
    let m = mutated();
    let expect = |file: &str, kinds: &[&str]| {
        let stale = &m.stale[file];
        for kind in kinds {
            assert!(stale.contains(*kind), "editing {file} leaves {kind} fresh (stale: {stale:?})");
        }
    };
    let mnist_trainings = [
        "mnist_cnn.train",
        "random_labels.train",
        "params_generalization.train",
        "interpolation.train",
        "sensitivity.train",
    ];
    // The shared MNIST training loop (shuffle, evaluation, history).
    expect("src/training/mnist.rs", &mnist_trainings);
    expect("src/nn/classify.rs", &mnist_trainings);
    // Full-batch regressions and batched sweeps.
    expect("src/training/sweep.rs", &["sim_functions.train", "weights_pca.train", "min_ratio.run", "grad_norm.train"]);
    // Every training writes its outputs through analysis::Table or its CSV helpers.
    let every_training = [
        "sim_functions.train",
        "weights_pca.train",
        "grad_norm.train",
        "min_ratio.run",
        "mnist_cnn.train",
        "random_labels.train",
        "params_generalization.train",
        "interpolation.train",
        "interpolation.interpolate",
    ];
    expect("src/analysis/mod.rs", &every_training);
    // The figures label learning rates as the stage names do.
    expect("src/experiments/interpolation/plot.rs", &["interpolation.plot"]);
    // The conv block: every CNN, and nothing that never convolves.
    expect("src/nn/conv_block.rs", &["mnist_cnn.train"]);
    assert!(!m.stale["src/nn/conv_block.rs"].contains("sim_functions.train"), "the conv block retrains sim_functions");
    expect("src/data/mnist.rs", &["mnist.fetch"]);
    // The figures embed their font: a new font redraws them.
    let plot = &m.base.kinds["sim_functions.plot"];
    assert!(m.base.closure(plot).contains("assets/DejaVuSans.ttf"));
}

#[test]
fn every_file_a_stage_can_run_enters_a_key() {
    // Files no stage kind reaches are the command line, the configuration and the stage wiring:
    // code that decides which stages exist and with which params (both in every key as values).
    let m = mutated();
    let wiring = |f: &str| {
        matches!(f, "src/main.rs" | "src/lib.rs" | "src/config.rs" | "src/study/mod.rs")
            || f.starts_with("src/app/")
            || (f.starts_with("src/experiments/") && f.ends_with("/mod.rs"))
            || f == "src/report/browser.rs"
            || f.ends_with("/mod.rs") && m.base.files[f].edges.is_empty()
    };
    let unreached: Vec<&String> = m.stale.iter().filter(|(_, s)| s.is_empty()).map(|(f, _)| f).collect();
    let unexpected: Vec<&&String> = unreached.iter().filter(|f| !wiring(f)).collect();
    assert!(unexpected.is_empty(), "no stage kind reaches {unexpected:?}");
}

#[test]
fn the_engine_reaches_nothing_above_it() {
    let graph = &mutated().base;
    for (file, f) in graph.files.iter().filter(|(f, _)| f.starts_with(ENGINE_DIR)) {
        let outside: Vec<&String> = f.edges.iter().filter(|e| !e.starts_with(ENGINE_DIR)).collect();
        assert!(outside.is_empty(), "{file} reaches {outside:?}");
    }
}

/// `src/a/b.rs` -> `a`, `src/config.rs` -> `config`; embedded files have none.
fn top_level_module(file: &str) -> Option<&str> {
    let inner = file.strip_prefix("src/")?;
    Some(inner.split_once('/').map_or_else(|| inner.trim_end_matches(".rs"), |(dir, _)| dir))
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let graph = CodeGraph::from_tree(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut uses: Map<&str, BTreeSet<&str>> = Map::new();
    for (file, f) in &graph.files {
        let Some(from) = top_level_module(file) else { continue };
        for to in f.edges.iter().filter_map(|e| top_level_module(e)).filter(|to| *to != from) {
            uses.entry(from).or_default().insert(to);
        }
    }
    // Depth-first search; a module met again while on the path closes a cycle.
    fn visit<'a>(
        m: &'a str,
        uses: &Map<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(at) = path.iter().position(|p| *p == m) {
            panic!("import cycle between top-level modules: {} -> {m}", path[at..].join(" -> "));
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for next in uses.get(m).into_iter().flatten() {
            visit(next, uses, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for m in uses.keys() {
        visit(m, &uses, &mut Vec::new(), &mut done);
    }
    assert!(!uses.contains_key("engine"), "the engine uses {:?}", uses.get("engine"));
    assert!(uses.contains_key("experiments") && uses.contains_key("study"), "the module graph was read");
}

/// A dependency's feature, a new dependency or a profile enters every key (the numbers may change
/// with them, as gemm's `x86-v4` feature switches its matrix kernels); the package's own version
/// and description, lints and examples do not, nor this package's entry in the lock file.
#[test]
fn dependency_declarations_and_versions_enter_keys_and_nothing_else_of_the_manifests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    let text = |lock: &str, manifest: &str| dependency_text(lock, manifest, "repro");
    let base = text(&lock, &manifest);
    let gemm = manifest.lines().find(|l| l.starts_with("gemm = ")).expect("gemm is declared").to_string();
    let with_feature = manifest.replace(&gemm, &gemm.replace("\"f16\"", "\"f16\", \"nightly\""));
    assert_ne!(text(&lock, &with_feature), base, "a dependency's feature");
    let with_dependency = manifest.replace("[dependencies]\n", "[dependencies]\nitoa = \"1\"\n");
    assert_ne!(text(&lock, &with_dependency), base, "a new dependency");
    assert_ne!(text(&lock, &format!("{manifest}\n[profile.release]\nopt-level = 2\n")), base, "a profile");
    let version = manifest.lines().find(|l| l.starts_with("version = ")).unwrap();
    let bumped = manifest.replacen(version, "version = \"9.9.9\"", 1);
    assert_eq!(text(&lock, &bumped), base, "the package's own version");
    assert_eq!(text(&lock, &format!("{manifest}\n[[example]]\nname = \"x\"\n")), base, "an example");
    let own = lock.split("\n[[package]]\n").find(|e| e.starts_with("name = \"repro\"\n")).unwrap();
    assert_eq!(text(&lock.replace(own, &own.replace("version = ", "version = \"0\"\n#")), &manifest), base);
    let serde = lock.split("\n[[package]]\n").find(|e| e.starts_with("name = \"serde\"\n")).unwrap();
    assert_ne!(text(&lock.replace(serde, &serde.replace("version = \"", "version = \"0.")), &manifest), base);
}
