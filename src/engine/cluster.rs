//! Stage instances as batch jobs on a cluster scheduler (Slurm), against a cache on a shared
//! filesystem. `submit` turns the stale stages into `sbatch` jobs, each running
//! `repro run-stage` for one stage; instances of one kind that wait on the same jobs go in one job
//! array, and DAG edges become `--dependency=afterok`. The store needs nothing more: objects and
//! records are written through unique temporaries and atomic renames, so many writers on many
//! nodes are safe, and a job whose key is already complete exits at once.
//!
//! What was submitted is kept in `cache/jobs/`, per stage, for `repro status`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::graph::Graph;
use super::{atomic, hash_bytes};

/// What one job asks the scheduler for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cpus: u32,
    /// Slurm memory syntax: `2G`, `500M`.
    pub mem: String,
    /// Slurm time syntax: `01:00:00`, `30`.
    pub time: String,
    pub gpus: u32,
}

pub struct SubmitOptions<'a> {
    /// The `sbatch` program.
    pub sbatch: String,
    /// Extra `sbatch` arguments (partition, account, ...).
    pub extra: Vec<String>,
    /// Seconds before its time limit a job is warned (SIGUSR1) to checkpoint and requeue itself.
    pub warn_before_end_s: u32,
    /// Where job logs go (absolute: jobs start elsewhere).
    pub logs: PathBuf,
    /// Resources per stage kind.
    pub resources: &'a dyn Fn(&str) -> Resources,
    /// The command that precedes `run-stage` in a job: the binary and its global options.
    pub command: Vec<String>,
}

/// One stage's job, as submitted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobRecord {
    pub stage: String,
    /// `123`, or `123_4` for task 4 of array job 123.
    pub job: String,
    pub log: PathBuf,
    /// Seconds since the Unix epoch.
    pub submitted: f64,
}

/// Stale stages of one kind that wait on the same jobs: one job, or one job array.
#[derive(Debug, PartialEq)]
pub struct Group {
    pub kind: &'static str,
    pub stages: Vec<usize>,
    /// Indices of the groups this one waits on.
    pub after: BTreeSet<usize>,
}

/// Groups the `stale` stages in dependency order.
pub fn plan(graph: &Graph, stale: &[bool]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: BTreeMap<usize, usize> = BTreeMap::new();
    for &i in graph.order() {
        if !stale[i] {
            continue;
        }
        let after: BTreeSet<usize> = graph.deps(i).iter().filter_map(|j| group_of.get(j).copied()).collect();
        let kind = graph.stage(i).kind.name;
        let g = match groups.iter().position(|g| g.kind == kind && g.after == after) {
            Some(g) => g,
            None => {
                groups.push(Group { kind, stages: Vec::new(), after });
                groups.len() - 1
            }
        };
        groups[g].stages.push(i);
        group_of.insert(i, g);
    }
    groups
}

/// Submits `groups` in order; returns one record per stage.
pub fn submit(graph: &Graph, groups: &[Group], jobs_dir: &Path, opts: &SubmitOptions) -> Result<Vec<JobRecord>> {
    std::fs::create_dir_all(jobs_dir)?;
    std::fs::create_dir_all(&opts.logs).with_context(|| format!("cannot create {}", opts.logs.display()))?;
    let mut job_ids: Vec<String> = Vec::new();
    let mut records = Vec::new();
    for group in groups {
        let ids: Vec<&str> = group.stages.iter().map(|&i| graph.stage(i).id.as_str()).collect();
        let name = format!("{}-{}", group.kind, &hash_bytes(ids.join("\n").as_bytes())[..12]);
        let script = write_job_script(jobs_dir, &name, &ids, opts)?;
        let array = ids.len() > 1;
        let log_pattern = opts.logs.join(if array { format!("{name}-%A_%a.log") } else { format!("{name}-%j.log") });
        let after: Vec<&str> = group.after.iter().map(|&g| job_ids[g].as_str()).collect();
        let mut cmd = sbatch(group.kind, ids.len(), &log_pattern, &after, opts);
        cmd.arg(&script);
        let out = cmd.output().with_context(|| format!("cannot run `{}` (is Slurm installed?)", opts.sbatch))?;
        if !out.status.success() {
            bail!(
                "sbatch refused the {} job(s) of {}: {}",
                ids.len(),
                group.kind,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let job = String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap_or_default().to_string();
        if job.is_empty() {
            bail!("sbatch printed no job id for {}", group.kind);
        }
        let submitted =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        for (k, id) in ids.iter().enumerate() {
            let log = log_pattern.display().to_string();
            let (task, log) = if array {
                (format!("{job}_{k}"), log.replace("%A", &job).replace("%a", &k.to_string()))
            } else {
                (job.clone(), log.replace("%j", &job))
            };
            let record = JobRecord { stage: id.to_string(), job: task, log: PathBuf::from(log), submitted };
            atomic::write(&record_path(jobs_dir, id), &serde_json::to_vec_pretty(&record)?)?;
            records.push(record);
        }
        job_ids.push(job);
    }
    Ok(records)
}

/// The job's stage list and the script that runs line `$SLURM_ARRAY_TASK_ID` of it.
fn write_job_script(jobs_dir: &Path, name: &str, ids: &[&str], opts: &SubmitOptions) -> Result<PathBuf> {
    let list = jobs_dir.join(format!("{name}.stages"));
    atomic::write(&list, format!("{}\n", ids.join("\n")).as_bytes())?;
    let script = jobs_dir.join(format!("{name}.sh"));
    let mut command = opts.command.clone();
    command.extend(["run-stage".to_string(), "--list".to_string(), list.display().to_string()]);
    let body = format!("#!/bin/sh\nexec {}\n", shell_words(&command)?);
    atomic::write(&script, body.as_bytes())?;
    Ok(script)
}

/// `sbatch` for `stages` stages of `kind` (an array of them where more than one), after the jobs
/// `after`, with the kind's resources; the script is the last argument, added by the caller.
fn sbatch(kind: &str, stages: usize, log_pattern: &Path, after: &[&str], opts: &SubmitOptions) -> Command {
    let r = (opts.resources)(kind);
    let mut cmd = Command::new(&opts.sbatch);
    cmd.arg("--parsable")
        .arg(format!("--job-name=repro:{kind}"))
        .arg(format!("--output={}", log_pattern.display()))
        .arg(format!("--cpus-per-task={}", r.cpus))
        .arg(format!("--mem={}", r.mem))
        .arg(format!("--time={}", r.time))
        // Preempted, requeued by hand or warned of its time limit, a job checkpoints its
        // stage and is requeued; the job that comes back resumes from the checkpoint.
        .arg("--requeue")
        .arg(format!("--signal=B:USR1@{}", opts.warn_before_end_s));
    if r.gpus > 0 {
        cmd.arg(format!("--gres=gpu:{}", r.gpus));
    }
    if stages > 1 {
        cmd.arg(format!("--array=0-{}", stages - 1));
    }
    if !after.is_empty() {
        cmd.arg(format!("--dependency=afterok:{}", after.join(":")));
        // A failed upstream job can never satisfy the dependency: do not leave this one pending.
        cmd.arg("--kill-on-invalid-dep=yes");
    }
    cmd.args(&opts.extra);
    cmd
}

fn record_path(jobs_dir: &Path, stage: &str) -> PathBuf {
    jobs_dir.join(format!("{}.json", hash_bytes(stage.as_bytes())))
}

/// The job last submitted for `stage`, if any.
pub fn job_of(jobs_dir: &Path, stage: &str) -> Option<JobRecord> {
    serde_json::from_slice(&std::fs::read(record_path(jobs_dir, stage)).ok()?).ok()
}

/// The stage a job runs: line `$SLURM_ARRAY_TASK_ID` (0 outside an array) of `list`.
pub fn stage_from_list(list: &Path) -> Result<String> {
    let text = std::fs::read_to_string(list)
        .with_context(|| format!("cannot read the job's stage list {}", list.display()))?;
    let index: usize = match std::env::var("SLURM_ARRAY_TASK_ID") {
        Ok(v) => v.parse().with_context(|| format!("SLURM_ARRAY_TASK_ID is `{v}`"))?,
        Err(_) => 0,
    };
    text.lines()
        .nth(index)
        .map(str::to_string)
        .with_context(|| format!("{} has no stage number {index}", list.display()))
}

/// Queue states of jobs (`PENDING`, `RUNNING`, ...) by job id (`123` or `123_4`), from `squeue`.
/// Jobs that are no longer queued are absent. `None` when `squeue` cannot be asked.
pub fn queue_states(squeue: &str) -> Option<BTreeMap<String, String>> {
    let out = Command::new(squeue).args(["-h", "-r", "-o", "%i %T"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(id, state)| (id.trim().to_string(), state.trim().to_string())))
            .collect(),
    )
}

/// `words` as one POSIX shell command line, each quoted where it needs it.
fn shell_words(words: &[String]) -> Result<String> {
    shlex::try_join(words.iter().map(String::as_str))
        .map_err(|e| anyhow!("cannot quote the job command {words:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::graph::{Stage, StageContext, StageKind};

    fn noop(_: &StageContext) -> Result<()> {
        Ok(())
    }
    static TRAIN: StageKind = StageKind::plain("train", noop);
    static ANALYZE: StageKind = StageKind::plain("analyze", noop);

    #[test]
    fn sweeps_become_arrays_and_edges_dependencies() {
        let data = Stage::new(&TRAIN, &[("n", "data".into())], &());
        let runs: Vec<Stage> =
            (0..4).map(|s| Stage::new(&TRAIN, &[("seed", s.to_string())], &()).input("d", &data, "out")).collect();
        let mut analyze = Stage::new(&ANALYZE, &[], &());
        for r in &runs {
            analyze = analyze.input(r.id.clone(), r, "out");
        }
        let mut stages = vec![data, analyze];
        stages.extend(runs);
        let graph = Graph::new(stages).unwrap();
        // The data stage is complete: the four runs wait on nothing and go in one array.
        let mut stale = vec![true; graph.stages().len()];
        stale[graph.find("train[n=data]").unwrap()] = false;
        let groups = plan(&graph, &stale);
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].kind, groups[0].stages.len(), groups[0].after.len()), ("train", 4, 0));
        assert_eq!((groups[1].kind, groups[1].stages.len()), ("analyze", 1));
        assert_eq!(groups[1].after, BTreeSet::from([0]));
        // All stale: the data stage is its own job, the runs an array after it.
        let groups = plan(&graph, &vec![true; graph.stages().len()]);
        let shape: Vec<(&str, usize, Vec<usize>)> =
            groups.iter().map(|g| (g.kind, g.stages.len(), g.after.iter().copied().collect())).collect();
        assert_eq!(shape, vec![("train", 1, vec![]), ("train", 4, vec![0]), ("analyze", 1, vec![1])]);
    }

    #[test]
    fn a_job_command_reads_back_word_for_word() {
        let words: Vec<String> =
            ["repro", "--config", "my dir/it's.toml", "run-stage", "sim_functions.train[seed=0]", "$HOME"]
                .map(String::from)
                .to_vec();
        let line = shell_words(&words).unwrap();
        assert_eq!(shlex::split(&line), Some(words));
    }
}
