// Which items of the source each stage kind's code reaches, derived from the code itself. Shared,
// via `include!`, by build.rs (which bakes the result into the binary) and by the tests (which
// recompute it from a modified copy of the tree, to prove what an edit makes stale).
//
// A stage kind is declared as `StageKind::plain("name", run)` (or `numeric`, `numeric_batched`):
// a name and a run function, nothing else. Its code key is the blake3 of every item its run
// function reaches. An item is a function, a type, a trait (with its default methods), a
// constant or static, a `macro_rules!`, an item-level macro invocation (which may define items),
// or one member of an impl block (with the block's header: its generics, trait and type). Each is
// hashed by its tokens, so comments and formatting never rerun anything; doc comments are left out
// too (they are attributes to the parser, but no program reads them back), and so is everything
// under `#[cfg(test)]`. Beside its tokens an item's hash covers the `use` lines of its module that
// bring in a name it uses (swapping `use a::exp` for `use b::exp` changes what it computes), the
// module's inner attributes and the attributes of the `mod` items that declare its module.
//
// An item reaches (an over-approximation wherever Rust needs types to resolve; soundness first):
// - what its paths name (`crate::…`, `super::…`, a child module, a name its module defines or
//   imports, a glob import), through `pub use` re-exports to the item that is defined; a path to
//   a module reaches nothing by itself; `T::m` for a type T of this crate reaches T and the
//   members named `m` of the impls of T (or of trait T); where no such member exists, or where
//   the first segment is a generic parameter or `Self` in a trait, every associated item named `m`;
// - for a method call `.m(..)`, every associated item (and trait) of the crate declaring `m`;
// - for a type, every member of every trait impl that names the type in its header (operators,
//   `Drop`, `Display`, `From` run without their names being written);
// - for a macro invocation, what the tokens inside it name (parsed as expressions where they are
//   expressions, else every path and every name in them, each name also as a method), the crate's
//   `macro_rules!` of that name, and, for a module named in its arguments, that module's items
//   named anywhere in the macro's body (a macro may turn `registry!(sim_functions)` into
//   `sim_functions::Settings`); a `macro_rules!` reaches what its body names;
// - files it embeds with `include_bytes!`, `include_str!` or `include!` (a literal path): each is
//   an item of its own, hashed by its bytes;
// - a path written as a string in an attribute (serde's `with = "…"`, `default = "…"`).
// A name that no item of the crate defines (a local, another crate's) reaches nothing. Items
// under `src/engine/` are never part of a closure: the engine computes keys and runs stages, and
// computes no result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use syn::visit::Visit;

/// The engine: it decides whether and where a stage runs, never what it computes.
pub const ENGINE_DIR: &str = "src/engine/";

/// The source tree as items, and the stage kinds declared in it.
pub struct CodeGraph {
    /// Path from the crate root (`src/nn/cnn.rs`, `assets/x.ttf`) -> the file.
    pub files: BTreeMap<String, SourceFile>,
    /// Item id (`analysis::stats::spearman`, `nn::mlp::Mlp::forward`) -> the item.
    pub items: BTreeMap<String, Item>,
    /// Every stage kind declared outside `#[cfg(test)]`: its name -> the id of its run function.
    pub kinds: BTreeMap<String, String>,
    /// Name -> what calling it as a method may run: (item id, the types that must be reached first).
    pub methods: BTreeMap<String, Vec<(String, BTreeSet<String>)>>,
    /// The source items' ids in the order they are written (files in path order; an impl block's
    /// members where the block is).
    pub order: Vec<String>,
}

pub struct SourceFile {
    /// blake3 of the file's bytes.
    pub hash: String,
    /// Files whose items this file's items name by path (not by method name): the import graph.
    pub edges: BTreeSet<String>,
}

pub struct Item {
    /// The file that holds it.
    pub file: String,
    /// blake3 of its tokens (doc comments left out) and of what else its meaning rests on (above).
    pub hash: String,
    /// Items it reaches directly.
    pub edges: BTreeSet<String>,
    /// Names it calls as methods (`.m(..)`, `T::m` for a generic `T`): see [`CodeGraph::methods`].
    pub calls: BTreeSet<String>,
}

/// Owned parsed sources (path -> (text, syntax tree)) as the borrowed map [`CodeGraph::from_parsed`]
/// reads, so that a caller can swap one file's entry for an edited copy without cloning the rest.
pub fn borrowed(parsed: &BTreeMap<String, (String, syn::File)>) -> BTreeMap<&str, (&str, &syn::File)> {
    parsed.iter().map(|(rel, (text, ast))| (rel.as_str(), (text.as_str(), ast))).collect()
}

impl CodeGraph {
    /// Parses every `.rs` file under `root/src`.
    pub fn from_tree(root: &Path) -> Result<CodeGraph, String> {
        let mut paths = Vec::new();
        collect_rs(&root.join("src"), &mut paths)?;
        paths.sort();
        let mut sources = BTreeMap::new();
        for path in &paths {
            let rel = relative(root, path);
            let text = std::fs::read_to_string(path).map_err(|e| format!("{rel}: {e}"))?;
            sources.insert(rel, text);
        }
        CodeGraph::from_sources(root, &sources)
    }

    /// The graph of the given sources (path from the crate root -> text); embedded files are read
    /// under `root`.
    pub fn from_sources(root: &Path, sources: &BTreeMap<String, String>) -> Result<CodeGraph, String> {
        let mut parsed = BTreeMap::new();
        for (rel, text) in sources {
            let ast = syn::parse_file(text).map_err(|e| format!("{rel}: cannot parse: {e}"))?;
            parsed.insert(rel.clone(), (text.clone(), ast));
        }
        CodeGraph::from_parsed(root, &borrowed(&parsed))
    }

    /// The graph of sources already parsed (path -> (text, syntax tree)); [`borrowed`] makes the
    /// map from owned sources.
    pub fn from_parsed(root: &Path, parsed: &BTreeMap<&str, (&str, &syn::File)>) -> Result<CodeGraph, String> {
        let mut scanned = Scanned::default();
        for (rel, (_, ast)) in parsed {
            scanned.file(rel, ast);
        }
        if let Some(problem) = scanned.problems.first() {
            return Err(problem.clone());
        }
        let sources: BTreeMap<&str, &str> = parsed.iter().map(|(rel, (text, _))| (*rel, *text)).collect();
        let mut files: BTreeMap<String, SourceFile> = sources
            .iter()
            .map(|(rel, text)| {
                let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
                (rel.to_string(), SourceFile { hash, edges: BTreeSet::new() })
            })
            .collect();
        let resolver = Resolver::new(&scanned);
        let mut items = BTreeMap::new();
        let mut kinds = BTreeMap::new();
        let mut order = Vec::new();
        for entry in &scanned.entries {
            order.push(entry.id.clone());
            let Reach { all: edges, named, calls } = resolver.edges(entry);
            for asset in &entry.refs.assets {
                let dir = Path::new(&entry.file).parent().unwrap_or(Path::new(""));
                let joined = normalise(&dir.join(asset));
                let bytes =
                    std::fs::read(root.join(&joined)).map_err(|e| format!("{}: embeds {joined}: {e}", entry.file))?;
                let hash = blake3::hash(&bytes).to_hex().to_string();
                files.insert(joined.clone(), SourceFile { hash: hash.clone(), edges: BTreeSet::new() });
                let edges = BTreeSet::new();
                items.insert(joined.clone(), Item { file: joined, hash, edges, calls: BTreeSet::new() });
            }
            let file_edges = named.iter().map(|id| scanned.file_of(id)).filter(|f| *f != entry.file);
            let file_edges: Vec<String> = file_edges.map(str::to_string).collect();
            files.get_mut(&entry.file).expect("scanned").edges.extend(file_edges);
            for call in &entry.refs.kinds {
                let run = resolver.path(&resolver.context(entry), &call.run).into_iter().find(|id| scanned.is_fn(id));
                let Some(run) = run else {
                    return Err(format!("{}: cannot find the run function of stage kind `{}`", entry.file, call.name));
                };
                if kinds.insert(call.name.clone(), run).is_some() {
                    return Err(format!("{}: a second stage kind is named `{}`", entry.file, call.name));
                }
            }
            let hash = blake3::hash(resolver.material(entry).as_bytes()).to_hex().to_string();
            items.insert(entry.id.clone(), Item { file: entry.file.clone(), hash, edges, calls });
        }
        Ok(CodeGraph { files, items, kinds, methods: resolver.methods(), order })
    }

    /// Every item `start` reaches (itself included), the engine's left out. A method named in a
    /// call is reached once one of the types it belongs to is.
    pub fn closure(&self, start: &str) -> BTreeSet<String> {
        let mut reached = BTreeSet::new();
        let mut called = BTreeSet::new();
        let mut waiting: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut stack = vec![start];
        while let Some(id) = stack.pop() {
            let Some((id, item)) = self.items.get_key_value(id) else { continue };
            if item.file.starts_with(ENGINE_DIR) || !reached.insert(id.clone()) {
                continue;
            }
            stack.extend(item.edges.iter().map(String::as_str));
            for name in item.calls.iter().filter(|name| called.insert(name.as_str())) {
                for (member, owners) in self.methods.get(name).into_iter().flatten() {
                    if owners.is_empty() || owners.iter().any(|o| reached.contains(o)) {
                        stack.push(member);
                    } else {
                        owners.iter().for_each(|o| waiting.entry(o).or_default().push(member));
                    }
                }
            }
            stack.extend(waiting.remove(id.as_str()).unwrap_or_default());
        }
        reached
    }

    /// The items that enter the key of stage kind `kind`.
    pub fn kind_items(&self, kind: &str) -> Option<BTreeSet<String>> {
        Some(self.closure(self.kinds.get(kind)?))
    }

    /// The code part of kind `kind`'s key, one entry per file: the blake3 of the ids and hashes of
    /// the file's items the kind reaches ([`file_digest`]).
    pub fn kind_code(&self, kind: &str) -> Option<BTreeMap<String, String>> {
        let mut by_file: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for id in self.kind_items(kind)? {
            let (id, item) = self.items.get_key_value(&id).expect("reached items exist");
            by_file.entry(&item.file).or_default().push((id, &item.hash));
        }
        Some(by_file.into_iter().map(|(file, items)| (file.to_string(), file_digest(items))).collect())
    }

    /// The file of the run function of kind `kind`.
    pub fn run_file(&self, kind: &str) -> Option<&str> {
        Some(&self.items[self.kinds.get(kind)?].file)
    }
}

/// One file's part of a code key: blake3 over `id hash` lines of the items reached in it, in id order.
pub fn file_digest<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut hasher = blake3::Hasher::new();
    for (id, hash) in items {
        hasher.update(id.as_bytes());
        hasher.update(b" ");
        hasher.update(hash.as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().to_hex().to_string()
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

/// A path's segments (`crate::nn::Mlp` -> `["crate", "nn", "Mlp"]`).
type Segments = Vec<String>;

/// Tokens as text for hashing: each token with its spacing (`a & &b` is not `a && b`), doc
/// comments (`#[doc = …]`, `#![doc = …]`) left out.
fn token_text(tokens: proc_macro2::TokenStream, out: &mut String) {
    use proc_macro2::{Delimiter, Spacing, TokenTree};
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let is_doc = |group: &TokenTree| match group {
        TokenTree::Group(g) if g.delimiter() == Delimiter::Bracket => {
            matches!(g.stream().into_iter().next(), Some(TokenTree::Ident(i)) if i == "doc")
        }
        _ => false,
    };
    let mut i = 0;
    while i < tokens.len() {
        if let TokenTree::Punct(p) = &tokens[i]
            && p.as_char() == '#'
        {
            let bang = matches!(tokens.get(i + 1), Some(TokenTree::Punct(b)) if b.as_char() == '!');
            let at = if bang { i + 2 } else { i + 1 };
            if tokens.get(at).is_some_and(is_doc) {
                i = at + 1;
                continue;
            }
        }
        match &tokens[i] {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("\u{2}", "\u{3}"),
                };
                out.push_str(open);
                token_text(g.stream(), out);
                out.push_str(close);
            }
            TokenTree::Punct(p) => {
                out.push(p.as_char());
                out.push(if p.spacing() == Spacing::Joint { '\u{1}' } else { ' ' });
            }
            other => {
                out.push_str(&other.to_string());
                out.push(' ');
            }
        }
        i += 1;
    }
}

fn text_of(tokens: &impl quote::ToTokens) -> String {
    let mut out = String::new();
    token_text(tokens.to_token_stream(), &mut out);
    out
}

/// A name a `use` item brings into a module: `name` stands for the path `written` (resolved when
/// every module is known: `Resolver::absolute`), as the text `line` says.
struct Import {
    name: String,
    written: Segments,
    line: String,
}

/// One module of the crate (a file, or an inline `mod x { … }`).
#[derive(Default)]
struct Module {
    file: String,
    /// Name -> the ids of the items it defines under that name (types, values and macros).
    defines: BTreeMap<String, Vec<String>>,
    imports: Vec<Import>,
    /// Glob imports as written (a module's items, or an enum's variants), and the text of all of them.
    globs: Vec<Segments>,
    glob_lines: String,
    /// Item-level macro invocations: (id, the macro's name, the names in its tokens). One may
    /// define any name in its tokens or in the macro's body (a macro cannot invent a name).
    invocations: Vec<(String, String, BTreeSet<String>)>,
    /// The attributes the module's `mod` item and its inner attributes give it.
    attributes: String,
}

/// An impl block's header, resolved later: `impl<G> Trait for SelfTy where …`.
struct ImplHeader {
    scope: Segments,
    self_ty: Segments,
    trait_path: Option<Segments>,
    generics: BTreeSet<String>,
    /// Every path in the header (the trait's generic arguments, bounds, the type's arguments).
    paths: Vec<Segments>,
    text: String,
}

#[derive(Clone, Copy, PartialEq)]
enum EntryKind {
    Function,
    Type,
    Trait,
    MacroRules,
    Invocation,
    Other,
    /// A member of the impl block of that index.
    Member(usize),
}

/// What an item's tokens name, before resolution.
#[derive(Default)]
struct Refs {
    paths: Vec<Segments>,
    methods: BTreeSet<String>,
    /// Names in macro tokens that did not parse as expressions.
    loose: BTreeSet<String>,
    /// (macro name, the paths in its arguments), for every macro invoked.
    macros: Vec<(String, Vec<Segments>)>,
    assets: Vec<String>,
    kinds: Vec<KindCall>,
    /// Stage kinds declared in a way no key can be derived for.
    problems: Vec<String>,
    /// Types of impl blocks nested in a body: their trait members run wherever the type does.
    nested_impl_types: Vec<Segments>,
    /// `use` items inside a body: names for the item's own paths, and glob imports.
    imports: Vec<Import>,
    globs: Vec<Segments>,
}

/// `StageKind::plain("name", run)`: the kind's name and its run function's path.
struct KindCall {
    name: String,
    run: Segments,
}

/// An item, scanned and not yet resolved.
struct Entry {
    id: String,
    file: String,
    scope: Segments,
    kind: EntryKind,
    /// Generic parameters in scope (the item's and its impl's or trait's).
    generics: BTreeSet<String>,
    /// The trait whose default method or associated item this is.
    in_trait: Option<String>,
    text: String,
    /// Names declared in a trait (its methods, constants, types), for method lookups by name.
    declares: Vec<String>,
    refs: Refs,
}

#[derive(Default)]
struct Scanned {
    modules: BTreeMap<Segments, Module>,
    entries: Vec<Entry>,
    impls: Vec<ImplHeader>,
    /// The paths in the body of each `macro_rules!` by name: what an expansion may name where it
    /// is invoked.
    macro_bodies: BTreeMap<String, Vec<Segments>>,
    ids: BTreeMap<String, usize>,
    problems: Vec<String>,
}

const KIND_CONSTRUCTORS: &[&str] = &["plain", "numeric", "numeric_batched"];

impl Scanned {
    fn file(&mut self, rel: &str, ast: &syn::File) {
        let scope = match module_of(rel) {
            Some(m) => m,
            None => vec!["main".to_string()],
        };
        let module = self.modules.entry(scope.clone()).or_default();
        module.file = rel.to_string();
        for attr in &ast.attrs {
            module.attributes.push_str(&text_of(attr));
        }
        self.items(rel, &scope, &ast.items);
    }

    fn file_of<'s>(&'s self, id: &'s str) -> &'s str {
        self.ids.get(id).map_or(id, |&i| &self.entries[i].file)
    }

    fn is_fn(&self, id: &str) -> bool {
        self.ids.get(id).is_some_and(|&i| matches!(self.entries[i].kind, EntryKind::Function | EntryKind::Member(_)))
    }

    fn id_for(&self, scope: &[String], name: &str) -> String {
        let base = if scope.is_empty() { name.to_string() } else { format!("{}::{name}", scope.join("::")) };
        let mut id = base.clone();
        let mut n = 2;
        while self.ids.contains_key(&id) {
            id = format!("{base}#{n}");
            n += 1;
        }
        id
    }

    fn push(&mut self, mut entry: Entry, name: Option<String>) {
        let id = entry.id.clone();
        let module = self.modules.entry(entry.scope.clone()).or_default();
        if module.file.is_empty() {
            module.file = entry.file.clone();
        }
        if let Some(name) = name {
            module.defines.entry(name).or_default().push(id.clone());
        }
        if entry.kind == EntryKind::Invocation {
            let names = entry
                .refs
                .macros
                .first()
                .map(|(name, paths)| (name.clone(), paths.iter().flatten().cloned().collect()));
            let (name, words) = names.unwrap_or_default();
            module.invocations.push((id.clone(), name, words));
        }
        entry.refs.paths.retain(|p| !p.is_empty());
        self.problems.append(&mut entry.refs.problems);
        self.ids.insert(id, self.entries.len());
        self.entries.push(entry);
    }

    fn items(&mut self, rel: &str, scope: &[String], items: &[syn::Item]) {
        for item in items {
            self.item(rel, scope, item);
        }
    }

    fn item(&mut self, rel: &str, scope: &[String], item: &syn::Item) {
        let (attrs, name, kind, generics) = match item {
            syn::Item::Mod(m) => return self.module_item(rel, scope, m),
            syn::Item::Use(u) => return self.use_item(scope, u),
            syn::Item::Impl(i) => return self.impl_item(rel, scope, i),
            _ => match item_shape(item) {
                Some(shape) => shape,
                None => return,
            },
        };
        if is_cfg_test(attrs) {
            return;
        }
        let label = match (&name, item) {
            (Some(n), _) => n.clone(),
            (None, syn::Item::Macro(m)) => {
                format!("{}!", m.mac.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default())
            }
            _ => "extern".to_string(),
        };
        let mut collect = Collect::new(rel);
        collect.visit_item(item);
        if let syn::Item::Macro(m) = item
            && let Some(ident) = &m.ident
        {
            self.macro_bodies.entry(ident.to_string()).or_default().extend(token_paths(m.mac.tokens.clone()));
        }
        let entry = Entry {
            id: self.id_for(scope, &label),
            file: rel.to_string(),
            scope: scope.to_vec(),
            kind,
            in_trait: matches!(kind, EntryKind::Trait).then(|| label.clone()),
            generics: generics.map(|g| generic_params(g).collect()).unwrap_or_default(),
            text: text_of(item),
            declares: trait_declares(item),
            refs: collect.refs,
        };
        self.push(entry, name);
    }

    fn module_item(&mut self, rel: &str, scope: &[String], m: &syn::ItemMod) {
        if is_cfg_test(&m.attrs) {
            return;
        }
        let mut inner = scope.to_vec();
        inner.push(m.ident.to_string());
        let attributes: String = m.attrs.iter().map(text_of).collect();
        let module = self.modules.entry(inner.clone()).or_default();
        module.attributes.push_str(&attributes);
        if let Some((_, items)) = &m.content {
            module.file = rel.to_string();
            self.items(rel, &inner, items);
        }
    }

    fn use_item(&mut self, scope: &[String], u: &syn::ItemUse) {
        if is_cfg_test(&u.attrs) {
            return;
        }
        let mut found = Vec::new();
        use_tree(&mut Vec::new(), &u.tree, &mut found);
        let module = self.modules.entry(scope.to_vec()).or_default();
        for (written, name) in found {
            let line = format!("{} as {}", written.join("::"), name.as_deref().unwrap_or("*"));
            match name {
                None => {
                    module.glob_lines.push_str(&line);
                    module.glob_lines.push('\n');
                    module.globs.push(written);
                }
                Some(name) => module.imports.push(Import { name, written, line }),
            }
        }
    }

    fn impl_item(&mut self, rel: &str, scope: &[String], i: &syn::ItemImpl) {
        if is_cfg_test(&i.attrs) {
            return;
        }
        let (header, owner) = impl_header(rel, scope, i);
        let generics = header.generics.clone();
        let index = self.impls.len();
        self.impls.push(header);
        for member in &i.items {
            let (attrs, name, member_generics) = match member {
                syn::ImplItem::Fn(f) => (&f.attrs, f.sig.ident.to_string(), Some(&f.sig.generics)),
                syn::ImplItem::Const(c) => (&c.attrs, c.ident.to_string(), None),
                syn::ImplItem::Type(t) => (&t.attrs, t.ident.to_string(), None),
                syn::ImplItem::Macro(m) => (&m.attrs, "macro!".to_string(), None),
                _ => continue,
            };
            if is_cfg_test(attrs) {
                continue;
            }
            let mut collect = Collect::new(rel);
            collect.visit_impl_item(member);
            let mut all_generics = generics.clone();
            all_generics.extend(member_generics.into_iter().flat_map(generic_params));
            let entry = Entry {
                id: self.id_for(scope, &format!("{owner}::{name}")),
                file: rel.to_string(),
                scope: scope.to_vec(),
                kind: EntryKind::Member(index),
                generics: all_generics,
                in_trait: None,
                text: text_of(member),
                declares: vec![name],
                refs: collect.refs,
            };
            self.push(entry, None);
        }
    }
}

/// An item's attributes, the name it defines, its kind and its generics; `None` for what is not
/// an item here (`extern crate`, verbatim tokens; modules, `use` and impl blocks are scanned apart).
type Shape<'i> = (&'i [syn::Attribute], Option<String>, EntryKind, Option<&'i syn::Generics>);

fn item_shape(item: &syn::Item) -> Option<Shape<'_>> {
    let named = |ident: &syn::Ident| Some(ident.to_string());
    Some(match item {
        syn::Item::Fn(i) => (&i.attrs, named(&i.sig.ident), EntryKind::Function, Some(&i.sig.generics)),
        syn::Item::Struct(i) => (&i.attrs, named(&i.ident), EntryKind::Type, Some(&i.generics)),
        syn::Item::Enum(i) => (&i.attrs, named(&i.ident), EntryKind::Type, Some(&i.generics)),
        syn::Item::Union(i) => (&i.attrs, named(&i.ident), EntryKind::Type, Some(&i.generics)),
        syn::Item::Type(i) => (&i.attrs, named(&i.ident), EntryKind::Type, Some(&i.generics)),
        syn::Item::Trait(i) => (&i.attrs, named(&i.ident), EntryKind::Trait, Some(&i.generics)),
        syn::Item::TraitAlias(i) => (&i.attrs, named(&i.ident), EntryKind::Trait, Some(&i.generics)),
        syn::Item::Const(i) => (&i.attrs, named(&i.ident), EntryKind::Other, None),
        syn::Item::Static(i) => (&i.attrs, named(&i.ident), EntryKind::Other, None),
        syn::Item::Macro(i) => match &i.ident {
            Some(ident) => (&i.attrs, named(ident), EntryKind::MacroRules, None),
            None => (&i.attrs, None, EntryKind::Invocation, None),
        },
        syn::Item::ForeignMod(i) => (&i.attrs, None, EntryKind::Other, None),
        _ => return None,
    })
}

/// The names a trait declares (its methods, constants and types), for lookups by method name.
fn trait_declares(item: &syn::Item) -> Vec<String> {
    let syn::Item::Trait(t) = item else { return Vec::new() };
    t.items
        .iter()
        .filter_map(|member| match member {
            syn::TraitItem::Fn(f) => Some(f.sig.ident.to_string()),
            syn::TraitItem::Const(c) => Some(c.ident.to_string()),
            syn::TraitItem::Type(t) => Some(t.ident.to_string()),
            _ => None,
        })
        .collect()
}

/// An impl block's header, and how its members' ids name it (`Type` or `<Type as Trait>`).
fn impl_header(rel: &str, scope: &[String], i: &syn::ItemImpl) -> (ImplHeader, String) {
    let self_ty = match &*i.self_ty {
        syn::Type::Path(p) => idents(&p.path),
        _ => Vec::new(),
    };
    let trait_path = i.trait_.as_ref().map(|(_, path, _)| idents(path));
    let mut header = Collect::new(rel);
    header.visit_generics(&i.generics);
    header.visit_type(&i.self_ty);
    if let Some((_, path, _)) = &i.trait_ {
        header.visit_path(path);
    }
    let mut text: String = i.attrs.iter().map(text_of).collect();
    text.push_str(&format!(
        "impl {} {} for {} {}",
        text_of(&i.generics),
        i.trait_.as_ref().map(|(_, p, _)| text_of(p)).unwrap_or_default(),
        text_of(&i.self_ty),
        i.generics.where_clause.as_ref().map(text_of).unwrap_or_default()
    ));
    let written_type = text_of(&i.self_ty).replace([' ', '\u{1}'], "");
    let owner = match &trait_path {
        Some(t) => format!("<{written_type} as {}>", t.last().cloned().unwrap_or_default()),
        None => written_type,
    };
    let generics = generic_params(&i.generics).collect();
    (ImplHeader { scope: scope.to_vec(), self_ty, trait_path, generics, paths: header.refs.paths, text }, owner)
}

fn generic_params(g: &syn::Generics) -> impl Iterator<Item = String> + '_ {
    g.params.iter().filter_map(|p| match p {
        syn::GenericParam::Type(t) => Some(t.ident.to_string()),
        syn::GenericParam::Const(c) => Some(c.ident.to_string()),
        syn::GenericParam::Lifetime(_) => None,
    })
}

/// Every (written path, name it binds; `None` for a glob) of a `use` tree.
fn use_tree(prefix: &mut Vec<String>, tree: &syn::UseTree, out: &mut Vec<(Segments, Option<String>)>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_tree(prefix, &p.tree, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let ident = n.ident.to_string();
            if ident == "self" {
                out.push((prefix.clone(), prefix.last().cloned()));
            } else {
                let mut path = prefix.clone();
                path.push(ident.clone());
                out.push((path, Some(ident)));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            out.push((path, Some(r.rename.to_string())));
        }
        syn::UseTree::Glob(_) => out.push((prefix.clone(), None)),
        syn::UseTree::Group(g) => g.items.iter().for_each(|item| use_tree(prefix, item, out)),
    }
}

/// A path that starts at a module of this crate (`crate::`, `repro::`, `self::`, `super::`) made
/// absolute; other paths need the modules' names (`Resolver::absolute`).
fn rooted(scope: &[String], segs: &[String]) -> Option<Segments> {
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
        _ => None,
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

/// Every `a::b::c` path and every lone name in raw tokens (`$crate` reads as `crate`).
fn token_paths(tokens: proc_macro2::TokenStream) -> Vec<Segments> {
    let tokens = flatten(tokens);
    let ident = |i: usize| match tokens.get(i) {
        Some(proc_macro2::TokenTree::Ident(id)) => Some(id.to_string()),
        _ => None,
    };
    let colon = |i: usize| matches!(tokens.get(i), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ':');
    let mut out = Vec::new();
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
        out.push(path);
    }
    out
}

/// The names a format string captures: `{name}`, `{name:>width$}` (both).
fn format_arguments(text: &str) -> Vec<String> {
    let is_name = |w: &str| {
        w.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && w.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    let mut out = Vec::new();
    for piece in text.replace("{{", "").split('{').skip(1) {
        let Some((inside, _)) = piece.split_once('}') else { continue };
        let (argument, spec) = inside.split_once(':').unwrap_or((inside, ""));
        if is_name(argument.trim()) {
            out.push(argument.trim().to_string());
        }
        for part in spec.split('$').collect::<Vec<_>>().iter().rev().skip(1) {
            let word: String = part.chars().rev().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let word: String = word.chars().rev().collect();
            if is_name(&word) {
                out.push(word);
            }
        }
    }
    out
}

/// Collects what one item's tokens name.
struct Collect {
    file: String,
    refs: Refs,
}

impl Collect {
    fn new(file: &str) -> Collect {
        Collect { file: file.to_string(), refs: Refs::default() }
    }

    fn macro_body(&mut self, mac: &syn::Macro) {
        let name = mac.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
        if matches!(name.as_str(), "include_bytes" | "include_str" | "include") {
            if let Ok(lit) = mac.parse_body::<syn::LitStr>() {
                self.refs.assets.push(lit.value());
            }
            return;
        }
        let mut paths = token_paths(mac.tokens.clone());
        // `format!("{CSS}")`: names inside format strings.
        for token in flatten(mac.tokens.clone()) {
            if let proc_macro2::TokenTree::Literal(lit) = token
                && let Ok(s) = syn::parse_str::<syn::LitStr>(&lit.to_string())
            {
                paths.extend(format_arguments(&s.value()).into_iter().map(|name| vec![name]));
            }
        }
        self.refs.macros.push((name, paths.clone()));
        for path in paths.iter().filter(|p| p.len() == 1) {
            self.refs.paths.push(path.clone());
        }
        let parser = syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated;
        match mac.parse_body_with(parser) {
            Ok(exprs) => exprs.iter().for_each(|e| self.visit_expr(e)),
            Err(_) => {
                for path in paths {
                    if path.len() == 1 {
                        self.refs.loose.insert(path[0].clone());
                    }
                    self.refs.paths.push(path);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collect {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.refs.paths.push(idents(path));
        syn::visit::visit_path(self, path);
    }

    // `<T>::name` reads as a call of `name` (its owner unknown here); `<T as Trait>::name` as the
    // path `Trait::name`.
    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        if let Some(q) = &p.qself
            && q.position == 0
        {
            self.refs.methods.extend(p.path.segments.iter().map(|s| s.ident.to_string()));
        }
        syn::visit::visit_expr_path(self, p);
    }

    fn visit_type_path(&mut self, p: &'ast syn::TypePath) {
        if let Some(q) = &p.qself
            && q.position == 0
        {
            self.refs.methods.extend(p.path.segments.iter().map(|s| s.ident.to_string()));
        }
        syn::visit::visit_type_path(self, p);
    }

    fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
        self.refs.methods.insert(m.method.to_string());
        syn::visit::visit_expr_method_call(self, m);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.macro_body(mac);
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        // Paths serde reads from strings (`with = "…"`, `default = "…"`, `serialize_with`).
        if let syn::Meta::List(list) = &attr.meta {
            for token in flatten(list.tokens.clone()) {
                if let proc_macro2::TokenTree::Literal(lit) = token
                    && let Ok(s) = syn::parse_str::<syn::LitStr>(&lit.to_string())
                    && let Ok(path) = syn::parse_str::<syn::Path>(&s.value())
                {
                    self.refs.paths.push(idents(&path));
                }
            }
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut found = Vec::new();
        use_tree(&mut Vec::new(), &u.tree, &mut found);
        for (written, name) in found {
            let line = format!("{} as {}", written.join("::"), name.as_deref().unwrap_or("*"));
            match name {
                None => self.refs.globs.push(written),
                Some(name) => self.refs.imports.push(Import { name, written, line }),
            }
        }
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if let syn::Type::Path(p) = &*i.self_ty {
            self.refs.nested_impl_types.push(idents(&p.path));
        }
        syn::visit::visit_item_impl(self, i);
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
                    (Some(name), Some(run), 2) => self.refs.kinds.push(KindCall { name, run }),
                    _ => self.refs.problems.push(format!(
                        "{}: a stage kind is declared as StageKind::{}(\"name\", run_function), with a string \
                         literal and a path",
                        self.file,
                        segs[n - 1]
                    )),
                }
            }
        }
        syn::visit::visit_expr_call(self, call);
    }
}

/// Resolves what entries name to item ids.
struct Resolver<'a> {
    scanned: &'a Scanned,
    /// Associated items (impl members, and traits by what they declare) by name.
    by_member_name: BTreeMap<&'a str, Vec<&'a str>>,
    /// Impl member ids by (impl block, member name).
    members: BTreeMap<(usize, &'a str), Vec<&'a str>>,
    /// Per impl block: the items its type resolves to, and its trait.
    impl_types: Vec<BTreeSet<String>>,
    impl_traits: Vec<BTreeSet<String>>,
    /// Per type: the members of the trait impls that name it in their header.
    implicit: BTreeMap<String, BTreeSet<String>>,
    macros_by_name: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> Resolver<'a> {
    fn new(scanned: &'a Scanned) -> Resolver<'a> {
        let mut resolver = Resolver {
            scanned,
            by_member_name: BTreeMap::new(),
            members: BTreeMap::new(),
            impl_types: Vec::new(),
            impl_traits: Vec::new(),
            implicit: BTreeMap::new(),
            macros_by_name: BTreeMap::new(),
        };
        for entry in &scanned.entries {
            if let EntryKind::Member(i) = entry.kind {
                for name in &entry.declares {
                    resolver.members.entry((i, name)).or_default().push(&entry.id);
                }
            }
            if matches!(entry.kind, EntryKind::Member(_) | EntryKind::Trait) {
                for name in &entry.declares {
                    resolver.by_member_name.entry(name).or_default().push(&entry.id);
                }
            }
            if entry.kind == EntryKind::MacroRules
                && let Some(name) = entry.id.rsplit("::").next()
            {
                resolver.macros_by_name.entry(name.split('#').next().unwrap_or(name)).or_default().push(&entry.id);
            }
        }
        for header in &scanned.impls {
            let context = Context::header(header);
            let types = resolver.path(&context, &header.self_ty);
            let traits = header.trait_path.as_ref().map(|t| resolver.path(&context, t)).unwrap_or_default();
            resolver.impl_types.push(types);
            resolver.impl_traits.push(traits);
        }
        resolver.implicit = resolver.implicit_members();
        resolver
    }

    /// Per type, the members that run where the type is reached without being named: those of
    /// its impls of other crates' traits, and the enclosing items of impl blocks nested in bodies.
    fn implicit_members(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut implicit: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (index, header) in self.scanned.impls.iter().enumerate() {
            // A trait of this crate runs only where its methods are named (by path, by method call
            // or through a generic bound); another crate's (`Add`, `Drop`, `Display`, `From`,
            // `Serialize`) may run from code that never names them.
            if header.trait_path.is_none() || !self.impl_traits[index].is_empty() {
                continue;
            }
            let context = Context::header(header);
            let named: BTreeSet<String> = header.paths.iter().flat_map(|p| self.path(&context, p)).collect();
            let members: Vec<&str> = self
                .members
                .iter()
                .filter(|((i, _), _)| *i == index)
                .flat_map(|(_, ids)| ids.iter().copied())
                .collect();
            for ty in named.iter().filter(|id| self.kind_of(id) == Some(EntryKind::Type)) {
                implicit.entry(ty.clone()).or_default().extend(members.iter().map(|m| m.to_string()));
            }
        }
        for entry in &self.scanned.entries {
            let context = self.context(entry);
            for ty in &entry.refs.nested_impl_types {
                for id in self.path(&context, ty) {
                    implicit.entry(id).or_default().insert(entry.id.clone());
                }
            }
        }
        implicit
    }

    fn kind_of(&self, id: &str) -> Option<EntryKind> {
        self.scanned.ids.get(id).map(|&i| self.scanned.entries[i].kind)
    }

    fn context<'e>(&self, entry: &'e Entry) -> Context<'e>
    where
        'a: 'e,
    {
        let self_ty = match entry.kind {
            EntryKind::Member(i) => Some(i),
            _ => None,
        };
        Context {
            scope: &entry.scope,
            generics: &entry.generics,
            self_ty,
            in_trait: entry.in_trait.as_deref(),
            imports: &entry.refs.imports,
            globs: &entry.refs.globs,
        }
    }

    /// What the entry reaches: items by path (`named`), items it runs without naming them (`all`
    /// adds a type's foreign trait impls, embedded files), and the names it calls as methods.
    fn edges(&self, entry: &Entry) -> Reach {
        let context = self.context(entry);
        let mut named = BTreeSet::new();
        for path in &entry.refs.paths {
            named.extend(self.path(&context, path));
        }
        for (name, args) in &entry.refs.macros {
            // A macro of this crate: itself; what its body names, read where it is invoked (an
            // expansion's names resolve there); its arguments' modules' items named in its body.
            for id in self.macros_by_name.get(name.as_str()).into_iter().flatten() {
                named.insert(id.to_string());
                let body = &self.scanned.macro_bodies[name.as_str()];
                for path in body {
                    named.extend(self.path(&context, path));
                }
                for arg in args {
                    if self.module_named(&context, arg).is_some() {
                        for word in body.iter().flatten() {
                            let mut path = arg.clone();
                            path.push(word.clone());
                            named.extend(self.path(&context, &path));
                        }
                    }
                }
            }
        }
        if let EntryKind::Member(i) = entry.kind {
            let header = &self.scanned.impls[i];
            let header_context = Context::header(header);
            for path in &header.paths {
                named.extend(self.path(&header_context, path));
            }
        }
        for glob in self.globs(&entry.scope) {
            // `use Enum::*` brings variants in: the enum is named wherever they may be.
            if !self.scanned.modules.contains_key(&glob) {
                named.extend(self.target(&glob, 0));
            }
        }
        let mut calls: BTreeSet<String> = entry.refs.methods.iter().chain(&entry.refs.loose).cloned().collect();
        calls.extend(named.iter().filter_map(|id| id.strip_prefix('.')).map(str::to_string));
        named.retain(|id| !id.starts_with('.') && *id != entry.id);
        let mut all = named.clone();
        if entry.kind == EntryKind::Type {
            all.extend(self.implicit.get(&entry.id).into_iter().flatten().cloned());
        }
        all.extend(entry.refs.assets.iter().map(|a| {
            let dir = Path::new(&entry.file).parent().unwrap_or(Path::new(""));
            normalise(&dir.join(a))
        }));
        all.remove(&entry.id);
        Reach { all, named, calls }
    }

    /// Per name, what a call of it as a method may run: the members of inherent impls and of
    /// impls of this crate's traits (each with the types it needs to be reached first: a method
    /// runs on a value, and a value of a type exists only where code that names the type ran),
    /// and the traits that declare it (their default bodies). Members of other crates' traits are
    /// reached through their types instead (`implicit`).
    fn methods(&self) -> BTreeMap<String, Vec<(String, BTreeSet<String>)>> {
        let mut out: BTreeMap<String, Vec<(String, BTreeSet<String>)>> = BTreeMap::new();
        for entry in &self.scanned.entries {
            let owners = match entry.kind {
                EntryKind::Member(i)
                    if self.scanned.impls[i].trait_path.is_some() && self.impl_traits[i].is_empty() =>
                {
                    continue;
                }
                EntryKind::Member(i) => self.impl_types[i].clone(),
                EntryKind::Trait => BTreeSet::new(),
                _ => continue,
            };
            for name in &entry.declares {
                out.entry(name.clone()).or_default().push((entry.id.clone(), owners.clone()));
            }
        }
        out
    }

    /// The text an entry's hash covers.
    fn material(&self, entry: &Entry) -> String {
        let mut text = entry.text.clone();
        if let EntryKind::Member(i) = entry.kind {
            text.push_str("\n[impl]\n");
            text.push_str(&self.scanned.impls[i].text);
        }
        let words: BTreeSet<String> = token_words(&entry.text);
        let module = &self.scanned.modules[&entry.scope];
        text.push_str("\n[use]\n");
        for import in module.imports.iter().filter(|u| words.contains(&u.name)) {
            text.push_str(&import.line);
            text.push('\n');
        }
        text.push_str(&module.glob_lines);
        text.push_str("\n[attributes]\n");
        for depth in 0..=entry.scope.len() {
            if let Some(m) = self.scanned.modules.get(&entry.scope[..depth]) {
                text.push_str(&m.attributes);
            }
        }
        text
    }

    /// The module a path names, when it names one of this crate's.
    fn module_named(&self, context: &Context, path: &[String]) -> Option<Segments> {
        let abs = self.absolute(context.scope, path)?;
        self.scanned.modules.contains_key(&abs).then_some(abs)
    }

    /// A path written in module `scope` made absolute when it is this crate's: `crate::`,
    /// `repro::`, `self::`, `super::`, a child module, an item of the module, or a name the module
    /// imports (followed through the import, which may itself start from another import).
    fn absolute(&self, scope: &[String], segs: &[String]) -> Option<Segments> {
        self.absolute_at(scope, segs, 0)
    }

    fn absolute_at(&self, scope: &[String], segs: &[String], depth: usize) -> Option<Segments> {
        let first = segs.first()?;
        if let Some(abs) = rooted(scope, segs) {
            return Some(abs);
        }
        let module = self.scanned.modules.get(scope)?;
        let mut child = scope.to_vec();
        child.push(first.clone());
        if self.scanned.modules.contains_key(&child) || module.defines.contains_key(first) {
            child.extend(segs[1..].iter().cloned());
            return Some(child);
        }
        if depth > 8 {
            return None;
        }
        module.imports.iter().filter(|u| &u.name == first).find_map(|import| {
            let mut abs = self.absolute_at(scope, &import.written, depth + 1)?;
            abs.extend(segs[1..].iter().cloned());
            Some(abs)
        })
    }

    /// The items a path names, written in `context`; `.m` stands for a call of an associated item
    /// `m` whose owner is not known here (`T::m` for a generic `T`), resolved as a method call.
    fn path(&self, context: &Context, path: &[String]) -> BTreeSet<String> {
        let Some(first) = path.first() else { return BTreeSet::new() };
        if first == "Self" {
            let mut out = BTreeSet::new();
            match (context.self_ty, context.in_trait) {
                (Some(i), _) => {
                    out.extend(self.impl_types[i].iter().cloned());
                    out.extend(self.impl_traits[i].iter().cloned());
                    if let Some(member) = path.get(1) {
                        out.extend(self.members_of(&out.clone(), member));
                    }
                }
                (None, Some(_)) => {
                    if let Some(member) = path.get(1) {
                        out.insert(format!(".{member}"));
                    }
                }
                (None, None) => {}
            }
            return out;
        }
        if context.generics.contains(first) {
            return path[1..].iter().map(|m| format!(".{m}")).collect();
        }
        let module = &self.scanned.modules[context.scope];
        let mut out = BTreeSet::new();
        for import in context.imports.iter().filter(|u| &u.name == first) {
            if let Some(mut abs) = self.absolute(context.scope, &import.written) {
                abs.extend(path[1..].iter().cloned());
                out.extend(self.target(&abs, 0));
            }
        }
        if let Some(ids) = module.defines.get(first) {
            // A function may share its name with a child module (`fn plot`, `mod plot`).
            out.extend(self.with_member(ids.iter().cloned().collect(), &path[1..]));
        }
        if let Some(abs) = self.absolute(context.scope, path) {
            out.extend(self.target(&abs, 0));
        }
        if out.is_empty() {
            // A name from a glob import (`use super::*`), or one a macro invocation defines.
            let local = context.globs.iter().filter_map(|g| self.absolute(context.scope, g));
            for glob in self.globs(context.scope).into_iter().chain(local) {
                let mut abs = glob;
                abs.extend(path.iter().cloned());
                out.extend(self.target(&abs, 0));
            }
            out.extend(self.invocations_defining(context.scope, first));
        }
        out
    }

    /// `ids` and, when the path goes on (`T::m`), the members named `m` of the impls of `ids`, or
    /// every associated item named `m` when they have none.
    fn with_member(&self, mut ids: BTreeSet<String>, rest: &[String]) -> BTreeSet<String> {
        if let Some(member) = rest.first() {
            let members = self.members_of(&ids, member);
            if members.is_empty() {
                // Not in an impl of these items: a derived or blanket impl's, or a trait's default.
                ids.extend(self.by_name(member).into_iter().filter(|id| self.blanket_or_trait(id)));
            } else {
                ids.extend(members);
            }
        }
        ids
    }

    /// The item-level macro invocations of module `scope` that may define `name`.
    fn invocations_defining(&self, scope: &[String], name: &str) -> Vec<String> {
        let Some(module) = self.scanned.modules.get(scope) else { return Vec::new() };
        let in_body = |mac: &str| {
            self.scanned.macro_bodies.get(mac).is_some_and(|paths| paths.iter().flatten().any(|w| w == name))
        };
        module
            .invocations
            .iter()
            .filter(|(_, mac, words)| words.contains(name) || in_body(mac))
            .map(|(id, ..)| id.clone())
            .collect()
    }

    /// The glob imports of module `scope` that name this crate's modules or items, made absolute.
    fn globs(&self, scope: &[String]) -> Vec<Segments> {
        let Some(module) = self.scanned.modules.get(scope) else { return Vec::new() };
        module.globs.iter().filter_map(|g| self.absolute(scope, g)).collect()
    }

    fn members_of(&self, owners: &BTreeSet<String>, member: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (i, (types, traits)) in self.impl_types.iter().zip(&self.impl_traits).enumerate() {
            if types.iter().chain(traits).any(|t| owners.contains(t)) {
                out.extend(self.members.get(&(i, member)).into_iter().flatten().map(|s| s.to_string()));
            }
        }
        out
    }

    /// A trait, or a member of an impl block whose type is not one of this crate's items.
    fn blanket_or_trait(&self, id: &str) -> bool {
        match self.kind_of(id) {
            Some(EntryKind::Member(i)) => self.impl_types[i].is_empty(),
            Some(EntryKind::Trait) => true,
            _ => false,
        }
    }

    fn by_name(&self, name: &str) -> BTreeSet<String> {
        self.by_member_name.get(name).into_iter().flatten().map(|s| s.to_string()).collect()
    }

    /// The items an absolute path names: the item of the deepest module on the path that defines
    /// it, or, when that module re-exports it, what the re-export names.
    fn target(&self, abs: &[String], depth: usize) -> BTreeSet<String> {
        let mut k = abs.len();
        while k > 0 && !self.scanned.modules.contains_key(&abs[..k]) {
            k -= 1;
        }
        let Some(module) = self.scanned.modules.get(&abs[..k]) else { return BTreeSet::new() };
        if k == abs.len() || depth > 8 {
            return BTreeSet::new();
        }
        let name = &abs[k];
        if let Some(ids) = module.defines.get(name) {
            return self.with_member(ids.iter().cloned().collect(), &abs[k + 1..]);
        }
        let mut out = BTreeSet::new();
        for import in module.imports.iter().filter(|u| &u.name == name) {
            let Some(mut next) = self.absolute(&abs[..k], &import.written) else { continue };
            next.extend(abs[k + 1..].iter().cloned());
            out.extend(self.target(&next, depth + 1));
        }
        if out.is_empty() {
            for glob in self.globs(&abs[..k]) {
                let mut next = glob;
                next.extend(abs[k..].iter().cloned());
                out.extend(self.target(&next, depth + 1));
            }
            out.extend(self.invocations_defining(&abs[..k], name));
        }
        out
    }
}

/// What one item reaches (see [`Resolver::edges`]).
struct Reach {
    all: BTreeSet<String>,
    named: BTreeSet<String>,
    calls: BTreeSet<String>,
}

/// Where a path is written: its module, the generic parameters in scope, the impl block (for
/// `Self`), the trait (for `Self` in a default method).
struct Context<'e> {
    scope: &'e [String],
    generics: &'e BTreeSet<String>,
    self_ty: Option<usize>,
    in_trait: Option<&'e str>,
    /// `use` items inside the item's body.
    imports: &'e [Import],
    globs: &'e [Segments],
}

impl<'e> Context<'e> {
    /// Where an impl block's header is written.
    fn header(header: &'e ImplHeader) -> Context<'e> {
        Context {
            scope: &header.scope,
            generics: &header.generics,
            self_ty: None,
            in_trait: None,
            imports: &[],
            globs: &[],
        }
    }
}

/// Every identifier-like word of a token text.
fn token_words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).map(str::to_string).collect()
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
