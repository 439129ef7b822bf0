//! Long stages save checkpoints as they go: a run killed with SIGKILL at random moments after a
//! checkpoint exists resumes from it, and the artifacts equal an uninterrupted run's to the byte
//! (the report's wall times aside). SIGTERM or SIGUSR1 makes a running stage save at once and stop.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::Workspace;

/// A small generator for the kill moments (printed, so a failure can be replayed).
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// What a process printed, stdout then stderr.
fn text_of(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The checkpoints in the workspace's cache (temporaries aside).
fn checkpoints(ws: &Workspace) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(ws.path("cache/checkpoints")) else { return Vec::new() };
    entries.flatten().map(|e| e.file_name().to_string_lossy().to_string()).filter(|n| !n.starts_with('.')).collect()
}

/// Starts `repro run -j 2`, its output going to `log`, and waits until it has saved a checkpoint;
/// `None` if it finished first.
fn start_until_checkpointed(ws: &Workspace, before: &[String], log: &std::path::Path) -> Option<Child> {
    let log = std::fs::File::create(log).unwrap();
    let mut child = ws.command(&["run", "-j", "2"]).stdout(Stdio::null()).stderr(log).spawn().unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        let now = checkpoints(ws);
        // A new checkpoint, or one rewritten since the run started.
        let fresh = now.iter().any(|name| {
            !before.contains(name)
                || std::fs::metadata(ws.path(&format!("cache/checkpoints/{name}")))
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() < started.elapsed())
        });
        if fresh {
            return Some(child);
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint within two minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills runs with SIGKILL at random moments after they checkpointed until `kills` of those kills
/// left a checkpoint behind (a kill can land after a short stage finished and deleted its own, and
/// before the next one saved), then completes the work. Returns what every run printed, in order,
/// and the kills that left a checkpoint. Gives up adding kills when the work ends first.
fn kill_and_resume(ws: &Workspace, kills: usize, seed: u64) -> (String, usize) {
    let mut moments = Moments(seed);
    let mut logs = Vec::new();
    let mut killed = 0;
    while killed < kills && logs.len() < 4 * kills {
        let before = checkpoints(ws);
        let log = ws.path(&format!("run-{}.log", logs.len()));
        logs.push(log.clone());
        let Some(mut child) = start_until_checkpointed(ws, &before, &log) else { break };
        std::thread::sleep(Duration::from_millis(moments.next_ms(400)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        if !checkpoints(ws).is_empty() {
            killed += 1;
        }
    }
    let out = ws.repro(&["run", "-j", "2"]);
    let last = text_of(&out);
    assert!(out.status.success(), "seed {seed}: {last}");
    let mut text: String = logs.iter().map(|log| std::fs::read_to_string(log).unwrap()).collect();
    text.push_str(&last);
    (text, killed)
}

fn assert_same_as_uninterrupted(ws: &Workspace, reference: &Workspace, seed: u64) {
    assert_eq!(ws.artifacts_modulo_timings(), reference.artifacts_modulo_timings(), "seed {seed}");
    assert!(ws.repro(&["verify"]).status.success());
    assert_eq!(checkpoints(ws), Vec::<String>::new(), "a completed stage deletes its checkpoint");
}

const CNN: &str = "[pipeline]\ncheckpoint_every_s = 0.15\n\n[experiments.mnist_cnn]\nseeds = [3]\nmodels = [\"cnn1\"]\n\
epochs = 5\ntrain_subset = 6000\ntest_subset = 1000\n\n[data.mnist]\nmirrors = []\n";

#[test]
fn a_cnn_training_killed_at_random_moments_resumes_to_the_same_bytes() {
    let seed = 0x5eed_0001;
    let reference = Workspace::new("ckpt-cnn-reference", CNN);
    reference.run(&[]);
    assert!(checkpoints(&reference).is_empty(), "an uninterrupted run leaves no checkpoint");

    let ws = Workspace::new("ckpt-cnn", CNN);
    let (text, killed) = kill_and_resume(&ws, 3, seed);
    assert!(killed >= 2, "seed {seed}: the training outlasted only {killed} kill(s)");
    // A later run resumed part-way through an epoch or at its start, never from scratch.
    assert!(text.contains("[resumed]  mnist_cnn.train[model=cnn1,seed=3]: at epoch"), "{text}");
    assert_same_as_uninterrupted(&ws, &reference, seed);
}

/// min_ratio's runs train as fused batches (two at -j 2): every member saves its own state, and
/// members saved at one point resume together.
const BATCHES: &str = "[pipeline]\ncheckpoint_every_s = 0.15\n\n[experiments.min_ratio]\nseeds = \"0..10\"\n\
samples = 400\nepochs = 400\nnorm_adam_steps = 400\nnorm_lm_steps = 4\n\n\
[experiments.sim_functions]\nseeds = [0, 1]\nfunctions = [\"f1\", \"f2\"]\nmodels = [\"m1\", \"m3\"]\nmax_epochs = 6000\n";

#[test]
fn fused_batches_killed_at_random_moments_resume_to_the_same_bytes() {
    let seed = 0x5eed_0002;
    let reference = Workspace::new("ckpt-batch-reference", BATCHES);
    reference.run(&[]);

    let ws = Workspace::new("ckpt-batch", BATCHES);
    let (text, killed) = kill_and_resume(&ws, 4, seed);
    assert!(killed >= 2, "seed {seed}: the batches outlasted only {killed} kill(s)");
    assert!(text.contains("[resumed]"), "seed {seed}: no run resumed a batch:\n{text}");
    assert_same_as_uninterrupted(&ws, &reference, seed);
}

/// About ten seconds of training, saving every second: a signal sent once the first checkpoint is
/// there meets the training on any machine.
fn long_cnn() -> String {
    CNN.replace("checkpoint_every_s = 0.15", "checkpoint_every_s = 1")
        .replace("train_subset = 6000", "train_subset = 30000")
}

/// A file's modification time comes from a clock that ticks every few milliseconds, so it may
/// read earlier than a `SystemTime::now()` taken just before the write.
const MTIME_TICK: Duration = Duration::from_millis(50);

/// Sends `signal` to `child` a while after its training saved a first checkpoint (long enough
/// that a save the signal causes is later than that one by more than [`MTIME_TICK`], and well
/// within the next periodic save); the time it was sent.
fn signal_when_training(ws: &Workspace, child: &Child, signal: i32) -> std::time::SystemTime {
    let started = Instant::now();
    while checkpoints(ws).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint within two minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(4 * MTIME_TICK);
    let sent = std::time::SystemTime::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    sent
}

/// The signal made the stage save: the checkpoint was written after it was sent (without the
/// handler the process would have died with the older one).
fn saved_after(ws: &Workspace, sent: std::time::SystemTime) {
    let names = checkpoints(ws);
    assert_eq!(names.len(), 1, "{names:?}");
    let written = std::fs::metadata(ws.path(&format!("cache/checkpoints/{}", names[0]))).unwrap().modified().unwrap();
    assert!(written + MTIME_TICK >= sent, "the checkpoint predates the signal");
}

#[test]
fn sigterm_saves_at_once_and_the_next_run_resumes() {
    let config = long_cnn();
    let reference = Workspace::new("ckpt-term-reference", &config);
    reference.run(&[]);
    let ws = Workspace::new("ckpt-term", &config);
    let child = ws.command(&["run"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let sent = signal_when_training(&ws, &child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let text = text_of(&out);
    assert_eq!(out.status.code(), Some(143), "{text}");
    assert!(text.contains("[stopped] mnist_cnn.train[model=cnn1,seed=3]: stopped by a signal"), "{text}");
    assert!(text.contains("1 stopped (checkpointed)"), "{text}");
    saved_after(&ws, sent);
    let status = String::from_utf8_lossy(&ws.repro(&["status"]).stdout).to_string();
    assert!(status.contains("a checkpoint of it is saved: the next run resumes it"), "{status}");
    assert!(status.contains("(1 checkpointed)"), "{status}");
    let again = ws.repro(&["run"]);
    let text = text_of(&again);
    assert!(again.status.success(), "{text}");
    assert!(text.contains("[resumed]  mnist_cnn.train[model=cnn1,seed=3]: at epoch"), "{text}");
    assert_same_as_uninterrupted(&ws, &reference, 0);
}

#[test]
fn gc_removes_checkpoints_no_stage_can_resume() {
    let ws = Workspace::new("ckpt-gc", CNN);
    ws.run(&[]);
    let dir = ws.path("cache/checkpoints");
    std::fs::create_dir_all(&dir).unwrap();
    // One left by a key that has completed since, one by a configuration long gone.
    let records: Vec<_> = std::fs::read_dir(ws.path("cache/records")).unwrap().flatten().collect();
    let done = records[0].path().file_stem().unwrap().to_string_lossy().to_string();
    for key in [done.as_str(), "0123456789abcdef"] {
        std::fs::write(dir.join(key), b"repro-checkpoint/1\n").unwrap();
    }
    // And one a stale stage can resume: kept.
    let edited = ws.path("pipeline.toml");
    std::fs::write(&edited, CNN.replace("epochs = 5", "epochs = 6")).unwrap();
    let status = ws.repro(&["status", "--json"]);
    let statuses: Vec<serde_json::Value> = serde_json::from_slice(&status.stdout).unwrap();
    let stale_key = statuses
        .iter()
        .find(|s| s["stage"] == "mnist_cnn.train[model=cnn1,seed=3]")
        .and_then(|s| s["key"].as_str())
        .expect("the training's new key")
        .to_string();
    std::fs::write(dir.join(&stale_key), b"repro-checkpoint/1\n").unwrap();
    let out = ws.repro(&["gc"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("2 orphaned checkpoint(s)"), "{text}");
    assert_eq!(checkpoints(&ws), vec![stale_key.clone()]);
    // A run removes the checkpoint of a stage it finds complete (here: done by another process).
    std::fs::write(dir.join(&done), b"repro-checkpoint/1\n").unwrap();
    std::fs::write(&edited, CNN).unwrap();
    ws.run(&[]);
    assert_eq!(checkpoints(&ws), vec![stale_key]);
}

/// A Slurm job warned of its time limit (SIGUSR1, sbatch's `--signal`) saves, stops and asks to
/// be requeued; Slurm's own programs are stood in for by a script that notes how it was called.
#[test]
fn a_job_warned_of_its_time_limit_saves_and_requeues_itself() {
    let ws = Workspace::new("ckpt-usr1", "");
    let scontrol = ws.path("fake-scontrol");
    std::fs::write(&scontrol, format!("#!/bin/sh\necho \"$@\" >> {}\n", ws.path("scontrol-calls").display())).unwrap();
    std::fs::set_permissions(&scontrol, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = long_cnn() + &format!("\n[cluster]\nscontrol = \"{}\"\n", scontrol.display());
    std::fs::write(ws.path("pipeline.toml"), &config).unwrap();
    ws.run(&["mnist.fetch"]);
    let training = "mnist_cnn.train[model=cnn1,seed=3]";
    let child = ws
        .command(&["run-stage", training])
        .env("SLURM_JOB_ID", "4242")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sent = signal_when_training(&ws, &child, libc::SIGUSR1);
    let out = child.wait_with_output().unwrap();
    let text = text_of(&out);
    assert_eq!(out.status.code(), Some(143), "{text}");
    assert!(text.contains("job 4242 requeued to resume its checkpoint"), "{text}");
    assert_eq!(std::fs::read_to_string(ws.path("scontrol-calls")).unwrap(), "requeue 4242\n");
    saved_after(&ws, sent);
    // The job that comes back resumes.
    let again = ws.repro(&["run-stage", training]);
    let text = text_of(&again);
    assert!(again.status.success(), "{text}");
    assert!(text.contains(&format!("[resumed]  {training}: at epoch")), "{text}");
    assert!(checkpoints(&ws).is_empty());
}
