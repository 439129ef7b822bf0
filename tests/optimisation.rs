//! weights_pca, grad_norm and min_ratio end to end on small settings, through the real binary.

mod common;

use common::Workspace;

const CONFIG: &str = "\
[experiments.weights_pca]\nseeds = [0, 1, 2]\nepochs = 12\n\n\
[experiments.grad_norm]\nseeds = [0, 1]\nepochs = 50\n\n\
[experiments.min_ratio]\nseeds = \"0..3\"\nsamples = 200\nepochs = 10\nnorm_adam_steps = 20\nnorm_lm_steps = 2\n";

#[test]
fn optimisation_experiments_run_and_new_seeds_run_alone() {
    let ws = Workspace::new("optimisation", CONFIG);
    // weights_pca: data + 3 train + analyze + plot; grad_norm: data + 2 + 2; min_ratio: data + 3 + 2; report.
    assert_eq!(ws.run(&[]), (6 + 5 + 6 + 1, 0));
    let a = ws.artifacts();

    let projected = String::from_utf8(a["weights_pca/projected.csv"].clone()).unwrap();
    assert_eq!(projected.lines().next().unwrap(), "scope,seed,epoch,loss,pc1,pc2");
    // 12 epochs / 3 = 4 snapshots per run, 3 runs, 2 scopes.
    assert_eq!(projected.lines().count(), 1 + 4 * 3 * 2);
    assert!(a.contains_key("weights_pca/whole.png") && a.contains_key("weights_pca/layer.svg"));

    let grad = String::from_utf8(a["grad_norm/summary.csv"].clone()).unwrap();
    assert!(grad.lines().next().unwrap().ends_with("dead,dead_from_epoch"));
    assert_eq!(grad.lines().count(), 3);
    assert!(a.contains_key("grad_norm/grad_norm.png"));

    let results = String::from_utf8(a["min_ratio/results.csv"].clone()).unwrap();
    let header: Vec<&str> = results.lines().next().unwrap().split(',').collect();
    let ratio = header.iter().position(|h| *h == "ratio").unwrap();
    let counts: Vec<usize> =
        ["positive", "near_zero", "negative"].iter().map(|c| header.iter().position(|h| h == c).unwrap()).collect();
    for line in results.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let r: f64 = cells[ratio].parse().unwrap();
        let total: usize = counts.iter().map(|&k| cells[k].parse::<usize>().unwrap()).sum();
        assert_eq!(total, 109, "every eigenvalue is counted once: {line}");
        assert!((0.0..=1.0).contains(&r));
        assert_eq!(cells[counts[0]].parse::<f64>().unwrap() / 109.0, r);
    }
    // Trivial points, recomputed by hand: the constant prediction's loss is the variance of y.
    let column = |table: &str, name: &str| -> Vec<f64> {
        let names: Vec<&str> = table.lines().next().unwrap().split(',').collect();
        let k = names.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
        table.lines().skip(1).map(|l| l.split(',').nth(k).unwrap().parse().unwrap()).collect()
    };
    // The data the runs saw (data_seed 0, 200 samples), y = cos x in f32 as the stage writes it.
    let (_, ys) = repro::data::synth::cosine_data(200, 0);
    let ys: Vec<f64> = ys.into_iter().map(f64::from).collect();
    let mean = ys.iter().sum::<f64>() / ys.len() as f64;
    let variance = ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / ys.len() as f64;
    let trivial: Vec<bool> = results
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(header.iter().position(|h| *h == "trivial").unwrap()).unwrap() == "true")
        .collect();
    for ((loss, r2), trivial) in column(&results, "loss").into_iter().zip(column(&results, "r2")).zip(&trivial) {
        assert!((r2 - (1.0 - loss / variance)).abs() < 1e-6 * variance.max(1.0), "R² of loss {loss}: {r2}");
        assert_eq!(*trivial, r2 < 0.1, "loss {loss}, R² {r2}");
    }
    let relation = String::from_utf8(a["min_ratio/relation.csv"].clone()).unwrap();
    assert_eq!(column(&relation, "runs"), [3.0]);
    // Runs short of the gradient-norm target are not critical points: counted apart, and only the
    // critical points can be trivial.
    let reached: Vec<bool> = results
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(header.iter().position(|h| *h == "reached").unwrap()).unwrap() == "true")
        .collect();
    let short = reached.iter().filter(|&&r| !r).count() as f64;
    assert_eq!(column(&relation, "not_critical"), [short]);
    let trivial_critical = trivial.iter().zip(&reached).filter(|&(&t, &r)| t && r).count() as f64;
    assert_eq!(column(&relation, "trivial"), [trivial_critical]);
    assert!((column(&relation, "constant_loss")[0] - variance).abs() < 1e-6);
    // The figure draws that loss, named with its value.
    let svg = String::from_utf8(a["min_ratio/min_ratio.svg"].clone()).unwrap();
    let label = format!("constant prediction (variance of y): {}", repro::analysis::format_float(variance));
    assert!(svg.contains(&label), "min_ratio.svg lacks `{label}`");

    // Three more min_ratio seeds: only their runs and what aggregates them rerun.
    let (ran, cached) = ws.run(&["-s", "min_ratio.seeds=\"0..6\""]);
    assert_eq!(ran, 3 + 2 + 1, "3 new runs, analyze, plot, report");
    assert_eq!(cached, 6 + 5 + 4);
}
