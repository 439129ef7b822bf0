//! `repro diff` and `repro runs` on the quick profile: an edited setting, a rerun, and what the
//! comparison says about it, checked against the two summaries compared by hand.

mod common;

use std::collections::BTreeSet;

use common::Workspace;

fn text(out: &std::process::Output) -> String {
    assert!(out.status.success() || out.status.code() == Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// (batch_size, metric) of every cell that differs between two sensitivity summaries.
fn cells_that_differ(old: &str, new: &str) -> BTreeSet<(String, String)> {
    let parse =
        |csv: &str| -> Vec<Vec<String>> { csv.lines().map(|l| l.split(',').map(str::to_string).collect()).collect() };
    let (a, b) = (parse(old), parse(new));
    let header = &a[0];
    assert_eq!(header, &b[0]);
    let batch = header.iter().position(|h| h == "batch_size").unwrap();
    let mut out = BTreeSet::new();
    for (ra, rb) in a[1..].iter().zip(&b[1..]) {
        assert_eq!(ra[batch], rb[batch]);
        for (c, name) in header.iter().enumerate() {
            if ra[c] != rb[c] {
                out.insert((ra[batch].clone(), name.clone()));
            }
        }
    }
    out
}

/// Every file under `dir`, as a path relative to it.
fn walk(dir: &std::path::Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            out.extend(walk(&path).into_iter().map(|inner| format!("{name}/{inner}")));
        } else {
            out.insert(name);
        }
    }
    out
}

#[test]
fn diff_against_last_names_the_edited_setting_and_exactly_the_measurements_that_moved() {
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    let ws = Workspace::new("diff", &config);
    ws.run(&["--profile", "quick"]);
    let before = std::fs::read_to_string(ws.path("artifacts/sensitivity/summary.csv")).unwrap();
    let report = || std::fs::read_to_string(ws.path("artifacts/report.md")).unwrap();
    assert!(!report().contains("What changed since the previous run"), "no previous run yet");

    // Nothing to compare with yet: every logged run is of this configuration.
    let out = ws.repro(&["diff", "--profile", "quick"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("same configuration"), "{out:?}");

    // The edit: the quick profile's sensitivity trains 2 epochs instead of 1.
    let section = "[profiles.quick.experiments.sensitivity]\nbatch_sizes = [25, 500]\nepochs = 1\n";
    assert!(config.contains(section));
    let edited_config = config.replace(section, &section.replace("epochs = 1", "epochs = 2"));
    std::fs::write(ws.path("pipeline.toml"), &edited_config).unwrap();
    ws.run(&["--profile", "quick"]);
    let after = std::fs::read_to_string(ws.path("artifacts/sensitivity/summary.csv")).unwrap();
    let expected = cells_that_differ(&before, &after);
    assert!(expected.iter().any(|(_, m)| m == "test_acc"), "{expected:?}");

    // The report compares with the previous run: the setting, and a row per moved measurement.
    let page = report();
    let section = &page[page.find("## What changed since the previous run").expect("the section")..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |k| k + 3)];
    assert!(section.contains("| `experiments.sensitivity.epochs` | 1 | 2 |"), "{section}");
    let moved_rows = section.lines().filter(|l| l.starts_with("| `sensitivity` |")).count();
    assert_eq!(moved_rows, expected.len(), "{section}");
    // The figures whose data moved, drawn again with the previous run's curves faintly behind:
    // sensitivity's two, and no other experiment's.
    let changed: BTreeSet<String> = walk(&ws.path("artifacts/changed"));
    assert_eq!(
        changed,
        ["accuracy_sensitivity", "loss_sensitivity"]
            .iter()
            .flat_map(|f| ["png", "svg"].map(|ext| format!("sensitivity/{f}.{ext}")))
            .collect(),
    );
    for figure in ["accuracy_sensitivity", "loss_sensitivity"] {
        assert!(section.contains(&format!("](changed/sensitivity/{figure}.png)")), "{section}");
        let svg = std::fs::read_to_string(ws.path(&format!("artifacts/changed/sensitivity/{figure}.svg"))).unwrap();
        assert!(svg.contains("previous run (faint)"), "{figure}.svg has no faint curves");
        // This run's curves as the sensitivity stage drew them, every one of them.
        let own = std::fs::read_to_string(ws.path(&format!("artifacts/sensitivity/{figure}.svg"))).unwrap();
        let polylines = |svg: &str| svg.matches("<polyline").count();
        assert!(polylines(&svg) > polylines(&own), "{figure}: no previous curves drawn");
    }
    // Comparing does not make the report stale: a second run does nothing; nor does going back
    // to the first configuration, whose report compared with nothing and still does.
    assert_eq!(ws.run(&["--profile", "quick"]).0, 0);
    assert_eq!(ws.run(&["--profile", "quick", "-s", "sensitivity.epochs=1"]).0, 0);
    assert!(!report().contains("What changed since the previous run"));
    std::fs::write(ws.path("pipeline.toml"), &edited_config).unwrap();
    assert_eq!(ws.run(&["--profile", "quick"]).0, 0);

    let out = text(&ws.repro(&["diff", "--profile", "quick", "--against", "last"]));
    let settings: Vec<&str> =
        out.lines().filter(|l| l.starts_with("  experiments.") || l.starts_with("  pipeline.")).collect();
    assert_eq!(settings.len(), 1, "{out}");
    assert!(settings[0].contains("experiments.sensitivity.epochs") && settings[0].contains("1 → 2"), "{out}");
    // Every other experiment is unchanged and not shown.
    let ids = [
        "sim_functions",
        "mnist_cnn",
        "weights_pca",
        "grad_norm",
        "min_ratio",
        "random_labels",
        "params_generalization",
        "interpolation",
        "sensitivity",
    ];
    let sections: Vec<&str> = out.lines().filter(|l| ids.contains(l)).collect();
    assert_eq!(sections, vec!["sensitivity"], "{out}");

    let json: serde_json::Value =
        serde_json::from_slice(&ws.repro(&["diff", "--profile", "quick", "--json"]).stdout).expect("--json parses");
    let experiments = json["experiments"].as_array().unwrap();
    let mut moved = BTreeSet::new();
    for e in experiments {
        let id = e["id"].as_str().unwrap();
        assert!(e["old_present"].as_bool().unwrap() && e["new_present"].as_bool().unwrap(), "{id}");
        for m in e["metrics"].as_array().unwrap().iter().filter(|m| m["changed"].as_bool().unwrap()) {
            assert_eq!(id, "sensitivity", "{m}");
            let group = m["group"].as_str().unwrap();
            let batch = group.split(' ').find_map(|p| p.strip_prefix("batch_size=")).unwrap();
            moved.insert((batch.to_string(), m["metric"].as_str().unwrap().to_string()));
        }
        let params = e["params"].as_array().unwrap();
        if id == "sensitivity" {
            assert_eq!(params.len(), 1);
            assert_eq!((params[0]["old"].as_u64(), params[0]["new"].as_u64()), (Some(1), Some(2)));
        } else {
            assert!(params.is_empty(), "{id}: {params:?}");
        }
    }
    assert_eq!(moved, expected, "the diff's changed measurements are the cells that differ");
    assert!(json["params"].as_array().unwrap().is_empty());
    assert_eq!(json["old"]["missing"].as_array().unwrap().len(), 0);

    // A configuration never run: its stages are named as missing, with the command that computes them.
    let out = text(&ws.repro(&["diff", "--profile", "quick", "--against-set", "sensitivity.epochs=3"]));
    assert!(out.contains("not in the store (old): sensitivity.analyze"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("compute with: repro run --profile quick -s") && l.contains("sensitivity.epochs=3")),
        "{out}"
    );

    // Against the configuration as committed: the file now has the edit; git holds the original.
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).current_dir(&ws.dir).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    std::fs::write(ws.path("pipeline.toml"), &config).unwrap();
    git(&["init", "-q"]);
    git(&["add", "pipeline.toml"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "original"]);
    std::fs::write(ws.path("pipeline.toml"), &edited_config).unwrap();
    let out = text(&ws.repro(&["diff", "--profile", "quick", "--against", "git:HEAD"]));
    assert!(out.starts_with("old: git:HEAD:pipeline.toml"), "{out}");
    assert!(out.contains("experiments.sensitivity.epochs  1 → 2"), "{out}");
    let out = ws.repro(&["diff", "--profile", "quick", "--against", "git:no-such-rev"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("git show no-such-rev"));

    // Both configurations are listed, with only the setting that differs between them.
    let out = text(&ws.repro(&["runs"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let header = lines[0];
    assert!(header.contains("sensitivity.epochs"), "{out}");
    let settings_shown =
        header.split("  ").filter(|c| c.trim().starts_with("sim_functions.") || c.contains(".seeds")).count();
    assert_eq!(settings_shown, 0, "no setting column but the differing one: {out}");
    assert!(!header.contains("mnist_cnn.test_acc"), "an unchanged measurement is not a column: {out}");
    let json: serde_json::Value = serde_json::from_slice(&ws.repro(&["runs", "--json"]).stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let keys: Vec<&String> = rows[0]["settings"].as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["experiments.sensitivity.epochs"]);
    assert_eq!(rows[0]["settings"]["experiments.sensitivity.epochs"], "2", "newest first");
}
