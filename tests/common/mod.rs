//! Helpers for the end-to-end tests: a scratch workspace and the real `repro` binary.
#![allow(dead_code)]

pub mod http;
pub mod proxy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Workspace {
    pub dir: PathBuf,
}

impl Workspace {
    /// A fresh directory holding `pipeline.toml` with `config`.
    pub fn new(name: &str, config: &str) -> Workspace {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pipeline.toml"), config).unwrap();
        Workspace { dir }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_repro"));
        cmd.args(args)
            .current_dir(&self.dir)
            .env("CI", "1")
            .env("MNIST_MIRROR", shared_mnist())
            .env_remove("REPRO_CODE_OVERRIDE")
            .env_remove("REPRO_SIGNING_KEY")
            .env_remove("REPRO_REMOTE_KEY")
            // Printing the PDF takes Chromium seconds a run; the browser test turns it back on.
            .env("REPRO_REPORT_PDF", "off");
        // The usual umask, whatever the test runner's: the mode of written files is asserted.
        // SAFETY: umask is async-signal-safe and touches nothing but the child's own mask.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::umask(0o022);
                Ok(())
            });
        }
        cmd
    }

    pub fn repro(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("repro starts")
    }

    /// Runs `repro run ARGS`, asserts success, returns (ran, cached) from the summary line.
    pub fn run(&self, args: &[&str]) -> (usize, usize) {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let out = self.repro(&all);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "repro {all:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let (ran, cached, failed) = summary(&stdout).expect("summary line");
        assert_eq!(failed, 0);
        (ran, cached)
    }

    /// Every file under `artifacts/` with its bytes, but the PDF Chromium prints (not a stage
    /// output: it carries its own timestamps).
    pub fn artifacts(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = files_under(&self.dir.join("artifacts"));
        files.remove("report.pdf");
        files
    }

    /// Like [`Workspace::artifacts`], with the report's wall times masked and the report stage's
    /// manifest entries dropped: the one thing that differs between two runs of the same work.
    pub fn artifacts_modulo_timings(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = self.artifacts();
        for name in ["report.md", "report.html"] {
            if let Some(bytes) = files.get_mut(name) {
                *bytes = mask_durations(&String::from_utf8_lossy(bytes)).into_bytes();
            }
        }
        if let Some(bytes) = files.get_mut("manifest.json") {
            let mut manifest: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            let entries = manifest["artifacts"].as_object_mut().unwrap();
            assert!(entries.remove("report.md").is_some() && entries.remove("report.html").is_some());
            // The report stage's other outputs share its key, which follows the wall times.
            entries.retain(|_, entry| entry["stage"] != "report");
            *bytes = serde_json::to_vec(&manifest).unwrap();
        }
        files
    }

    /// (stage, key, outputs) of every record but the report's (whose lineage holds wall times).
    pub fn records_without_report(&self) -> Vec<(String, String, serde_json::Value)> {
        let mut out: Vec<_> = files_under(&self.path("cache/records"))
            .values()
            .map(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).unwrap())
            .filter(|r| r["kind"] != "report")
            .map(|r| {
                (r["stage"].as_str().unwrap().to_string(), r["key"].as_str().unwrap().to_string(), r["outputs"].clone())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Parses `stages: N run, F fetched, M cached, K failed` into (N, M, K).
pub fn summary(stdout: &str) -> Option<(usize, usize, usize)> {
    let counts = counts(stdout)?;
    Some((counts["run"], counts["cached"], counts["failed"]))
}

/// The summary line's counts by label (`run`, `fetched`, `cached`, `failed`).
pub fn counts(stdout: &str) -> Option<BTreeMap<String, usize>> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("stages: "))?;
    line.split(", ")
        .map(|part| {
            let (n, label) = part.split_once(' ')?;
            Some((label.to_string(), n.parse().ok()?))
        })
        .collect()
}

pub fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A small sim_functions configuration: 2 functions x 2 models x 2 seeds, short training.
pub fn small_config(max_epochs: usize) -> String {
    format!(
        "[pipeline]\nbackend = \"flex\"\n\n[experiments.sim_functions]\nseeds = [0, 1]\nfunctions = [\"f1\", \"f2\"]\nmodels = [\"m1\", \"m3\"]\nmax_epochs = {max_epochs}\n"
    )
}

/// data 2 + train 8 + analyze 1 + plot 2 + report 1.
pub const SMALL_STAGES: usize = 14;

/// The canonical MNIST files: `MNIST_MIRROR` when it is a directory, else `../shared/mnist`
/// beside the repository.
pub fn shared_mnist() -> PathBuf {
    if let Ok(dir) = std::env::var("MNIST_MIRROR")
        && Path::new(&dir).is_dir()
    {
        return PathBuf::from(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/mnist");
    assert!(
        dir.is_dir(),
        "MNIST test files not found: set MNIST_MIRROR to a directory holding the four *-ubyte.gz files"
    );
    dir
}

/// Replaces every wall time the report prints ("12.3 s", "4.5 min", "1.25 h") by "<time>".
pub fn mask_durations(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_number =
            chars[i].is_ascii_digit() && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '.'));
        if starts_number {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let rest: String = chars[j..chars.len().min(j + 5)].iter().collect();
            if let Some(unit) = [" min", " s", " h"].iter().find(|u| rest.starts_with(*u)) {
                let end = j + unit.chars().count();
                if end == chars.len() || !chars[end].is_alphanumeric() {
                    out.push_str("<time>");
                    i = end;
                    continue;
                }
            }
            out.extend(&chars[i..j]);
            i = j;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// What a buggy or malicious pusher leaves: in the store at `cache`, one training's loss curve with
/// its last loss changed, stored as a new object that its (re-committed) record names, so that
/// record and object agree and every hash check passes. Returns the doctored record.
pub fn doctor_a_loss_curve(cache: &Path) -> repro::engine::store::Record {
    let store = repro::engine::Store::open(cache).unwrap();
    let mut record = store
        .records()
        .into_iter()
        .find(|r| r.stage.starts_with("sim_functions.train") && r.outputs.contains_key("loss.csv"))
        .expect("a training with a loss curve");
    let text = std::fs::read_to_string(store.object_path(&record.outputs["loss.csv"].hash)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let (epoch, _) = lines.last().unwrap().split_once(',').unwrap();
    *lines.last_mut().unwrap() = format!("{epoch},0.5");
    let doctored = store.put_bytes(format!("{}\n", lines.join("\n")).as_bytes()).unwrap();
    record.outputs.insert("loss.csv".into(), doctored);
    store.commit(&record).unwrap();
    record
}
