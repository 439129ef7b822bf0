//! The MNIST experiment end to end on a small slice, through the real binary: fetch (from the
//! local mirror), train the three CNNs, evaluate on the full (sliced) sets, plot, report.

mod common;

use common::Workspace;

const CONFIG: &str = "[experiments.mnist_cnn]\nseeds = [0]\nepochs = 2\ntrain_subset = 600\ntest_subset = 200\n\n[data.mnist]\nmirrors = []\n";

#[test]
fn mnist_cnn_runs_end_to_end_and_refetches_nothing() {
    let ws = Workspace::new("mnist-cnn", CONFIG);
    // fetch + 3 trainings + analyze + plot + report
    assert_eq!(ws.run(&[]), (7, 0));
    let artifacts = ws.artifacts();
    let summary = String::from_utf8(artifacts["mnist_cnn/summary.csv"].clone()).unwrap();
    let mut lines = summary.lines();
    assert_eq!(lines.next().unwrap(), "experiment,model,seed,params,epochs,train_loss,train_acc,test_loss,test_acc");
    let params: Vec<&str> = lines.map(|l| l.split(',').nth(3).unwrap()).collect();
    assert_eq!(params, ["25550", "25570", "25119"]);
    for name in ["mnist_cnn/loss.png", "mnist_cnn/accuracy.svg", "mnist_cnn/curves.csv"] {
        assert!(artifacts.contains_key(name), "{name}");
    }
    let report = String::from_utf8(artifacts["report.md"].clone()).unwrap();
    assert!(report.contains("98.67") && report.contains("2. Train on an actual task"));

    // The verified files stay in data/mnist; with them gone and the cache kept, nothing reruns.
    assert!(ws.path("data/mnist/train-images-idx3-ubyte").is_file());
    std::fs::remove_dir_all(ws.path("data")).unwrap();
    assert_eq!(ws.run(&[]), (0, 7));
}

#[test]
fn without_any_source_the_fetch_fails_with_instructions_and_nothing_trains() {
    let ws = Workspace::new("mnist-offline", CONFIG);
    let out = ws.command(&["run"]).env("MNIST_MIRROR", ws.path("no-such-dir")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot obtain MNIST file") && stderr.contains("To place it by hand"), "{stderr}");
    assert!(stderr.contains("[skipped] mnist_cnn.train[model=cnn1,seed=0]"), "{stderr}");
}
