// Which source files each stage kind's code reaches, derived from the code itself. Shared, via
// `include!`, by build.rs (which bakes the result into the binary) and by the tests (which
// recompute it from a modified copy of the tree, to prove what an edit makes stale).
//
// A stage kind is declared as `StageKind::plain("name", run)` (or `numeric`, `numeric_batched`):
// a name and a run function, nothing else. Its code key is the blake3 of every file its run
// function's file reaches, where a file reaches:
// - what its `use` items import and what its paths name (`crate::…`, `super::…`, `self::…`, a
//   child module, a name it imported), including every name inside a macro invocation (a macro of
//   this crate may turn `registry!(sim_functions)` into `sim_functions::Settings`); a path to an
//   item re-exported by `pub use` resolves to the file that defines it, so naming `crate::nn::Mlp`
//   reaches `src/nn/mlp.rs`, not everything `src/nn/mod.rs` re-exports;
// - a `pub use` of its own only when the file itself uses the imported name (a re-export serves
//   other files, which resolve through it);
// - files it embeds with `include_bytes!`, `include_str!` or `include!` (a literal path);
// - the files that implement what it reaches: an inherent `impl T` once T's file is reached; an
//   `impl Trait for T` once both the trait's file and T's file are reached (or only one of them
//   when the other is not this crate's), since its methods run only where both are in play.
// `mod x;` is not an edge (declaring a module runs none of its code); items under `#[cfg(test)]`
// are skipped (they never run in a stage). Files under `src/engine/` are never part of a closure:
// the engine computes keys and runs stages, and computes no result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use syn::visit::Visit;

/// The engine: it decides whether and where a stage runs, never what it computes.
pub const ENGINE_DIR: &str = "src/engine/";

/// The source tree as a file graph, and the stage kinds declared in it.
pub struct CodeGraph {
    /// Path from the crate root (`src/nn/cnn.rs`) -> the file.
    pub files: BTreeMap<String, SourceFile>,
    /// Every stage kind declared outside `#[cfg(test)]`: its name -> the file of its run function.
    pub kinds: BTreeMap<String, String>,
    impls: Vec<ImplEdge>,
}

pub struct SourceFile {
    /// blake3 of the file's bytes.
    pub hash: String,
    /// Files this one reaches directly (not through impls).
    pub edges: BTreeSet<String>,
}

/// An impl block in `file` for a type (and trait) defined in `types` (and `traits`): empty when
/// not this crate's.
struct ImplEdge {
    file: String,
    types: BTreeSet<String>,
    traits: Option<BTreeSet<String>>,
}

impl CodeGraph {
    /// Parses every `.rs` file under `root/src`.
    pub fn from_tree(root: &Path) -> Result<CodeGraph, String> {
        let mut paths = Vec::new();
        collect_rs(&root.join("src"), &mut paths)?;
        paths.sort();
        let mut parsed = BTreeMap::new();
        for path in &paths {
            let rel = relative(root, path);
            let text = std::fs::read_to_string(path).map_err(|e| format!("{rel}: {e}"))?;
            let ast = syn::parse_file(&text).map_err(|e| format!("{rel}: cannot parse: {e}"))?;
            parsed.insert(rel, (text, ast));
        }
        // Module path -> file, inline modules included.
        let mut modules: BTreeMap<Segments, String> = BTreeMap::new();
        for (rel, (_, ast)) in &parsed {
            if let Some(module) = module_of(rel) {
                let mut inline = InlineModules { scope: module.clone(), found: Vec::new() };
                inline.visit_file(ast);
                modules.insert(module, rel.clone());
                for m in inline.found {
                    modules.insert(m, rel.clone());
                }
            }
        }
        let scans: BTreeMap<String, Scan> = parsed
            .iter()
            .map(|(rel, (text, ast))| {
                let mut scan = Scan::new(rel, &modules);
                scan.visit_file(ast);
                scan.count_idents(text);
                (rel.clone(), scan)
            })
            .collect();
        let resolver = Resolver { modules: &modules, scans: &scans };
        let mut files = BTreeMap::new();
        let mut kinds = BTreeMap::new();
        let mut impls = Vec::new();
        for (rel, scan) in &scans {
            let mut edges = BTreeSet::new();
            for written in &scan.paths {
                edges.extend(resolver.resolve(rel, &written.scope, &written.path));
            }
            for import in scan.uses.iter().filter(|u| !u.public || scan.uses_name(&u.name)) {
                edges.extend(resolver.target(&import.path, 0));
            }
            for glob in &scan.globs {
                edges.extend(resolver.glob(glob));
            }
            for asset in &scan.assets {
                let dir = Path::new(rel).parent().unwrap_or(Path::new(""));
                let joined = normalise(&dir.join(asset));
                let bytes = std::fs::read(root.join(&joined)).map_err(|e| format!("{rel}: embeds {joined}: {e}"))?;
                files.insert(
                    joined.clone(),
                    SourceFile { hash: blake3::hash(&bytes).to_hex().to_string(), edges: BTreeSet::new() },
                );
                edges.insert(joined);
            }
            edges.remove(rel);
            for header in &scan.impls {
                let types = resolver.resolve(rel, &header.scope, &header.self_ty);
                let traits = header.trait_path.as_ref().map(|t| resolver.resolve(rel, &header.scope, t));
                impls.push(ImplEdge { file: rel.clone(), types, traits });
            }
            for call in &scan.kinds {
                let Some(run_file) = resolver.resolve(rel, &call.scope, &call.run).into_iter().next() else {
                    return Err(format!("{rel}: cannot find the run function of stage kind `{}`", call.name));
                };
                if kinds.insert(call.name.clone(), run_file).is_some() {
                    return Err(format!("{rel}: a second stage kind is named `{}`", call.name));
                }
            }
            if let Some(problem) = &scan.problem {
                return Err(problem.clone());
            }
            let hash = blake3::hash(parsed[rel].0.as_bytes()).to_hex().to_string();
            files.insert(rel.clone(), SourceFile { hash, edges });
        }
        Ok(CodeGraph { files, kinds, impls })
    }

    /// Every file `start` reaches (itself included), the engine left out.
    pub fn closure(&self, start: &str) -> BTreeSet<String> {
        let mut reached = BTreeSet::new();
        let mut stack = vec![start.to_string()];
        loop {
            while let Some(file) = stack.pop() {
                if file.starts_with(ENGINE_DIR) || !reached.insert(file.clone()) {
                    continue;
                }
                if let Some(f) = self.files.get(&file) {
                    stack.extend(f.edges.iter().cloned());
                }
            }
            let touches = |set: &BTreeSet<String>| set.is_empty() || set.iter().any(|f| reached.contains(f));
            stack = self
                .impls
                .iter()
                .filter(|i| !reached.contains(&i.file))
                .filter(|i| match &i.traits {
                    // A method of a trait impl runs only where both the trait and the type are in play.
                    Some(traits) => touches(traits) && touches(&i.types) && !(traits.is_empty() && i.types.is_empty()),
                    None => !i.types.is_empty() && touches(&i.types),
                })
                .map(|i| i.file.clone())
                .collect();
            if stack.is_empty() {
                return reached;
            }
        }
    }

    /// The files that enter the key of stage kind `kind`, each with its blake3.
    pub fn kind_code(&self, kind: &str) -> Option<BTreeMap<String, String>> {
        let run_file = self.kinds.get(kind)?;
        Some(self.closure(run_file).into_iter().map(|f| (f.clone(), self.files[&f].hash.clone())).collect())
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` -> `[a, b]`; `src/lib.rs` -> `[]`; `src/main.rs` (the binary
/// crate root, which reaches the library as `repro::`) -> `None`.
fn module_of(rel: &str) -> Option<Vec<String>> {
    let inner = rel.strip_prefix("src/")?.strip_suffix(".rs")?;
    match inner {
        "lib" => Some(Vec::new()),
        "main" => None,
        _ => {
            let mut parts: Vec<String> = inner.split('/').map(str::to_string).collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            Some(parts)
        }
    }
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/")
}

/// `src/plot/../../assets/x` -> `assets/x`.
fn normalise(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().to_string()),
            _ => {}
        }
    }
    parts.join("/")
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.parse_args::<syn::Meta>().is_ok_and(|m| m.path().is_ident("test")))
}

fn idents(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

/// Inline `mod x { … }` modules of one file (outside tests).
struct InlineModules {
    scope: Vec<String>,
    found: Vec<Segments>,
}

impl<'ast> Visit<'ast> for InlineModules {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if m.content.is_none() || is_cfg_test(&m.attrs) {
            return;
        }
        self.scope.push(m.ident.to_string());
        self.found.push(self.scope.clone());
        syn::visit::visit_item_mod(self, m);
        self.scope.pop();
    }
}

/// A path's segments (`crate::nn::Mlp` -> `["crate", "nn", "Mlp"]`).
type Segments = Vec<String>;

/// A path as written, and the module it was written in (an inline module's, in one).
struct Written {
    scope: Segments,
    path: Segments,
}

/// An impl block's header: `impl Trait for SelfTy` or `impl SelfTy`.
struct ImplHeader {
    scope: Segments,
    self_ty: Segments,
    trait_path: Option<Segments>,
}

/// `StageKind::plain("name", run)`: the kind's name and its run function's path.
struct KindCall {
    name: String,
    scope: Segments,
    run: Segments,
}

/// A name a `use` item brings in: `name` stands for the absolute path `path`.
struct Import {
    name: String,
    path: Vec<String>,
    public: bool,
}

/// What one file defines, imports, names and declares.
struct Scan<'m> {
    file: String,
    scope: Vec<String>,
    modules: &'m BTreeMap<Segments, String>,
    defines: BTreeSet<String>,
    uses: Vec<Import>,
    globs: Vec<Segments>,
    /// Every path outside `use` items and impl trait headers.
    paths: Vec<Written>,
    assets: Vec<String>,
    impls: Vec<ImplHeader>,
    kinds: Vec<KindCall>,
    /// Occurrences of each identifier in the whole file, and in `use` items.
    ident_count: BTreeMap<String, (usize, usize)>,
    problem: Option<String>,
}

const KIND_CONSTRUCTORS: &[&str] = &["plain", "numeric", "numeric_batched"];

impl<'m> Scan<'m> {
    fn new(file: &str, modules: &'m BTreeMap<Segments, String>) -> Scan<'m> {
        Scan {
            file: file.to_string(),
            scope: module_of(file).unwrap_or_default(),
            modules,
            defines: BTreeSet::new(),
            uses: Vec::new(),
            globs: Vec::new(),
            paths: Vec::new(),
            assets: Vec::new(),
            impls: Vec::new(),
            kinds: Vec::new(),
            ident_count: BTreeMap::new(),
            problem: None,
        }
    }

    fn absolute_use(&self, segs: &[String]) -> Option<Segments> {
        absolute(self.modules, &self.scope, segs)
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, public: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, public);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.import(prefix, n.ident.to_string(), n.ident.to_string(), public),
            syn::UseTree::Rename(r) => self.import(prefix, r.ident.to_string(), r.rename.to_string(), public),
            syn::UseTree::Glob(_) => {
                if let Some(abs) = self.absolute_use(prefix) {
                    self.globs.push(abs);
                }
            }
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item, public);
                }
            }
        }
    }

    fn import(&mut self, prefix: &[String], ident: String, name: String, public: bool) {
        let mut segs = prefix.to_vec();
        let name = if ident == "self" { prefix.last().cloned().unwrap_or(name) } else { name };
        if ident != "self" {
            segs.push(ident);
        }
        if let Some(path) = self.absolute_use(&segs) {
            self.uses.push(Import { name, path, public });
        }
    }

    fn uses_name(&self, name: &str) -> bool {
        self.ident_count.get(name).is_some_and(|(all, in_uses)| all > in_uses)
    }

    /// Counts every identifier of the file, to tell a re-export the file also uses itself.
    fn count_idents(&mut self, text: &str) {
        if let Ok(tokens) = text.parse::<proc_macro2::TokenStream>() {
            for token in flatten(tokens) {
                if let proc_macro2::TokenTree::Ident(i) = token {
                    self.ident_count.entry(i.to_string()).or_default().0 += 1;
                }
            }
        }
    }

    fn count_use_idents(&mut self, tree: &syn::UseTree) {
        let mut count = |ident: &syn::Ident| self.ident_count.entry(ident.to_string()).or_default().1 += 1;
        match tree {
            syn::UseTree::Path(p) => {
                count(&p.ident);
                self.count_use_idents(&p.tree);
            }
            syn::UseTree::Name(n) => count(&n.ident),
            syn::UseTree::Rename(r) => {
                count(&r.ident);
                count(&r.rename);
            }
            syn::UseTree::Glob(_) => {}
            syn::UseTree::Group(g) => g.items.iter().for_each(|item| self.count_use_idents(item)),
        }
    }

    /// Paths inside a macro's tokens (`format!("{}", crate::x::y())`, `registry!(sim_functions)`),
    /// and embedded files.
    fn macro_tokens(&mut self, mac: &syn::Macro) {
        let name = mac.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
        if matches!(name.as_str(), "include_bytes" | "include_str" | "include") {
            if let Ok(lit) = mac.parse_body::<syn::LitStr>() {
                self.assets.push(lit.value());
            }
            return;
        }
        let tokens = flatten(mac.tokens.clone());
        let ident = |i: usize| match tokens.get(i) {
            Some(proc_macro2::TokenTree::Ident(id)) => Some(id.to_string()),
            _ => None,
        };
        let colon = |i: usize| matches!(tokens.get(i), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ':');
        let mut i = 0;
        while i < tokens.len() {
            let Some(first) = ident(i) else {
                i += 1;
                continue;
            };
            let mut path = vec![first];
            i += 1;
            while colon(i) && colon(i + 1) {
                match ident(i + 2) {
                    Some(next) => {
                        path.push(next);
                        i += 3;
                    }
                    None => break,
                }
            }
            // Every name counts, a lone one too: a macro of this crate may expand `$id` into
            // `$id::Settings`, so a child module named in its arguments is reached.
            self.paths.push(Written { scope: self.scope.clone(), path });
        }
    }
}

/// A token stream with its groups opened, each group's delimiters standing as a `;`.
fn flatten(tokens: proc_macro2::TokenStream) -> Vec<proc_macro2::TokenTree> {
    let mut out = Vec::new();
    for t in tokens {
        match t {
            proc_macro2::TokenTree::Group(g) => {
                let separator = proc_macro2::Punct::new(';', proc_macro2::Spacing::Alone);
                out.push(proc_macro2::TokenTree::Punct(separator.clone()));
                out.extend(flatten(g.stream()));
                out.push(proc_macro2::TokenTree::Punct(separator));
            }
            other => out.push(other),
        }
    }
    out
}

impl<'ast> Visit<'ast> for Scan<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if is_cfg_test(attrs) {
            return;
        }
        let defined = match item {
            syn::Item::Const(i) => Some(&i.ident),
            syn::Item::Enum(i) => Some(&i.ident),
            syn::Item::Fn(i) => Some(&i.sig.ident),
            syn::Item::Static(i) => Some(&i.ident),
            syn::Item::Struct(i) => Some(&i.ident),
            syn::Item::Trait(i) => Some(&i.ident),
            syn::Item::Type(i) => Some(&i.ident),
            syn::Item::Macro(i) => i.ident.as_ref(),
            _ => None,
        };
        if let Some(ident) = defined {
            self.defines.insert(ident.to_string());
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if m.content.is_some() {
            self.scope.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.scope.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let public = !matches!(u.vis, syn::Visibility::Inherited);
        self.count_use_idents(&u.tree);
        self.use_tree(&mut Vec::new(), &u.tree, public);
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let self_ty = match &*i.self_ty {
            syn::Type::Path(p) => idents(&p.path),
            _ => Vec::new(),
        };
        let trait_path = i.trait_.as_ref().map(|(_, path, _)| idents(path));
        self.impls.push(ImplHeader { scope: self.scope.clone(), self_ty, trait_path });
        // The trait's own path is not an edge of the impl's file (see the module doc); what its
        // generic arguments name is.
        if let Some((_, path, _)) = &i.trait_ {
            for segment in &path.segments {
                self.visit_path_arguments(&segment.arguments);
            }
        }
        self.visit_generics(&i.generics);
        self.visit_type(&i.self_ty);
        for item in &i.items {
            self.visit_impl_item(item);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_cfg_test(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.paths.push(Written { scope: self.scope.clone(), path: idents(path) });
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.macro_tokens(mac);
        syn::visit::visit_macro(self, mac);
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let syn::Expr::Path(func) = &*call.func {
            let segs = idents(&func.path);
            let n = segs.len();
            if n >= 2 && segs[n - 2] == "StageKind" && KIND_CONSTRUCTORS.contains(&segs[n - 1].as_str()) {
                let name = match call.args.first() {
                    Some(syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. })) => Some(s.value()),
                    _ => None,
                };
                let run = match call.args.iter().nth(1) {
                    Some(syn::Expr::Path(p)) => Some(idents(&p.path)),
                    _ => None,
                };
                match (name, run, call.args.len()) {
                    (Some(name), Some(run), 2) => self.kinds.push(KindCall { name, scope: self.scope.clone(), run }),
                    _ => {
                        self.problem = Some(format!(
                            "{}: a stage kind is declared as StageKind::{}(\"name\", run_function), with a string \
                             literal and a path",
                            self.file,
                            segs[n - 1]
                        ))
                    }
                }
            }
        }
        syn::visit::visit_expr_call(self, call);
    }
}

/// A path written in module `scope` made absolute: `crate::`, `repro::` (how the binary names the
/// library), `self::`, `super::` or a child module; `None` for another crate's or a local name.
fn absolute(modules: &BTreeMap<Segments, String>, scope: &[String], segs: &[String]) -> Option<Segments> {
    let first = segs.first()?;
    match first.as_str() {
        "crate" | "repro" => Some(segs[1..].to_vec()),
        "self" | "super" => {
            let mut base = scope.to_vec();
            let mut rest = segs;
            while let Some((head, tail)) = rest.split_first() {
                match head.as_str() {
                    "self" => {}
                    "super" => {
                        base.pop();
                    }
                    _ => break,
                }
                rest = tail;
            }
            base.extend(rest.iter().cloned());
            Some(base)
        }
        _ => {
            let mut child = scope.to_vec();
            child.push(first.clone());
            modules.contains_key(&child).then(|| {
                child.extend(segs[1..].iter().cloned());
                child
            })
        }
    }
}

/// Resolves paths to the files that define what they name.
struct Resolver<'a> {
    modules: &'a BTreeMap<Segments, String>,
    scans: &'a BTreeMap<String, Scan<'a>>,
}

impl Resolver<'_> {
    /// The files a path written in `file` (inside module `scope`) names.
    fn resolve(&self, file: &str, scope: &[String], path: &[String]) -> BTreeSet<String> {
        let scan = &self.scans[file];
        let Some(first) = path.first() else { return BTreeSet::new() };
        if path.len() == 1 && scan.defines.contains(first) {
            return BTreeSet::from([file.to_string()]);
        }
        if let Some(abs) = absolute(self.modules, scope, path) {
            return self.target(&abs, 0);
        }
        // A name this file imported, followed by the rest of the path.
        let mut out = BTreeSet::new();
        for import in scan.uses.iter().filter(|u| &u.name == first) {
            let mut abs = import.path.clone();
            abs.extend(path[1..].iter().cloned());
            out.extend(self.target(&abs, 0));
        }
        out
    }

    /// The file that defines what absolute path `abs` names: the deepest module on the path, or,
    /// when that module only re-exports the item, the file the re-export points to.
    fn target(&self, abs: &[String], depth: usize) -> BTreeSet<String> {
        let mut k = abs.len();
        while k > 0 && !self.modules.contains_key(&abs[..k]) {
            k -= 1;
        }
        let Some(file) = self.modules.get(&abs[..k]) else { return BTreeSet::new() };
        if k == abs.len() || depth > 8 {
            return BTreeSet::from([file.clone()]);
        }
        let scan = &self.scans[file];
        let item = &abs[k];
        if scan.defines.contains(item) {
            return BTreeSet::from([file.clone()]);
        }
        let reexports: Vec<&Import> = scan.uses.iter().filter(|u| u.public && &u.name == item).collect();
        if !reexports.is_empty() {
            return reexports.iter().flat_map(|u| self.target(&u.path, depth + 1)).collect();
        }
        let mut out = BTreeSet::from([file.clone()]);
        for glob in &scan.globs {
            out.extend(self.glob(glob));
        }
        out
    }

    /// A glob import of a module of this crate: its file and every file below it.
    fn glob(&self, module: &[String]) -> BTreeSet<String> {
        self.modules.iter().filter(|(m, _)| m.starts_with(module)).map(|(_, f)| f.clone()).collect()
    }
}

/// What results may depend on beyond this crate's sources, as one text to hash: the dependency
/// versions (Cargo.lock, less this package's own entry) and how the dependencies are declared
/// (Cargo.toml's dependency, feature, patch and profile tables: a dependency's feature can switch
/// its kernels, as gemm's `x86-v4` does, with no version changing). The manifest's other tables
/// (the package's version and description, lints, examples) are left out.
pub fn dependency_text(lock: &str, manifest: &str, package: &str) -> String {
    let versions: Vec<&str> =
        lock.split("\n[[package]]\n").filter(|entry| !entry.starts_with(&format!("name = \"{package}\"\n"))).collect();
    let mut declared = String::new();
    let mut keep = false;
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            let table = trimmed.trim_start_matches('[').trim_end_matches(']');
            keep = ["dependencies", "build-dependencies", "features", "patch", "replace", "profile", "target"]
                .iter()
                .any(|t| table == *t || table.starts_with(&format!("{t}.")));
        }
        if keep && !trimmed.is_empty() && !trimmed.starts_with('#') {
            declared.push_str(trimmed);
            declared.push('\n');
        }
    }
    format!("{}\n[manifest]\n{declared}", versions.join("\n[[package]]\n"))
}
