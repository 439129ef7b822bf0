//! The remote cache: against a directory (`file://`, in every `make test`), and against real
//! servers on 127.0.0.1 (`make test-remote`: moto's S3 and nginx's WebDAV, started by
//! scripts/remote-local.sh; those tests are `#[ignore]`d in a plain `cargo test`).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::proxy::Proxy;
use common::{SMALL_STAGES, Workspace, counts, files_under, small_config};

/// A remote as the tests reach it: its URL and the environment a client needs.
struct Target {
    name: &'static str,
    url: String,
    env: Vec<(String, String)>,
    /// Where its bytes lie on this machine, when the test can reach them (file://, WebDAV).
    disk: Option<PathBuf>,
}

impl Target {
    fn directory(name: &'static str, dir: &Path) -> Target {
        Target { name, url: format!("file://{}", dir.display()), env: Vec::new(), disk: Some(dir.to_path_buf()) }
    }

    /// moto's S3, under a prefix of its own.
    fn s3(prefix: &str) -> Target {
        let endpoint = server_env("REPRO_TEST_S3_ENDPOINT");
        let bucket = server_env("REPRO_TEST_S3_BUCKET");
        let env = [
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ];
        Target {
            name: "s3",
            url: format!("s3://{bucket}/{prefix}-{}", std::process::id()),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            disk: None,
        }
    }

    /// nginx's WebDAV, under a path of its own.
    fn webdav(path: &str) -> Target {
        let path = format!("{path}-{}", std::process::id());
        Target {
            name: "webdav",
            url: format!("{}/{path}", server_env("REPRO_TEST_WEBDAV_URL")),
            env: Vec::new(),
            disk: Some(PathBuf::from(server_env("REPRO_TEST_WEBDAV_ROOT")).join(path)),
        }
    }

    /// Another remote on the same server, under a path of its own.
    fn sibling(&self, suffix: &str) -> Target {
        let disk = self.disk.as_ref().map(|d| PathBuf::from(format!("{}-{suffix}", d.display())));
        Target { name: self.name, url: format!("{}-{suffix}", self.url), env: self.env.clone(), disk }
    }

    /// The same remote reached through `proxy`.
    fn through(&self, proxy: &Proxy) -> Target {
        let mut url = url_of(&self.url);
        let mut env = self.env.clone();
        match url.scheme() {
            "s3" => {
                for (k, v) in &mut env {
                    if k == "AWS_ENDPOINT_URL" {
                        *v = format!("http://127.0.0.1:{}", proxy.port);
                    }
                }
            }
            _ => url.set_port(Some(proxy.port)).unwrap(),
        }
        Target { name: self.name, url: url.to_string(), env, disk: self.disk.clone() }
    }

    /// Where the server listens.
    fn server_addr(&self) -> SocketAddr {
        let url = match url_of(&self.url).scheme() {
            "s3" => url_of(&self.env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").unwrap().1),
            _ => url_of(&self.url),
        };
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap()).parse().unwrap()
    }

    fn repro(&self, ws: &Workspace, key: Option<&str>, args: &[&str]) -> Outcome {
        let mut cmd = ws.command(args);
        cmd.env("REPRO_REMOTE", &self.url).envs(self.env.iter().map(|(k, v)| (k, v)));
        match key {
            Some(k) => cmd.env("REPRO_REMOTE_KEY", k),
            None => cmd.env_remove("REPRO_REMOTE_KEY"),
        };
        Outcome::of(cmd.output().unwrap())
    }

    /// `repro run`, which must succeed: its summary counts.
    fn run(&self, ws: &Workspace, key: Option<&str>) -> Outcome {
        let out = self.repro(ws, key, &["run"]);
        assert!(out.ok, "{} run failed:\n{}", self.name, out.text);
        out
    }
}

fn url_of(text: &str) -> url::Url {
    url::Url::parse(text).unwrap()
}

fn server_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is unset: run these tests with `make test-remote`"))
}

struct Outcome {
    ok: bool,
    /// stdout then stderr.
    text: String,
    counts: BTreeMap<String, usize>,
}

impl Outcome {
    fn of(out: Output) -> Outcome {
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let counts = counts(&stdout).unwrap_or_default();
        let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        Outcome { ok: out.status.success(), text, counts }
    }

    fn count(&self, label: &str) -> usize {
        *self.counts.get(label).unwrap_or_else(|| panic!("no `{label}` count in:\n{}", self.text))
    }

    fn lines_with(&self, needle: &str) -> usize {
        self.text.lines().filter(|l| l.contains(needle)).count()
    }

    /// Whether the report was computed (not served from a cache or the remote).
    fn report_ran(&self) -> bool {
        self.text.lines().any(|l| l.starts_with("[ran") && l.ends_with("] report"))
    }
}

fn config() -> String {
    small_config(300)
}

/// A run uploads what it computed; a fresh workspace then computes nothing and gets the same
/// bytes, report included.
fn round_trip(target: &Target) {
    let a = Workspace::new(&format!("remote-{}-a", target.name), &config());
    let first = target.run(&a, None);
    assert_eq!((first.count("run"), first.count("fetched")), (SMALL_STAGES, 0), "{}", first.text);
    assert!(first.text.contains(&format!("{SMALL_STAGES} record(s) published")), "{}", first.text);
    assert_eq!(first.lines_with("is used unsigned"), 1, "said once: {}", first.text);

    let b = Workspace::new(&format!("remote-{}-b", target.name), &config());
    let status = target.repro(&b, None, &["status"]);
    assert!(
        status.text.contains(&format!("{SMALL_STAGES} stale ({SMALL_STAGES} of them on the remote)")),
        "{}",
        status.text
    );
    let second = target.run(&b, None);
    assert_eq!((second.count("run"), second.count("fetched")), (0, SMALL_STAGES), "{}", second.text);
    assert_eq!(b.artifacts(), a.artifacts(), "byte-identical artifacts");
    assert!(b.repro(&["verify"]).status.success());
    let again = target.run(&b, None);
    assert_eq!((again.count("run"), again.count("fetched"), again.count("cached")), (0, 0, SMALL_STAGES));
}

#[test]
fn a_directory_remote_serves_a_fresh_workspace_everything() {
    let remote = Workspace::new("remote-dir", "");
    round_trip(&Target::directory("dir", &remote.path("store")));
}

#[test]
fn push_then_pull_gives_identical_artifacts() {
    let remote = Workspace::new("remote-push-pull", "");
    let target = Target::directory("push-pull", &remote.path("store"));
    let a = Workspace::new("remote-push-pull-a", &config());
    a.run(&[]); // no remote configured
    let pushed = target.repro(&a, None, &["push"]);
    assert!(pushed.ok && pushed.text.contains(&format!("{SMALL_STAGES} record(s) published")), "{}", pushed.text);
    let again = target.repro(&a, None, &["push"]);
    assert!(
        again.text.contains(&format!("0 record(s) published (0 object(s), 0 B), {SMALL_STAGES} already there")),
        "{}",
        again.text
    );

    let b = Workspace::new("remote-push-pull-b", &config());
    let pulled = target.repro(&b, None, &["pull"]);
    assert!(pulled.ok && pulled.text.contains(&format!("{SMALL_STAGES} stage(s) fetched")), "{}", pulled.text);
    assert_eq!(b.artifacts(), a.artifacts());
    assert_eq!(b.run(&[]), (0, SMALL_STAGES));
}

#[test]
fn a_run_uploads_what_an_earlier_run_computed_but_could_not_upload() {
    let remote = Workspace::new("remote-catch-up", "");
    let target = Target::directory("catch-up", &remote.path("store"));
    let a = Workspace::new("remote-catch-up-a", &config());
    a.run(&[]); // computed with no remote (or killed before its upload)
    let run = target.run(&a, None);
    assert_eq!((run.count("run"), run.count("cached")), (0, SMALL_STAGES), "{}", run.text);
    assert!(run.text.contains(&format!("{SMALL_STAGES} record(s) published")), "{}", run.text);
    let quiet = target.run(&a, None);
    assert!(!quiet.text.contains("pushed to"), "nothing new, nothing said: {}", quiet.text);
}

/// The remote records (stage -> (envelope path, record)) under a remote's directory.
fn remote_records(dir: &Path) -> BTreeMap<String, (PathBuf, serde_json::Value)> {
    files_under(&dir.join("records"))
        .into_iter()
        .map(|(name, bytes)| {
            let envelope: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let record: serde_json::Value = serde_json::from_str(envelope["record"].as_str().unwrap()).unwrap();
            (record["stage"].as_str().unwrap().to_string(), (dir.join("records").join(name), record))
        })
        .collect()
}

fn a_training(records: &BTreeMap<String, (PathBuf, serde_json::Value)>) -> (String, PathBuf, serde_json::Value) {
    let (stage, (path, record)) = records.iter().find(|(s, _)| s.starts_with("sim_functions.train")).unwrap();
    (stage.clone(), path.clone(), record.clone())
}

#[test]
fn a_corrupt_object_on_the_remote_is_not_used_and_is_replaced() {
    let remote = Workspace::new("remote-corrupt", "");
    let target = Target::directory("corrupt", &remote.path("store"));
    let a = Workspace::new("remote-corrupt-a", &config());
    target.run(&a, None);
    let (stage, _, record) = a_training(&remote_records(&remote.path("store")));
    let (output, object) = record["outputs"].as_object().unwrap().iter().next().unwrap();
    let hash = object["hash"].as_str().unwrap();
    let file = remote.path("store").join("objects").join(&hash[..2]).join(&hash[2..]);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&file, &bytes).unwrap();

    let b = Workspace::new("remote-corrupt-b", &config());
    let run = target.run(&b, None);
    let refusal = format!("[remote]  {stage}: not used, output `{output}` on the remote fails its hash");
    assert_eq!(run.lines_with(&refusal), 1, "{}", run.text);
    assert!(run.text.contains(&format!("] {stage}")), "recomputed: {}", run.text);
    // The training recomputes the same bytes; the report quotes its wall time to the millisecond,
    // so it reruns too, unless the recomputed training took the very same time (a training of a
    // few milliseconds can): then it is served from the remote, byte for byte a's.
    let report_ran = run.report_ran();
    assert_eq!(run.count("run"), 1 + usize::from(report_ran), "{}", run.text);
    assert_eq!(b.artifacts_modulo_timings(), a.artifacts_modulo_timings());
    if !report_ran {
        assert_eq!(b.artifacts(), a.artifacts(), "a report served from the remote is a's");
    }
    // b's upload replaced the bad object: a third workspace gets everything.
    let c = Workspace::new("remote-corrupt-c", &config());
    let third = target.run(&c, None);
    assert_eq!((third.count("run"), third.count("fetched")), (0, SMALL_STAGES), "{}", third.text);
}

#[test]
fn signed_records_a_tampered_one_is_refused_by_name() {
    let remote = Workspace::new("remote-signed", "");
    let target = Target::directory("signed", &remote.path("store"));
    let a = Workspace::new("remote-signed-a", &config());
    let first = target.run(&a, Some("team secret"));
    assert_eq!(first.lines_with("unsigned"), 0, "{}", first.text);
    let (stage, path, _) = a_training(&remote_records(&remote.path("store")));
    // Claim other wall time, keeping the signature.
    let text = std::fs::read_to_string(&path).unwrap();
    let tampered = text.replacen("\\\"seconds\\\":", "\\\"seconds\\\":1", 1);
    assert_ne!(tampered, text);
    std::fs::write(&path, tampered).unwrap();

    let b = Workspace::new("remote-signed-b", &config());
    let run = target.run(&b, Some("team secret"));
    assert_eq!(
        run.lines_with(&format!("[remote]  {stage}: not used, its record's signature does not match")),
        1,
        "{}",
        run.text
    );
    assert_eq!(run.lines_with("not used"), 1, "only the tampered record: {}", run.text);
    // The training recomputes the same bytes; only the report (which quotes wall times to the
    // millisecond) reruns too, unless the recomputed training took the very same time (a training
    // of a few milliseconds can): then the report is served from the remote.
    let ran = 1 + usize::from(run.report_ran());
    assert_eq!((run.count("run"), run.count("fetched")), (ran, SMALL_STAGES - ran), "{}", run.text);

    // Another key verifies nothing; no key checks nothing (and says so).
    let c = Workspace::new("remote-signed-c", &config());
    let other = target.run(&c, Some("another secret"));
    assert_eq!((other.count("fetched"), other.count("run")), (0, SMALL_STAGES), "{}", other.text);
    let d = Workspace::new("remote-signed-d", &config());
    let unsigned = target.repro(&d, None, &["run", "--remote-read-only"]);
    assert_eq!(unsigned.lines_with("is used unsigned"), 1, "{}", unsigned.text);
    // Unchecked, the tampered record is taken as found: its altered wall time reaches the report's
    // lineage, so only the report is computed.
    assert_eq!((unsigned.count("run"), unsigned.count("fetched")), (1, SMALL_STAGES - 1), "{}", unsigned.text);
}

#[test]
fn unsigned_records_are_refused_when_a_key_is_set() {
    let remote = Workspace::new("remote-unsigned", "");
    let target = Target::directory("unsigned", &remote.path("store"));
    target.run(&Workspace::new("remote-unsigned-a", &config()), None);
    let b = Workspace::new("remote-unsigned-b", &config());
    let run = target.repro(&b, Some("team secret"), &["run", "--remote-read-only"]);
    assert!(run.ok, "{}", run.text);
    // Each stage is asked once it is ready, and refused; but the report, whose lineage quotes the
    // wall times of the trainings just recomputed, has a key the remote never saw.
    let refused = run.lines_with("its record is not signed, and REPRO_REMOTE_KEY is set");
    assert_eq!(refused, SMALL_STAGES - 1, "{}", run.text);
    assert_eq!(run.count("fetched"), 0);
}

#[test]
fn a_remote_that_is_down_costs_one_warning_and_nothing_else() {
    let ws = Workspace::new("remote-down", &config());
    // Nothing listens on port 9 (discard) here.
    let target = Target { name: "down", url: "http://127.0.0.1:9/cache".into(), env: Vec::new(), disk: None };
    let run = target.run(&ws, None);
    assert_eq!(run.count("run"), SMALL_STAGES, "{}", run.text);
    assert_eq!(run.lines_with("warning: remote http://127.0.0.1:9/cache failed"), 1, "{}", run.text);
    assert!(!run.text.contains("pushed to"), "no upload to a remote that failed: {}", run.text);
}

#[test]
fn two_workspaces_pushing_the_same_stages_at_once_leave_a_consistent_remote() {
    let remote = Workspace::new("remote-race", "");
    let target = Target::directory("race", &remote.path("store"));
    let pushers: Vec<Workspace> = (0..2).map(|i| Workspace::new(&format!("remote-race-{i}"), &config())).collect();
    for ws in &pushers {
        ws.run(&[]);
    }
    let children: Vec<_> = pushers
        .iter()
        .map(|ws| {
            let mut cmd = ws.command(&["push"]);
            cmd.env("REPRO_REMOTE", &target.url);
            cmd.spawn().unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let c = Workspace::new("remote-race-c", &config());
    let run = target.run(&c, None);
    assert_eq!(run.lines_with("not used"), 0, "every record there is whole: {}", run.text);
    // Each key's record is one pusher's or the other's; the report's key follows the wall times
    // its lineage quotes, so a mix of the two pushers' trainings may call for a report of its own.
    let computed = run.count("run");
    assert!(computed == 0 || (computed == 1 && run.text.contains("] report")), "{}", run.text);
    assert_eq!(run.count("fetched"), SMALL_STAGES - computed, "{}", run.text);
    assert!(c.repro(&["verify"]).status.success());
}

/// A push whose server dies part-way publishes no record without its objects; pushing again
/// completes it.
fn cut_push(target: &Target) {
    let a = Workspace::new(&format!("remote-cut-{}-a", target.name), &config());
    a.run(&[]);
    // How many request bytes a whole push sends (to a prefix of its own) ...
    let counting = Proxy::start(target.server_addr(), i64::MAX);
    let whole = target.sibling("measure").through(&counting).repro(&a, None, &["push"]);
    assert!(whole.ok, "{}", whole.text);
    // ... then the server dies within the last records' uploads: records go last, so most objects
    // and some records are there, and some records are not.
    let proxy = Proxy::start(target.server_addr(), counting.forwarded() - 3000);
    let cut = target.through(&proxy).repro(&a, None, &["push"]);
    assert!(proxy.is_dead(), "the push outlived the proxy's budget: {}", cut.text);
    assert!(!cut.ok, "a push cut short fails: {}", cut.text);
    // Records travel in parallel: how many got through before the cut varies, not that some did not.
    let (published, objects) = pushed_counts(&cut.text);
    assert!(objects > 0 && published < SMALL_STAGES, "cut after the objects, before all records: {}", cut.text);

    // Whatever was published is complete: a fresh workspace uses every record it finds.
    let b = Workspace::new(&format!("remote-cut-{}-b", target.name), &config());
    let partial = target.run(&b, None);
    assert_eq!(partial.lines_with("not used"), 0, "{}", partial.text);
    // At least what the push saw published (a record may have arrived whose reply was cut).
    assert!(partial.count("fetched") >= published, "{}", partial.text);
    if let Some(dir) = &target.disk {
        for (stage, (_, record)) in remote_records(dir) {
            for object in record["outputs"].as_object().unwrap().values() {
                let hash = object["hash"].as_str().unwrap();
                assert!(
                    dir.join("objects").join(&hash[..2]).join(&hash[2..]).is_file(),
                    "{stage} names a missing object"
                );
            }
        }
    }
    let pushed = target.repro(&a, None, &["push"]);
    assert!(pushed.ok, "{}", pushed.text);
    let c = Workspace::new(&format!("remote-cut-{}-c", target.name), &config());
    let full = target.run(&c, None);
    assert_eq!((full.count("run"), full.count("fetched")), (0, SMALL_STAGES), "{}", full.text);
}

/// (records published, objects uploaded) from a push's summary line.
fn pushed_counts(text: &str) -> (usize, usize) {
    let line = text.lines().find(|l| l.starts_with("pushed to ")).expect("a push summary");
    let (_, after) = line.split_once(": ").unwrap();
    let number_before = |label: &str| -> usize {
        let head = &after[..after.find(label).unwrap()];
        head.split(|c: char| !c.is_ascii_digit()).rfind(|s| !s.is_empty()).unwrap().parse().unwrap()
    };
    (number_before(" record(s) published"), number_before(" object(s)"))
}

#[test]
#[ignore = "needs the servers of scripts/remote-local.sh: make test-remote"]
fn s3_round_trip() {
    round_trip(&Target::s3("round-trip"));
}

#[test]
#[ignore = "needs the servers of scripts/remote-local.sh: make test-remote"]
fn webdav_round_trip() {
    round_trip(&Target::webdav("round-trip"));
}

#[test]
#[ignore = "needs the servers of scripts/remote-local.sh: make test-remote"]
fn s3_push_cut_short_then_completed() {
    cut_push(&Target::s3("cut"));
}

#[test]
#[ignore = "needs the servers of scripts/remote-local.sh: make test-remote"]
fn webdav_push_cut_short_then_completed() {
    cut_push(&Target::webdav("cut"));
}
