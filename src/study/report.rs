//! The report stage: every experiment's section, the claims table and the provenance, written as
//! `report.md` and `report.html`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::claims;
use crate::config::Config;
use crate::engine::lineage::{self, Entry, Lineage};
use crate::engine::{Stage, StageContext, StageKind};
use crate::experiments::Experiment;
use crate::report::{self, ReportHeader, Section, duration};

static REPORT: StageKind = StageKind::plain("report", write_report);

#[derive(Serialize, Deserialize)]
struct ReportParams {
    config: Config,
    /// The commit the binary was built from: part of the key, so the report always names the
    /// code that stands behind it.
    commit: String,
    /// The configuration "What changed since the previous run" compares with (its results are
    /// pinned inputs under [`PREVIOUS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<PreviousRun>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PreviousRun {
    label: String,
    config: Config,
}

/// Where the previous run's results sit among the report's inputs: `previous/<id>/<name>`.
pub const PREVIOUS: &str = "previous/";

/// The run the report compares with: the newest in the workspace's run log whose configuration
/// differs from this one, and which of its report inputs the store holds.
#[derive(Clone, Debug)]
pub struct Previous {
    /// `the run of 2026-12-02 16:59 UTC (pipeline.toml --profile quick)`.
    pub label: String,
    pub config: Config,
    /// Its report inputs in the store, `<id>/<name>` -> blake3.
    pub inputs: BTreeMap<String, String>,
}

/// The commit this binary was built from (`-dirty` with uncommitted source changes).
pub const COMMIT: &str = env!("REPRO_GIT_COMMIT");

/// The report stage of `config`, compared with `previous` when there is one; the caller adds
/// the experiments' report inputs.
pub fn stage(config: &Config, previous: Option<&Previous>) -> Stage {
    let params = ReportParams {
        config: crate::config::result_config(config),
        commit: COMMIT.to_string(),
        previous: previous
            .map(|p| PreviousRun { label: p.label.clone(), config: crate::config::result_config(&p.config) }),
    };
    let mut stage = Stage::new(&REPORT, &[], &params).publish("").with_lineage();
    for (name, hash) in previous.map(|p| &p.inputs).into_iter().flatten() {
        stage = stage.pinned_input(format!("{PREVIOUS}{name}"), hash);
    }
    stage
}

fn write_report(ctx: &StageContext) -> Result<()> {
    let ReportParams { config, commit, previous } = ctx.params()?;
    let lineage = Lineage::read(ctx.input(lineage::INPUT)?)?;
    let inputs = Inputs { ctx };
    let mut sections = Vec::new();
    for experiment in config.experiments.configured() {
        sections.push(experiment.section(&inputs.of(experiment.id()))?);
    }
    let producers = inputs.producers();
    for section in &mut sections {
        section.annotate_figures(|png| producers.get(png).and_then(|stage| figure_provenance(&lineage, stage)));
        what_ran(section, &lineage);
    }
    let findings = claims::evaluate(&|id| inputs.of(id), &config)?;
    claims::table(&findings)?.write_csv(&ctx.output("claims.csv")?)?;
    sections.insert(0, claims::section(&findings));
    if let Some(previous) = previous {
        let before = |id: &str| Some(inputs.of(&format!("{PREVIOUS}{id}"))).filter(|m| !m.is_empty());
        let now = |id: &str| Some(inputs.of(id)).filter(|m| !m.is_empty());
        let d = super::diff::diff(
            &super::diff::Side { config: &previous.config, inputs: &before },
            &super::diff::Side { config: &config, inputs: &now },
        )?;
        let mut changes = super::diff::section(&d, &previous.label);
        for experiment in config.experiments.configured() {
            previous_behind(ctx, &inputs, experiment, &mut changes)?;
        }
        sections.insert(0, changes);
    }
    sections.push(provenance(&lineage, &config)?);

    let header = ReportHeader {
        commit,
        config_hash: config_hash(&config)?,
        compute: compute_used(&lineage),
        stages: lineage.stages.len(),
        compute_seconds: lineage.stages.iter().map(|e| e.seconds).sum(),
    };
    report::write(&header, &sections, &ctx.output("report.md")?, &ctx.output("report.html")?)
}

/// Every figure of `experiment` whose data changed since the previous run, drawn again with the
/// previous run's curves faintly behind this run's (as `changed/<id>/<figure>`), added to the
/// "What changed" section. Tables of the previous run that this code cannot draw (written by an
/// older version) are said so, not fatal.
fn previous_behind(
    ctx: &StageContext,
    inputs: &Inputs,
    experiment: &dyn Experiment,
    changes: &mut Section,
) -> Result<()> {
    let id = experiment.id();
    let before = inputs.of(&format!("{PREVIOUS}{id}"));
    if before.is_empty() {
        return Ok(());
    }
    let now = experiment.figures(&inputs.of(id))?;
    let before = match experiment.figures(&before) {
        Ok(figures) => figures,
        Err(e) => {
            changes.text(format!("{id}: the previous run's figures cannot be drawn from its tables ({e:#})."));
            return Ok(());
        }
    };
    for figure in &now {
        let Some(over) = before.iter().find(|b| b.name == figure.name).and_then(|b| figure.over(b)) else {
            continue;
        };
        let name = format!("changed/{id}/{}", over.name);
        over.render(&ctx.output(&name)?)?;
        let title = over.panels.iter().map(|c| c.title.as_str()).collect::<Vec<_>>().join("; ");
        changes.figure(
            format!("{id}: {title} (the previous run's curves faint behind this run's)"),
            format!("{name}.png"),
            &ctx.output(&format!("{name}.png"))?,
        );
    }
    Ok(())
}

/// The backends and devices numeric stages ran on, as `tch` on `cuda:0`, `flex` on `cpu`.
fn compute_used(lineage: &Lineage) -> String {
    let used: BTreeSet<String> = lineage
        .stages
        .iter()
        .filter(|e| e.backend != "-")
        .map(|e| format!("`{}` on `{}`", e.backend, e.device))
        .collect();
    if used.is_empty() { "no numeric stage".to_string() } else { used.into_iter().collect::<Vec<_>>().join(", ") }
}

/// blake3 of the effective configuration (after profiles and `-s` overrides), as canonical JSON.
pub fn config_hash(config: &Config) -> Result<String> {
    Ok(crate::engine::hash_bytes(&serde_json::to_vec(config)?))
}

/// The report's inputs, seen per experiment (`<id>/<name>` -> `<name>`).
struct Inputs<'a> {
    ctx: &'a StageContext<'a>,
}

impl Inputs<'_> {
    fn of(&self, id: &str) -> BTreeMap<String, PathBuf> {
        let prefix = format!("{id}/");
        self.ctx
            .inputs
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), v.clone())))
            .collect()
    }

    /// Input file -> the stage that produced it.
    fn producers(&self) -> BTreeMap<PathBuf, String> {
        self.ctx
            .stage
            .inputs
            .iter()
            .filter_map(|i| Some((self.ctx.inputs.get(&i.name)?.clone(), i.stage.clone())))
            .collect()
    }
}

/// "made by stage S (key K) from N stages: kind: params; ...".
fn figure_provenance(lineage: &Lineage, stage: &str) -> Option<String> {
    let entry = lineage.get(stage)?;
    let upstream = lineage.upstream_of(stage);
    let by_kind = group_by_kind(upstream.into_iter().filter(|e| e.stage != stage));
    let from: Vec<String> = by_kind
        .iter()
        .map(|(kind, entries)| {
            let params = summarise_params(entries);
            if params.is_empty() {
                format!("{} × `{kind}`", entries.len())
            } else {
                format!("{} × `{kind}` ({params})", entries.len())
            }
        })
        .collect();
    let own = summarise_params(&[entry]);
    Some(format!(
        "Made by `{}` (key `{}`{}) from {}.",
        entry.stage,
        &entry.key[..12],
        if own.is_empty() { String::new() } else { format!(", {own}") },
        from.join("; ")
    ))
}

/// Entries per kind, kinds in pipeline order (the lineage lists dependencies first).
fn group_by_kind<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<(&'a str, Vec<&'a Entry>)> {
    let mut groups: Vec<(&str, Vec<&Entry>)> = Vec::new();
    for e in entries {
        match groups.iter_mut().find(|(kind, _)| *kind == e.kind) {
            Some((_, list)) => list.push(e),
            None => groups.push((e.kind.as_str(), vec![e])),
        }
    }
    groups
}

/// Params shared by all `entries` as `name=value`, and those that vary as `name ∈ {a, b}`.
pub fn summarise_params(entries: &[&Entry]) -> String {
    let names: BTreeSet<&String> = entries.iter().flat_map(|e| e.params.keys()).collect();
    let mut parts = Vec::new();
    for name in names {
        let mut values: Vec<String> = Vec::new();
        for e in entries {
            let v = e.params.get(name).map_or("-".to_string(), short_value);
            if !values.contains(&v) {
                values.push(v);
            }
        }
        if values.len() == 1 {
            parts.push(format!("{name}={}", values[0]));
        } else if values.len() <= 8 {
            parts.push(format!("{name} ∈ {{{}}}", values.join(", ")));
        } else {
            parts.push(format!("{name}: {} values ({} … {})", values.len(), values[0], values[values.len() - 1]));
        }
    }
    parts.join(", ")
}

fn short_value(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        // Settings held as f32 print as written (1e-4, not 9.999999747378752e-5).
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if (x as f32) as f64 == x { (x as f32).to_string() } else { x.to_string() }
        }
        other => other.to_string(),
    };
    if s.chars().count() > 48 { format!("{}…", s.chars().take(45).collect::<String>()) } else { s }
}

/// The stages behind a section: per kind, their params; per instance, key, backend, device, time.
fn what_ran(section: &mut Section, lineage: &Lineage) {
    let prefix = format!("{}.", section.id);
    let mine: Vec<&Entry> = lineage.stages.iter().filter(|e| e.stage.starts_with(&prefix)).collect();
    if mine.is_empty() {
        return;
    }
    let total: f64 = mine.iter().map(|e| e.seconds).sum();
    let by_kind = group_by_kind(mine.iter().copied());
    let rows = by_kind
        .iter()
        .map(|(kind, entries)| {
            let seconds: f64 = entries.iter().map(|e| e.seconds).sum();
            let on: BTreeSet<String> = entries.iter().map(|e| format!("{} / {}", e.backend, e.device)).collect();
            vec![
                format!("`{kind}`"),
                entries.len().to_string(),
                on.into_iter().collect::<Vec<_>>().join(", "),
                duration(seconds),
                summarise_params(entries),
            ]
        })
        .collect();
    section.rows(
        format!("What ran: {} stages, {} of compute", mine.len(), duration(total)),
        ["stage kind", "instances", "backend / device", "wall time", "params"].map(String::from).to_vec(),
        rows,
        false,
    );
    let rows = mine
        .iter()
        .map(|e| {
            vec![
                format!("`{}`", e.stage),
                format!("`{}`", &e.key[..12]),
                e.backend.clone(),
                e.device.clone(),
                duration(e.seconds),
            ]
        })
        .collect();
    section.rows(
        "Every stage instance (key, backend, device, wall time)",
        ["stage", "key", "backend", "device", "wall time"].map(String::from).to_vec(),
        rows,
        true,
    );
}

/// The appendix: the effective configuration and every stage behind the report.
fn provenance(lineage: &Lineage, config: &Config) -> Result<Section> {
    let mut s = Section::new("provenance", "Provenance");
    s.text(format!(
        "Commit `{}`, effective configuration blake3 `{}` (below, after profiles and `-s` overrides). A stage's key \
         is the blake3 of its kind, of every source file its run function reaches (derived from the code; `repro dag \
         --code` lists them) and of Cargo.lock's dependency versions, its params, the blake3 of its inputs and, for \
         numeric stages, the backend and device; `repro status` explains any difference. \
         `manifest.json` lists every artifact with its blake3 and the key of the stage that produced it.",
        COMMIT,
        config_hash(config)?
    ));
    s.code(toml::to_string(config).unwrap_or_else(|_| serde_json::to_string_pretty(config).unwrap_or_default()));
    let rows = lineage
        .stages
        .iter()
        .map(|e| {
            vec![
                format!("`{}`", e.stage),
                format!("`{}`", &e.key[..16]),
                format!("{} / {}", e.backend, e.device),
                duration(e.seconds),
                summarise_params(&[e]),
            ]
        })
        .collect();
    s.rows(
        format!("All {} stages behind this report", lineage.stages.len()),
        ["stage", "key", "backend / device", "wall time", "params"].map(String::from).to_vec(),
        rows,
        true,
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(stage: &str, params: Value) -> Entry {
        Entry {
            stage: stage.into(),
            kind: "k".into(),
            key: "0".repeat(64),
            params: serde_json::from_value(params).unwrap(),
            backend: "flex".into(),
            device: "cpu".into(),
            seconds: 1.0,
            deps: vec![],
            outputs: BTreeMap::new(),
        }
    }

    #[test]
    fn params_summary_names_shared_and_varying_values() {
        let a = entry("a", json!({"lr": 0.001, "seed": 0, "widths": [1, 5, 1]}));
        let b = entry("b", json!({"lr": 0.001, "seed": 1, "widths": [1, 5, 1]}));
        assert_eq!(summarise_params(&[&a, &b]), "lr=0.001, seed ∈ {0, 1}, widths=[1,5,1]");
        let many: Vec<Entry> = (0..100).map(|i| entry("x", json!({ "seed": i }))).collect();
        let refs: Vec<&Entry> = many.iter().collect();
        assert_eq!(summarise_params(&refs), "seed: 100 values (0 … 99)");
        let f32_setting = entry("c", json!({ "weight_decay": 1e-4f32 }));
        assert_eq!(summarise_params(&[&f32_setting]), "weight_decay=0.0001");
    }
}
