//! repro: re-runs a deep-learning study as a reproducible, content-addressed batch pipeline.
//!
//! - [`engine`]: stage graph, keys, store, scheduler (generic, knows nothing of neural networks);
//! - [`config`]: `pipeline.toml`; [`experiments`]: the study, one file per experiment;
//! - [`data`], [`nn`], [`analysis`], [`plot`], [`report`]: what the experiments are made of;
//! - [`app`]: the commands behind the CLI.

pub mod analysis;
pub mod app;
pub mod config;
pub mod data;
pub mod engine;
pub mod experiments;
pub mod nn;
pub mod plot;
pub mod report;
