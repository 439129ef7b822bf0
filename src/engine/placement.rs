//! Where numeric stages compute: the backend and device every stage is keyed on, and the split that
//! sends small stages to the CPU when an accelerator is there.

/// What numeric stages are keyed on besides their code, params and inputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Environment {
    pub backend: String,
    pub device: String,
    /// Per-stage placement: stages that declare less work per step than `min_work` run on the
    /// `small` backend and device instead (tiny networks lose on a GPU: each step is a few kernel
    /// launches).
    pub split: Option<Split>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub min_work: u64,
    /// (backend, device) of the stages below `min_work`.
    pub small: (String, String),
}

impl Environment {
    /// The split that sends a stage of `work` MACs per step to its small backend and device, if one does.
    fn small_for(&self, work: Option<u64>) -> Option<&Split> {
        self.split.as_ref().filter(|split| work.is_some_and(|work| work < split.min_work))
    }

    /// The environment a stage of `work` MACs per step computes in after placement, no further split.
    pub fn for_work(&self, work: Option<u64>) -> Environment {
        let (backend, device) = match self.small_for(work) {
            Some(split) => split.small.clone(),
            None => (self.backend.clone(), self.device.clone()),
        };
        Environment { backend, device, split: None }
    }

    /// Whether a stage computes on the accelerator of a split placement (numeric stages only: a
    /// plain stage's environment does not matter).
    pub fn on_accelerator(&self, numeric: bool, work: Option<u64>) -> bool {
        numeric && self.split.is_some() && self.small_for(work).is_none()
    }
}

/// This machine's CPU as records name it: its model, and the widest vector set the kernels
/// dispatch on (`Intel(R) Xeon(R) Processor; avx512f`).
pub fn this_machine() -> String {
    static MACHINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MACHINE.get_or_init(describe_machine).clone()
}

fn describe_machine() -> String {
    let model = cpu_brand()
        .or_else(|| {
            let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
            let line = info.lines().find(|l| l.starts_with("model name"))?;
            Some(line.split_once(':')?.1.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{model}; {}", vector_set())
}

/// The processor's brand string from CPUID, as the CPU itself (or an emulator posing as one)
/// gives it: /proc/cpuinfo names the host's CPU even under user-mode emulation.
fn cpu_brand() -> Option<String> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        // CPUID exists on every x86-64 CPU (safe to call there); leaves above the highest
        // extended one are not read.
        let highest = __cpuid(0x8000_0000).eax;
        if highest < 0x8000_0004 {
            return None;
        }
        let bytes: Vec<u8> = (0x8000_0002u32..=0x8000_0004)
            .flat_map(|leaf| {
                let r = __cpuid(leaf);
                [r.eax, r.ebx, r.ecx, r.edx].into_iter().flat_map(u32::to_le_bytes)
            })
            .collect();
        let brand = String::from_utf8_lossy(&bytes).trim_matches(char::from(0)).trim().to_string();
        (!brand.is_empty()).then_some(brand)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

fn vector_set() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            "avx512f"
        } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            "avx2+fma"
        } else if std::arch::is_x86_feature_detected!("avx2") {
            "avx2"
        } else {
            "sse2"
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH
    }
}

#[cfg(test)]
mod tests {
    /// Linux reads the model name from the same CPUID leaves: natively the two agree.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_cpuid_brand_is_the_model_name_linux_reports() {
        let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else { return };
        let Some(model) = info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')) else {
            return;
        };
        let brand = super::cpu_brand().expect("an x86-64 CPU with a brand string");
        // Linux collapses runs of spaces in the brand string; compare the words.
        let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(&brand), words(model.1), "{brand:?}");
        assert!(super::this_machine().starts_with(&brand));
    }
}
