//! The commands behind the CLI: load the configuration, build the graph, act on the cache.

mod challenge;
mod compare;
mod sharing;
mod workspace;

pub use challenge::{ChallengeArgs, challenge};
pub use compare::{Against, DiffArgs, diff_cmd, runs_cmd};

pub use sharing::{keygen, pull, push};
pub use workspace::{Plan, Workspace};

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::engine::key::first_files;
use crate::engine::lock::CacheLock;
use crate::engine::scheduler;
use crate::engine::status::{JobState, JobStatus};
use crate::engine::status::{StageStatus, StaleReason, render, status};
use crate::engine::{Graph, Store, fingerprint};
use crate::engine::{artifacts, checkpoint, cluster, run_log};
use crate::report::browser;

pub struct RunArgs {
    pub patterns: Vec<String>,
    pub jobs: Option<usize>,
    pub wait: bool,
    pub verbose: bool,
    /// Fetch from the remote, never upload (untrusted CI runs).
    pub remote_read_only: bool,
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// `repro run`: returns the process exit code (non-zero when a stage failed).
pub fn run(ws: &Workspace, args: &RunArgs) -> Result<i32> {
    let started = Instant::now();
    checkpoint::install_signal_handlers()?;
    warn_if_built_from_other_sources(ws);
    let plan = ws.plan()?;
    let selected = plan.graph.select(&args.patterns)?;
    let _lock = CacheLock::acquire(&ws.cache, args.wait)?;
    let store = Store::open(&ws.cache)?;
    store.clean_tmp()?;
    let cores = cores();
    let jobs = args.jobs.unwrap_or(cores);
    let mut opts = plan.run_options(ws, (jobs, jobs.max(cores)), selected.clone(), args.verbose);
    opts.remote = plan.remote()?;
    let summary = scheduler::run(&plan.graph, &store, &opts)?;
    // What is up to date here and did not come from the remote goes to it for the next machine:
    // what this run computed, and what an earlier run computed but could not upload (killed, or
    // the remote was down); the push asks before it sends. Unless the remote failed during this
    // run: it said so once, and `repro push` catches up later.
    let read_only = args.remote_read_only || plan.loaded.config.remote.read_only;
    let remote = opts.remote.as_deref().filter(|_| !read_only && !summary.remote_dropped);
    let remote = remote.filter(|remote| match remote.cannot_publish() {
        Some(why) => {
            eprintln!("note: nothing uploaded: {why}");
            false
        }
        None => true,
    });
    if let Some(remote) = remote {
        let fetched: HashSet<&usize> = summary.fetched.iter().collect();
        let ours: Vec<_> =
            summary.records.iter().filter(|(i, _)| !fetched.contains(i)).map(|(_, r)| r.clone()).collect();
        let report = remote.push(&store, &ours, &summary.remote_damaged);
        if report.published > 0 || !report.failed.is_empty() {
            sharing::report_push(remote, &report);
        }
    }
    let manifest = artifacts::materialise(&ws.artifacts, &store, &plan.graph, &selected, &summary.records)?;
    for (stage, error) in &summary.failed {
        eprintln!("error: {stage} failed: {error}");
    }
    if !summary.skipped.is_empty() {
        eprintln!("{} stage(s) skipped because an upstream stage failed", summary.skipped.len());
    }
    let outcome = summary.outcome();
    println!("{outcome}");
    log_run(ws, &plan, args, started, outcome);
    if manifest.artifacts.contains_key("report.html") {
        println!("report: {}", ws.artifacts.join("report.html").display());
        print_report_pdf(&ws.artifacts);
    }
    if args.verbose {
        eprintln!("finished in {:.2}s", started.elapsed().as_secs_f64());
    }
    Ok(exit_code(&summary))
}

/// Appends this run to the workspace's run log (`repro diff --against last`, `repro runs`); a log
/// that cannot be written costs a warning, never the run.
fn log_run(ws: &Workspace, plan: &Plan, args: &RunArgs, started: Instant, outcome: run_log::RunOutcome) {
    let entry = workspace::logged_config(&plan.loaded.config).map(|(config, config_hash)| run_log::RunEntry {
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() - started.elapsed().as_secs_f64()),
        seconds: started.elapsed().as_secs_f64(),
        config_hash,
        config,
        file: ws.config.display().to_string(),
        profile: ws.profile.clone(),
        overrides: ws.overrides.clone(),
        patterns: args.patterns.clone(),
        outcome: Some(outcome),
    });
    if let Err(e) = entry.and_then(|entry| run_log::append(&ws.cache, &entry)) {
        eprintln!("warning: the run log was not written: {e:#}");
    }
}

/// `artifacts/report.pdf`, printed from `report.html` by headless Chromium when the HTML is newer
/// (or the PDF missing); said plainly when Chromium is not there (or `REPRO_REPORT_PDF=off`). Not a stage output: Chromium's
/// PDF carries its own timestamps, so it is not the same bytes on every machine, and the report
/// itself is; the manifest does not list it.
fn print_report_pdf(artifacts: &std::path::Path) {
    let (html, pdf) = (artifacts.join("report.html"), artifacts.join("report.pdf"));
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&pdf).is_some_and(|at| Some(at) >= modified(&html)) {
        println!("report: {}", pdf.display());
        return;
    }
    if std::env::var("REPRO_REPORT_PDF").is_ok_and(|v| v == "off") {
        println!("report.pdf: not made (REPRO_REPORT_PDF=off)");
        return;
    }
    let Some(chromium) = browser::find_chromium() else {
        println!("report.pdf: not made: no Chromium on this machine (apt-get install chromium, or set REPRO_CHROMIUM)");
        return;
    };
    match browser::print_pdf(&chromium, &html, &pdf) {
        Ok(()) => println!("report: {}", pdf.display()),
        Err(e) => eprintln!("warning: report.pdf not made: {e:#}"),
    }
}

/// `repro status`: prints what is stale and why; exit code 0 either way.
pub fn status_cmd(ws: &Workspace, patterns: &[String], json: bool) -> Result<Vec<StageStatus>> {
    warn_if_built_from_other_sources(ws);
    let plan = ws.plan()?;
    let selected = plan.graph.select(patterns)?;
    let store = Store::open_existing(&ws.cache);
    let mut statuses = status(&plan.graph, store.as_ref(), &plan.env, &selected, plan.remote()?.as_deref());
    follow_jobs(ws, &plan, &mut statuses);
    if json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
    } else {
        let stale: Vec<&StageStatus> = statuses.iter().filter(|s| s.stale).collect();
        for s in &stale {
            println!("{}", s.stage);
            for reason in render(&s.reasons) {
                println!("    {reason}");
            }
            if s.checkpointed {
                println!("    a checkpoint of it is saved: the next run resumes it");
            }
        }
        let jobs: Vec<&JobState> = stale.iter().filter_map(|s| s.job.as_ref().map(|j| &j.state)).collect();
        let on_cluster = if jobs.is_empty() {
            String::new()
        } else {
            let count = |f: &dyn Fn(&JobState) -> bool| jobs.iter().filter(|s| f(s)).count();
            format!(
                " ({} on the cluster: {} running, {} pending, {} ended without a result)",
                jobs.len(),
                count(&|s| s.is("RUNNING")),
                count(&|s| s.is("PENDING")),
                count(&|s| *s == JobState::Ended)
            )
        };
        let fetchable = stale.iter().filter(|s| s.on_remote).count();
        let on_remote = if fetchable > 0 { format!(" ({fetchable} of them on the remote)") } else { String::new() };
        let resumable = stale.iter().filter(|s| s.checkpointed).count();
        let resumes = if resumable > 0 { format!(" ({resumable} checkpointed)") } else { String::new() };
        println!("{} stale{on_cluster}{on_remote}{resumes}, {} up to date", stale.len(), statuses.len() - stale.len());
    }
    Ok(statuses)
}

/// For stale stages with a submitted cluster job: the job, its queue state, and its log.
fn follow_jobs(ws: &Workspace, plan: &Plan, statuses: &mut [StageStatus]) {
    let jobs_dir = ws.cache.join("jobs");
    if !jobs_dir.is_dir() {
        return;
    }
    let mut queue = None;
    for s in statuses.iter_mut().filter(|s| s.stale) {
        let Some(job) = cluster::job_of(&jobs_dir, &s.stage) else { continue };
        let queue = queue.get_or_insert_with(|| cluster::queue_states(&plan.loaded.config.cluster.squeue));
        let state = JobState::of(&job.job, queue.as_ref());
        let reason = if state == JobState::Ended {
            StaleReason::ClusterJobEnded { job: job.job.clone(), log: job.log.clone() }
        } else {
            StaleReason::ClusterJob { job: job.job.clone(), state: state.to_string(), log: job.log.clone() }
        };
        s.reasons.insert(0, reason);
        s.job = Some(JobStatus { job: job.job, state, log: job.log });
    }
}

/// `repro submit`: the stale stages as Slurm jobs against this cache (see `engine::cluster`).
pub fn submit(ws: &Workspace, patterns: &[String]) -> Result<i32> {
    let plan = ws.plan()?;
    let selected = plan.graph.select(patterns)?;
    let store = Store::open(&ws.cache)?;
    let mut statuses = status(&plan.graph, Some(&store), &plan.env, &selected, None);
    follow_jobs(ws, &plan, &mut statuses);
    if let Some(busy) = statuses.iter().find(|s| s.job.as_ref().is_some_and(|j| j.state != JobState::Ended)) {
        let job = busy.job.as_ref().unwrap();
        bail!(
            "{} is already submitted (cluster job {}: {}); wait for it or cancel it (scancel) before submitting again",
            busy.stage,
            job.job,
            job.state
        );
    }
    let mut stale = vec![false; plan.graph.stages().len()];
    for s in statuses.iter().filter(|s| s.stale) {
        stale[plan.graph.find(&s.stage).expect("status names graph stages")] = true;
    }
    let groups = cluster::plan(&plan.graph, &stale);
    if groups.is_empty() {
        println!("nothing to submit: every selected stage is up to date");
        return Ok(0);
    }
    let cwd = std::env::current_dir()?;
    let absolute = |p: &std::path::Path| if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) };
    let mut command = vec![std::env::current_exe()?.display().to_string()];
    for (flag, path) in
        [("--config", &ws.config), ("--cache", &ws.cache), ("--artifacts", &ws.artifacts), ("--data", &ws.data)]
    {
        command.extend([flag.to_string(), absolute(path).display().to_string()]);
    }
    if let Some(p) = &ws.profile {
        command.extend(["--profile".to_string(), p.clone()]);
    }
    for o in &ws.overrides {
        command.extend(["-s".to_string(), o.clone()]);
    }
    let settings = &plan.loaded.config.cluster;
    let mut extra: Vec<String> = Vec::new();
    extra.extend(settings.partition.iter().map(|p| format!("--partition={p}")));
    extra.extend(settings.account.iter().map(|a| format!("--account={a}")));
    extra.extend(settings.sbatch_args.iter().cloned());
    let resources = |kind: &str| settings.resources_for(kind);
    let opts = cluster::SubmitOptions {
        sbatch: settings.sbatch.clone(),
        extra,
        warn_before_end_s: settings.warn_before_end_s,
        logs: absolute(std::path::Path::new(&settings.logs)),
        resources: &resources,
        command,
    };
    let records = cluster::submit(&plan.graph, &groups, &ws.cache.join("jobs"), &opts)?;
    let mut at = 0;
    for g in &groups {
        let first = &records[at];
        let job = first.job.split('_').next().unwrap_or(&first.job);
        let shape = if g.stages.len() > 1 { format!("array of {}", g.stages.len()) } else { first.stage.clone() };
        println!("job {job}: {} ({shape})", g.kind);
        at += g.stages.len();
    }
    println!(
        "submitted {} stage(s) as {} job(s); logs in {}. `repro status` follows them; once they are done, \
         `repro run` (all cached) materialises artifacts/.",
        records.len(),
        groups.len(),
        opts.logs.display()
    );
    Ok(0)
}

/// `repro run-stage`: one stage instance, as a cluster job runs it. Exits at once when its key is
/// already complete; fails when an upstream stage has no result yet.
pub fn run_stage(ws: &Workspace, target: Option<String>, list: Option<PathBuf>) -> Result<i32> {
    let target = match (target, list) {
        (Some(t), None) => t,
        (None, Some(list)) => cluster::stage_from_list(&list)?,
        _ => bail!("give one stage (its name or key) or --list FILE"),
    };
    checkpoint::install_signal_handlers()?;
    let plan = ws.plan()?;
    let _shared = CacheLock::shared(&ws.cache)?;
    let store = Store::open(&ws.cache)?;
    let everything = vec![true; plan.graph.stages().len()];
    let index = match plan.graph.find(&target) {
        Some(i) => i,
        None => status(&plan.graph, Some(&store), &plan.env, &everything, None)
            .iter()
            .find(|s| s.key.as_deref() == Some(target.as_str()))
            .and_then(|s| plan.graph.find(&s.stage))
            .with_context(|| format!("no stage is named `{target}` or has that key now (see `repro status --json`)"))?,
    };
    let stage = plan.graph.stage(index).id.clone();
    let selected = plan.graph.with_upstream(index);
    let statuses = status(&plan.graph, Some(&store), &plan.env, &selected, None);
    if let Some(up) = statuses.iter().find(|s| s.stale && s.stage != stage) {
        bail!("{stage} cannot run yet: upstream {} has no result ({})", up.stage, render(&up.reasons).join("; "));
    }
    if statuses.iter().any(|s| s.stage == stage && !s.stale) {
        println!("{stage}: already complete");
        return Ok(0);
    }
    let cores = std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|v| v.parse().ok()).unwrap_or_else(cores);
    let opts = plan.run_options(ws, (1, cores), selected, false);
    let summary = scheduler::run(&plan.graph, &store, &opts)?;
    for (stage, error) in &summary.failed {
        eprintln!("error: {stage} failed: {error}");
    }
    println!("{}", summary.outcome());
    // Warned of its time limit, the job puts itself back in the queue (a preemption or a requeue
    // by hand is the scheduler's to requeue); the job that comes back resumes the checkpoint.
    if checkpoint::stopped_before_time_limit()
        && let Ok(job) = std::env::var("SLURM_JOB_ID")
    {
        let scontrol = &plan.loaded.config.cluster.scontrol;
        match std::process::Command::new(scontrol).args(["requeue", &job]).status() {
            Ok(status) if status.success() => println!("job {job} requeued to resume its checkpoint"),
            Ok(status) => eprintln!("warning: `{scontrol} requeue {job}` failed ({status})"),
            Err(e) => eprintln!("warning: cannot run `{scontrol} requeue {job}`: {e}"),
        }
    }
    Ok(exit_code(&summary))
}

/// 0 when every selected stage is up to date; 1 when one failed; 143 (as a process ended by
/// SIGTERM) when a signal stopped the run after its stages saved their work.
fn exit_code(summary: &scheduler::RunSummary) -> i32 {
    if !summary.failed.is_empty() {
        1
    } else if !summary.stopped.is_empty() || checkpoint::interrupted() {
        143
    } else {
        0
    }
}

/// What `repro dag` prints.
pub enum DagView {
    Text,
    Dot,
    /// Per stage kind, the files in its key.
    Code,
    /// Per source file, the stage instances an edit of it makes stale.
    Impact,
}

pub fn dag(ws: &Workspace, view: DagView) -> Result<()> {
    let plan = ws.plan()?;
    let text = match view {
        DagView::Code => code_listing(&plan.graph),
        DagView::Impact => edit_impact(&plan.graph),
        DagView::Dot => plan.graph.to_dot(),
        DagView::Text => text_listing(&plan),
    };
    // A reader that stops early (`| head`) is not an error.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    Ok(())
}

/// One line per stage in execution order; numeric stages say where they would compute, and the
/// work per step that decided it.
fn text_listing(plan: &Plan) -> String {
    plan.graph.to_text_annotated(|stage| {
        stage.kind.numeric.then(|| {
            let env = stage.placed(&plan.env);
            let work = stage.work.map(|w| format!(", {} MACs/step", human_count(w))).unwrap_or_default();
            format!("{} on {}{work}", env.backend, env.device)
        })
    })
}

/// What an edit reruns, per item and per file: how many stage instances of this configuration it
/// makes stale directly (their own keys change; what reads their outputs reruns only if those
/// change), and of which kinds; the most far-reaching first. A file's line gives its most
/// far-reaching item and its median item.
fn edit_impact(graph: &Graph) -> String {
    use std::collections::BTreeMap;
    let mut instances: BTreeMap<&str, usize> = BTreeMap::new();
    for stage in graph.stages() {
        *instances.entry(stage.kind.name).or_default() += 1;
    }
    let mut by_item: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for &kind in instances.keys() {
        for (item, file) in fingerprint::items_of(kind).unwrap_or_default() {
            by_item.entry((file, item)).or_default().push(kind);
        }
    }
    let count = |kinds: &Vec<&str>| kinds.iter().map(|k| instances[k]).sum::<usize>();
    let mut by_file: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for ((file, _), kinds) in &by_item {
        by_file.entry(file).or_default().push(count(kinds));
    }
    let mut files: Vec<(usize, usize, &str, usize)> = by_file
        .iter_mut()
        .map(|(file, counts)| {
            counts.sort_unstable();
            (counts[counts.len() - 1], counts[counts.len() / 2], *file, counts.len())
        })
        .collect();
    files.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    let mut out =
        String::from("By file: stage instances an edit reruns (its most far-reaching item, its median item)\n");
    for (max, median, file, items) in files {
        out.push_str(&format!("{max:5} {median:5}  {file}  ({items} items reached)\n"));
    }
    let mut items: Vec<(usize, &str, &Vec<&str>)> =
        by_item.iter().map(|((_, item), kinds)| (count(kinds), *item, kinds)).collect();
    items.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    out.push_str("\nBy item: stage instances an edit inside it reruns, and their kinds\n");
    for (count, item, kinds) in items {
        out.push_str(&format!("{count:5}  {item}  ({})\n", kinds.join(", ")));
    }
    out
}

/// Per stage kind of the graph: the file of its run function and every item that enters its key,
/// grouped by file (derived by build.rs from the code: see `engine/code_graph.rs`).
fn code_listing(graph: &Graph) -> String {
    let mut out = String::new();
    let mut seen = HashSet::new();
    for &i in graph.order() {
        let kind = graph.stage(i).kind.name;
        if !seen.insert(kind) {
            continue;
        }
        let run_file = fingerprint::run_file(kind).unwrap_or("(not declared under src/)");
        let items = fingerprint::items_of(kind).unwrap_or_default();
        let files = fingerprint::files_of(kind).unwrap_or_default();
        out.push_str(&format!(
            "{kind}  (runs {run_file}; {} items in {} files + {})\n",
            items.len(),
            files.len(),
            fingerprint::DEPENDENCIES_ENTRY
        ));
        for file in files {
            out.push_str(&format!("    {file}\n"));
            for (item, _) in items.iter().filter(|(_, f)| *f == file) {
                out.push_str(&format!("        {item}\n"));
            }
        }
    }
    out
}

/// Warns (on stderr) when the sources beside the configuration are not the ones this binary was
/// built from: its keys then describe other code than what the user reads and edits.
fn warn_if_built_from_other_sources(ws: &Workspace) {
    let root = ws.config.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if let Some(drift) = fingerprint::drift(root).filter(|d| !d.is_empty()) {
        eprintln!(
            "warning: this binary was built from older sources ({}): its keys describe that code; run `make build`",
            first_files(&drift)
        );
    }
}

/// 1234 -> "1.2 k", 5_000_000 -> "5.0 M".
fn human_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1} k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} M", n as f64 / 1e6),
        _ => format!("{:.1} G", n as f64 / 1e9),
    }
}

/// `repro verify`: re-hashes the store; exit code 1 when something is damaged.
pub fn verify(ws: &Workspace) -> Result<i32> {
    let Some(store) = Store::open_existing(&ws.cache) else {
        println!("no cache at {}", ws.cache.display());
        return Ok(0);
    };
    let (checked, problems) = store.verify()?;
    for p in &problems {
        println!("damaged: {}: {}", p.path.display(), p.fault);
    }
    let artifact_problems =
        if ws.artifacts.join(artifacts::MANIFEST).exists() { artifacts::check(&ws.artifacts)? } else { Vec::new() };
    for p in &artifact_problems {
        println!("artifact: {p}");
    }
    println!(
        "{checked} objects checked, {} problem(s) in the store, {} in artifacts",
        problems.len(),
        artifact_problems.len()
    );
    if !problems.is_empty() {
        println!("the stages that own damaged objects rerun on the next `repro run`");
    }
    Ok(if problems.is_empty() && artifact_problems.is_empty() { 0 } else { 1 })
}

/// `repro gc`: removes objects no record uses; with `prune`, first drops the records that are
/// not current for this configuration (other profiles' results go too).
pub fn gc(ws: &Workspace, prune: bool) -> Result<()> {
    let plan = ws.plan()?;
    let _lock = CacheLock::acquire(&ws.cache, false)?;
    let store = Store::open(&ws.cache)?;
    let all = vec![true; plan.graph.stages().len()];
    let (fresh, stale): (Vec<_>, Vec<_>) =
        status(&plan.graph, Some(&store), &plan.env, &all, None).into_iter().partition(|s| !s.stale);
    let keep: HashSet<String> = fresh.into_iter().filter_map(|s| s.key).collect();
    let (records, objects, bytes) = store.gc(&keep, prune)?;
    let scratch = store.clean_stale_tmp(std::time::Duration::from_secs(86_400))?;
    // A checkpoint is worth keeping while the stage it belongs to is still to be computed.
    let resumable: HashSet<String> = stale.into_iter().filter_map(|s| s.key).collect();
    let (checkpoints, checkpoint_bytes) = checkpoint::remove_orphans(&ws.cache, &resumable)?;
    println!(
        "removed {records} record(s), {objects} object(s), {checkpoints} orphaned checkpoint(s) and {scratch} \
         day-old scratch dir(s), {:.1} MB freed",
        (bytes + checkpoint_bytes) as f64 / 1e6
    );
    Ok(())
}

/// `repro clean`: removes `artifacts/` (restored by the next run from the cache); with `all`, the
/// cache too.
pub fn clean(ws: &Workspace, all: bool) -> Result<()> {
    let _lock = CacheLock::acquire(&ws.cache, false)?;
    if ws.artifacts.exists() {
        std::fs::remove_dir_all(&ws.artifacts).with_context(|| format!("cannot remove {}", ws.artifacts.display()))?;
    }
    if all {
        for sub in ["objects", "records", "last", "tmp"] {
            let dir = ws.cache.join(sub);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
        }
    }
    Ok(())
}

/// `repro check-report`: the report in headless Chromium at each of [`browser::WINDOW_WIDTHS`]
/// (exit 1 on a broken image, a script error or a page wider than the window), plus a screenshot
/// of its top.
pub fn check_report(ws: &Workspace, html: Option<PathBuf>, screenshot: Option<PathBuf>) -> Result<i32> {
    let html = html.unwrap_or_else(|| ws.artifacts.join("report.html"));
    let screenshot = screenshot.unwrap_or_else(|| ws.artifacts.join(SCREENSHOT));
    let chromium = browser::find_chromium().context(
        "Chromium not found: install it (Debian: `apt-get install chromium`) or point REPRO_CHROMIUM at the binary",
    )?;
    let mut ok = true;
    for width in browser::WINDOW_WIDTHS {
        let page = browser::check(&chromium, &html, width)?;
        ok &= page.ok();
        if page.broken.is_empty() && page.errors.is_empty() {
            println!("{} at {width} px: {} images, all decoded; no script errors", html.display(), page.images);
        } else {
            println!(
                "{} at {width} px: {} images, {} broken; {} errors",
                html.display(),
                page.images,
                page.broken.len(),
                page.errors.len()
            );
        }
        for image in &page.broken {
            println!("  broken image: {image}");
        }
        for error in &page.errors {
            println!("  {error}");
        }
        if page.scrolls_sideways() {
            println!(
                "  scrolls sideways: the document is {} px wide in a {} px window; reaching past the edge:",
                page.document_width, page.window_width
            );
            for element in &page.too_wide {
                println!("    {element}");
            }
        } else {
            println!("  fits the window: {} px wide", page.document_width);
        }
    }
    browser::screenshot(&chromium, &html, &screenshot, (1280, 1600))?;
    println!("screenshot of the top: {}", screenshot.display());
    let pdf = html.with_extension("pdf");
    if pdf.is_file() {
        match browser::check_pdf(&pdf) {
            Ok(check) => {
                ok &= check.ok();
                println!(
                    "{}: {} pages, {} images, {}",
                    pdf.display(),
                    check.pages,
                    check.images,
                    if check.blank.is_empty() {
                        "no blank page".to_string()
                    } else {
                        format!("blank pages {:?}", check.blank)
                    }
                );
            }
            Err(e) => println!("{}: not checked: {e:#}", pdf.display()),
        }
    }
    Ok(if ok { 0 } else { 1 })
}

/// Where `repro check-report` saves its screenshot, under `artifacts/` (not a stage output, so
/// not in the manifest).
pub const SCREENSHOT: &str = "report-top.png";
