//! The claims table: every claim the original report makes (spec §13), checked by code against our
//! tables. Each check is a plain function of tables, so that it can be tested on made-up ones; the
//! thresholds it uses are stated in its `check` text, which the report prints.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use crate::analysis::format_float as num;
use crate::analysis::format_setting;
use crate::analysis::stats::{mean, mean_interval, sample_sd, sign_test_p, spearman, values_to_exclude_zero};
use crate::analysis::{Cell, Table};
use crate::config::Config;
use crate::report::{Section, Tone, Toned};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Confirmed,
    NotConfirmed,
    /// The claim says nothing a measurement could settle.
    NotTestable,
    /// Testable, but this run's configuration does not measure it (experiment off, budget too small).
    NotMeasured,
    /// Measured, but the seeds do not settle it: they disagree, or too few ran (see [`Seeds`]).
    Inconclusive,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::NotConfirmed => "not confirmed",
            Verdict::NotTestable => "not testable as stated",
            Verdict::NotMeasured => "not measured in this run",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// The colour of its cell in the report: inconclusive has none.
    pub fn tone(self) -> Option<Tone> {
        match self {
            Verdict::Confirmed => Some(Tone::Good),
            Verdict::NotConfirmed => Some(Tone::Bad),
            Verdict::NotTestable | Verdict::NotMeasured => Some(Tone::Muted),
            Verdict::Inconclusive => None,
        }
    }

    fn from(holds: bool) -> Verdict {
        if holds { Verdict::Confirmed } else { Verdict::NotConfirmed }
    }
}

/// A claim of the original (text from spec §13), how we check it, how the check combines seeds,
/// and the check itself: each claim carries its own evaluation, so the table can never pair a
/// claim with another's finding.
pub struct Spec {
    pub id: &'static str,
    pub experiment: &'static str,
    pub claim: &'static str,
    pub check: &'static str,
    /// What the margin measures, in which units (empty where the check has none).
    pub margin: &'static str,
    pub seeds: Seeds,
    pub evaluate: fn(&Evidence) -> Result<Finding>,
}

/// The level of the tests that turn seeds into verdicts: 95 % intervals, 5 % sign tests.
pub const LEVEL: f64 = 0.05;

/// How a claim's check treats repeated runs (seeds); the claims table states it beside the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeds {
    /// Checked on each seed's runs alone, then combined by [`by_seed`] ([`per_seed_rule`] states how).
    PerSeed,
    /// Nothing to combine (the claim is not testable).
    Unused,
}

impl Seeds {
    pub fn text(self) -> String {
        match self {
            Seeds::PerSeed => "Seeds: each seed checked alone, combined by the rule above.".to_string(),
            Seeds::Unused => String::new(),
        }
    }
}

/// How [`by_seed`] decides, as the claims section states it.
pub fn per_seed_rule() -> String {
    format!(
        "A claim checked seed by seed is a hypothesis the seeds must establish. Where its check gives a margin (how \
         far each seed's data lie past the check's threshold, above 0 where the claim holds, in the units the claim \
         names), it is confirmed when the 95 % Student-t interval of the seeds' mean margin lies above 0, and not \
         confirmed otherwise, with the reason: the seeds contradict it (the interval lies below 0) or do not establish \
         it (the interval contains 0; the seeds table says about how many seeds would tell at that spread). Where the \
         check gives no margin, the exact two-sided sign test at the {:.0} % level on how many seeds hold decides: \
         confirmed when significantly more than half hold, not confirmed otherwise. Inconclusive means too few seeds \
         ran for the rule to decide at all (one seed for the interval, fewer than 6 for the sign test). A verdict \
         has one boundary, the claim established or not, so seeds or rounding that move a margin within its \
         interval move the reason at most, not the verdict. Each experiment's seed count is chosen from its measured \
         seed-to-seed spread (pipeline.toml says how; the seeds table checks it on this run).",
        100.0 * LEVEL
    )
}

/// The least seeds the sign test can decide on: unanimous seeds give p = 2^(1−n), below [`LEVEL`]
/// from 6 on.
pub fn sign_test_seeds() -> usize {
    (1..=64).find(|&n| sign_test_p(n, n) < LEVEL).expect("a level above 2^-63")
}

/// The verdict of seeds whose margins are `margins` (the interval rule of [`per_seed_rule`]).
pub fn by_interval(margins: &[f64]) -> Verdict {
    match mean_interval(margins) {
        None => Verdict::Inconclusive,
        Some((_, lo, _)) => Verdict::from(lo > 0.0),
    }
}

/// The verdict of `held` seeds for and `failed` against, where the check gives no margin (the sign
/// test of [`per_seed_rule`]).
pub fn by_sign_test(held: usize, failed: usize) -> Verdict {
    if held + failed < sign_test_seeds() {
        Verdict::Inconclusive
    } else {
        Verdict::from(held > failed && sign_test_p(held, held + failed) < LEVEL)
    }
}

/// `check` on each seed's rows of `summary` alone, combined by [`per_seed_rule`]: by the interval
/// of the seeds' margins where the check gives one, else by the sign test. The measurement says how
/// many held, the margin and its interval, and what all seeds together show.
pub fn by_seed(summary: &Table, check: impl Fn(&Table) -> Result<Finding>) -> Result<Finding> {
    let pooled = check(summary)?;
    if matches!(pooled.verdict, Verdict::NotMeasured | Verdict::NotTestable) {
        return Ok(pooled);
    }
    let mut seeds: Vec<String> =
        if summary.column_names().iter().any(|c| c == "seed") { summary.strings("seed")? } else { vec![String::new()] };
    seeds.sort_by_key(|s| s.parse::<u64>().unwrap_or(u64::MAX));
    seeds.dedup();
    let mut outcomes = Vec::new();
    for seed in &seeds {
        let rows = if seed.is_empty() { summary.clone() } else { summary.filter_eq("seed", seed)? };
        let found = check(&rows)?;
        outcomes.push(SeedOutcome { seed: seed.clone(), verdict: found.verdict, margin: found.margin });
    }
    let decided: Vec<&SeedOutcome> = outcomes.iter().filter(|o| o.decided()).collect();
    let held: Vec<&str> = decided.iter().filter(|o| o.verdict == Verdict::Confirmed).map(|o| o.seed.as_str()).collect();
    let n = decided.len();
    let mut text = format!("holds for {} of {n} seed{}", held.len(), if n == 1 { "" } else { "s" });
    // Name the minority: the seeds that hold, or those that fail when most hold.
    if !held.is_empty() && 2 * held.len() <= n {
        text.push_str(&format!(" (seeds {})", held.join(", ")));
    } else if held.len() < n {
        let failed: Vec<&str> =
            decided.iter().filter(|o| o.verdict != Verdict::Confirmed).map(|o| o.seed.as_str()).collect();
        text.push_str(&format!(" (fails on seed{} {})", if failed.len() == 1 { "" } else { "s" }, failed.join(", ")));
    }
    let margins: Option<Vec<f64>> = decided.iter().map(|o| o.margin).collect();
    let (verdict, margin, interval) = match margins.as_deref() {
        Some([]) => (Verdict::Inconclusive, None, None),
        None => {
            let p = sign_test_p(held.len(), n);
            text.push_str(&format!("; sign test p = {}", num(p)));
            (by_sign_test(held.len(), n - held.len()), None, None)
        }
        Some(margins) => match mean_interval(margins) {
            Some((m, lo, hi)) => {
                text.push_str(&format!("; margin {} [{}, {}]", num(m), num(lo), num(hi)));
                if hi < 0.0 {
                    text.push_str(" (the seeds contradict it)");
                } else if lo <= 0.0 {
                    text.push_str(&match values_to_exclude_zero(m, sample_sd(margins)) {
                        Some(k) => format!(
                            " (the seeds do not establish it: at this spread about {k} seeds would bound it away from 0)"
                        ),
                        None => " (the seeds do not establish it: at this spread no number of seeds bounds it away from \
                                 0)"
                            .to_string(),
                    });
                }
                (by_interval(margins), Some(m), Some((lo, hi)))
            }
            None => {
                text.push_str(&format!("; margin {}, one seed: the seed-to-seed spread is unknown", num(margins[0])));
                (Verdict::Inconclusive, Some(margins[0]), None)
            }
        },
    };
    let text = format!("{text}; all seeds together: {}", pooled.measurement);
    Ok(Finding { verdict, measurement: text, margin, seeds: outcomes, interval })
}

/// What a claim is checked against: this run's tables and settings.
pub struct Evidence<'a> {
    table: &'a TableOf<'a>,
    config: &'a Config,
}

impl Evidence<'_> {
    /// Table `name` of experiment `id`, or `None` when the experiment is not configured.
    fn table(&self, id: &str, name: &str) -> Result<Option<Table>> {
        (self.table)(id, name)
    }
}

/// `check` applied to `table`, or *not measured* when the experiment did not run.
fn measured(table: Option<Table>, check: impl FnOnce(&Table) -> Result<Finding>) -> Result<Finding> {
    match table {
        Some(t) => check(&t),
        None => Ok(not_configured()),
    }
}

fn not_configured() -> Finding {
    finding(Verdict::NotMeasured, "experiment not in this configuration")
}

/// What our tables say about a claim.
#[derive(Debug, Clone)]
pub struct Finding {
    pub verdict: Verdict,
    pub measurement: String,
    /// How far the data lie past the check's threshold, in the units its spec's `margin` names:
    /// above 0 where the claim holds. For a claim checked seed by seed, the seeds' mean.
    pub margin: Option<f64>,
    /// Claims checked seed by seed: each seed's outcome.
    pub seeds: Vec<SeedOutcome>,
    /// Claims checked seed by seed: the 95 % Student-t interval of the mean margin (low, high).
    pub interval: Option<(f64, f64)>,
}

impl Finding {
    /// How many seeds the rule of [`per_seed_rule`] needs to settle this claim at the spread this
    /// run measured: by the interval where the seeds have margins (`None` when the mean margin is
    /// 0 or too close to it for 1000 seeds), by the sign test (unanimous seeds) where they have none.
    pub fn seeds_needed(&self) -> Option<usize> {
        let decided: Vec<&SeedOutcome> = self.seeds.iter().filter(|o| o.decided()).collect();
        if decided.is_empty() {
            return None;
        }
        match decided.iter().map(|o| o.margin).collect::<Option<Vec<f64>>>() {
            Some(m) if m.len() >= 2 => values_to_exclude_zero(mean(&m), sample_sd(&m)),
            Some(_) => None,
            None => Some(sign_test_seeds()),
        }
    }

    /// Seeds that measured the claim (their outcome is confirmed or not confirmed).
    pub fn seeds_decided(&self) -> usize {
        self.seeds.iter().filter(|o| o.decided()).count()
    }
}

/// One seed's outcome of a claim checked seed by seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedOutcome {
    pub seed: String,
    pub verdict: Verdict,
    pub margin: Option<f64>,
}

impl SeedOutcome {
    /// Whether the seed measured the claim (its outcome is confirmed or not confirmed).
    pub fn decided(&self) -> bool {
        matches!(self.verdict, Verdict::Confirmed | Verdict::NotConfirmed)
    }
}

fn finding(verdict: Verdict, measurement: impl Into<String>) -> Finding {
    Finding { verdict, measurement: measurement.into(), margin: None, seeds: Vec::new(), interval: None }
}

/// A finding with its margin (`holds` decides, as the check states it; the margin says by how much).
fn checked(holds: bool, margin: f64, measurement: impl Into<String>) -> Finding {
    Finding { margin: margin.is_finite().then_some(margin), ..finding(Verdict::from(holds), measurement) }
}

pub const CLAIMS: [Spec; 12] = [
    Spec {
        id: "C1",
        experiment: "sim_functions",
        claim: "On f1 the deepest model (M1) converges fastest.",
        check: "Per seed: epochs until each model's training loss first reaches θ, the lowest loss every model of \
                that seed reaches (a run that stopped holds its final loss); a seed holds if M1 gets there first.",
        margin: "epochs by which M1 reaches θ before the next-fastest model",
        seeds: Seeds::PerSeed,
        evaluate: |ev| {
            measured(ev.table("sim_functions", "convergence.csv")?, |t| {
                by_seed(&t.filter_eq("function", "f1")?, deep_converges_fastest)
            })
        },
    },
    Spec {
        id: "C2",
        experiment: "sim_functions",
        claim: "On f1, after the first 1000 epochs the shallow model (M3) has the highest loss at every epoch.",
        check: "Per seed: share of epochs ≥ 1000 at which M3's loss is above every other model's (a run that \
                stopped holds its final loss); a seed holds at ≥ 99 %.",
        margin: "M3's late share highest, minus 0.99",
        seeds: Seeds::PerSeed,
        evaluate: |ev| {
            measured(ev.table("sim_functions", "convergence.csv")?, |t| {
                by_seed(&t.filter_eq("function", "f1")?, shallow_highest_late)
            })
        },
    },
    Spec {
        id: "C3",
        experiment: "sim_functions",
        claim: "On f2 all three models hit the epoch cap without converging.",
        check: "Per seed: all three f2 runs train to max_epochs without meeting the stopping rule; a seed holds if \
                they do.",
        margin: "",
        seeds: Seeds::PerSeed,
        evaluate: |ev| match (ev.table("sim_functions", "summary.csv")?, &ev.config.experiments.sim_functions) {
            (Some(summary), Some(s)) => by_seed(&summary, |t| f2_hits_cap(t, s.max_epochs)),
            _ => Ok(not_configured()),
        },
    },
    Spec {
        id: "C4",
        experiment: "sim_functions",
        claim: "On f2 deeper models make smaller errors near the ends of the x range.",
        check: "Per seed: MSE of each f2 fit on the outer 10 % of the x range at each end; a seed holds if the error \
                falls with depth (M1 < M2 < M3).",
        margin: "the smaller of M2's edge MSE minus M1's and M3's minus M2's",
        seeds: Seeds::PerSeed,
        evaluate: |ev| {
            measured(ev.table("sim_functions", "edge_error.csv")?, |t| {
                by_seed(&t.filter_eq("function", "f2")?, deeper_better_at_edges)
            })
        },
    },
    Spec {
        id: "C5",
        experiment: "mnist_cnn",
        claim: "CNN1 beats CNN2 in loss (and accuracy).",
        check: "Final full-set test loss and accuracy, mean over seeds; confirmed if CNN1 is better on both.",
        margin: "the smaller of CNN1's relative reductions of test loss and of test error against CNN2",
        seeds: Seeds::PerSeed,
        evaluate: |ev| measured(ev.table("mnist_cnn", "summary.csv")?, |t| by_seed(t, cnn1_beats_cnn2)),
    },
    Spec {
        id: "C6",
        experiment: "grad_norm",
        claim: "Around epoch 250 the gradient norm rises while the loss curve changes slope.",
        check: "Per live seed, in epochs 200-300: a rise of the gradient norm by ≥ 20 % over its running minimum, \
                where the loss slope over the next 50 epochs differs from the previous 50 by ≥ 2×; a seed holds if it \
                shows both (only the shape is checkable); dead seeds are left out.",
        margin: "",
        seeds: Seeds::PerSeed,
        evaluate: |ev| match (ev.table("grad_norm", "curves.csv")?, ev.table("grad_norm", "summary.csv")?) {
            (Some(curves), Some(summary)) => norm_rises_near_250(&curves, &summary),
            _ => Ok(not_configured()),
        },
    },
    Spec {
        id: "C7",
        experiment: "random_labels",
        claim: "With random labels the training loss becomes low while the test loss stays much higher.",
        check: "Final full-set losses, mean over seeds; confirmed if training loss < ln(10)/4 ≈ 0.58 (a quarter of \
                chance level) and test loss ≥ 3× the training loss.",
        margin: "the smaller of 1 − training loss / (ln(10)/4) and test loss / (3 × training loss) − 1",
        seeds: Seeds::PerSeed,
        evaluate: |ev| measured(ev.table("random_labels", "summary.csv")?, |t| by_seed(t, memorises)),
    },
    Spec {
        id: "C8",
        experiment: "params_generalization",
        claim: "The train-test gap (loss and accuracy) grows with the number of parameters.",
        check: "Spearman ρ of the final gap (test − train loss; train − test accuracy) against the parameter count; \
                confirmed if ρ ≥ 0.5 for both.",
        margin: "the smaller of the two ρ, minus 0.5",
        seeds: Seeds::PerSeed,
        evaluate: |ev| measured(ev.table("params_generalization", "summary.csv")?, |t| by_seed(t, gap_grows)),
    },
    Spec {
        id: "C9",
        experiment: "params_generalization",
        claim: "Past some size, more parameters barely improve test accuracy.",
        check: "Test-accuracy gain over the last two doublings of parameters (largest model vs the largest one with \
                ≤ ¼ of its parameters); confirmed if below 1 percentage point.",
        margin: "1 minus the gain in points",
        seeds: Seeds::PerSeed,
        evaluate: |ev| measured(ev.table("params_generalization", "summary.csv")?, |t| by_seed(t, saturates)),
    },
    Spec {
        id: "C10",
        experiment: "sensitivity",
        claim: "Batch sizes between 10 and 1000 give the best results.",
        check: "The batch size with the best final test accuracy; confirmed if it lies in [10, 1000].",
        margin: "points by which the best batch size in [10, 1000] beats the best outside it",
        seeds: Seeds::PerSeed,
        evaluate: |ev| measured(ev.table("sensitivity", "summary.csv")?, |t| by_seed(t, best_batch)),
    },
    Spec {
        id: "C11",
        experiment: "sensitivity",
        claim: "Sensitivity trends with batch size (the report does not say which way).",
        check: "Spearman ρ of sensitivity against batch size; a trend if |ρ| ≥ 0.7. Its direction cannot be checked \
                against the report, which states none.",
        margin: "|ρ| − 0.7",
        seeds: Seeds::PerSeed,
        evaluate: |ev| measured(ev.table("sensitivity", "summary.csv")?, |t| by_seed(t, sensitivity_trend)),
    },
    Spec {
        id: "C12",
        experiment: "interpolation",
        claim: "(Describes the interpolation between the batch-64 and batch-1024 models but draws no conclusion; the \
                notebook performed none.)",
        check: "Nothing to confirm; we report what the real interpolation shows: the loss barrier between the two \
                minima and how fast the loss rises beyond each.",
        margin: "",
        seeds: Seeds::Unused,
        evaluate: |ev| {
            let batches = ev.config.experiments.interpolation.as_ref().map_or([64, 1024], |s| s.batch_sizes);
            measured(ev.table("interpolation", "interpolation.csv")?, |curve| interpolation_shows(curve, batches))
        },
    },
];

/// Reads table `name` of experiment `id`, or `None` when the experiment is not configured.
pub type TableOf<'a> = dyn Fn(&str, &str) -> Result<Option<Table>> + 'a;

/// Every claim's finding (in [`CLAIMS`] order) from the tables `table` reads.
pub fn findings(table: &TableOf, config: &Config) -> Result<Vec<Finding>> {
    let evidence = Evidence { table, config };
    CLAIMS.iter().map(|c| (c.evaluate)(&evidence)).collect()
}

/// Every claim's finding (in [`CLAIMS`] order), from the report inputs of each experiment.
pub fn evaluate(inputs_of: &dyn Fn(&str) -> BTreeMap<String, PathBuf>, config: &Config) -> Result<Vec<Finding>> {
    let table: &TableOf = &|id, name| {
        let inputs = inputs_of(id);
        if inputs.is_empty() {
            return Ok(None);
        }
        Ok(Some(Table::read_csv(crate::report::input(&inputs, name)?)?))
    };
    findings(table, config)
}

/// The claims as data (`claims.csv`): one row per claim, in [`CLAIMS`] order, with what the
/// report's table says and the seeds' outcomes, for scripts and CI that read verdicts.
pub fn table(findings: &[Finding]) -> Result<Table> {
    let rows: Vec<(&Spec, &Finding)> = CLAIMS.iter().zip(findings).collect();
    let optional = |v: Option<f64>| v.map_or(Cell::Str(String::new()), Cell::Float);
    Table::from_records(
        &rows,
        &[
            ("id", &|(c, _)| c.id.into()),
            ("experiment", &|(c, _)| c.experiment.into()),
            ("verdict", &|(_, f)| f.verdict.label().into()),
            ("seeds", &|(_, f)| (f.seeds.len() as u64).into()),
            ("per_seed", &|(_, f)| {
                let each: Vec<String> = f.seeds.iter().map(|o| format!("{}:{}", o.seed, o.verdict.label())).collect();
                each.join(" ").into()
            }),
            ("margin", &|(_, f)| optional(f.margin)),
            ("margin_low", &|(_, f)| optional(f.interval.map(|i| i.0))),
            ("margin_high", &|(_, f)| optional(f.interval.map(|i| i.1))),
            ("margin_units", &|(c, _)| c.margin.into()),
            ("seeds_to_settle", &|(_, f)| f.seeds_needed().map_or(Cell::Str(String::new()), |n| Cell::Int(n as i64))),
            ("measurement", &|(_, f)| f.measurement.as_str().into()),
        ],
    )
}

/// The claims section of the report.
pub fn section(findings: &[Finding]) -> Section {
    let mut s = Section::new("claims", "Claims of the original report, checked");
    let counts = |v: Verdict| findings.iter().filter(|f| f.verdict == v).count();
    s.text(format!(
        "Each claim of the original report (paraphrased), the check we apply and how it combines seeds, what this run \
         measured, and the verdict computed from the tables below. {} confirmed, {} not confirmed, {} inconclusive (the \
         too few seeds ran for the rule to decide), {} not testable as stated, {} \
         not measured in this run (an experiment left out, or a budget too small for the claim).",
        counts(Verdict::Confirmed),
        counts(Verdict::NotConfirmed),
        counts(Verdict::Inconclusive),
        counts(Verdict::NotTestable),
        counts(Verdict::NotMeasured)
    ));
    s.text(per_seed_rule());
    let rows: Vec<Vec<Toned>> = CLAIMS
        .iter()
        .zip(findings)
        .map(|(c, f)| {
            let margin = match (f.margin, f.interval) {
                (Some(m), Some((lo, hi))) => format!("{} [{}, {}]", num(m), num(lo), num(hi)),
                (Some(m), None) => num(m),
                _ => String::new(),
            };
            let units = if c.margin.is_empty() { String::new() } else { format!(" Margin: {}.", c.margin) };
            vec![
                c.id.to_string().into(),
                format!("`{}`", c.experiment).into(),
                c.claim.to_string().into(),
                format!("{}{units} {}", c.check, c.seeds.text()).trim_end().to_string().into(),
                f.measurement.clone().into(),
                margin.into(),
                Toned::new(f.verdict.label(), f.verdict.tone()),
            ]
        })
        .collect();
    let header =
        ["id", "experiment", "claim of the original", "check", "our measurement", "margin (95 % interval)", "verdict"];
    s.rows("Claims", header.map(String::from).to_vec(), rows, false);
    s.text(
        "Why these seed counts: each experiment's count was chosen by measuring its seed-to-seed spread (pipeline.toml \
         says where), and this run checks it again. For every claim decided seed by seed, the seeds that measured it \
         and the number its rule needs at the spread this run measured (the interval rule: the least n whose 95 % \
         interval at this mean and standard deviation excludes 0; the sign test: 6 unanimous seeds). Where the \
         seeds run are fewer than needed, the claim is not established (not confirmed) and the row says about how many \
         more would tell.",
    );
    let seed_rows = CLAIMS
        .iter()
        .zip(findings)
        .filter(|(c, f)| c.seeds == Seeds::PerSeed && !f.seeds.is_empty())
        .map(|(c, f)| {
            let (ran, needed) = (f.seeds_decided(), f.seeds_needed());
            let enough = match needed {
                Some(k) if k <= ran => "yes".to_string(),
                Some(k) => format!("no: about {} more", k - ran),
                None => "no: the mean margin is too close to 0 for any number of seeds".to_string(),
            };
            vec![
                c.id.to_string(),
                format!("`{}`", c.experiment),
                ran.to_string(),
                needed.map_or("-".to_string(), |k| k.to_string()),
                enough,
                f.verdict.label().to_string(),
            ]
        })
        .collect();
    let header = ["id", "experiment", "seeds that measured it", "seeds its rule needs here", "enough", "verdict"];
    s.rows("Seeds, claim by claim", header.map(String::from).to_vec(), seed_rows, false);
    s
}

/// Mean of `value` per distinct `key`, keys in order of first appearance.
fn means_by(table: &Table, key: &str, value: &str) -> Result<Vec<(String, f64)>> {
    let (keys, values) = (table.strings(key)?, table.floats(value)?);
    let mut groups: Vec<(String, Vec<f64>)> = Vec::new();
    for (k, v) in keys.into_iter().zip(values) {
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, vs)) => vs.push(v),
            None => groups.push((k, vec![v])),
        }
    }
    Ok(groups.into_iter().map(|(k, vs)| (k, mean(&vs))).collect())
}

fn upper(model: &str) -> String {
    model.to_uppercase()
}

/// C1, on rows of `convergence.csv` (one function; one seed, or several averaged).
pub fn deep_converges_fastest(convergence: &Table) -> Result<Finding> {
    let reach = means_by(convergence, "model", "epochs_to_theta")?;
    let Some(&(_, m1)) = reach.iter().find(|(m, _)| m == "m1") else {
        return Ok(finding(Verdict::NotMeasured, "needs M1 and another model on f1"));
    };
    if reach.len() < 2 {
        return Ok(finding(Verdict::NotMeasured, "needs M1 and another model on f1"));
    }
    let next = reach.iter().filter(|(m, _)| m != "m1").map(|(_, e)| *e).fold(f64::INFINITY, f64::min);
    let theta = mean(&convergence.floats("theta")?);
    let listed: Vec<String> = reach.iter().map(|(m, e)| format!("{} {e:.0}", upper(m))).collect();
    Ok(checked(m1 < next, next - m1, format!("θ = {}; epochs to reach it: {}", num(theta), listed.join(", "))))
}

/// C2, on rows of `convergence.csv` (one function; one seed, or several averaged).
pub fn shallow_highest_late(convergence: &Table) -> Result<Finding> {
    let shares = means_by(convergence, "model", "highest_share_late")?;
    let Some(&(_, share)) = shares.iter().find(|(m, _)| m == "m3") else {
        return Ok(finding(Verdict::NotMeasured, "needs M3 and another model on f1"));
    };
    if shares.len() < 2 || share.is_nan() {
        return Ok(finding(Verdict::NotMeasured, "needs M3 and another model on f1, trained past epoch 1000"));
    }
    Ok(checked(share >= 0.99, share - 0.99, format!("M3 highest at {:.1} % of epochs ≥ 1000", 100.0 * share)))
}

/// C3.
pub fn f2_hits_cap(summary: &Table, max_epochs: usize) -> Result<Finding> {
    let f2 = summary.filter_eq("function", "f2")?;
    if f2.height() == 0 {
        return Ok(finding(Verdict::NotMeasured, "f2 not in this configuration"));
    }
    let (models, epochs, stopped) = (f2.strings("model")?, f2.floats("epochs")?, f2.strings("stopped_early")?);
    let at_cap = epochs.iter().zip(&stopped).filter(|(e, s)| **e as usize >= max_epochs && *s != "true").count();
    let early: Vec<String> = models
        .iter()
        .zip(&epochs)
        .zip(&stopped)
        .filter(|((_, e), s)| (**e as usize) < max_epochs || *s == "true")
        .map(|((m, e), _)| format!("{} stopped at {e}", upper(m)))
        .collect();
    let mut text = format!("{at_cap} of {} f2 runs trained all {max_epochs} epochs", f2.height());
    if !early.is_empty() {
        text.push_str(&format!("; {}", early.join(", ")));
    }
    Ok(finding(Verdict::from(at_cap == f2.height()), text))
}

/// C4.
pub fn deeper_better_at_edges(edge_error: &Table) -> Result<Finding> {
    let errors = means_by(edge_error, "model", "edge_mse")?;
    let by_depth: Vec<(&str, f64)> = ["m1", "m2", "m3"]
        .into_iter()
        .filter_map(|m| errors.iter().find(|(k, _)| k == m).map(|(_, e)| (m, *e)))
        .collect();
    if by_depth.len() < 2 {
        return Ok(finding(Verdict::NotMeasured, "needs two models of different depth on f2"));
    }
    let margin = by_depth.windows(2).map(|w| w[1].1 - w[0].1).fold(f64::INFINITY, f64::min);
    let listed: Vec<String> = by_depth.iter().map(|(m, e)| format!("{} {}", upper(m), num(*e))).collect();
    Ok(checked(margin > 0.0, margin, format!("edge MSE: {}", listed.join(", "))))
}

/// C5.
pub fn cnn1_beats_cnn2(summary: &Table) -> Result<Finding> {
    let get = |metric: &str| -> Result<(Option<f64>, Option<f64>)> {
        let m = means_by(summary, "model", metric)?;
        let of = |name: &str| m.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        Ok((of("cnn1"), of("cnn2")))
    };
    let (loss, acc, train_loss, train_acc) =
        (get("test_loss")?, get("test_acc")?, get("train_loss")?, get("train_acc")?);
    let (Some(l1), Some(l2), Some(a1), Some(a2)) = (loss.0, loss.1, acc.0, acc.1) else {
        return Ok(finding(Verdict::NotMeasured, "needs CNN1 and CNN2"));
    };
    let pct = |v: f64| format!("{:.2} %", 100.0 * v);
    let margin = ((l2 - l1) / l2).min((a1 - a2) / (1.0 - a2));
    Ok(checked(
        l1 < l2 && a1 > a2,
        margin,
        format!(
            "test loss CNN1 {} vs CNN2 {}, test accuracy {} vs {}; train loss {} vs {}, train accuracy {} vs {}",
            num(l1),
            num(l2),
            pct(a1),
            pct(a2),
            num(train_loss.0.unwrap_or(f64::NAN)),
            num(train_loss.1.unwrap_or(f64::NAN)),
            pct(train_acc.0.unwrap_or(f64::NAN)),
            pct(train_acc.1.unwrap_or(f64::NAN))
        ),
    ))
}

/// C6.
pub fn norm_rises_near_250(curves: &Table, summary: &Table) -> Result<Finding> {
    let (seeds, dead) = (summary.strings("seed")?, summary.strings("dead")?);
    let live: Vec<&String> = seeds.iter().zip(&dead).filter(|(_, d)| *d != "true").map(|(s, _)| s).collect();
    let last = curves.floats("epoch")?.into_iter().fold(0.0, f64::max);
    if last < 350.0 {
        return Ok(finding(Verdict::NotMeasured, format!("training ends at epoch {last}; the check needs 350")));
    }
    if live.is_empty() {
        return Ok(finding(Verdict::NotMeasured, "every seed died (flagged in the section)"));
    }
    let mut shown = 0;
    let mut notes = Vec::new();
    let mut outcomes = Vec::new();
    for seed in &live {
        let t = curves.filter_eq("seed", seed)?;
        let (epoch, loss, norm) = (t.floats("epoch")?, t.floats("loss")?, t.floats("grad_norm")?);
        let at = |e: f64| epoch.iter().position(|&x| x == e);
        let mut best: Option<(f64, f64, f64, f64)> = None; // (rise, epoch, slope before, slope after)
        for e in 200..=300 {
            let e = e as f64;
            let (Some(k), Some(b), Some(a)) = (at(e), at(e - 50.0), at(e + 50.0)) else { continue };
            let floor = norm[at(150.0).unwrap_or(0)..=k].iter().cloned().fold(f64::INFINITY, f64::min);
            let rise = norm[k] / floor;
            let (before, after) = ((loss[k] - loss[b]) / 50.0, (loss[a] - loss[k]) / 50.0);
            let ratio = after / before;
            let bends = !(0.5..=2.0).contains(&ratio);
            if rise >= 1.2 && bends && best.is_none_or(|b| rise > b.0) {
                best = Some((rise, e, before, after));
            }
        }
        match best {
            Some((rise, e, before, after)) => {
                shown += 1;
                outcomes.push(SeedOutcome { seed: seed.to_string(), verdict: Verdict::Confirmed, margin: None });
                notes.push(format!(
                    "seed {seed}: norm ×{rise:.2} at epoch {e}, loss slope {} → {} per epoch",
                    num(before),
                    num(after)
                ));
            }
            None => {
                outcomes.push(SeedOutcome { seed: seed.to_string(), verdict: Verdict::NotConfirmed, margin: None });
                notes.push(format!("seed {seed}: no such rise"))
            }
        }
    }
    let p = sign_test_p(shown, live.len());
    Ok(Finding {
        seeds: outcomes,
        ..finding(
            by_sign_test(shown, live.len() - shown),
            format!("{shown} of {} live seeds (sign test p = {}); {}", live.len(), num(p), notes.join("; ")),
        )
    })
}

/// C7.
pub fn memorises(summary: &Table) -> Result<Finding> {
    let (train, test) = (mean(&summary.floats("train_loss")?), mean(&summary.floats("test_loss")?));
    let acc = mean(&summary.floats("train_acc")?);
    let low = train < 10f64.ln() / 4.0;
    let margin = (1.0 - train / (10f64.ln() / 4.0)).min(test / (3.0 * train) - 1.0);
    Ok(checked(
        low && test >= 3.0 * train,
        margin,
        format!(
            "training loss {} (training accuracy {:.1} % on random labels), test loss {} ({:.1}× the training loss)",
            num(train),
            100.0 * acc,
            num(test),
            test / train
        ),
    ))
}

/// C8.
pub fn gap_grows(summary: &Table) -> Result<Finding> {
    let models = summary.means_by("params", &["loss_gap", "acc_gap"])?;
    if models.len() < 3 {
        return Ok(finding(Verdict::NotMeasured, "needs at least three model sizes"));
    }
    let p: Vec<f64> = models.iter().map(|m| m.0).collect();
    let loss_gap: Vec<f64> = models.iter().map(|m| m.1[0]).collect();
    let acc_gap: Vec<f64> = models.iter().map(|m| m.1[1]).collect();
    let (rl, ra) = (spearman(&p, &loss_gap), spearman(&p, &acc_gap));
    let show = |r: Option<f64>| r.map_or("undefined".to_string(), |r| format!("{r:.2}"));
    let holds = rl.is_some_and(|r| r >= 0.5) && ra.is_some_and(|r| r >= 0.5);
    let margin = rl.zip(ra).map_or(f64::NAN, |(l, a)| l.min(a) - 0.5);
    Ok(checked(
        holds,
        margin,
        format!(
            "ρ(loss gap, params) = {}, ρ(accuracy gap, params) = {} over {} sizes; loss gap {} → {}, accuracy gap {:.2} → \
             {:.2} points from {} to {} parameters",
            show(rl),
            show(ra),
            models.len(),
            num(loss_gap[0]),
            num(*loss_gap.last().unwrap()),
            100.0 * acc_gap[0],
            100.0 * acc_gap.last().unwrap(),
            p[0],
            p.last().unwrap()
        ),
    ))
}

/// C9.
pub fn saturates(summary: &Table) -> Result<Finding> {
    let models = summary.means_by("params", &["test_acc"])?;
    let (largest, acc_largest) = (models.last().map(|m| m.0).unwrap_or(0.0), models.last().map(|m| m.1[0]));
    let Some(quarter) = models.iter().rev().find(|m| m.0 <= largest / 4.0) else {
        return Ok(finding(Verdict::NotMeasured, "needs models at least two doublings apart"));
    };
    let gain = 100.0 * (acc_largest.unwrap() - quarter.1[0]);
    let first = &models[0];
    let early = models.iter().find(|m| m.0 >= 4.0 * first.0).map(|m| 100.0 * (m.1[0] - first.1[0]));
    Ok(checked(
        gain < 1.0,
        1.0 - gain,
        format!(
            "test accuracy {:.2} % at {} parameters vs {:.2} % at {}: {gain:+.2} points over the last two doublings{}",
            100.0 * acc_largest.unwrap(),
            largest,
            100.0 * quarter.1[0],
            quarter.0,
            early.map_or(String::new(), |g| format!(" (the first two doublings gained {g:+.2})"))
        ),
    ))
}

/// C10.
pub fn best_batch(summary: &Table) -> Result<Finding> {
    let models = means_by(summary, "batch_size", "test_acc")?;
    let Some((batch, acc)) = models.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
        return Ok(finding(Verdict::NotMeasured, "no runs"));
    };
    let b: f64 = batch.parse()?;
    let listed: Vec<String> = models.iter().map(|(b, a)| format!("{b}: {:.2} %", 100.0 * a)).collect();
    let within = |b: &str| b.parse::<f64>().is_ok_and(|b| (10.0..=1000.0).contains(&b));
    let best_of = |inside: bool| {
        models.iter().filter(|(b, _)| within(b) == inside).map(|(_, a)| *a).fold(f64::NEG_INFINITY, f64::max)
    };
    Ok(checked(
        (10.0..=1000.0).contains(&b),
        100.0 * (best_of(true) - best_of(false)),
        format!("best test accuracy at batch {batch} ({:.2} %); {}", 100.0 * acc, listed.join(", ")),
    ))
}

/// C11.
pub fn sensitivity_trend(summary: &Table) -> Result<Finding> {
    let batches = summary.floats("batch_size")?;
    let sens = summary.floats("sensitivity")?;
    let Some(rho) = spearman(&batches, &sens) else {
        return Ok(finding(Verdict::NotMeasured, "needs at least two batch sizes"));
    };
    let direction = if rho < 0.0 { "falls" } else { "rises" };
    let (lo, hi) = (
        batches.iter().zip(&sens).min_by(|a, b| a.0.total_cmp(b.0)).unwrap(),
        batches.iter().zip(&sens).max_by(|a, b| a.0.total_cmp(b.0)).unwrap(),
    );
    Ok(checked(
        rho.abs() >= 0.7,
        rho.abs() - 0.7,
        format!(
            "ρ = {rho:.2}: sensitivity {direction} with batch size ({} at batch {}, {} at batch {})",
            num(*lo.1),
            lo.0,
            num(*hi.1),
            hi.0
        ),
    ))
}

/// C12.
pub fn interpolation_shows(curve: &Table, [b1, b2]: [usize; 2]) -> Result<Finding> {
    let mut notes = Vec::new();
    for lr in means_by(curve, "lr", "alpha")?.into_iter().map(|(lr, _)| lr) {
        let t = curve.filter_eq("lr", &lr)?;
        let (alpha, loss) = (t.floats("alpha")?, t.floats("test_loss")?);
        let near =
            |a: f64| (0..alpha.len()).min_by(|&i, &j| (alpha[i] - a).abs().total_cmp(&(alpha[j] - a).abs())).unwrap();
        let (l0, l1) = (loss[near(0.0)], loss[near(1.0)]);
        let inside = (0..alpha.len()).filter(|&k| alpha[k] > 0.0 && alpha[k] < 1.0);
        let peak = inside.max_by(|&i, &j| loss[i].total_cmp(&loss[j]));
        let barrier = match peak {
            Some(k) if loss[k] > l0.max(l1) => {
                format!(
                    "a barrier: test loss {} at α = {} between {} (α = 0) and {} (α = 1)",
                    num(loss[k]),
                    format_setting(alpha[k]),
                    num(l0),
                    num(l1)
                )
            }
            _ => format!("no barrier between {} (α = 0) and {} (α = 1)", num(l0), num(l1)),
        };
        let (before, after) = (loss[near(-0.5)], loss[near(1.5)]);
        notes.push(format!(
            "lr {lr}: {barrier}; half a step beyond each end the test loss rises by {} (batch-{b1} side) and {} (batch-{b2} side)",
            num(before - l0),
            num(after - l1)
        ));
    }
    Ok(finding(Verdict::NotTestable, notes.join(". ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_numbered_in_order_and_name_registered_experiments() {
        for (k, claim) in CLAIMS.iter().enumerate() {
            assert_eq!(claim.id, format!("C{}", k + 1));
            assert!(crate::experiments::IDS.contains(&claim.experiment), "{}: unknown {}", claim.id, claim.experiment);
        }
    }

    #[test]
    fn a_claim_of_an_experiment_left_out_is_not_measured() {
        let config: Config = toml::from_str("[experiments.grad_norm]\n").unwrap();
        let no_tables = |_: &str, _: &str| -> Result<Option<Table>> { Ok(None) };
        let evidence = Evidence { table: &no_tables, config: &config };
        for claim in &CLAIMS {
            let finding = (claim.evaluate)(&evidence).unwrap();
            assert_eq!(finding.verdict, Verdict::NotMeasured, "{}", claim.id);
        }
    }

    fn table(names: &[&str], rows: Vec<Vec<Cell>>) -> Table {
        Table::from_rows(names, rows.into_iter()).unwrap()
    }

    /// f1 rows of `convergence.csv`: (model, seed, epochs to θ, late share highest).
    fn convergence(rows: &[(&str, i64, f64, f64)]) -> Table {
        let rows = rows.iter().map(|&(m, seed, reach, share)| {
            vec!["f1".into(), m.into(), Cell::Int(seed), 0.02.into(), reach.into(), share.into()]
        });
        table(&["function", "model", "seed", "theta", "epochs_to_theta", "highest_share_late"], rows.collect())
    }

    #[test]
    fn c1_compares_epochs_to_the_common_level_seed_by_seed() {
        let fast_m1 = convergence(&[("m1", 0, 50.0, 0.0), ("m3", 0, 100.0, 1.0)]);
        let f = deep_converges_fastest(&fast_m1).unwrap();
        assert_eq!(f.verdict, Verdict::Confirmed, "{}", f.measurement);
        assert!(f.measurement.contains("M1 50, M3 100"), "{}", f.measurement);
        let slow_m1 = convergence(&[("m1", 0, 300.0, 0.0), ("m3", 0, 100.0, 1.0)]);
        assert_eq!(deep_converges_fastest(&slow_m1).unwrap().verdict, Verdict::NotConfirmed);
        // Margins 50, 40, −50: the interval of their mean contains 0; 50, 40, 30 lie above it.
        let seeds = |m1_third: f64| {
            convergence(&[
                ("m1", 0, 50.0, 0.0),
                ("m3", 0, 100.0, 1.0),
                ("m1", 1, 60.0, 0.0),
                ("m3", 1, 100.0, 1.0),
                ("m1", 2, m1_third, 0.0),
                ("m3", 2, 100.0, 1.0),
            ])
        };
        let split = by_seed(&seeds(150.0), deep_converges_fastest).unwrap();
        assert_eq!(split.verdict, Verdict::NotConfirmed, "not established: {}", split.measurement);
        assert!(split.measurement.starts_with("holds for 2 of 3 seeds (fails on seed 2)"), "{}", split.measurement);
        assert_eq!(by_seed(&seeds(70.0), deep_converges_fastest).unwrap().verdict, Verdict::Confirmed);
    }

    #[test]
    fn c2_needs_epochs_past_the_threshold() {
        let m3_worst = convergence(&[("m1", 0, 1.0, 0.0), ("m2", 0, 1.0, 0.0), ("m3", 0, 1.0, 1.0)]);
        let f = shallow_highest_late(&m3_worst).unwrap();
        assert_eq!(f.verdict, Verdict::Confirmed);
        assert!(f.measurement.contains("100.0 %"), "{}", f.measurement);
        let crossing = convergence(&[("m1", 0, 1.0, 0.5), ("m3", 0, 1.0, 0.5)]);
        let f = shallow_highest_late(&crossing).unwrap();
        assert_eq!(f.verdict, Verdict::NotConfirmed);
        assert!(f.measurement.contains("M3 highest at 50.0 % of epochs ≥ 1000"), "{}", f.measurement);
        let short = convergence(&[("m1", 0, 1.0, f64::NAN), ("m3", 0, 1.0, f64::NAN)]);
        assert_eq!(shallow_highest_late(&short).unwrap().verdict, Verdict::NotMeasured);
    }

    #[test]
    fn c3_counts_runs_that_stopped() {
        let summary = |stopped: bool, epochs: i64| {
            table(
                &["function", "model", "epochs", "stopped_early"],
                vec![
                    vec!["f2".into(), "m1".into(), Cell::Int(500), Cell::Bool(false)],
                    vec!["f2".into(), "m3".into(), Cell::Int(epochs), Cell::Bool(stopped)],
                    vec!["f1".into(), "m1".into(), Cell::Int(20), Cell::Bool(true)],
                ],
            )
        };
        assert_eq!(f2_hits_cap(&summary(false, 500), 500).unwrap().verdict, Verdict::Confirmed);
        let f = f2_hits_cap(&summary(true, 320), 500).unwrap();
        assert_eq!(f.verdict, Verdict::NotConfirmed);
        assert!(f.measurement.contains("1 of 2") && f.measurement.contains("M3 stopped at 320"), "{}", f.measurement);
        // Per seed, by the sign test: one run of nine seeds that converges does not overturn eight.
        let seeds = table(
            &["function", "model", "seed", "epochs", "stopped_early"],
            (0..9)
                .flat_map(|seed| {
                    ["m1", "m2", "m3"].map(|m| {
                        let stopped = seed == 4 && m == "m1";
                        let epochs = if stopped { 320 } else { 500 };
                        vec!["f2".into(), m.into(), Cell::Int(seed), Cell::Int(epochs), Cell::Bool(stopped)]
                    })
                })
                .collect(),
        );
        let f = by_seed(&seeds, |t| f2_hits_cap(t, 500)).unwrap();
        assert_eq!(f.verdict, Verdict::Confirmed, "{}", f.measurement);
        assert!(f.measurement.starts_with("holds for 8 of 9 seeds (fails on seed 4); sign test p = 0.03906"));
    }

    #[test]
    fn c4_wants_the_edge_error_to_fall_with_depth_seed_by_seed() {
        let edges = |rows: &[(i64, [f64; 3])]| {
            let rows = rows.iter().flat_map(|&(seed, errors)| {
                ["m1", "m2", "m3"]
                    .into_iter()
                    .zip(errors)
                    .map(move |(m, e)| vec!["f2".into(), m.into(), Cell::Int(seed), e.into()])
            });
            table(&["function", "model", "seed", "edge_mse"], rows.collect())
        };
        let f = deeper_better_at_edges(&edges(&[(0, [0.01, 0.04, 0.16])])).unwrap();
        assert_eq!(f.verdict, Verdict::Confirmed);
        assert_eq!(f.measurement, "edge MSE: M1 0.01000, M2 0.04000, M3 0.1600");
        assert!((f.margin.unwrap() - 0.03).abs() < 1e-12, "the smaller step down with depth");
        // Margins 0.03, 0.02, 0.025: confirmed; one seed where M1 is worst: the interval spans 0.
        let agreeing = edges(&[(0, [0.01, 0.04, 0.16]), (1, [0.02, 0.04, 0.1]), (2, [0.0, 0.025, 0.2])]);
        assert_eq!(by_seed(&agreeing, deeper_better_at_edges).unwrap().verdict, Verdict::Confirmed);
        let split = edges(&[(0, [0.01, 0.04, 0.16]), (1, [0.5, 0.04, 0.1]), (2, [0.0, 0.025, 0.2])]);
        assert_eq!(by_seed(&split, deeper_better_at_edges).unwrap().verdict, Verdict::NotConfirmed);
    }

    fn mlp_summary(rows: &[(i64, f64, f64, f64)]) -> Table {
        table(
            &["params", "loss_gap", "acc_gap", "test_acc"],
            rows.iter().map(|&(p, l, a, t)| vec![Cell::Int(p), l.into(), a.into(), t.into()]).collect(),
        )
    }

    #[test]
    fn c8_and_c9_read_the_trend_over_sizes() {
        let growing = mlp_summary(&[
            (1000, 0.0, 0.0, 0.60),
            (4000, 0.1, 0.01, 0.90),
            (16000, 0.2, 0.02, 0.975),
            (64000, 0.3, 0.03, 0.98),
        ]);
        assert_eq!(gap_grows(&growing).unwrap().verdict, Verdict::Confirmed);
        let f = saturates(&growing).unwrap();
        assert_eq!(f.verdict, Verdict::Confirmed);
        assert!(f.measurement.contains("+0.50 points") && f.measurement.contains("+30.00"), "{}", f.measurement);
        let shrinking = mlp_summary(&[(1000, 0.3, 0.03, 0.5), (4000, 0.2, 0.02, 0.6), (16000, 0.1, 0.01, 0.7)]);
        assert_eq!(gap_grows(&shrinking).unwrap().verdict, Verdict::NotConfirmed);
        let f = saturates(&shrinking).unwrap();
        assert_eq!(f.verdict, Verdict::NotConfirmed, "{}", f.measurement);
        let narrow = mlp_summary(&[(1000, 0.0, 0.0, 0.5), (2000, 0.1, 0.0, 0.6)]);
        assert_eq!(saturates(&narrow).unwrap().verdict, Verdict::NotMeasured);
    }

    #[test]
    fn c10_and_c11_read_the_batch_sweep() {
        let sweep = |acc: [f64; 3]| {
            table(
                &["batch_size", "test_acc", "sensitivity"],
                [5, 100, 1000]
                    .iter()
                    .zip(acc)
                    .zip([0.9, 0.5, 0.1])
                    .map(|((&b, a), s)| vec![Cell::Int(b), a.into(), s.into()])
                    .collect(),
            )
        };
        assert_eq!(best_batch(&sweep([0.90, 0.95, 0.93])).unwrap().verdict, Verdict::Confirmed);
        let f = best_batch(&sweep([0.96, 0.95, 0.93])).unwrap();
        assert_eq!(f.verdict, Verdict::NotConfirmed);
        assert!(f.measurement.starts_with("best test accuracy at batch 5 (96.00 %)"), "{}", f.measurement);
        let f = sensitivity_trend(&sweep([0.9, 0.9, 0.9])).unwrap();
        assert_eq!(f.verdict, Verdict::Confirmed);
        assert!(f.measurement.starts_with("ρ = -1.00: sensitivity falls"), "{}", f.measurement);
    }

    #[test]
    fn c6_finds_a_norm_bump_where_the_loss_bends() {
        // Six seeds with the same curve.
        let curve = |bump: bool| {
            let rows = (0..6).flat_map(|seed| {
                (0..400).map(move |e| {
                    let e = e as f64;
                    // Loss falls steeply until 250, then slowly; the norm bumps there if asked.
                    let loss = if e < 250.0 { 1.0 - 0.002 * e } else { 0.5 - 0.0002 * (e - 250.0) };
                    let norm = if bump && (240.0..=260.0).contains(&e) { 0.3 } else { 0.1 };
                    vec![e.into(), loss.into(), norm.into(), Cell::Int(seed)]
                })
            });
            table(&["epoch", "loss", "grad_norm", "seed"], rows.collect())
        };
        let seeds = |n: i64| table(&["seed", "dead"], (0..n).map(|s| vec![Cell::Int(s), Cell::Bool(false)]).collect());
        let summary = seeds(6);
        let f = norm_rises_near_250(&curve(true), &seeds(5)).unwrap();
        assert_eq!(f.verdict, Verdict::Inconclusive, "5 of 5 is p = 1/16 for a fair coin: {}", f.measurement);
        assert!(f.measurement.starts_with("5 of 5 live seeds (sign test p = 0.06250)"), "{}", f.measurement);
        // A dead seed is left out: six seeds of which one died are five live ones.
        let one_dead = table(&["seed", "dead"], (0..6).map(|s| vec![Cell::Int(s), Cell::Bool(s == 3)]).collect());
        assert_eq!(norm_rises_near_250(&curve(true), &one_dead).unwrap().verdict, Verdict::Inconclusive);
        let f = norm_rises_near_250(&curve(true), &summary).unwrap();
        assert_eq!(f.verdict, Verdict::Confirmed, "{}", f.measurement);
        // Six unanimous seeds are what the sign test needs, and they ran.
        assert_eq!((f.seeds_decided(), f.seeds_needed()), (6, Some(6)));
        // The bump starts at 240, where the loss still falls at -0.002 and then at (0.492 - 0.52) / 50.
        assert!(
            f.measurement.contains("norm ×3.00 at epoch 240, loss slope -0.002000 → -0.0005600"),
            "{}",
            f.measurement
        );
        assert_eq!(norm_rises_near_250(&curve(false), &summary).unwrap().verdict, Verdict::NotConfirmed);
    }

    #[test]
    fn c7_wants_low_train_and_much_higher_test_loss() {
        let run = |train: f64, test: f64| {
            table(&["train_loss", "test_loss", "train_acc"], vec![vec![train.into(), test.into(), 0.9.into()]])
        };
        assert_eq!(memorises(&run(0.3, 5.0)).unwrap().verdict, Verdict::Confirmed);
        assert_eq!(memorises(&run(0.3, 0.6)).unwrap().verdict, Verdict::NotConfirmed);
        assert_eq!(memorises(&run(1.5, 9.0)).unwrap().verdict, Verdict::NotConfirmed);
    }

    #[test]
    fn seeds_settle_a_verdict_only_beyond_their_spread() {
        // Margins: mean 2, sd 1, n 3: 2 ± 4.303/√3 = [−0.48, 4.48] does not establish the claim;
        // mean 3: [0.52, 5.48] does; an interval below 0 contradicts it: not confirmed either way.
        assert_eq!(by_interval(&[1.0, 2.0, 3.0]), Verdict::NotConfirmed);
        assert_eq!(by_interval(&[2.0, 3.0, 4.0]), Verdict::Confirmed);
        assert_eq!(by_interval(&[-2.0, -3.0, -4.0]), Verdict::NotConfirmed);
        assert_eq!(by_interval(&[5.0]), Verdict::Inconclusive, "one seed: the spread is unknown");
        assert_eq!(by_interval(&[0.1, 0.1]), Verdict::Confirmed, "no spread at all");
        // Sign test: 6 of 6 is p = 1/32, 5 of 5 is 1/16, 8 of 9 is 0.039, 7 of 9 is 0.18.
        assert_eq!(by_sign_test(6, 0), Verdict::Confirmed);
        assert_eq!(by_sign_test(0, 6), Verdict::NotConfirmed);
        assert_eq!(by_sign_test(5, 0), Verdict::Inconclusive);
        assert_eq!(by_sign_test(8, 1), Verdict::Confirmed);
        assert_eq!(by_sign_test(7, 2), Verdict::NotConfirmed, "nine seeds can decide; 7 of 9 is not enough");
        assert_eq!(by_sign_test(2, 7), Verdict::NotConfirmed);
        assert_eq!(sign_test_seeds(), 6);
        // C10 on three seeds: batch 25 wins on seeds 0 and 2, batch 5 on seed 1.
        let sweep = |rows: &[(i64, i64, f64)]| {
            table(
                &["seed", "batch_size", "test_acc", "sensitivity"],
                rows.iter().map(|&(s, b, a)| vec![Cell::Int(s), Cell::Int(b), a.into(), 0.1.into()]).collect(),
            )
        };
        let mixed = sweep(&[(0, 5, 0.95), (0, 25, 0.96), (1, 5, 0.97), (1, 25, 0.96), (2, 5, 0.94), (2, 25, 0.95)]);
        let f = by_seed(&mixed, best_batch).unwrap();
        assert_eq!(f.verdict, Verdict::NotConfirmed);
        // Margins (points by which the best size in [10, 1000] beats the best outside): +1, −1, +1;
        // mean 1/3, sd 2/√3, so the interval is 1/3 ± 4.303 · (2/√3) / √3.
        assert!(
            f.measurement.starts_with(
                "holds for 2 of 3 seeds (fails on seed 1); margin 0.3333 [-2.535, 3.202] (the seeds do not establish it: \
                 at this spread about 49 seeds would bound it away from 0); all seeds together: best test accuracy at \
                 batch 25"
            ),
            "{}",
            f.measurement
        );
        assert_eq!((f.seeds_decided(), f.seeds_needed()), (3, Some(49)));
        let (lo, hi) = f.interval.unwrap();
        assert!((f.margin.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert!((hi - 1.0 / 3.0 - 4.303 * 2.0 / 3.0).abs() < 1e-9 && (1.0 / 3.0 - lo - (hi - 1.0 / 3.0)).abs() < 1e-9);
        let outcomes: Vec<(&str, Verdict)> = f.seeds.iter().map(|o| (o.seed.as_str(), o.verdict)).collect();
        assert_eq!(outcomes, [("0", Verdict::Confirmed), ("1", Verdict::NotConfirmed), ("2", Verdict::Confirmed)]);
        let agreed = sweep(&[(0, 5, 0.95), (0, 25, 0.96), (1, 5, 0.94), (1, 25, 0.955), (2, 5, 0.94), (2, 25, 0.95)]);
        assert_eq!(by_seed(&agreed, best_batch).unwrap().verdict, Verdict::Confirmed);
        // One seed: its outcome is shown, the verdict is not settled.
        let one = sweep(&[(0, 5, 0.95), (0, 25, 0.96)]);
        let f = by_seed(&one, best_batch).unwrap();
        assert_eq!(f.verdict, Verdict::Inconclusive);
        assert!(
            f.measurement
                .starts_with("holds for 1 of 1 seed; margin 1.000, one seed: the seed-to-seed spread is unknown"),
            "{}",
            f.measurement
        );
    }

    #[test]
    fn c12_reports_a_barrier_and_never_a_verdict() {
        let rows = [-0.5, 0.0, 0.5, 1.0, 1.5]
            .iter()
            .zip([0.9, 0.1, 2.0, 0.2, 3.0])
            .map(|(&a, l)| vec!["0.01".into(), a.into(), l.into(), 0.5.into(), l.into(), 0.5.into()]);
        let t = table(&["lr", "alpha", "train_loss", "train_acc", "test_loss", "test_acc"], rows.collect());
        let f = interpolation_shows(&t, [64, 1024]).unwrap();
        assert_eq!(f.verdict, Verdict::NotTestable);
        assert!(f.measurement.contains("a barrier: test loss 2.000 at α = 0.5"), "{}", f.measurement);
        assert!(f.measurement.contains("0.8000 (batch-64 side) and 2.800 (batch-1024 side)"), "{}", f.measurement);
    }
}
