//! End to end: the real binary on a small sim_functions pipeline. Each test is one promise of
//! the engine (incremental, explainable, robust, deterministic).

mod common;

use common::{SMALL_STAGES, Workspace, small_config, summary};
use serde_json::Value;

#[test]
fn second_run_does_nothing_and_artifacts_come_back_without_training() {
    let ws = Workspace::new("incremental", &small_config(60));
    assert_eq!(ws.run(&[]), (SMALL_STAGES, 0));
    let first = ws.artifacts();
    for name in [
        "sim_functions/summary.csv",
        "sim_functions/loss_f1.png",
        "sim_functions/predictions_f2.svg",
        "report.html",
        "report.md",
        "manifest.json",
    ] {
        assert!(first.contains_key(name), "missing artifact {name}: {:?}", first.keys());
    }
    assert_eq!(ws.run(&[]), (0, SMALL_STAGES));

    std::fs::remove_dir_all(ws.path("artifacts")).unwrap();
    assert_eq!(ws.run(&[]), (0, SMALL_STAGES));
    assert_eq!(ws.artifacts(), first, "artifacts restored byte for byte");

    // The loss figure draws the best constant prediction's MSE: the targets' variance, computed
    // here from predictions.csv (one model's rows of f1: the grid the runs train on).
    let predictions = String::from_utf8(first["sim_functions/predictions.csv"].clone()).unwrap();
    let mut lines = predictions.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (f, m, t) = (col("function"), col("model"), col("target"));
    let targets: Vec<f64> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[f] == "f1" && r[m] == "m1")
        .map(|r| r[t].parse().unwrap())
        .collect();
    let mean = targets.iter().sum::<f64>() / targets.len() as f64;
    let variance = targets.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / targets.len() as f64;
    let svg = String::from_utf8(first["sim_functions/loss_f1.svg"].clone()).unwrap();
    let label = "constant prediction (variance of y): ";
    let drawn: f64 = svg[svg.find(label).expect("the baseline's label") + label.len()..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-'))
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((drawn - variance).abs() <= 1e-3 * variance, "drawn {drawn}, variance {variance}");

    let summary_csv = String::from_utf8(first["sim_functions/summary.csv"].clone()).unwrap();
    let header = summary_csv.lines().next().unwrap();
    for column in ["experiment", "function", "model", "seed", "params", "epochs", "final_loss"] {
        assert!(header.split(',').any(|c| c == column), "summary.csv lacks {column}: {header}");
    }
    assert_eq!(summary_csv.lines().count(), 1 + 8, "one row per run");
    assert!(summary_csv.contains(",571,") && !summary_csv.contains(",572,"), "m1 and m3 have 571 params");
}

#[test]
fn a_changed_parameter_reruns_only_its_dependents_and_status_says_why() {
    let ws = Workspace::new("param-change", &small_config(40));
    ws.run(&[]);

    let out = ws.repro(&["status", "--json", "-s", "sim_functions.max_epochs=50"]);
    let statuses: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let stale: Vec<&Value> = statuses.iter().filter(|s| s["stale"] == true).collect();
    assert_eq!(stale.len(), SMALL_STAGES - 2, "everything but the two data stages");
    let train = stale.iter().find(|s| s["stage"] == "sim_functions.train[function=f1,model=m1,seed=0]").unwrap();
    // Reasons are data: an object with a `kind` and its fields.
    assert_eq!(
        train["reasons"][0],
        serde_json::json!({"kind": "param_changed", "param": "max_epochs", "old": 40, "new": 50})
    );
    let analyze = stale.iter().find(|s| s["stage"] == "sim_functions.analyze").unwrap();
    assert!(
        analyze["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| { r["kind"] == "upstream" && r["stage"].as_str().unwrap().starts_with("sim_functions.train") })
    );
    // A person reads them in English.
    let text = String::from_utf8_lossy(&ws.repro(&["status", "-s", "sim_functions.max_epochs=50"]).stdout).to_string();
    assert!(text.contains("    param `max_epochs` changed: 40 -> 50\n"), "{text}");

    assert_eq!(ws.run(&["-s", "sim_functions.max_epochs=50"]), (SMALL_STAGES - 2, 2));
    // Back to the file's value: every result is still in the store.
    assert_eq!(ws.run(&[]), (0, SMALL_STAGES));

    // A new seed adds only its own runs plus what aggregates them.
    let (ran, cached) = ws.run(&["-s", "sim_functions.seeds=[0, 1, 2]"]);
    assert_eq!((ran, cached), (4 + 1 + 2 + 1, 2 + 8));

    let text = ws.repro(&["status"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("0 stale"));
}

#[test]
fn editing_plot_code_reruns_plots_never_training() {
    let ws = Workspace::new("code-change", &small_config(40));
    ws.run(&[]);
    let out = ws
        .command(&["status", "--json"])
        .env("REPRO_CODE_OVERRIDE", "src/experiments/sim_functions/plot.rs=edited")
        .output()
        .unwrap();
    let statuses: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let stale: Vec<String> =
        statuses.iter().filter(|s| s["stale"] == true).map(|s| s["stage"].as_str().unwrap().to_string()).collect();
    assert_eq!(stale, ["sim_functions.plot[function=f1]", "sim_functions.plot[function=f2]", "report"]);
    let plot = statuses.iter().find(|s| s["stage"] == "sim_functions.plot[function=f1]").unwrap();
    assert_eq!(
        plot["reasons"][0],
        serde_json::json!({"kind": "code_changed", "file": "src/experiments/sim_functions/plot.rs", "items": []})
    );

    let out = ws
        .command(&["run", "-v"])
        .env("REPRO_CODE_OVERRIDE", "src/experiments/sim_functions/plot.rs=edited")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("s] sim_functions.train"), "no training reran:\n{stderr}");
    let (ran, _, _) = summary(&String::from_utf8_lossy(&out.stdout)).unwrap();
    // This simulated edit draws the same figures; the report reruns for the plot stages' new keys
    // (it names the key behind every figure).
    assert_eq!(ran, 3, "{stderr}");

    let out =
        ws.command(&["status", "--json"]).env("REPRO_CODE_OVERRIDE", "src/nn/stacked.rs=edited").output().unwrap();
    let statuses: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let stale = statuses.iter().filter(|s| s["stale"] == true).count();
    assert_eq!(stale, SMALL_STAGES - 2, "training and everything after it");
}

#[test]
fn same_seed_gives_bit_identical_weights_and_tables() {
    let a = Workspace::new("determinism-a", &small_config(80));
    let b = Workspace::new("determinism-b", &small_config(80));
    a.run(&["-j", "1"]);
    b.run(&["-j", "2"]);
    // Equal to the byte but for the wall times the report quotes.
    assert_eq!(a.artifacts_modulo_timings(), b.artifacts_modulo_timings());
    // The weights are not published; compare the stores' records instead (same keys, same hashes).
    let records = a.records_without_report();
    assert_eq!(records.len(), SMALL_STAGES - 1);
    assert_eq!(records, b.records_without_report());
}

#[test]
fn damaged_objects_are_reported_and_rebuilt() {
    let ws = Workspace::new("damage", &small_config(40));
    ws.run(&[]);
    assert!(ws.repro(&["verify"]).status.success());

    // Truncate the weights of one run.
    let records = common::files_under(&ws.path("cache/records"));
    let (_, record) = records
        .iter()
        .find(|(_, bytes)| {
            String::from_utf8_lossy(bytes).contains("\"stage\": \"sim_functions.train[function=f1,model=m1,seed=0]\"")
        })
        .unwrap();
    let record: Value = serde_json::from_slice(record).unwrap();
    let hash = record["outputs"]["weights.bpk"]["hash"].as_str().unwrap();
    let object = ws.path(&format!("cache/objects/{}/{}", &hash[..2], &hash[2..]));
    let mut perms = std::fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&object, perms).unwrap();
    let bytes = std::fs::read(&object).unwrap();
    std::fs::write(&object, &bytes[..bytes.len() / 2]).unwrap();

    let out = ws.repro(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("damaged:") && text.contains(&hash[2..]), "{text}");

    let status = String::from_utf8_lossy(&ws.repro(&["status"]).stdout).to_string();
    assert!(status.contains("cached output `weights.bpk` is corrupt"), "{status}");
    // Only that run reruns; it reproduces the same bytes, so no analysis or figure reruns. The
    // report does too when that run's wall time differs by a millisecond or more (its lineage
    // changed); a run this short may take the same time to the millisecond, and then it does not.
    let out = ws.repro(&["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ran: Vec<&str> = stderr.lines().filter_map(|l| l.split_once("s] ").map(|(_, stage)| stage)).collect();
    let damaged = "sim_functions.train[function=f1,model=m1,seed=0]";
    assert!(ran.contains(&damaged), "{stderr}");
    assert!(ran.iter().all(|s| *s == damaged || *s == "report"), "{stderr}");
    assert!(ws.repro(&["verify"]).status.success());
}

#[test]
fn a_second_run_on_the_same_cache_is_refused_or_waits() {
    let ws = Workspace::new("lock", &small_config(30));
    ws.run(&[]);
    let held = repro::engine::lock::CacheLock::acquire(&ws.path("cache"), false).unwrap();
    let out = ws.repro(&["run"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is in use by") && stderr.contains("--wait"), "{stderr}");

    let mut waiting = ws.command(&["run", "--wait"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(waiting.try_wait().unwrap().is_none(), "still waiting while the lock is held");
    drop(held);
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(summary(&String::from_utf8_lossy(&out.stdout)), Some((0, SMALL_STAGES, 0)));
}

#[test]
fn malformed_configuration_is_named_by_file_and_line_and_writes_nothing() {
    let cases = [
        ("[experiments.sim_functions]\nseeds = [0]\nmax_epoch = 3\n", "pipeline.toml:3:"),
        ("[experiments.sim_functions]\nmax_epochs = \"many\"\n", "pipeline.toml:2:"),
        ("[pipeline]\n\n[experiments.sim_function]\n", "pipeline.toml:3:"),
        (
            "[experiments.sim_functions]\nseeds = [0]\nafter = [\"sim_functions\"]\n",
            "pipeline.toml:3:9: dependency cycle",
        ),
        (
            "[experiments.sim_functions]\nafter = [\"mnist\"]\n",
            "pipeline.toml:2:9: `after` names unknown experiment `mnist`",
        ),
        ("[experiments.sim_functions\n", "pipeline.toml:1:"),
    ];
    for (text, expected) in cases {
        let ws = Workspace::new("bad-config", text);
        let out = ws.repro(&["run"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(stderr.contains(expected), "expected `{expected}` for\n{text}\ngot: {stderr}");
        assert!(!ws.path("cache").exists() && !ws.path("artifacts").exists(), "nothing written for\n{text}");
    }
}

#[test]
fn dag_prints_text_and_dot() {
    let ws = Workspace::new("dag", &small_config(10));
    let text = String::from_utf8(ws.repro(&["dag"]).stdout).unwrap();
    // Numeric stages say where they would compute and the work per step that decided it.
    assert!(text.contains(
        "sim_functions.train[function=f2,model=m3,seed=1]  [flex on cpu, 171.3 k MACs/step]\n    <- sim_functions.data[function=f2] (data.csv)"
    ), "{text}");
    let dot = String::from_utf8(ws.repro(&["dag", "--dot"]).stdout).unwrap();
    assert!(dot.starts_with("digraph pipeline {"));
    assert_eq!(dot.matches("[label=").count(), SMALL_STAGES);
}

#[test]
fn durations_are_masked_and_nothing_else() {
    assert_eq!(
        common::mask_durations("took 12.3 s, 4.5 min | 1.25 h; 3 seeds, 0.5 sigma, f1 2 s"),
        "took <time>, <time> | <time>; 3 seeds, 0.5 sigma, f1 <time>"
    );
}

/// Copies `from` into `to`, directories included.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_binary_built_from_other_sources_says_so() {
    let ws = Workspace::new("drift", &small_config(40));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // The workspace is a checkout of this crate: the sources the binary was built from.
    std::fs::copy(root.join("Cargo.toml"), ws.dir.join("Cargo.toml")).unwrap();
    copy_tree(&root.join("src"), &ws.dir.join("src"));
    copy_tree(&root.join("assets"), &ws.dir.join("assets"));
    let warning = |out: &std::process::Output| {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.contains("built from older sources"))
            .map(str::to_string)
    };
    assert_eq!(warning(&ws.repro(&["status"])), None, "the sources are the binary's");

    let edited = ws.dir.join("src/nn/mlp.rs");
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, format!("{text}\n// an edit\n")).unwrap();
    let line = warning(&ws.repro(&["status"])).expect("status warns");
    assert!(line.contains("src/nn/mlp.rs edited") && line.contains("make build"), "{line}");
    let line = warning(&ws.repro(&["run"])).expect("run warns");
    assert!(line.contains("src/nn/mlp.rs edited"), "{line}");
}

#[test]
fn dag_says_which_items_enter_each_key_and_what_an_edit_reruns() {
    let ws = Workspace::new("dag-code", &small_config(40));
    let code = String::from_utf8_lossy(&ws.repro(&["dag", "--code"]).stdout).to_string();
    let train = code.split("\nsim_functions.analyze").next().unwrap();
    let train = &train[train.find("sim_functions.train").expect("the train kind is listed")..];
    assert!(train.contains("(runs src/experiments/sim_functions/train.rs;"), "{train}");
    assert!(train.contains("    src/nn/stacked.rs\n") && train.contains("    src/training/sweep.rs"), "{train}");
    assert!(train.contains("\n        experiments::sim_functions::train::train\n"), "items under their files: {train}");
    assert!(!train.contains("conv_block") && !train.contains("/plot.rs") && !train.contains("src/plot/"), "{train}");

    let impact = String::from_utf8_lossy(&ws.repro(&["dag", "--impact"]).stdout).to_string();
    let line = |file: &str| impact.lines().find(|l| l.contains(&format!("  {file}  "))).map(str::to_string);
    // small_config: 2 functions x 2 models x 2 seeds of training, their analysis, 2 plots, the report.
    let plot = line("src/experiments/sim_functions/plot.rs").expect("the figures' file is listed");
    assert_eq!(plot.split_whitespace().next(), Some("3"), "{plot}");
    let figure_items: Vec<&str> =
        impact.lines().filter(|l| l.contains("  experiments::sim_functions::plot::")).collect();
    assert!(!figure_items.is_empty(), "{impact}");
    // A figure's items rerun its two plot stages (and the report, for what the report shares).
    for item in figure_items {
        let plots_only = item.trim_start().starts_with("2  ") && item.ends_with("(sim_functions.plot)");
        let and_report = item.trim_start().starts_with("3  ") && item.ends_with("(report, sim_functions.plot)");
        assert!(plots_only || and_report, "{item}");
    }
    // No stage of this configuration convolves: an edit of the conv block reruns nothing.
    assert_eq!(line("src/nn/conv_block.rs"), None, "{impact}");
}

/// `claims.csv` is the report's claims table as data: the same claims in the same order with the
/// same verdicts, and the seeds' outcomes of the claims checked seed by seed.
#[test]
fn the_claims_table_is_data_and_matches_the_report() {
    let ws = Workspace::new("claims-csv", &small_config(60));
    ws.run(&[]);
    let claims = repro::analysis::Table::read_csv(&ws.path("artifacts/claims.csv")).unwrap();
    let (ids, verdicts) = (claims.strings("id").unwrap(), claims.strings("verdict").unwrap());
    let report = std::fs::read_to_string(ws.path("artifacts/report.md")).unwrap();
    // Two tables have a row per claim: the claims (7 columns) and the seeds each needs (6).
    let table_rows = |columns: usize| -> Vec<Vec<String>> {
        report
            .lines()
            .filter(|l| l.starts_with("| C"))
            .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect::<Vec<String>>())
            .filter(|cells| cells.len() == columns)
            .collect()
    };
    let rows: Vec<(String, String)> =
        table_rows(7).into_iter().map(|cells| (cells[0].clone(), cells.last().unwrap().clone())).collect();
    assert_eq!(rows.len(), 12, "{report}");
    assert_eq!(rows, ids.iter().cloned().zip(verdicts).collect::<Vec<_>>());
    // The seeds table says what claims.csv's seeds_to_settle says, for the claims checked per seed.
    let needed = claims.strings("seeds_to_settle").unwrap();
    let seed_rows = table_rows(6);
    assert!(!seed_rows.is_empty(), "{report}");
    for cells in &seed_rows {
        let i = ids.iter().position(|id| *id == cells[0]).unwrap();
        let csv = if needed[i].is_empty() { "-" } else { needed[i].as_str() };
        assert_eq!(cells[3], csv, "{}: {cells:?}", cells[0]);
    }
    // C1 is checked seed by seed on the two seeds of this configuration.
    let per_seed = claims.strings("per_seed").unwrap();
    assert!(per_seed[0].starts_with("0:") && per_seed[0].contains(" 1:"), "{per_seed:?}");
    let header = claims.column_names();
    for column in ["id", "experiment", "verdict", "seeds", "per_seed", "margin", "margin_low", "margin_high"] {
        assert!(header.iter().any(|c| c == column), "claims.csv lacks {column}: {header:?}");
    }
}

/// `repro challenge` recomputes cached stages in a scratch store and finds every output the same
/// bytes; a result altered in the store with its record made to agree (as a buggy or malicious
/// pusher would leave it, so `repro verify` sees nothing wrong) is named, with what differs.
#[test]
fn challenge_recomputes_cached_stages_and_names_a_doctored_one() {
    let ws = Workspace::new("challenge", &small_config(40));
    ws.run(&[]);
    let out = ws.repro(&["challenge", "--all"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("{SMALL_STAGES} of {SMALL_STAGES} recomputed stage(s) identical")), "{stdout}");

    // One training's loss curve, its last loss changed, stored as a new object its record names.
    let record = common::doctor_a_loss_curve(&ws.path("cache"));
    let doctored = record.outputs["loss.csv"].clone();
    assert!(ws.repro(&["verify"]).status.success(), "object and record agree: verify cannot tell");

    let out = ws.repro(&["challenge", "sim_functions.train*"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with("DIFFERS")).expect("a difference is named");
    assert!(line.contains(&record.stage) && line.contains("loss.csv: loss max |Δ|"), "{line}");
    assert!(line.contains("cached: ") && line.contains("flex on cpu"), "both machines are named: {line}");
    // The pattern brings the data stages the trainings read: ten stages, one of them doctored.
    assert!(stdout.contains("9 of 10 recomputed stage(s) identical"), "{stdout}");
    // The challenge only reads the cache.
    let store = repro::engine::Store::open(&ws.path("cache")).unwrap();
    assert_eq!(store.record(&record.key).unwrap().outputs["loss.csv"], doctored);
}
