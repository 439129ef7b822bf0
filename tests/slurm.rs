//! `make test-slurm`: the quick sim_functions sweep with 4 seeds, submitted to a real one-node Slurm
//! cluster (scripts/slurm-local.sh), gives the artifacts of a local `repro run`; a training job
//! requeued while it runs (`scontrol requeue`, as a preemption) resumes from its checkpoint.
//!
//! Ignored under `make test` (it needs a cluster); `make test-slurm` starts one on this machine,
//! runs it with `--ignored`, and stops the daemons.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Workspace;
use serde_json::Value;

const CONFIG: &str = "[experiments.sim_functions]\nseeds = [0, 1, 2, 3]\nfunctions = [\"f1\", \"f2\"]\n\
models = [\"m1\", \"m3\"]\nmax_epochs = 200\n\n[cluster.default]\nmem = \"500M\"\ntime = \"00:10:00\"\n";

/// data 2 + train 16 + analyze 1 + plot 2 + report 1.
const STAGES: usize = 22;

#[test]
#[ignore = "needs a Slurm cluster: make test-slurm starts one and runs this with --ignored"]
fn a_sweep_on_slurm_gives_the_artifacts_of_a_local_run() {
    let (local, ws, stdout) = run_here_and_submit("slurm", CONFIG);
    // The 16 training runs wait on the same data jobs: one array.
    assert!(stdout.contains("sim_functions.train (array of 16)"), "{stdout}");
    assert!(stdout.contains("submitted 22 stage(s) as 5 job(s)"), "{stdout}");
    // Submitting again while they are queued would run them twice: refused.
    let again = ws.repro(&["submit"]);
    assert_eq!(again.status.code(), Some(2), "{}", String::from_utf8_lossy(&again.stdout));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is already submitted"));

    let started = Instant::now();
    loop {
        let stale = stale_stages(&ws, started);
        if stale.is_empty() {
            break;
        }
        assert!(stale.iter().all(|s| s["job"].is_object()), "every stale stage is followed: {stale:?}");
        std::thread::sleep(Duration::from_secs(2));
    }
    // Every stage ran as a job: the local run only materialises.
    assert_eq!(ws.run(&[]), (0, STAGES));
    assert_eq!(ws.artifacts_modulo_timings(), local.artifacts_modulo_timings());
    let nothing = ws.repro(&["submit"]);
    assert!(String::from_utf8_lossy(&nothing.stdout).contains("nothing to submit"));
    let done = ws.repro(&["run-stage", "sim_functions.analyze"]);
    assert!(String::from_utf8_lossy(&done.stdout).contains("already complete"));
}

/// `config` run here (the reference), and submitted from a workspace of its own: both
/// workspaces, and what `repro submit` printed.
fn run_here_and_submit(name: &str, config: &str) -> (Workspace, Workspace, String) {
    let local = Workspace::new(&format!("{name}-local"), config);
    local.run(&[]);
    let ws = Workspace::new(&format!("{name}-jobs"), config);
    let out = ws.repro(&["submit"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    (local, ws, stdout)
}

/// The stages still stale, failing the test on a job that ended without a result or a wait of
/// more than five minutes.
fn stale_stages(ws: &Workspace, started: Instant) -> Vec<Value> {
    let out = ws.repro(&["status", "--json"]);
    let statuses: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let stale: Vec<Value> = statuses.into_iter().filter(|s| s["stale"] == true).collect();
    if let Some(ended) = stale.iter().find(|s| s["job"]["state"] == "ENDED") {
        let log = std::fs::read_to_string(ended["job"]["log"].as_str().unwrap()).unwrap_or_default();
        panic!("{} ended without a result; its log:\n{log}", ended["stage"]);
    }
    assert!(started.elapsed() < Duration::from_secs(300), "jobs still not done: {stale:?}");
    stale
}

const CNN: &str = "[pipeline]\ncheckpoint_every_s = 0.5\n\n[experiments.mnist_cnn]\nseeds = [3]\nmodels = [\"cnn1\"]\n\
epochs = 6\ntrain_subset = 12000\ntest_subset = 1000\n\n[data.mnist]\nmirrors = []\n\n\
[cluster.default]\nmem = \"1G\"\ntime = \"00:10:00\"\n";

#[test]
#[ignore = "needs a Slurm cluster: make test-slurm starts one and runs this with --ignored"]
fn a_training_job_requeued_while_it_runs_resumes_from_its_checkpoint() {
    let (local, ws, _) = run_here_and_submit("slurm-requeue", CNN);
    let training = "mnist_cnn.train[model=cnn1,seed=3]";
    let started = Instant::now();
    // Requeue the training job once it runs and has saved a checkpoint.
    let (job, log) = loop {
        let stale = stale_stages(&ws, started);
        let job = stale.iter().find(|s| s["stage"] == training).map(|s| s["job"].clone());
        let job = job.unwrap_or_else(|| panic!("the training finished before it could be requeued: {stale:?}"));
        let saved = std::fs::read_dir(ws.path("cache/checkpoints")).is_ok_and(|mut d| d.next().is_some());
        if job["state"] == "RUNNING" && saved {
            break (job["job"].as_str().unwrap().to_string(), job["log"].as_str().unwrap().to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let requeue = Command::new("scontrol").args(["requeue", &job]).output().unwrap();
    assert!(requeue.status.success(), "{}", String::from_utf8_lossy(&requeue.stderr));
    // A requeued job may wait for a begin time; the test need not.
    let mut released = false;
    while !stale_stages(&ws, started).is_empty() {
        if !released {
            let show = Command::new("scontrol").args(["show", "job", &job]).output().unwrap();
            if String::from_utf8_lossy(&show.stdout).contains("JobState=PENDING") {
                let _ = Command::new("scontrol").args(["update", &format!("JobId={job}"), "StartTime=now"]).output();
                released = true;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log.contains(&format!("[resumed]  {training}: at epoch")), "the requeued job's log:\n{log}");
    assert_eq!(ws.run(&[]).0, 0, "every stage ran as a job");
    assert_eq!(ws.artifacts_modulo_timings(), local.artifacts_modulo_timings());
}
