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
    bail!("backend `tch` needs a build with `--features tch` (see README: libtorch backend)")
}

#[cfg(not(feature = "tch"))]
fn tch_auto() -> String {
    "auto".to_string()
}
