//! Stage keys: what a stage's result depends on, hashed; and the explanation of a changed key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hash_bytes;

/// Everything a stage's result depends on. The key is the blake3 of its canonical JSON (maps are
/// ordered, floats print in their shortest round-trip form), so equal parts give equal keys.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct KeyParts {
    pub kind: String,
    /// Module name -> fingerprint of its source files.
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

    /// Human reasons why `self` differs from `old` (the parts of the last completed run).
    pub fn changes_since(&self, old: &KeyParts) -> Vec<String> {
        let mut why = Vec::new();
        if self.kind != old.kind {
            why.push(format!("stage kind changed: {} -> {}", old.kind, self.kind));
        }
        diff_maps(&old.params, &self.params, &mut why, |name, change| match change {
            Change::Added(v) => format!("param `{name}` added (= {})", short(v)),
            Change::Removed(v) => format!("param `{name}` removed (was {})", short(v)),
            Change::Changed(a, b) => {
                format!("param `{name}` changed: {} -> {}", short(a), short(b))
            }
        });
        diff_maps(&old.inputs, &self.inputs, &mut why, |name, change| match change {
            Change::Changed(..) if name == super::lineage::INPUT => {
                "its lineage changed: an upstream stage ran again".to_string()
            }
            Change::Added(_) => format!("input `{name}` added"),
            Change::Removed(_) => format!("input `{name}` removed"),
            Change::Changed(..) => format!("input `{name}` changed"),
        });
        diff_maps(&old.code, &self.code, &mut why, |name, change| match change {
            Change::Added(_) => format!("now depends on the code of `{name}`"),
            Change::Removed(_) => format!("no longer depends on the code of `{name}`"),
            Change::Changed(..) => format!("code of module `{name}` changed"),
        });
        diff_maps(&old.env, &self.env, &mut why, |name, change| match change {
            Change::Changed(a, b) => format!("{name} changed: {a} -> {b}"),
            Change::Added(v) => format!("{name} is now {v}"),
            Change::Removed(v) => format!("{name} no longer set (was {v})"),
        });
        why
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
    out: &mut Vec<String>,
    describe: impl Fn(&str, Change<'_, V>) -> String,
) {
    for (name, value) in new {
        match old.get(name) {
            None => out.push(describe(name, Change::Added(value))),
            Some(before) if before != value => out.push(describe(name, Change::Changed(before, value))),
            Some(_) => {}
        }
    }
    for (name, value) in old {
        if !new.contains_key(name) {
            out.push(describe(name, Change::Removed(value)));
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
        p.code.insert("nn".into(), "c1".into());
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
        c.code.insert("nn".into(), "c2".into());
        assert_ne!(a.key(), c.key());
    }

    #[test]
    fn changes_name_the_param_input_and_module() {
        let old = parts();
        let mut new = parts();
        new.params.insert("lr".into(), json!(0.01));
        new.inputs.insert("data".into(), "bb".into());
        new.code.insert("nn".into(), "c2".into());
        let why = new.changes_since(&old);
        assert_eq!(
            why,
            vec![
                "param `lr` changed: 0.001 -> 0.01".to_string(),
                "input `data` changed".to_string(),
                "code of module `nn` changed".to_string(),
            ]
        );
        assert!(old.changes_since(&parts()).is_empty());
    }
}
