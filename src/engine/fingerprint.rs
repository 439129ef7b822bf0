//! Code fingerprints baked in by build.rs, with an override hook for tests and experiments.

use std::collections::BTreeMap;

include!(concat!(env!("OUT_DIR"), "/fingerprints.rs"));

/// Fingerprint of source module `name` (see `code_hash.rs` for how modules are cut).
///
/// `REPRO_CODE_OVERRIDE=plot=abc,nn=def` replaces fingerprints, to see what an edit of those
/// modules would rerun without rebuilding (`repro status` answers at once).
pub fn module(name: &str) -> Option<String> {
    if let Some(v) = overrides().get(name) {
        return Some(v.clone());
    }
    MODULES.iter().find(|(m, _)| *m == name).map(|(_, h)| h.to_string())
}

fn overrides() -> BTreeMap<String, String> {
    std::env::var("REPRO_CODE_OVERRIDE")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::engine::code_hash;

    #[test]
    fn baked_fingerprints_match_the_tree() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let now = code_hash::module_fingerprints(&src);
        for (name, hash) in &now {
            let baked = super::MODULES.iter().find(|(m, _)| m == name).map(|(_, h)| *h);
            assert_eq!(baked, Some(hash.as_str()), "module {name}");
        }
        assert!(now.iter().any(|(m, _)| m == "plot") && now.iter().any(|(m, _)| m == "experiments/sim_functions"));
    }
}
