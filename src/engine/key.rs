//! Stage keys: what a stage's result depends on, hashed; and the explanation of a changed key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hash_bytes;

/// The name under which the dependencies (versions in Cargo.lock, declarations and features in
/// Cargo.toml, vendored sources) enter every key's code part.
pub const DEPENDENCIES_ENTRY: &str = "Cargo.lock";

/// The input name under which a stage keyed on its lineage reads it (`lineage::Lineage`).
pub const LINEAGE_INPUT: &str = "lineage.json";

/// Everything a stage's result depends on. The key is the blake3 of its canonical JSON (maps are
/// ordered, floats print in their shortest round-trip form), so equal parts give equal keys.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct KeyParts {
    pub kind: String,
    /// Source file (from the crate root) -> blake3, for every file the kind's run function reaches;
    /// and `Cargo.lock` -> blake3 of the dependencies (versions, declarations, features).
    pub code: BTreeMap<String, String>,
    pub params: BTreeMap<String, Value>,
    /// Input name -> blake3 of the input file.
    pub inputs: BTreeMap<String, String>,
    /// Backend, device class, dependency lock: only for kinds whose numbers depend on them.
    pub env: BTreeMap<String, String>,
}

impl KeyParts {
    pub fn key(&self) -> String {
        hash_bytes(&serde_json::to_vec(self).expect("key parts always serialise"))
    }

    /// Why `self` differs from `old` (the parts of the last completed run), one reason per part.
    pub fn changes_since(&self, old: &KeyParts) -> Vec<DirtyReason> {
        let mut why = Vec::new();
        if self.kind != old.kind {
            why.push(DirtyReason::KindChanged { old: old.kind.clone(), new: self.kind.clone() });
        }
        diff_maps(&old.params, &self.params, &mut why, |name, change| match change {
            Change::Added(v) => DirtyReason::ParamAdded { name, value: v.clone() },
            Change::Removed(v) => DirtyReason::ParamRemoved { name, value: v.clone() },
            Change::Changed(a, b) => DirtyReason::ParamChanged { name, old: a.clone(), new: b.clone() },
        });
        diff_maps(&old.inputs, &self.inputs, &mut why, |name, change| match change {
            Change::Changed(..) if name == LINEAGE_INPUT => DirtyReason::LineageChanged,
            Change::Added(_) => DirtyReason::InputAdded { input: name },
            Change::Removed(_) => DirtyReason::InputRemoved { input: name },
            Change::Changed(..) => DirtyReason::InputChanged { input: name },
        });
        diff_maps(&old.code, &self.code, &mut why, |name, change| match change {
            _ if name == DEPENDENCIES_ENTRY => DirtyReason::DependenciesChanged,
            Change::Added(_) => DirtyReason::CodeReached { file: name },
            Change::Removed(_) => DirtyReason::CodeNoLongerReached { file: name },
            Change::Changed(..) => DirtyReason::CodeChanged { file: name, items: Vec::new() },
        });
        diff_maps(&old.env, &self.env, &mut why, |name, change| match change {
            Change::Changed(a, b) => DirtyReason::EnvChanged { name, old: a.clone(), new: b.clone() },
            Change::Added(v) => DirtyReason::EnvSet { name, value: v.clone() },
            Change::Removed(v) => DirtyReason::EnvUnset { name, was: v.clone() },
        });
        why
    }
}

/// One way a stage's key differs from its last run's. Typed, so callers can count and group them;
/// rendered to text only where it is shown (`repro status`, the run's log), and to JSON as an
/// object with a `kind` (`{"kind": "param_changed", "param": "lr", "old": 0.001, "new": 0.002}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DirtyReason {
    KindChanged {
        old: String,
        new: String,
    },
    ParamAdded {
        #[serde(rename = "param")]
        name: String,
        value: Value,
    },
    ParamRemoved {
        #[serde(rename = "param")]
        name: String,
        value: Value,
    },
    ParamChanged {
        #[serde(rename = "param")]
        name: String,
        old: Value,
        new: Value,
    },
    InputAdded {
        input: String,
    },
    InputRemoved {
        input: String,
    },
    InputChanged {
        input: String,
    },
    /// An upstream stage ran again (the lineage lists every upstream key).
    LineageChanged,
    /// Items the kind reaches in `file` changed: `items` names them when the last run's item
    /// hashes are at hand (`fingerprint::name_changed_items`), else it is empty.
    CodeChanged {
        file: String,
        items: Vec<String>,
    },
    /// The run function now reaches items in a file where it reached none.
    CodeReached {
        file: String,
    },
    CodeNoLongerReached {
        file: String,
    },
    /// A dependency's version (Cargo.lock) or declaration or features (Cargo.toml) changed.
    DependenciesChanged,
    EnvChanged {
        name: String,
        old: String,
        new: String,
    },
    EnvSet {
        name: String,
        value: String,
    },
    EnvUnset {
        name: String,
        was: String,
    },
}

impl std::fmt::Display for DirtyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirtyReason::KindChanged { old, new } => write!(f, "stage kind changed: {old} -> {new}"),
            DirtyReason::ParamAdded { name, value } => write!(f, "param `{name}` added (= {})", short(value)),
            DirtyReason::ParamRemoved { name, value } => write!(f, "param `{name}` removed (was {})", short(value)),
            DirtyReason::ParamChanged { name, old, new } => {
                write!(f, "param `{name}` changed: {} -> {}", short(old), short(new))
            }
            DirtyReason::InputAdded { input } => write!(f, "input `{input}` added"),
            DirtyReason::InputRemoved { input } => write!(f, "input `{input}` removed"),
            DirtyReason::InputChanged { input } => write!(f, "input `{input}` changed"),
            DirtyReason::LineageChanged => f.write_str("its lineage changed: an upstream stage ran again"),
            DirtyReason::CodeChanged { file, items } if items.is_empty() => write!(f, "code changed: {file}"),
            DirtyReason::CodeChanged { items, .. } => write!(f, "code changed: {}", first_of(items, "items")),
            DirtyReason::CodeReached { file } => write!(f, "code now reaches: {file}"),
            DirtyReason::CodeNoLongerReached { file } => write!(f, "code no longer reaches: {file}"),
            DirtyReason::DependenciesChanged => f.write_str("dependencies changed (Cargo.lock or Cargo.toml)"),
            DirtyReason::EnvChanged { name, old, new } => write!(f, "{name} changed: {old} -> {new}"),
            DirtyReason::EnvSet { name, value } => write!(f, "{name} is now {value}"),
            DirtyReason::EnvUnset { name, was } => write!(f, "{name} no longer set (was {was})"),
        }
    }
}

/// `reasons` as lines for a person: one per reason, except that the files (or items) of one kind
/// of code change share a line (`code changed: src/a.rs, src/b.rs and 12 more files`), so a pull
/// that touched many files, or a new version of repro that keys on other files, does not bury the
/// rest.
pub fn render(reasons: &[DirtyReason]) -> Vec<String> {
    let group = |r: &DirtyReason| match r {
        DirtyReason::CodeChanged { file, items } if items.is_empty() => Some(("code changed", vec![file.clone()])),
        DirtyReason::CodeChanged { items, .. } => Some(("code changed", items.clone())),
        DirtyReason::CodeReached { file } => Some(("code now reaches", vec![file.clone()])),
        DirtyReason::CodeNoLongerReached { file } => Some(("code no longer reaches", vec![file.clone()])),
        _ => None,
    };
    let mut lines = Vec::new();
    let mut done = Vec::new();
    for reason in reasons {
        let Some((label, _)) = group(reason) else {
            lines.push(reason.to_string());
            continue;
        };
        if done.contains(&label) {
            continue;
        }
        done.push(label);
        let names: Vec<String> =
            reasons.iter().filter_map(group).filter(|(l, _)| *l == label).flat_map(|(_, names)| names).collect();
        let noun = if names.iter().all(|n| n.contains('/') || n.ends_with(".rs")) { "files" } else { "items" };
        lines.push(format!("{label}: {}", first_of(&names, noun)));
    }
    lines
}

/// The first three of `files`, then how many more: `a, b, c and 2 more files`.
pub fn first_files(files: &[String]) -> String {
    first_of(files, "files")
}

/// The first three of `names`, then how many more `noun` (a plural).
fn first_of(names: &[String], noun: &str) -> String {
    let shown = names.iter().take(3).map(String::as_str).collect::<Vec<_>>().join(", ");
    match names.len().saturating_sub(3) {
        0 => shown,
        1 => format!("{shown} and 1 more {}", noun.trim_end_matches('s')),
        n => format!("{shown} and {n} more {noun}"),
    }
}

enum Change<'a, V> {
    Added(&'a V),
    Removed(&'a V),
    Changed(&'a V, &'a V),
}

fn diff_maps<V: PartialEq>(
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
    out: &mut Vec<DirtyReason>,
    describe: impl Fn(String, Change<'_, V>) -> DirtyReason,
) {
    for (name, value) in new {
        match old.get(name) {
            None => out.push(describe(name.clone(), Change::Added(value))),
            Some(before) if before != value => out.push(describe(name.clone(), Change::Changed(before, value))),
            Some(_) => {}
        }
    }
    for (name, value) in old {
        if !new.contains_key(name) {
            out.push(describe(name.clone(), Change::Removed(value)));
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 { format!("{}…", s.chars().take(57).collect::<String>()) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts() -> KeyParts {
        let mut p = KeyParts { kind: "k".into(), ..Default::default() };
        p.params.insert("lr".into(), json!(0.001));
        p.inputs.insert("data".into(), "aa".into());
        p.code.insert("src/nn/mlp.rs".into(), "c1".into());
        p
    }

    #[test]
    fn equal_parts_give_equal_keys_and_any_change_a_new_key() {
        let a = parts();
        assert_eq!(a.key(), parts().key());
        let mut b = parts();
        b.params.insert("lr".into(), json!(0.01));
        assert_ne!(a.key(), b.key());
        let mut c = parts();
        c.code.insert("src/nn/mlp.rs".into(), "c2".into());
        assert_ne!(a.key(), c.key());
    }

    #[test]
    fn many_edited_files_share_one_line() {
        let mut reasons: Vec<DirtyReason> =
            (0..5).map(|i| DirtyReason::CodeChanged { file: format!("src/f{i}.rs"), items: Vec::new() }).collect();
        reasons.insert(0, DirtyReason::DependenciesChanged);
        assert_eq!(
            render(&reasons),
            [
                "dependencies changed (Cargo.lock or Cargo.toml)",
                "code changed: src/f0.rs, src/f1.rs, src/f2.rs and 2 more files"
            ]
        );
        assert_eq!(
            render(&reasons[..2]),
            ["dependencies changed (Cargo.lock or Cargo.toml)", "code changed: src/f0.rs"]
        );
        reasons.push(DirtyReason::CodeNoLongerReached { file: "nn".into() });
        assert_eq!(render(&reasons).last().unwrap(), "code no longer reaches: nn");
        let items = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let named = [
            DirtyReason::CodeChanged { file: "src/a.rs".into(), items: items(&["a::f", "a::g"]) },
            DirtyReason::CodeChanged { file: "src/b.rs".into(), items: items(&["b::T::new", "b::h"]) },
        ];
        assert_eq!(render(&named), ["code changed: a::f, a::g, b::T::new and 1 more item"]);
    }

    #[test]
    fn changes_name_the_param_input_and_module() {
        let old = parts();
        let mut new = parts();
        new.params.insert("lr".into(), json!(0.01));
        new.inputs.insert("data".into(), "bb".into());
        new.code.insert("src/nn/mlp.rs".into(), "c2".into());
        let why: Vec<String> = new.changes_since(&old).iter().map(ToString::to_string).collect();
        assert_eq!(
            why,
            vec![
                "param `lr` changed: 0.001 -> 0.01".to_string(),
                "input `data` changed".to_string(),
                "code changed: src/nn/mlp.rs".to_string(),
            ]
        );
        assert!(old.changes_since(&parts()).is_empty());
    }
}
