//! Proof by mutation that stage keys can never serve a stale result, item by item: for items of
//! every source file under `src/` outside the engine, edit a copy of the sources inside the item,
//! recompute every stage kind's code key with the code build.rs bakes into the binary
//! (`src/engine/code_graph.rs`), and check what the edit makes stale, against the code graph and
//! against what we know the code to do. Comments, whitespace and doc comments make nothing stale.
//!
//! `make test` edits every item of the files the checks below name and every fifth item of the
//! others; `REPRO_MUTATE_EVERY_ITEM=1` (set by `.ci/run`) edits every item.

include!("../src/engine/code_graph.rs");

use std::collections::BTreeMap as Map;

use syn::spanned::Spanned;

/// One fingerprint per stage kind: blake3 over its code part (file -> digest of its items).
fn kind_keys(graph: &CodeGraph) -> Map<String, String> {
    graph
        .kinds
        .keys()
        .map(|kind| {
            let mut hasher = blake3::Hasher::new();
            for (file, digest) in graph.kind_code(kind).expect("declared") {
                hasher.update(file.as_bytes());
                hasher.update(digest.as_bytes());
            }
            (kind.clone(), hasher.finalize().to_hex().to_string())
        })
        .collect()
}

/// Kinds that compute results from data (trainings, data generation), as opposed to analyses,
/// figures and the report.
fn computes(kind: &str) -> bool {
    [".train", ".run", ".data", ".interpolate"].iter().any(|s| kind.ends_with(s))
}

fn trainings(kinds: &BTreeSet<String>) -> Vec<&String> {
    kinds.iter().filter(|k| computes(k) && !k.ends_with(".data")).collect()
}

/// The experiment a file or stage kind belongs to, if any.
fn experiment_of_file(file: &str) -> Option<&str> {
    file.strip_prefix("src/experiments/")?.split_once('/').map(|(id, _)| id)
}

fn experiment_of_kind(kind: &str) -> &str {
    kind.split_once('.').map_or(kind, |(id, _)| id)
}

/// The sources under `src/`, parsed.
struct Tree {
    root: &'static Path,
    parsed: Map<String, (String, syn::File)>,
}

impl Tree {
    fn load() -> Tree {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = Vec::new();
        collect_rs(&root.join("src"), &mut paths).unwrap();
        let parsed = paths
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).unwrap();
                let ast = syn::parse_file(&text).unwrap();
                (relative(root, p), (text, ast))
            })
            .collect();
        Tree { root, parsed }
    }

    fn borrowed(&self) -> Map<&str, (&str, &syn::File)> {
        borrowed(&self.parsed)
    }

    fn graph(&self) -> CodeGraph {
        CodeGraph::from_parsed(self.root, &self.borrowed()).unwrap()
    }

    /// The graph with file `file` replaced by `text`.
    fn graph_with(&self, file: &str, text: &str) -> CodeGraph {
        let ast = syn::parse_file(text).unwrap_or_else(|e| panic!("the edit of {file} does not parse: {e}"));
        let mut files = self.borrowed();
        files.insert(file, (text, &ast));
        CodeGraph::from_parsed(self.root, &files).unwrap()
    }
}

/// Where a no-op edit goes inside an item: after the opening brace of a function's body
/// (`let _ = ();`), else before the item (an attribute, which is part of the item's tokens).
struct EditPoint {
    offset: usize,
    insert: &'static str,
}

/// Every item of a file in the order the code graph lists them (`CodeGraph::order`), with its
/// edit point: the same walk as the graph's scan (tests, `use` and `mod` items are not items).
fn edit_points(text: &str, ast: &syn::File) -> Vec<EditPoint> {
    let lines: Vec<usize> =
        std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect::<Vec<usize>>();
    let offset = |at: proc_macro2::LineColumn| {
        let start = lines[at.line - 1];
        start + text[start..].chars().take(at.column).map(char::len_utf8).sum::<usize>()
    };
    let before = |span: proc_macro2::Span| EditPoint { offset: offset(span.start()), insert: "#[allow(dead_code)] " };
    let inside = |block: &syn::Block| EditPoint {
        offset: offset(block.brace_token.span.open().start()) + 1,
        insert: " let _ = ();",
    };
    fn walk(
        items: &[syn::Item],
        out: &mut Vec<EditPoint>,
        before: &dyn Fn(proc_macro2::Span) -> EditPoint,
        inside: &dyn Fn(&syn::Block) -> EditPoint,
    ) {
        for item in items {
            match item {
                syn::Item::Mod(m) if !is_cfg_test(&m.attrs) => {
                    if let Some((_, content)) = &m.content {
                        walk(content, out, before, inside);
                    }
                }
                syn::Item::Impl(i) if !is_cfg_test(&i.attrs) => {
                    for member in &i.items {
                        match member {
                            syn::ImplItem::Fn(f) if !is_cfg_test(&f.attrs) => out.push(inside(&f.block)),
                            syn::ImplItem::Const(c) if !is_cfg_test(&c.attrs) => out.push(before(first_span(c))),
                            syn::ImplItem::Type(t) if !is_cfg_test(&t.attrs) => out.push(before(first_span(t))),
                            syn::ImplItem::Macro(m) if !is_cfg_test(&m.attrs) => out.push(before(first_span(m))),
                            _ => {}
                        }
                    }
                }
                syn::Item::Fn(f) if !is_cfg_test(&f.attrs) => out.push(inside(&f.block)),
                syn::Item::Struct(syn::ItemStruct { attrs, .. })
                | syn::Item::Enum(syn::ItemEnum { attrs, .. })
                | syn::Item::Union(syn::ItemUnion { attrs, .. })
                | syn::Item::Type(syn::ItemType { attrs, .. })
                | syn::Item::Trait(syn::ItemTrait { attrs, .. })
                | syn::Item::TraitAlias(syn::ItemTraitAlias { attrs, .. })
                | syn::Item::Const(syn::ItemConst { attrs, .. })
                | syn::Item::Static(syn::ItemStatic { attrs, .. })
                | syn::Item::Macro(syn::ItemMacro { attrs, .. })
                | syn::Item::ForeignMod(syn::ItemForeignMod { attrs, .. })
                    if !is_cfg_test(attrs) =>
                {
                    out.push(before(first_span(item)))
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&ast.items, &mut out, &before, &inside);
    out
}

fn first_span(node: &impl quote::ToTokens) -> proc_macro2::Span {
    node.to_token_stream().into_iter().next().map_or_else(|| node.span(), |t| t.span())
}

struct Mutated {
    /// Edited item -> the kinds whose key the edit changed.
    stale: Map<String, BTreeSet<String>>,
    base: CodeGraph,
}

/// The files whose every item `make test` edits (the checks below read them).
const ALWAYS_EDITED: &[&str] = &[
    "src/analysis/stats.rs",
    "src/analysis/mod.rs",
    "src/nn/sparse_input.rs",
    "src/nn/host_mlp.rs",
    "src/nn/conv_block.rs",
    "src/nn/optim.rs",
    "src/nn/flat.rs",
    "src/training/mnist.rs",
    "src/plot/mod.rs",
    "src/nn/lanes.rs",
    "src/report/mod.rs",
];

/// Edits items of a copy of the sources, one at a time, and records which kinds' keys change.
fn mutate_items() -> Mutated {
    let tree = Tree::load();
    let base = tree.graph();
    let before = kind_keys(&base);
    let every = std::env::var("REPRO_MUTATE_EVERY_ITEM").is_ok_and(|v| v == "1");
    let mut jobs = Vec::new();
    let mut position = 0;
    for (file, (text, ast)) in tree.parsed.iter().filter(|(f, _)| !f.starts_with(ENGINE_DIR)) {
        let points = edit_points(text, ast);
        let ids: Vec<&String> = base.order.iter().filter(|id| base.items[*id].file == *file).collect();
        assert_eq!(points.len(), ids.len(), "{file}: the test's walk and the graph's disagree on its items");
        for (point, id) in points.into_iter().zip(ids) {
            position += 1;
            if every || ALWAYS_EDITED.contains(&file.as_str()) || position % 5 == 0 {
                jobs.push((file.clone(), id.clone(), point));
            }
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    let chunks: Vec<Vec<(String, String, EditPoint)>> = {
        let mut chunks: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, job) in jobs.into_iter().enumerate() {
            chunks[i % threads].push(job);
        }
        chunks
    };
    let base_hashes: Map<String, String> = base.items.iter().map(|(id, it)| (id.clone(), it.hash.clone())).collect();
    let stale = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (base_hashes, before) = (&base_hashes, &before);
                scope.spawn(move || {
                    // Syntax trees are not Send: each thread parses its own.
                    let tree = Tree::load();
                    let mut out = Map::new();
                    for (file, id, point) in chunk {
                        let text = &tree.parsed[&file].0;
                        let edited = format!("{}{}{}", &text[..point.offset], point.insert, &text[point.offset..]);
                        let after = tree.graph_with(&file, &edited);
                        let moved: Vec<&String> = after
                            .items
                            .iter()
                            .filter(|(i, it)| base_hashes.get(*i) != Some(&it.hash))
                            .map(|(i, _)| i)
                            .collect();
                        assert_eq!(moved, vec![&id], "the edit inside {id} changed the hash of exactly that item");
                        let keys = kind_keys(&after);
                        let changed =
                            before.iter().filter(|(k, v)| keys.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect();
                        out.insert(id, changed);
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    Mutated { stale, base }
}

fn mutated() -> &'static Mutated {
    static ONCE: std::sync::OnceLock<Mutated> = std::sync::OnceLock::new();
    ONCE.get_or_init(mutate_items)
}

fn file_of(m: &Mutated, id: &str) -> String {
    m.base.items[id].file.clone()
}

#[test]
fn an_edit_inside_an_item_makes_stale_exactly_the_kinds_that_reach_it() {
    let m = mutated();
    assert!(m.stale.len() > 300, "only {} items edited", m.stale.len());
    let closures: Map<&String, BTreeSet<String>> =
        m.base.kinds.keys().map(|k| (k, m.base.kind_items(k).unwrap())).collect();
    for (id, stale) in &m.stale {
        let reaching: BTreeSet<String> =
            closures.iter().filter(|(_, items)| items.contains(id)).map(|(k, _)| k.to_string()).collect();
        assert_eq!(stale, &reaching, "editing {id}");
    }
    for (kind, run) in &m.base.kinds {
        if let Some(stale) = m.stale.get(run) {
            assert!(stale.contains(kind), "editing its own run function leaves {kind} fresh");
        }
    }
}

/// The cases, each against what reading the code says: an edit inside the statistics
/// retrains nothing; inside the sparse first layer, only the MLP trainings that use it; inside the
/// host pass of the small networks, no MNIST training.
#[test]
fn an_edit_reruns_only_what_runs_the_edited_item() {
    let m = mutated();
    let in_file = |file: &str| -> Vec<(&String, &BTreeSet<String>)> {
        let found: Vec<_> = m.stale.iter().filter(|(id, _)| file_of(m, id) == file).collect();
        assert!(!found.is_empty(), "no item of {file} was edited");
        found
    };
    for (id, stale) in in_file("src/analysis/stats.rs") {
        assert!(trainings(stale).is_empty(), "editing {id} retrains {:?}", trainings(stale));
    }
    let sparse_users = [
        "interpolation.train",
        "interpolation.interpolate",
        "params_generalization.train",
        "random_labels.train",
        "sensitivity.train",
    ];
    let mut sparse_reached = false;
    for (id, stale) in in_file("src/nn/sparse_input.rs") {
        let others: Vec<&String> =
            trainings(stale).into_iter().filter(|k| !sparse_users.contains(&k.as_str())).collect();
        assert!(others.is_empty(), "editing {id} retrains {others:?}, which never use the sparse first layer");
        sparse_reached |= !stale.is_empty();
    }
    assert!(sparse_reached, "no edit of the sparse first layer reran anything");
    let mnist_trainings = |stale: &BTreeSet<String>| -> Vec<String> {
        let mnist = ["mnist_cnn", "random_labels", "params_generalization", "interpolation", "sensitivity"];
        trainings(stale).into_iter().filter(|k| mnist.contains(&experiment_of_kind(k))).cloned().collect()
    };
    let mut host_reached = false;
    for (id, stale) in in_file("src/nn/host_mlp.rs") {
        assert!(mnist_trainings(stale).is_empty(), "editing {id} retrains {:?}", mnist_trainings(stale));
        host_reached |= stale.contains("sim_functions.train");
    }
    assert!(host_reached, "no edit of the host pass reran sim_functions' training");
}

#[test]
fn comments_whitespace_and_doc_comments_rerun_nothing() {
    let tree = Tree::load();
    let base = tree.graph();
    let before = kind_keys(&base);
    let mut edited_files: Map<String, (String, syn::File)> = Map::new();
    for (file, (text, ast)) in tree.parsed.iter().filter(|(f, _)| !f.starts_with(ENGINE_DIR)) {
        // Inside every function body a comment, blank lines and indentation; before every item a
        // doc comment.
        let mut points = edit_points(text, ast);
        points.sort_by_key(|p| std::cmp::Reverse(p.offset));
        let mut edited = text.clone();
        for point in points {
            let note =
                if point.insert.starts_with("#[") { "/// A note.\n" } else { " // a note\n\n   /* and another */ " };
            edited.insert_str(point.offset, note);
        }
        let ast = syn::parse_file(&edited).unwrap_or_else(|e| panic!("{file}: {e}"));
        edited_files.insert(file.clone(), (edited, ast));
    }
    let mut borrowed = tree.borrowed();
    for (file, (text, ast)) in &edited_files {
        borrowed.insert(file.as_str(), (text.as_str(), ast));
    }
    let after = CodeGraph::from_parsed(tree.root, &borrowed).unwrap();
    assert_eq!(kind_keys(&after), before, "a comment, whitespace or a doc comment changed a key");
    assert_ne!(after.files["src/nn/mlp.rs"].hash, base.files["src/nn/mlp.rs"].hash, "the files were edited");
}

#[test]
fn an_edit_of_a_figure_or_of_the_report_retrains_nothing() {
    let m = mutated();
    for (id, stale) in &m.stale {
        let file = file_of(m, id);
        let figure_or_report = file.ends_with("/plot.rs")
            || file.ends_with("/report.rs")
            || file.starts_with("src/plot/")
            || file.starts_with("src/report/");
        if figure_or_report {
            let computed: Vec<&String> = stale.iter().filter(|k| computes(k)).collect();
            assert!(computed.is_empty(), "editing {id} reruns {computed:?}");
        }
    }
}

#[test]
fn an_edit_of_one_experiment_reruns_no_other_experiments_stages() {
    let m = mutated();
    for (id, stale) in &m.stale {
        let file = file_of(m, id);
        let Some(owner) = experiment_of_file(&file) else { continue };
        let others: Vec<&String> = stale.iter().filter(|k| *k != "report" && experiment_of_kind(k) != owner).collect();
        assert!(others.is_empty(), "editing {id} reruns {others:?}");
    }
}

/// What reading the code says each shared item feeds: the edges whose absence would serve stale
/// results (hand-written, independent of the code graph).
#[test]
fn shared_code_invalidates_the_stages_that_run_it() {
    let m = mutated();
    let expect = |id: &str, kinds: &[&str]| {
        let stale = m.stale.get(id).unwrap_or_else(|| panic!("{id} was not edited (renamed?)"));
        for kind in kinds {
            assert!(stale.contains(*kind), "editing {id} leaves {kind} fresh (stale: {stale:?})");
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
    expect("training::mnist::fit_on_mnist", &mnist_trainings);
    // Adam's step: the trainings that keep one optimiser per network (the full-batch stacks have
    // their own, FlatAdam and StackedAdam).
    expect("nn::optim::Adam::step", &["mnist_cnn.train", "grad_norm.train", "random_labels.train"]);
    expect("nn::flat::FlatAdam::step", &["sim_functions.train", "min_ratio.run"]);
    // Every training writes its outputs through analysis::Table.
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
    expect("analysis::Table", &every_training);
    // The conv block: every CNN, and nothing that never convolves.
    let conv: Vec<&String> = m.stale.keys().filter(|id| file_of(m, id) == "src/nn/conv_block.rs").collect();
    assert!(conv.iter().any(|id| m.stale[*id].contains("mnist_cnn.train")), "no conv block edit retrains the CNNs");
    for id in conv {
        assert!(!m.stale[id].contains("sim_functions.train"), "{id} retrains sim_functions");
    }
    // What Rust resolves where a name is hidden from a plain reading: a constant named only
    // inside a format string; a function called through the one an item-level macro defines
    // (`widest_vectors!`); functions a macro's body calls, resolved where it is invoked
    // (`vector_kernel!` in the AVX-512 module); a trait method of a type named in a turbofish
    // under a `use` inside a function body.
    expect("report::CSS", &["report"]);
    expect("nn::conv_block::kernel::backward_chunk", &["mnist_cnn.train"]);
    expect("nn::sparse_input::kernel::avx512::fmadd", &["params_generalization.train", "random_labels.train"]);
    expect("nn::lanes::<Avx2 as Vector>::mul_add", &["mnist_cnn.train"]);
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
    let reached: BTreeSet<String> = m
        .base
        .kinds
        .keys()
        .flat_map(|k| m.base.kind_items(k).unwrap())
        .map(|id| m.base.items[&id].file.clone())
        .collect();
    let unreached: Vec<&String> = m
        .base
        .files
        .keys()
        .filter(|f| f.starts_with("src/") && !f.starts_with(ENGINE_DIR) && !reached.contains(*f) && !wiring(f))
        .collect();
    assert!(unreached.is_empty(), "no stage kind reaches {unreached:?}");
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
    let graph = Tree::load().graph();
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

/// Files import each other without a circle (file edges: what an item names by path), as the
/// top-level modules do: each file can be read, and tested, from what it imports alone.
#[test]
fn files_import_each_other_without_a_circle() {
    let graph = Tree::load().graph();
    let files: Vec<&String> = graph.files.keys().filter(|f| f.starts_with("src/")).collect();
    let reach = |from: &String| -> BTreeSet<&String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(f) = stack.pop() {
            for next in &graph.files[f].edges {
                if let Some(next) = files.iter().find(|g| **g == next)
                    && seen.insert(*next)
                {
                    stack.push(next);
                }
            }
        }
        seen
    };
    let reaches: Map<&String, BTreeSet<&String>> = files.iter().map(|f| (*f, reach(f))).collect();
    let mut circles: BTreeSet<Vec<String>> = BTreeSet::new();
    for f in &files {
        let circle: Vec<String> = files
            .iter()
            .filter(|g| reaches[*f].contains(*g) && reaches[*g].contains(*f))
            .map(|g| g.to_string())
            .collect();
        if circle.len() > 1 {
            circles.insert(circle);
        }
    }
    assert!(circles.is_empty(), "files that import each other in a circle: {circles:?}");
    // The circles issue 36 named are gone: the engine's keys, fingerprints and store; the host
    // pass and the flat parameter layout; the report and the run comparison.
    for file in ["src/engine/key.rs", "src/nn/flat.rs", "src/study/diff.rs", "src/engine/remote/trust.rs"] {
        assert!(circles.iter().all(|c| !c.contains(&file.to_string())), "{file} is in a circle");
    }
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

/// Functions (free, in impls and in traits, tests included) and the lines of their bodies, brace
/// to brace.
fn function_lengths(ast: &syn::File) -> Vec<(String, usize)> {
    struct Lengths(Vec<(String, usize)>);
    impl Lengths {
        fn note(&mut self, name: &syn::Ident, node: &impl quote::ToTokens) {
            let (start, end) = (first_span(node).start().line, node.span().end().line);
            self.0.push((name.to_string(), end + 1 - start));
        }
    }
    impl<'ast> syn::visit::Visit<'ast> for Lengths {
        fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
            self.note(&f.sig.ident, &f.block);
            syn::visit::visit_item_fn(self, f);
        }
        fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
            self.note(&f.sig.ident, &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
        fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
            if let Some(block) = &f.default {
                self.note(&f.sig.ident, block);
            }
            syn::visit::visit_trait_item_fn(self, f);
        }
    }
    let mut lengths = Lengths(Vec::new());
    syn::visit::Visit::visit_file(&mut lengths, ast);
    lengths.0
}

/// The engine is where every feature enters (remote execution, placement, resumption): each of
/// its functions reads in one screen, 60 lines of body at most.
#[test]
fn no_engine_function_is_over_60_lines() {
    let tree = Tree::load();
    let long: Vec<String> = tree
        .parsed
        .iter()
        .filter(|(file, _)| file.starts_with(ENGINE_DIR))
        .flat_map(|(file, (_, ast))| {
            function_lengths(ast).into_iter().filter(|(_, n)| *n > 60).map(move |(f, n)| format!("{file}: {f} ({n})"))
        })
        .collect();
    assert!(long.is_empty(), "engine functions over 60 lines: {long:#?}");
    // The measure itself: a known function's body, counted from its braces.
    let scheduler = &tree.parsed["src/engine/scheduler.rs"].1;
    assert!(function_lengths(scheduler).iter().any(|(f, n)| f == "run" && (10..=60).contains(n)));
}

/// What a comment says that reads as a measured timing or speed: a number with a unit of time
/// ("12 ms", "0.35s", "about 3 minutes", "28-38 ms") or a speed-up ("2.3x faster", "24 % slower",
/// "3-5x cheaper").
fn timings_in(comment: &str) -> Vec<String> {
    const UNITS: [&str; 10] = ["ns", "us", "µs", "ms", "s", "sec", "seconds", "min", "minutes", "hours"];
    let words: Vec<&str> =
        comment.split_whitespace().map(|w| w.trim_matches(|c: char| ",;:()~≈".contains(c))).collect();
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let digits = word.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(word.len());
        if digits == 0 || word[..digits].parse::<f64>().is_err() {
            continue;
        }
        // A range ("3-5x", "28-38 ms") reads as its upper end.
        let rest = &word[digits..];
        let suffix = match rest.strip_prefix(['-', '–']) {
            Some(upper) => upper.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.'),
            None => rest,
        };
        let next = words.get(i + 1).copied().unwrap_or("");
        let next = next.trim_end_matches(['.', ',']);
        let unit = if suffix.is_empty() { next } else { suffix.trim_end_matches(['.', ',']) };
        let speed = (matches!(suffix, "x" | "%") || matches!(next, "x" | "%"))
            && words[i + 1..]
                .iter()
                .take(2)
                .any(|w| ["faster", "slower", "cheaper", "dearer"].iter().any(|s| w.starts_with(s)));
        if UNITS.contains(&unit) || speed {
            let span = if speed && suffix.is_empty() { 3 } else { 2 };
            found.push(words[i..(i + span).min(words.len())].join(" "));
        }
    }
    found
}

/// Timings in comments drift as the code and the machines change (issue 36 found six): a comment
/// says why, and the benchmarks under bench/ carry the numbers. Test code may name the delays it
/// sets up, so only what precedes a file's first `#[cfg(test)]` is read.
#[test]
fn comments_under_src_carry_no_machine_timings() {
    let tree = Tree::load();
    let mut found = Vec::new();
    for (file, (text, _)) in &tree.parsed {
        let shipped = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in shipped.lines().enumerate() {
            if let Some((_, comment)) = line.split_once("//") {
                found.extend(timings_in(comment).into_iter().map(|t| format!("{file}:{}: {t}", n + 1)));
            }
        }
    }
    assert!(found.is_empty(), "comments with timings: {found:#?}");
    // The reader itself, on what issue 36 found.
    assert_eq!(timings_in("a status takes 0.12 ms on this host"), ["0.12 ms"]);
    assert_eq!(timings_in("about 24 % faster than a loop"), ["24 % faster"]);
    assert_eq!(timings_in("(12ms each), 3s later"), ["12ms each", "3s later"]);
    assert_eq!(timings_in("steps are 3-5x cheaper here, in 28-38 ms"), ["3-5x cheaper", "28-38 ms"]);
    assert!(timings_in("2 cores, 60 lines, 1e-2, x = 4, h = 1").is_empty());
}
