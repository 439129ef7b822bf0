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

    // Three more min_ratio seeds: only their runs and what aggregates them rerun.
    let (ran, cached) = ws.run(&["-s", "min_ratio.seeds=\"0..6\""]);
    assert_eq!(ran, 3 + 2 + 1, "3 new runs, analyze, plot, report");
    assert_eq!(cached, 6 + 5 + 4);
}
