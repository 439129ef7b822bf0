//! The `repro` command line. Everything it does lives in the library (`repro::app`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use repro::app::{self, DagView, RunArgs, Workspace};

#[derive(Parser)]
#[command(name = "repro", version, about = "Re-runs the deep vs shallow / generalisation study as a cached pipeline")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Common {
    /// The pipeline configuration.
    #[arg(long, global = true, default_value = "pipeline.toml")]
    config: PathBuf,
    /// The content-addressed store.
    #[arg(long, global = true, default_value = "cache")]
    cache: PathBuf,
    /// Where figures, tables and the report are materialised.
    #[arg(long, global = true, default_value = "artifacts")]
    artifacts: PathBuf,
    /// Downloaded inputs (MNIST); files placed here by hand are used (after verification).
    #[arg(long, global = true, default_value = "data")]
    data: PathBuf,
    /// A profile from `[profiles.NAME]` in the configuration (e.g. `quick`).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Override a setting: `-s sim_functions.max_epochs=500`, `-s pipeline.backend=tch`.
    #[arg(short = 's', long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Bring stages up to date (all, or those matching the patterns and what they need).
    Run {
        /// Stage name patterns (`*` wildcard; without one, a prefix), e.g. `sim_functions.train*`.
        patterns: Vec<String>,
        /// Stages running at once (default: the number of cores).
        #[arg(short, long)]
        jobs: Option<usize>,
        /// Wait for another run holding the cache instead of exiting.
        #[arg(long)]
        wait: bool,
        /// Also list cached and fetched stages.
        #[arg(short, long)]
        verbose: bool,
        /// Fetch from the remote but never upload to it (pull-request CI, untrusted machines).
        #[arg(long)]
        remote_read_only: bool,
    },
    /// Upload the selected up-to-date stages' records and objects that the remote lacks.
    Push { patterns: Vec<String> },
    /// Make an ed25519 key pair for signing records pushed to a shared remote: NAME.secret (for
    /// pushers' REPRO_SIGNING_KEY) and NAME.public (for readers' [remote] trusted_keys).
    Keygen {
        /// The key's name, carried by every signature it makes (e.g. `ci-1`).
        name: String,
        /// Where the two files are written.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Fetch from the remote what the selected stages need (computing nothing), then materialise artifacts/.
    Pull {
        patterns: Vec<String>,
        /// Also list fetched and cached stages.
        #[arg(short, long)]
        verbose: bool,
    },
    /// List stale stages and why they would rerun.
    Status {
        patterns: Vec<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print the stage graph (text, or Graphviz with --dot); or which items of the source enter
    /// each stage kind's key (--code); or what an edit of each item and file would rerun (--impact).
    Dag {
        #[arg(long, group = "view")]
        dot: bool,
        /// Per stage kind: its run function's file and every item it reaches (its code key), by file.
        #[arg(long, group = "view")]
        code: bool,
        /// Per file and per item: the stage instances an edit makes stale, most first.
        #[arg(long, group = "view")]
        impact: bool,
    },
    /// Re-hash every object in the cache and check artifacts against the manifest.
    Verify,
    /// Remove objects no record refers to (--prune: also records not current for this config).
    Gc {
        #[arg(long)]
        prune: bool,
    },
    /// Recompute cached stages (all, or those matching the patterns) in a scratch store and compare
    /// every output byte for byte with the cache: per stage, identical or what differs (tables: the
    /// largest difference per column) and which machines computed each side. Exit 1 on a difference.
    /// The cache is only read.
    Challenge {
        patterns: Vec<String>,
        /// Recompute about N stages, at least one of every kind (default: every selected stage).
        #[arg(long, value_name = "N", conflicts_with = "all")]
        sample: Option<usize>,
        /// Recompute every selected stage (the default without --sample).
        #[arg(long)]
        all: bool,
        /// Challenge what the remote ([remote] or REPRO_REMOTE) holds for this configuration:
        /// its records and objects are fetched into a scratch store and checked as a pull checks
        /// them, then recomputed here. The local cache is not touched.
        #[arg(long)]
        remote: bool,
    },
    /// Submit the stale stages (all, or those matching the patterns and what they need) as Slurm jobs.
    Submit { patterns: Vec<String> },
    /// Run one stage instance (by name or key), as a cluster job does; exit at once if complete.
    RunStage {
        /// The stage's name (`sim_functions.train[function=f1,model=m1,seed=0]`) or key.
        stage: Option<String>,
        /// A file of stage names; runs line $SLURM_ARRAY_TASK_ID (0 outside an array).
        #[arg(long, conflicts_with = "stage")]
        list: Option<PathBuf>,
    },
    /// Open the report in headless Chromium: fail on broken images or script errors, save a screenshot.
    CheckReport {
        /// The page to check (default: artifacts/report.html).
        #[arg(long)]
        html: Option<PathBuf>,
        /// Where to save the screenshot of the top (default: artifacts/report-top.png).
        #[arg(long)]
        screenshot: Option<PathBuf>,
    },
    /// What changed between this configuration's results and another's: settings, every
    /// summary measurement (seeds as mean ± sd [min, max]), claims' verdicts (a flip first, and
    /// exit code 1). Reads the store only; names what is not there and how to compute it.
    Diff {
        /// `last` (the newest logged run of another configuration; the default), `git:REV`
        /// (the configuration file committed there), or another configuration file.
        #[arg(long, value_name = "REF")]
        against: Option<String>,
        /// Compare with this configuration file under these overrides instead (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        against_set: Vec<String>,
        /// Unchanged settings, measurements and claims too.
        #[arg(long)]
        all: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// One row per configuration the run log names whose results are in the store: its settings
    /// that differ between rows, claims confirmed, each experiment's headline measurement (mean
    /// over its runs), when it last ran.
    Runs {
        /// Every setting and measurement column, and configurations with nothing stored.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove artifacts/ (restored from the cache by the next run); --all also empties the cache.
    Clean {
        #[arg(long)]
        all: bool,
    },
}

fn main() -> ExitCode {
    repro::tune_allocator();
    let cli = Cli::parse();
    let ws = Workspace {
        config: cli.common.config,
        cache: cli.common.cache,
        artifacts: cli.common.artifacts,
        data: cli.common.data,
        profile: cli.common.profile,
        overrides: cli.common.set,
    };
    let result = match cli.command {
        Command::Run { patterns, jobs, wait, verbose, remote_read_only } => {
            app::run(&ws, &RunArgs { patterns, jobs, wait, verbose, remote_read_only })
        }
        Command::Push { patterns } => app::push(&ws, &patterns),
        Command::Keygen { name, dir } => app::keygen(&name, &dir),
        Command::Pull { patterns, verbose } => app::pull(&ws, &patterns, verbose),
        Command::Status { patterns, json } => app::status_cmd(&ws, &patterns, json).map(|_| 0),
        Command::Dag { dot, code, impact } => {
            let view = match (dot, code, impact) {
                (true, _, _) => DagView::Dot,
                (_, true, _) => DagView::Code,
                (_, _, true) => DagView::Impact,
                _ => DagView::Text,
            };
            app::dag(&ws, view).map(|_| 0)
        }
        Command::Verify => app::verify(&ws),
        Command::Challenge { patterns, sample, all: _, remote } => {
            app::challenge(&ws, &app::ChallengeArgs { patterns, sample, remote })
        }
        Command::Gc { prune } => app::gc(&ws, prune).map(|_| 0),
        Command::Submit { patterns } => app::submit(&ws, &patterns),
        Command::RunStage { stage, list } => app::run_stage(&ws, stage, list),
        Command::CheckReport { html, screenshot } => app::check_report(&ws, html, screenshot),
        Command::Diff { against, against_set, all, json } => app::Against::parse(against.as_deref(), against_set)
            .and_then(|against| app::diff_cmd(&ws, &app::DiffArgs { against, all, json })),
        Command::Runs { all, json } => app::runs_cmd(&ws, all, json),
        Command::Clean { all } => app::clean(&ws, all).map(|_| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
