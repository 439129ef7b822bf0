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
