//! The one place that turns the `backend` / `device` settings into a burn device.

use anyhow::{Result, bail};
use burn::prelude::Device;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
/// The training backend: burn's pure-Rust CPU backend, or libtorch.
pub enum Backend {
    Flex,
    Tch,
}

impl Backend {
    /// The name pipeline.toml, keys and records use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Tch => "tch",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> Result<Backend> {
        [Backend::Flex, Backend::Tch]
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| anyhow::anyhow!("unknown backend `{name}` (known: flex, tch)"))
    }
}

/// Where numeric stages compute.
#[derive(Clone, Debug)]
pub struct Compute {
    pub backend: Backend,
    /// The device as written in the settings (`cpu`, `auto`, `cuda:0`).
    pub device: String,
}

impl Compute {
    /// The settings with `device = "auto"` resolved to the device it means on this machine, so
    /// that keys and records name the device that really computed.
    pub fn from_settings(backend: Backend, device: &str) -> Result<Compute> {
        let device = match (backend, device) {
            (Backend::Tch, "auto") => tch_auto(),
            (Backend::Flex, "auto") => "cpu".to_string(),
            (_, other) => other.to_string(),
        };
        let compute = Compute { backend, device };
        compute.device()?;
        Ok(compute)
    }

    /// The settings a numeric stage was handed by the engine. On libtorch's CPU, the stage's
    /// thread budget also bounds libtorch's own parallel regions on this thread (by default
    /// libtorch uses every core in each stage, so stages side by side would oversubscribe them).
    pub fn for_stage(ctx: &crate::engine::StageContext) -> Result<Compute> {
        let env = ctx.env;
        let compute = Compute { backend: env.backend.parse()?, device: env.device.clone() };
        compute.device()?;
        if compute.backend == Backend::Tch {
            limit_tch_threads(ctx.threads);
        }
        flush_subnormals();
        Ok(compute)
    }

    /// The device class that enters numeric stage keys (numbers differ between them).
    pub fn class(&self) -> (String, String) {
        (self.backend.name().to_string(), self.device.clone())
    }

    /// The plain (inference) device.
    pub fn device(&self) -> Result<Device> {
        match (self.backend, self.device.as_str()) {
            (Backend::Flex, "cpu") => Ok(Device::flex()),
            (Backend::Flex, other) => bail!("the flex backend runs on `cpu` only, not `{other}`"),
            (Backend::Tch, _) => tch_device(&self.device),
        }
    }

    /// The same device with autodiff, for training.
    pub fn training_device(&self) -> Result<Device> {
        Ok(self.device()?.autodiff())
    }
}

/// Subnormal floats (below 1.2e-38 in magnitude) are computed as zero from here on, on this thread
/// and, inside a rayon pool (a stage's), on every thread of it.
///
/// Why: Adam's moments of a unit whose gradient has died decay geometrically through the
/// subnormal range, and so do the small weights and activations of deep, narrow nets; every
/// multiply-add that meets a subnormal takes a microcode assist on x86, about a hundred times an
/// ordinary one. sim_functions' f2 runs of M1 spent two thirds of their time there (bench/results/compare-2026-12-02/).
/// No number the study reports is within 1e-30 of them.
/// A stage's pool is made for it and dropped after, so the mode never reaches other stages.
pub fn flush_subnormals() {
    if rayon::current_thread_index().is_some() {
        rayon::broadcast(|_| flush_subnormals_on_this_thread());
    } else {
        flush_subnormals_on_this_thread();
    }
}

#[cfg(target_arch = "x86_64")]
fn flush_subnormals_on_this_thread() {
    // MXCSR: flush-to-zero (bit 15) for results, denormals-are-zero (bit 6) for inputs.
    let mut csr: u32 = 0;
    // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register only.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
        csr |= (1 << 15) | (1 << 6);
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags));
    }
}

#[cfg(target_arch = "aarch64")]
fn flush_subnormals_on_this_thread() {
    // FPCR.FZ (bit 24): subnormal inputs and results are zero.
    // SAFETY: reads and writes this thread's floating-point control register only.
    unsafe {
        let mut fpcr: u64;
        std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags));
        fpcr |= 1 << 24;
        std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack, preserves_flags));
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn flush_subnormals_on_this_thread() {}

#[cfg(feature = "tch")]
#[allow(deprecated)] // burn-tch is deprecated upstream; it is still the way to libtorch and CUDA here
fn tch_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::libtorch()),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if (n as i64) < tch::Cuda::device_count() => Ok(Device::libtorch_cuda(n)),
            Some(_) => bail!("device `{other}`: libtorch sees {} CUDA device(s)", tch::Cuda::device_count()),
            None => bail!("unknown tch device `{other}` (expected cpu, auto or cuda:N)"),
        },
    }
}

/// `auto` on tch: the first CUDA device when libtorch has one, else the CPU.
#[cfg(feature = "tch")]
fn tch_auto() -> String {
    if tch::Cuda::is_available() { "cuda:0".to_string() } else { "cpu".to_string() }
}

/// libtorch's intra-op threads for parallel regions started from this thread (OpenMP and MKL
/// keep the setting per calling thread).
#[cfg(feature = "tch")]
pub fn limit_tch_threads(threads: usize) {
    tch::set_num_threads(threads.clamp(1, i32::MAX as usize) as i32);
}

#[cfg(not(feature = "tch"))]
pub fn limit_tch_threads(_threads: usize) {}

#[cfg(not(feature = "tch"))]
fn tch_device(_: &str) -> Result<Device> {
    bail!("backend `tch` needs a build with `--features tch` (see docs/src/backends.md)")
}

#[cfg(not(feature = "tch"))]
fn tch_auto() -> String {
    "auto".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Half the smallest normal float, computed where the compiler cannot fold it.
    fn half_smallest_normal() -> f32 {
        std::hint::black_box(f32::MIN_POSITIVE) * std::hint::black_box(0.5)
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn subnormals_flush_on_every_thread_of_the_pool_and_nowhere_else() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let before: Vec<f32> = pool.broadcast(|_| half_smallest_normal());
        assert!(before.iter().all(|&v| v > 0.0 && !v.is_normal()), "subnormal by default: {before:?}");
        pool.install(flush_subnormals);
        let after: Vec<f32> = pool.broadcast(|_| half_smallest_normal());
        assert_eq!(after, vec![0.0, 0.0], "flushed on both threads of the pool");
        let outside = std::thread::spawn(half_smallest_normal).join().unwrap();
        assert!(outside > 0.0, "another thread keeps subnormals");
        // Normal numbers are untouched.
        assert_eq!(pool.install(|| std::hint::black_box(1.5f32) * std::hint::black_box(2.0)), 3.0);
    }
}
