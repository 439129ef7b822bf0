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
/// what stages run): small trainings side by side in one process allocate and free tensors by
/// the thousand every second, and glibc's malloc made them contend (measured in
/// bench/results/compare-2026-12-02/, on why one commit's timings differed from host to host).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps freed memory in the process for reuse, for both allocators:
///
/// - mimalloc (every Rust allocation) returns pages it has not reused within a second to the
///   system by default, and a stage that frees a large buffer (an evaluation pass's activations,
///   a split) and allocates it again an epoch later pays the page faults and zeroing once more:
///   with purging off the default study spends half the system time, for a tenth more peak
///   resident memory (bench/results/compare-2026-12-02/). `MIMALLOC_PURGE_DELAY`, when set, still decides.
/// - glibc (what C code frees: libtorch's, under the tch feature). Tensors of a few MB are
///   allocated every step; by default glibc serves those with fresh mmaps and hands them back on
///   free, so each step paid page faults and zeroing for every tensor (a quarter of a batched
///   pass's time in a profile, before Rust's allocations went to mimalloc). A fixed mmap
///   threshold of 1 GiB and no trimming keep those pages in the heap for reuse.
///
/// `REPRO_DEFAULT_MALLOC=1` keeps both allocators' defaults (for comparisons).
pub fn tune_allocator() {
    if std::env::var_os("REPRO_DEFAULT_MALLOC").is_some() {
        return;
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only changes mimalloc's policy; it is safe from any thread.
        unsafe { mimalloc_options::mi_option_set(mimalloc_options::PURGE_DELAY, -1) };
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

/// mimalloc's option interface (in the library the `mimalloc` crate links; its Rust declarations
/// sit behind a feature that would build a second copy of the bindings for two functions).
mod mimalloc_options {
    use std::ffi::{c_int, c_long};

    /// `mi_option_purge_delay` in `mi_option_e` (the same place in mimalloc 2 and 3; the crate
    /// builds mimalloc 3).
    pub const PURGE_DELAY: c_int = 15;

    unsafe extern "C" {
        pub fn mi_option_set(option: c_int, value: c_long);
        #[cfg(test)]
        pub fn mi_option_get(option: c_int) -> c_long;
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The option number names the purge delay: unset, it reads mimalloc 3's default of
        /// 1000 ms (`src/options.c`; the options beside it default to 0 or 1). Tests never call
        /// `tune_allocator`.
        #[test]
        fn the_purge_delay_option_is_the_one_set() {
            if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
                assert_eq!(unsafe { mi_option_get(PURGE_DELAY) }, 1000);
            }
        }
    }
}
