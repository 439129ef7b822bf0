//! random_labels, params_generalization, interpolation and sensitivity end to end on a slice of
//! MNIST, through the real binary.

mod common;

use common::Workspace;

const CONFIG: &str = "\
[experiments.random_labels]\nseeds = [0]\ntrain_subset = 300\ntest_subset = 200\nmax_epochs = 2\n\n\
[experiments.params_generalization]\nmodels = [[2, 5], [20, 40]]\nepochs = 1\ntrain_subset = 500\ntest_subset = 200\n\n\
[experiments.interpolation]\nepochs = 1\nalpha_points = 4\nlrs = [1e-3]\ntrain_subset = 500\ntest_subset = 200\n\n\
[experiments.sensitivity]\nbatch_sizes = [25, 250]\nseeds = [0, 1]\nepochs = 1\ntrain_subset = 500\ntest_subset = 200\n\n\
[data.mnist]\nmirrors = []\n";

fn csv(ws: &Workspace, name: &str) -> Vec<Vec<String>> {
    let text = String::from_utf8(ws.artifacts()[name].clone()).unwrap();
    text.lines().map(|l| l.split(',').map(str::to_string).collect()).collect()
}

fn column(rows: &[Vec<String>], name: &str) -> Vec<f64> {
    let k = rows[0].iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    rows[1..].iter().map(|r| r[k].parse().unwrap()).collect()
}

#[test]
fn generalisation_experiments_run_end_to_end() {
    let ws = Workspace::new("generalisation", CONFIG);
    // fetch; random_labels 1+2; params 2+2; interpolation 2 trainings + 1 interpolation + 2;
    // sensitivity 2 batch sizes x 2 seeds + 2; report.
    assert_eq!(ws.run(&[]), (1 + 3 + 4 + 5 + 6 + 1, 0));

    let random = csv(&ws, "random_labels/summary.csv");
    assert_eq!(column(&random, "params"), [110_826.0]);

    let params = csv(&ws, "params_generalization/summary.csv");
    assert_eq!(column(&params, "params"), [1645.0, 16950.0], "sorted by size, counts as the spec");

    let interp = csv(&ws, "interpolation/interpolation.csv");
    assert_eq!(column(&interp, "alpha"), [-1.0, 0.0, 1.0, 2.0]);
    // At α = 0 and α = 1 the interpolation is exactly the trained end points.
    let ends = csv(&ws, "interpolation/summary.csv");
    let end_test_acc = column(&ends, "test_acc");
    let interp_test_acc = column(&interp, "test_acc");
    let mut at_ends = vec![interp_test_acc[1], interp_test_acc[2]];
    at_ends.sort_by(f64::total_cmp);
    let mut trained = end_test_acc.clone();
    trained.sort_by(f64::total_cmp);
    assert_eq!(at_ends, trained);

    let sens = csv(&ws, "sensitivity/summary.csv");
    assert_eq!(column(&sens, "batch_size"), [25.0, 25.0, 250.0, 250.0]);
    assert_eq!(column(&sens, "seed"), [0.0, 1.0, 0.0, 1.0]);
    assert!(column(&sens, "sensitivity").iter().all(|s| *s > 0.0 && s.is_finite()));
    // Every loss and accuracy figure draws what guessing scores (on the axis, or named at its edge).
    for (figure, baselines) in [
        ("random_labels/random_labels.svg", &["uniform prediction: ln 10 = 2.303", "chance: 10 %"][..]),
        ("params_generalization/loss.svg", &["uniform prediction: ln 10 = 2.303"]),
        ("params_generalization/accuracy.svg", &["chance: 10 %"]),
        ("interpolation/interpolation_lr0.001.svg", &["uniform prediction: ln 10 = 2.303", "chance: 10 %"]),
        ("sensitivity/accuracy_sensitivity.svg", &["chance: 10 %"]),
        ("sensitivity/loss_sensitivity.svg", &["uniform prediction: ln 10 = 2.303"]),
    ] {
        let svg = String::from_utf8(ws.artifacts()[figure].clone()).unwrap();
        for baseline in baselines {
            assert!(svg.contains(baseline), "{figure} lacks `{baseline}`");
        }
    }
    for figure in [
        "random_labels/random_labels.png",
        "params_generalization/loss.svg",
        "interpolation/interpolation_lr0.001.png",
        "sensitivity/accuracy_sensitivity.png",
    ] {
        assert!(ws.artifacts().contains_key(figure), "{figure}");
    }
}
