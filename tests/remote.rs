//! The remote cache: against a directory (`file://`, in every `make test`), and against real
//! servers on 127.0.0.1 (`make test-remote`: moto's S3 and nginx's WebDAV, started by
//! scripts/remote-local.sh; those tests are `#[ignore]`d in a plain `cargo test`).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;

use std::sync::OnceLock;

use common::proxy::Proxy;
use common::{SMALL_STAGES, Workspace, counts, files_under, small_config};
use repro::engine::remote::SecretKey;

/// A remote as the tests reach it: its URL and the environment a client needs.
struct Target {
    name: &'static str,
    url: String,
    /// Besides the remote's own: `REPRO_SIGNING_KEY` where this target's pushers sign.
    env: Vec<(String, String)>,
    /// Where its bytes lie on this machine, when the test can reach them (file://, WebDAV).
    disk: Option<PathBuf>,
}

impl Target {
    fn directory(name: &'static str, dir: &Path) -> Target {
        Target { name, url: format!("file://{}", dir.display()), env: signing(team()), disk: Some(dir.to_path_buf()) }
    }

    /// The same remote, reached by a workspace that signs with `key` (or not at all).
    fn signed_by(&self, key: Option<&SecretKey>) -> Target {
        let mut env: Vec<_> = self.env.iter().filter(|(k, _)| k != "REPRO_SIGNING_KEY").cloned().collect();
        env.extend(key.map(signing).unwrap_or_default());
        Target { name: self.name, url: self.url.clone(), env, disk: self.disk.clone() }
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
        let mut env: Vec<_> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        env.extend(signing(team()));
        Target { name: "s3", url: format!("s3://{bucket}/{prefix}-{}", std::process::id()), env, disk: None }
    }

    /// nginx's WebDAV, under a path of its own.
    fn webdav(path: &str) -> Target {
        let path = format!("{path}-{}", std::process::id());
        Target {
            name: "webdav",
            url: format!("{}/{path}", server_env("REPRO_TEST_WEBDAV_URL")),
            env: signing(team()),
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

    fn command(&self, ws: &Workspace, key: Option<&str>, args: &[&str]) -> std::process::Command {
        let mut cmd = ws.command(args);
        cmd.env("REPRO_REMOTE", &self.url).envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(k) = key {
            cmd.env("REPRO_REMOTE_KEY", k);
        }
        cmd
    }

    fn repro(&self, ws: &Workspace, key: Option<&str>, args: &[&str]) -> Outcome {
        Outcome::of(self.command(ws, key, args).output().unwrap())
    }

    /// `repro run`, which must succeed: its summary counts.
    fn run(&self, ws: &Workspace, key: Option<&str>) -> Outcome {
        let out = self.repro(ws, key, &["run"]);
        assert!(out.ok, "{} run failed:\n{}", self.name, out.text);
        out
    }
}

/// The team's signing key: its pushers sign with it, and `config()` trusts it.
fn team() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| SecretKey::generate("team").unwrap())
}

fn signing(key: &SecretKey) -> Vec<(String, String)> {
    vec![("REPRO_SIGNING_KEY".to_string(), key.to_text())]
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

/// The small study, trusting the team's key (signatures required, the default).
fn config() -> String {
    format!("{}\n[remote]\ntrusted_keys = [\"{}\"]\n", small_config(300), team().public())
}

/// The small study, taking records as found (`require_signatures = false`), plus `extra` settings.
fn unchecked_config(extra: &str) -> String {
    format!("{}\n[remote]\nrequire_signatures = false\n{extra}\n", small_config(300))
}

/// A run uploads what it computed; a fresh workspace then computes nothing and gets the same
/// bytes, report included.
fn round_trip(target: &Target) {
    let a = Workspace::new(&format!("remote-{}-a", target.name), &config());
    let first = target.run(&a, None);
    assert_eq!((first.count("run"), first.count("fetched")), (SMALL_STAGES, 0), "{}", first.text);
    assert!(first.text.contains(&format!("{SMALL_STAGES} record(s) published")), "{}", first.text);
    assert_eq!(first.lines_with("without signatures"), 0, "signed and checked: {}", first.text);

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
    // Artifacts are the user's files, as the umask makes them (022 in these tests), not the
    // store's read-only objects made writable by all.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(b.path("artifacts/report.md")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "{mode:o}");
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

/// The older shared-secret mode (`REPRO_REMOTE_KEY`, an HMAC): a tampered record is refused by
/// name; another secret verifies nothing; and a reader who checks nothing takes the tampered
/// record as found, which is why signatures are required by default.
#[test]
fn shared_secret_records_a_tampered_one_is_refused_by_name() {
    let remote = Workspace::new("remote-signed", "");
    let target = Target::directory("signed", &remote.path("store")).signed_by(None);
    let shared = small_config(300);
    let a = Workspace::new("remote-signed-a", &shared);
    let first = target.run(&a, Some("team secret"));
    assert_eq!(first.lines_with("without signatures"), 0, "{}", first.text);
    let (stage, path, _) = a_training(&remote_records(&remote.path("store")));
    // Claim other wall time, keeping the signature.
    let text = std::fs::read_to_string(&path).unwrap();
    let tampered = text.replacen("\\\"seconds\\\":", "\\\"seconds\\\":1", 1);
    assert_ne!(tampered, text);
    std::fs::write(&path, tampered).unwrap();

    let d = Workspace::new("remote-signed-unchecked", &unchecked_config(""));
    let unchecked = target.repro(&d, None, &["run", "--remote-read-only"]);
    assert_eq!(unchecked.lines_with("is used without signatures"), 1, "said once: {}", unchecked.text);
    // Unchecked, the tampered record is taken as found: its altered wall time reaches the report's
    // lineage, so only the report is computed.
    assert_eq!((unchecked.count("run"), unchecked.count("fetched")), (1, SMALL_STAGES - 1), "{}", unchecked.text);

    let b = Workspace::new("remote-signed-b", &shared);
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

    // b's upload replaced the tampered record: a reader with the secret now gets everything.
    assert!(run.text.contains("1 replaced"), "{}", run.text);
    // Another secret verifies nothing.
    let c = Workspace::new("remote-signed-c", &shared);
    let other = target.run(&c, Some("another secret"));
    assert_eq!((other.count("fetched"), other.count("run")), (0, SMALL_STAGES), "{}", other.text);
}

#[test]
fn unsigned_records_are_refused_by_default() {
    let remote = Workspace::new("remote-unsigned", "");
    let target = Target::directory("unsigned", &remote.path("store"));
    // A writer that signs nothing: its readers must say they take records unchecked.
    let unsigned = target.signed_by(None);
    unsigned.run(&Workspace::new("remote-unsigned-a", &unchecked_config("")), None);
    let b = Workspace::new("remote-unsigned-b", &config());
    let run = target.repro(&b, None, &["run", "--remote-read-only"]);
    assert!(run.ok, "{}", run.text);
    // Each stage is asked once it is ready, and refused; but the report, whose lineage quotes the
    // wall times of the trainings just recomputed, has a key the remote never saw.
    let refused = run.lines_with("its record is not signed by a trusted key");
    assert_eq!(refused, SMALL_STAGES - 1, "{}", run.text);
    assert_eq!(run.count("fetched"), 0);
    // Nothing signs in a workspace that requires signatures and holds no key: it uploads nothing,
    // and `repro push` says why.
    let c = Workspace::new("remote-unsigned-c", &config());
    let keyless = unsigned.run(&c, None);
    assert_eq!(keyless.lines_with("nothing uploaded: nothing signs records here"), 1, "{}", keyless.text);
    let push = unsigned.repro(&c, None, &["push"]);
    assert!(!push.ok && push.text.contains("set REPRO_SIGNING_KEY"), "{}", push.text);
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
            cmd.env("REPRO_REMOTE", &target.url).envs(target.env.iter().map(|(k, v)| (k, v)));
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

/// Rewrites the remote record of the first stage whose name starts with `prefix` (skipping
/// `skip` such stages) with `edit`, as a writer of the remote without a trusted key can: the
/// envelope keeps no signature. Returns the stage's name.
fn forge(dir: &Path, prefix: &str, skip: usize, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let records = remote_records(dir);
    let (stage, (path, record)) = records.iter().filter(|(s, _)| s.starts_with(prefix)).nth(skip).unwrap();
    let mut record = record.clone();
    edit(&mut record);
    let envelope = serde_json::json!({"format": "repro-record/1", "record": record.to_string()});
    std::fs::write(path, envelope.to_string()).unwrap();
    stage.clone()
}

/// An output of `record` (its name and object hash).
fn first_output(record: &serde_json::Value) -> (String, String) {
    let (name, object) = record["outputs"].as_object().unwrap().iter().next().unwrap();
    (name.clone(), object["hash"].as_str().unwrap().to_string())
}

/// A writer of the remote edits records to write outside the reader's workspace, to crash it (a
/// one-character hash), and to starve its dependents (no outputs). A reader that takes records
/// unchecked still refuses each by name, computes those stages itself, and writes nothing
/// outside artifacts/.
#[test]
fn hostile_records_are_refused_and_write_nothing_outside_the_workspace() {
    let remote = Workspace::new("remote-hostile", "");
    let store = remote.path("store");
    let target = Target::directory("hostile", &store);
    target.run(&Workspace::new("remote-hostile-a", &config()), None);
    let b = Workspace::new("remote-hostile-b", &unchecked_config(""));
    let outside = b.dir.parent().unwrap().join(format!("escaped_evil-{}.sh", std::process::id()));
    let absolute = remote.path("absolute_evil.sh");
    let relative = format!("../../../{}", outside.file_name().unwrap().to_string_lossy());
    let with_output = |name: String| {
        move |r: &mut serde_json::Value| {
            let (_, hash) = first_output(r);
            r["outputs"][name] = serde_json::json!({"hash": hash, "size": 1});
        }
    };
    let escaping = forge(&store, "sim_functions.plot", 0, with_output(relative.clone()));
    let rooted = forge(&store, "sim_functions.plot", 1, with_output(absolute.display().to_string()));
    let short_hash = forge(&store, "sim_functions.train", 0, |r| {
        let (name, _) = first_output(r);
        r["outputs"][name]["hash"] = "a".into();
    });
    let empty = forge(&store, "sim_functions.train", 1, |r| r["outputs"] = serde_json::json!({}));

    let run = target.repro(&b, None, &["run", "--remote-read-only"]);
    assert!(run.ok, "no panic, no failure: {}", run.text);
    for (stage, why) in [
        (&escaping, format!("output name `{relative}` cannot be a path below artifacts/")),
        (&rooted, format!("output name `{}` cannot be a path below artifacts/", absolute.display())),
        (&short_hash, "names `a`, not a blake3 hash".to_string()),
        (&empty, "it has no outputs".to_string()),
    ] {
        let line = format!("[remote]  {stage}: not used, its record is invalid: ");
        assert_eq!(run.text.lines().filter(|l| l.starts_with(&line) && l.contains(&why)).count(), 1, "{}", run.text);
    }
    assert!(!outside.exists() && !absolute.exists(), "written outside the workspace: {}", run.text);
    // The four stages were computed here (and the report, whose lineage quotes their times).
    assert_eq!(run.count("run"), 5, "{}", run.text);
    assert!(b.repro(&["verify"]).status.success());
    // Nothing is stuck: the next run has everything, and so does a run of the default config.
    assert_eq!(target.repro(&b, None, &["run", "--remote-read-only"]).count("run"), 0);
    // `repro pull` (which computes nothing) refuses them the same way, and says what no cache has:
    // the two trainings, and so nothing downstream of them (the plots are never asked for).
    let pulling = Workspace::new("remote-hostile-pull", &unchecked_config(""));
    let pulled = target.repro(&pulling, None, &["pull"]);
    assert!(pulled.ok && pulled.text.contains("6 in no cache"), "{}", pulled.text);
    assert_eq!(pulled.lines_with("its record is invalid"), 2, "{}", pulled.text);
    assert!(!outside.exists() && !absolute.exists(), "written outside the workspace: {}", pulled.text);
    // Under the default (signatures required) the same records are refused before any of it is read.
    let c = Workspace::new("remote-hostile-c", &config());
    let strict = target.repro(&c, None, &["run", "--remote-read-only"]);
    assert_eq!(strict.lines_with("its record is not signed by a trusted key"), 4, "{}", strict.text);
}

/// A writer without a trusted key: a record signed by its own key is refused, and so is a
/// trusted record whose output it swapped for another object (a forged table).
#[test]
fn signatures_from_untrusted_keys_and_swapped_objects_are_refused() {
    let remote = Workspace::new("remote-mallory", "");
    let store = remote.path("store");
    let target = Target::directory("mallory", &store);
    let mallory = SecretKey::generate("mallory").unwrap();
    // Mallory publishes a whole study under her key; a workspace of hers trusts what it signs
    // without listing her key, and is served it all.
    let hers = target.signed_by(Some(&mallory));
    hers.run(&Workspace::new("remote-mallory-a", &config()), None);
    let own = hers.run(&Workspace::new("remote-mallory-own", &config()), None);
    assert_eq!((own.count("fetched"), own.count("run")), (SMALL_STAGES, 0), "{}", own.text);
    let b = Workspace::new("remote-mallory-b", &config());
    let run = target.repro(&b, None, &["run", "--remote-read-only"]);
    assert_eq!(run.lines_with("its record is signed by `mallory`, not in [remote] trusted_keys"), SMALL_STAGES - 1);
    assert_eq!((run.count("fetched"), run.count("run")), (0, SMALL_STAGES), "{}", run.text);

    // The team's records replace hers (a push replaces what its readers cannot use) ...
    let team = Workspace::new("remote-mallory-c", &config());
    let pushed = target.run(&team, None);
    assert!(pushed.text.contains("replaced (the remote's could not be used)"), "{}", pushed.text);
    // ... and a swapped object under the team's signature is refused by the signature.
    let (stage, path, record) = a_training(&remote_records(&store));
    let (_, hash) = first_output(&record);
    let other = remote_records(&store).values().map(|(_, r)| first_output(r).1).find(|h| *h != hash).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(&hash, &other)).unwrap();
    let d = Workspace::new("remote-mallory-d", &config());
    let swapped = target.repro(&d, None, &["run", "--remote-read-only"]);
    let refusal = format!("[remote]  {stage}: not used, its record's signature does not match");
    assert_eq!(swapped.lines_with(&refusal), 1, "{}", swapped.text);
    assert_eq!(swapped.lines_with("not used"), 1, "{}", swapped.text);
}

/// `repro run` as a child, with its peak resident memory (from wait4).
#[allow(clippy::zombie_processes, reason = "reaped by wait4, which also gives its resource usage")]
fn run_measured(target: &Target, ws: &Workspace, args: &[&str]) -> (Outcome, u64) {
    let mut cmd = target.command(ws, None, args);
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let (mut stdout, mut stderr) = (child.stdout.unwrap(), child.stderr.unwrap());
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut text).unwrap();
        text
    });
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for our own child, writing into locals.
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let output = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: out,
        stderr: err.join().unwrap(),
    };
    (Outcome::of(output), usage.ru_maxrss as u64 * 1024)
}

/// Objects stream from the remote to disk through the hasher: a 600 MB output costs no memory,
/// one larger than `[remote] max_object_mb` is never fetched, and one larger than its record
/// says is not read past that size.
#[test]
fn large_objects_stream_within_bounded_memory_and_oversized_ones_are_refused() {
    const BIG: u64 = 600 << 20;
    let remote = Workspace::new("remote-big", "");
    let store = remote.path("store");
    let target = Target::directory("big", &store);
    target.run(&Workspace::new("remote-big-a", &config()), None);
    // A 600 MB object of zeros, stored under its true hash.
    let mut hasher = blake3::Hasher::new();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(BIG >> 20) {
        hasher.update(&zeros);
    }
    let hash = hasher.finalize().to_hex().to_string();
    let file = store.join("objects").join(&hash[..2]).join(&hash[2..]);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::File::create(&file).unwrap().set_len(BIG).unwrap();
    let with_big = |size: u64| {
        let hash = hash.clone();
        move |r: &mut serde_json::Value| r["outputs"]["big.bin"] = serde_json::json!({"hash": hash, "size": size})
    };
    let served = forge(&store, "sim_functions.train", 0, with_big(BIG));
    let understated = forge(&store, "sim_functions.train", 1, with_big(1000));

    let b = Workspace::new("remote-big-b", &unchecked_config(""));
    let (run, peak) = run_measured(&target, &b, &["run", "--remote-read-only"]);
    assert!(run.ok, "{}", run.text);
    assert_eq!(run.lines_with(&format!("{served}: not used")), 0, "{}", run.text);
    let refusal = format!("[remote]  {understated}: not used, output `big.bin` on the remote fails its hash or size");
    assert_eq!(run.lines_with(&refusal), 1, "{}", run.text);
    eprintln!("peak RSS {} MB while fetching a {} MB object", peak >> 20, BIG >> 20);
    assert!(peak < 250 << 20, "peak RSS {} MB while fetching a {} MB object", peak >> 20, BIG >> 20);
    assert_eq!(std::fs::metadata(b.path(&format!("cache/objects/{}/{}", &hash[..2], &hash[2..]))).unwrap().len(), BIG);

    let c = Workspace::new("remote-big-c", &unchecked_config("max_object_mb = 100"));
    let capped = target.repro(&c, None, &["run", "--remote-read-only"]);
    let refusal =
        format!("[remote]  {served}: not used, its record is invalid: output `big.bin` is {BIG} bytes, over the");
    assert_eq!(capped.lines_with(&refusal), 1, "{}", capped.text);
}

/// A FIFO where a record or an object should be (an open would wait for a writer forever), and a
/// link out of the remote: never opened; the run ends, refusing those records by name.
#[test]
fn fifos_and_links_in_a_directory_remote_are_refused_without_waiting() {
    let remote = Workspace::new("remote-fifo", "");
    let store = remote.path("store");
    let target = Target::directory("fifo", &store);
    target.run(&Workspace::new("remote-fifo-a", &config()), None);
    let records = remote_records(&store);
    let mut trainings = records.iter().filter(|(s, _)| s.starts_with("sim_functions.train"));
    let mkfifo = |path: &Path| {
        std::fs::remove_file(path).unwrap();
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
    };
    let (fifo_record, (path, _)) = trainings.next().unwrap();
    mkfifo(path);
    let (fifo_object, (_, record)) = trainings.next().unwrap();
    let (_, hash) = first_output(record);
    mkfifo(&store.join("objects").join(&hash[..2]).join(&hash[2..]));
    let (linked, (path, _)) = trainings.next().unwrap();
    let secret = remote.path("secret.json");
    std::fs::rename(path, &secret).unwrap();
    std::os::unix::fs::symlink(&secret, path).unwrap();

    let b = Workspace::new("remote-fifo-b", &config());
    let started = std::time::Instant::now();
    let run = target.repro(&b, None, &["run", "--remote-read-only"]);
    assert!(run.ok, "{}", run.text);
    assert!(started.elapsed().as_secs() < 60, "{:?}: {}", started.elapsed(), run.text);
    for stage in [fifo_record, fifo_object, linked] {
        let refusal = format!("[remote]  {stage}: not used, ");
        let line = run.text.lines().find(|l| l.starts_with(&refusal)).unwrap_or_else(|| panic!("{}", run.text));
        assert!(line.contains("is not a regular file"), "{line}");
    }
}

/// A server that accepts connections and never answers.
fn silent_server() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// SIGTERM stops a run that waits on a remote which never answers, and its lock goes with it.
#[test]
fn sigterm_stops_a_run_waiting_on_the_remote() {
    let (_listener, port) = silent_server();
    let target =
        Target { name: "silent", url: format!("http://127.0.0.1:{port}/cache"), env: signing(team()), disk: None };
    let ws = Workspace::new("remote-silent", &format!("{}timeout_s = 600\nretries = 0\n", config()));
    let mut child = target.command(&ws, None, &["run"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let signalled = std::time::Instant::now();
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(signalled.elapsed().as_secs() < 20, "ended {:?} after SIGTERM", signalled.elapsed());
    assert_eq!(status.code(), Some(143), "as a process ended by SIGTERM");
    // The lock was released: a run without the remote goes ahead.
    assert_eq!(ws.run(&[]).0, SMALL_STAGES);
}

/// Passwords in the URL and S3 secrets appear in no message, whatever fails.
#[test]
fn credentials_never_reach_the_output() {
    let ws = Workspace::new("remote-password", &config());
    let target = Target {
        name: "password",
        url: "http://ci:hunter2%21@127.0.0.1:9/cache".into(),
        env: [signing(team()), vec![("AWS_SECRET_ACCESS_KEY".into(), "s3cr3t-value".into())]].concat(),
        disk: None,
    };
    let mut texts = vec![target.run(&ws, None).text, target.repro(&ws, None, &["push"]).text];
    let broken = Target { url: "http://ci:hunter2!@[::1/cache".into(), ..target };
    texts.push(broken.repro(&ws, None, &["push"]).text);
    for text in &texts {
        assert!(text.contains("127.0.0.1:9") || text.contains("not a URL"), "the remote is named: {text}");
    }
    let stale = Workspace::new("remote-password-status", &config());
    texts.push(broken.repro(&stale, None, &["status"]).text);
    texts.push(
        Target { url: "http://ci:hunter2%21@127.0.0.1:9/cache".into(), ..broken }.repro(&stale, None, &["status"]).text,
    );
    for text in &texts {
        for secret in ["hunter2", "s3cr3t-value"] {
            assert!(!text.contains(secret), "{secret} in: {text}");
        }
    }
}

/// A record nobody can use (garbage) is replaced by the next push of a trusted one; a workspace
/// whose remote is read-only does not push.
#[test]
fn an_unreadable_record_is_replaced_by_the_next_push_and_read_only_does_not_push() {
    let remote = Workspace::new("remote-replace", "");
    let store = remote.path("store");
    let target = Target::directory("replace", &store);
    let a = Workspace::new("remote-replace-a", &config());
    target.run(&a, None);
    let (stage, path, _) = a_training(&remote_records(&store));
    std::fs::write(&path, b"\x00garbage").unwrap();
    let b = Workspace::new("remote-replace-b", &config());
    let refused = target.repro(&b, None, &["run", "--remote-read-only"]);
    assert_eq!(refused.lines_with(&format!("[remote]  {stage}: not used, its record is unreadable")), 1);
    let pushed = target.repro(&a, None, &["push"]);
    assert!(pushed.ok && pushed.text.contains("1 replaced"), "{}", pushed.text);
    let c = Workspace::new("remote-replace-c", &config());
    let full = target.run(&c, None);
    assert_eq!((full.count("run"), full.count("fetched")), (0, SMALL_STAGES), "{}", full.text);

    let read_only = Workspace::new("remote-replace-d", &format!("{}read_only = true\n", config()));
    read_only.run(&[]);
    let refused = target.repro(&read_only, None, &["push"]);
    assert!(!refused.ok && refused.text.contains("read_only = true"), "{}", refused.text);
}

/// `repro challenge --remote`: a fresh workspace recomputes what the remote holds and finds it
/// identical, its own cache untouched; a record a trusted pusher signed over a doctored object (a
/// consistent record and object, which every check of a pull accepts) is named, with exit 1.
#[test]
fn a_challenge_of_the_remote_recomputes_its_stages_and_names_a_doctored_one() {
    let remote = Workspace::new("remote-challenge", "");
    let target = Target::directory("challenge", &remote.path("store"));
    let a = Workspace::new("remote-challenge-a", &config());
    target.run(&a, None);

    let b = Workspace::new("remote-challenge-b", &config());
    let out = target.repro(&b, None, &["challenge", "--remote", "--all"]);
    assert!(out.ok, "{}", out.text);
    assert!(
        out.text.contains(&format!("{SMALL_STAGES} of {SMALL_STAGES} recomputed stage(s) identical to the remote's")),
        "{}",
        out.text
    );
    let local = repro::engine::Store::open(&b.path("cache")).unwrap();
    assert!(local.records().is_empty(), "the challenge stores nothing in the local cache");

    // A pusher with the team's key publishes a training whose loss curve was altered.
    let doctored_remote = Workspace::new("remote-challenge-doctored", "");
    let doctored_target = Target::directory("challenge-doctored", &doctored_remote.path("store"));
    let record = common::doctor_a_loss_curve(&a.path("cache"));
    let pushed = doctored_target.repro(&a, None, &["push"]);
    assert!(pushed.ok, "{}", pushed.text);

    let c = Workspace::new("remote-challenge-c", &config());
    let out = doctored_target.repro(&c, None, &["challenge", "--remote", "sim_functions.train*"]);
    assert!(!out.ok, "{}", out.text);
    let line = out.text.lines().find(|l| l.starts_with("DIFFERS")).expect("a difference is named");
    assert!(line.contains(&record.stage) && line.contains("loss.csv: loss max |Δ|"), "{line}");
    assert_eq!(out.text.lines().filter(|l| l.starts_with("DIFFERS")).count(), 1, "{}", out.text);
}
