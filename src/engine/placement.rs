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
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{model}; {}", vector_set())
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
