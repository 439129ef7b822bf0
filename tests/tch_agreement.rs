//! `make test-tch`: the `quick` profile on burn-tch (libtorch, CPU) agrees with the pure-Rust flex
//! backend within stated tolerances. Same seeds, same initial weights (our own initialiser), same
//! shuffles and dropout masks (our own generators): only the float arithmetic differs, and the
//! tolerances below say how far that may carry each experiment's summary numbers.
#![cfg(feature = "tch")]

mod common;

use std::collections::BTreeMap;

use common::Workspace;

/// Per experiment: the summary table, its (relative, absolute) tolerance, and columns held to
/// another one (`None`: not compared).
type Tolerance = (&'static str, (f64, f64), &'static [(&'static str, Option<(f64, f64)>)]);

const TOLERANCES: &[Tolerance] = &[
    ("sim_functions/summary.csv", (1e-3, 1e-5), &[]),
    ("mnist_cnn/summary.csv", (1e-4, 1e-5), &[]),
    ("weights_pca/summary.csv", (1e-4, 1e-6), &[]),
    ("grad_norm/summary.csv", (1e-3, 1e-5), &[]),
    // The training epochs agree to the 6th digit (flex computes this objective on the host,
    // libtorch through burn: another summation order). The ‖∇L‖² minimisation that follows steers
    // by finite-difference Hessians, which amplify last-bit differences: it may stop at another
    // nearby critical point. Its loss (and R², read off it) and minimal ratio stay close; the
    // gradient norm reached, the eigenvalue counts and extremes, and whether a loss near the
    // threshold counts as trivial, are not comparable.
    (
        "min_ratio/results.csv",
        (1e-4, 1e-6),
        &[
            ("loss", Some((5e-2, 0.0))),
            ("r2", Some((0.0, 0.05))),
            ("trivial", None),
            ("ratio", Some((0.0, 0.05))),
            ("grad_norm", None),
            ("reached", None),
            ("norm_steps", None),
            ("positive", None),
            ("near_zero", None),
            ("negative", None),
            ("eig_min", None),
            ("eig_max", None),
        ],
    ),
    ("random_labels/summary.csv", (1e-4, 1e-5), &[]),
    ("params_generalization/summary.csv", (1e-4, 1e-5), &[]),
    ("interpolation/summary.csv", (1e-4, 1e-5), &[]),
    ("sensitivity/summary.csv", (1e-4, 1e-5), &[]),
];

fn run(name: &str, backend: &[&str]) -> Workspace {
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    let ws = Workspace::new(name, &config);
    let mut args = vec!["--profile", "quick"];
    args.extend_from_slice(backend);
    ws.run(&args);
    ws
}

/// Cells of a CSV by (row, column name); text cells are kept as text.
fn cells(bytes: &[u8]) -> BTreeMap<(usize, String), String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
    let mut out = BTreeMap::new();
    for (row, line) in lines.enumerate() {
        for (name, value) in header.iter().zip(line.split(',')) {
            out.insert((row, name.clone()), value.to_string());
        }
    }
    out
}

#[test]
fn quick_profile_on_tch_cpu_agrees_with_flex() {
    let flex = run("agree-flex", &["-s", "pipeline.backend=flex"]);
    let tch = run("agree-tch", &["-s", "pipeline.backend=tch", "-s", "pipeline.device=cpu"]);
    let (a, b) = (flex.artifacts(), tch.artifacts());
    let report = String::from_utf8_lossy(&b["report.md"]).to_string();
    assert!(report.contains("`tch` on `cpu`"), "the report names the backend that ran");
    let mut failures = Vec::new();
    for (table, default, columns) in TOLERANCES {
        let (x, y) = (cells(&a[*table]), cells(&b[*table]));
        assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{table}: same rows and columns");
        let mut worst = (0.0f64, String::new());
        for (cell, u) in &x {
            let v = &y[cell];
            let (rtol, atol) = match columns.iter().find(|(c, _)| *c == cell.1) {
                Some((_, Some(t))) => *t,
                Some((_, None)) => continue,
                None => *default,
            };
            match (u.parse::<f64>(), v.parse::<f64>()) {
                (Ok(p), Ok(q)) => {
                    let excess = (p - q).abs() / (atol + rtol * p.abs());
                    if excess > worst.0 {
                        worst = (
                            excess,
                            format!("row {} `{}`: flex {p}, tch {q} (rtol {rtol}, atol {atol})", cell.0, cell.1),
                        );
                    }
                }
                _ => assert_eq!(u, v, "{table} row {} `{}`", cell.0, cell.1),
            }
        }
        eprintln!("{table}: worst difference {:.3} of the tolerance ({})", worst.0, worst.1);
        if worst.0 > 1.0 {
            failures.push(format!("{table}: {}", worst.1));
        }
    }
    assert!(failures.is_empty(), "outside tolerance:\n{}", failures.join("\n"));
}
