//! repro: re-runs a deep-learning study as a reproducible, content-addressed batch pipeline.
//!
//! - [`engine`]: stage graph, keys, store, scheduler (generic, knows nothing of neural networks);
//! - [`config`]: `pipeline.toml`; [`experiments`]: one folder per experiment, and their registry;
//! - [`study`]: the whole graph, the report stage and the claims it checks;
//! - [`data`], [`nn`], [`training`], [`analysis`], [`plot`], [`report`]: what the experiments are
//!   made of (training code never reaches figure or report code, so their edits retrain nothing);
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
pub mod rng;
pub mod study;
pub mod training;

/// mimalloc serves every Rust allocation (binaries, examples and tests alike, so benchmarks time
/// what stages run): two single sim_functions trainings side by side in one process took
/// 1.03-1.10 s each with glibc's malloc and 0.85-0.93 s with it (alone, 0.97 s with glibc), a
/// random_labels training 5 % less; the 952k-parameter MLP, whose buffers are large, the same.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps memory that C code frees (libtorch's, under the tch feature) in the process (glibc).
/// Tensors of a few MB are allocated every step; by default glibc serves those with fresh mmaps
/// and hands them back on free, so each step paid page faults and zeroing for every tensor (a
/// quarter of a batched pass's time in a profile, before Rust's allocations went to mimalloc). A
/// fixed mmap threshold of 1 GiB and no trimming keep those pages in the heap for reuse.
/// `REPRO_DEFAULT_MALLOC=1` keeps glibc's defaults (for comparisons).
pub fn tune_allocator() {
    if std::env::var_os("REPRO_DEFAULT_MALLOC").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
        const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
        // SAFETY: mallopt only changes glibc's allocation policy; called before other threads start.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 1 << 30);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
        }
    }
}
