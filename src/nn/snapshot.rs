//! A training's state as bytes, exact to the bit, for checkpoints: a module's parameters, the
//! random generator's position, and named arrays of numbers.
//!
//! Layout: a little-endian u32 length, a JSON header (the caller's small state and each array's
//! name, type and length), then the arrays' bytes in order. Floats travel as their bits, never as
//! decimal text, so a resumed training continues from exactly the numbers it stopped at.

use anyhow::{Context, Result, bail, ensure};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use rand::SeedableRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::optim::MomentsOnHost;
use crate::rng::SeededRng;

#[derive(Serialize, Deserialize)]
struct Header {
    state: serde_json::Value,
    /// (name, element type, element count), in the order of the bytes.
    arrays: Vec<(String, Kind, usize)>,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    F32,
    F64,
    U32,
    U8,
}

impl Kind {
    fn width(self) -> usize {
        match self {
            Kind::F32 | Kind::U32 => 4,
            Kind::F64 => 8,
            Kind::U8 => 1,
        }
    }
}

/// Named arrays and a small serialisable state, written together.
#[derive(Default)]
pub struct Snapshot {
    state: serde_json::Value,
    arrays: Vec<(String, Kind, Vec<u8>)>,
}

impl Snapshot {
    pub fn new(state: &impl Serialize) -> Result<Snapshot> {
        Ok(Snapshot { state: serde_json::to_value(state)?, arrays: Vec::new() })
    }

    pub fn state<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.state.clone()).context("the checkpoint's state does not parse")
    }

    pub fn put_f32(&mut self, name: &str, values: &[f32]) {
        self.put(name, Kind::F32, values.iter().flat_map(|v| v.to_le_bytes()).collect());
    }

    pub fn put_f64(&mut self, name: &str, values: &[f64]) {
        self.put(name, Kind::F64, values.iter().flat_map(|v| v.to_le_bytes()).collect());
    }

    pub fn put_u32(&mut self, name: &str, values: &[u32]) {
        self.put(name, Kind::U32, values.iter().flat_map(|v| v.to_le_bytes()).collect());
    }

    pub fn put_bytes(&mut self, name: &str, bytes: &[u8]) {
        self.put(name, Kind::U8, bytes.to_vec());
    }

    fn put(&mut self, name: &str, kind: Kind, bytes: Vec<u8>) {
        assert!(self.arrays.iter().all(|(n, ..)| n != name), "array {name} saved twice");
        self.arrays.push((name.to_string(), kind, bytes));
    }

    fn get(&self, name: &str, kind: Kind) -> Result<&[u8]> {
        let (_, found, bytes) = self
            .arrays
            .iter()
            .find(|(n, ..)| n == name)
            .with_context(|| format!("the checkpoint has no array `{name}`"))?;
        ensure!(*found == kind, "array `{name}` holds {found:?}, not {kind:?}");
        Ok(bytes)
    }

    pub fn f32s(&self, name: &str) -> Result<Vec<f32>> {
        Ok(self.get(name, Kind::F32)?.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
    }

    pub fn f64s(&self, name: &str) -> Result<Vec<f64>> {
        Ok(self.get(name, Kind::F64)?.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect())
    }

    pub fn u32s(&self, name: &str) -> Result<Vec<u32>> {
        Ok(self.get(name, Kind::U32)?.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect())
    }

    /// Adam's state (both moments and the step count), where an optimiser has one.
    pub fn put_adam(&mut self, adam: &MomentsOnHost) {
        self.put_f32("adam_m", &adam.m);
        self.put_f32("adam_v", &adam.v);
        self.put_u32("adam_t", &[u32::try_from(adam.t).expect("a step count is never negative")]);
    }

    /// What [`Snapshot::put_adam`] saved; `None` where nothing was (an optimiser before its
    /// first step, a finished run).
    pub fn adam(&self) -> Result<Option<MomentsOnHost>> {
        if !self.arrays.iter().any(|(n, ..)| n == "adam_t") {
            return Ok(None);
        }
        let t = i32::try_from(*self.u32s("adam_t")?.first().context("an empty step count")?)?;
        Ok(Some(MomentsOnHost { m: self.f32s("adam_m")?, v: self.f32s("adam_v")?, t }))
    }

    pub fn bytes(&self, name: &str) -> Result<Vec<u8>> {
        Ok(self.get(name, Kind::U8)?.to_vec())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = Header {
            state: self.state.clone(),
            arrays: self.arrays.iter().map(|(n, k, b)| (n.clone(), *k, b.len() / k.width())).collect(),
        };
        let json = serde_json::to_vec(&header)?;
        let mut out = Vec::with_capacity(4 + json.len() + self.arrays.iter().map(|a| a.2.len()).sum::<usize>());
        out.extend_from_slice(&u32::try_from(json.len())?.to_le_bytes());
        out.extend_from_slice(&json);
        for (_, _, bytes) in &self.arrays {
            out.extend_from_slice(bytes);
        }
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot> {
        let len = u32::from_le_bytes(bytes.get(..4).context("a checkpoint too short")?.try_into()?) as usize;
        let json = bytes.get(4..4 + len).context("a checkpoint shorter than its header says")?;
        let header: Header = serde_json::from_slice(json).context("the checkpoint's header does not parse")?;
        let mut at = 4 + len;
        let mut arrays = Vec::new();
        for (name, kind, count) in header.arrays {
            let end = at + count * kind.width();
            let data = bytes.get(at..end).with_context(|| format!("the checkpoint ends inside array `{name}`"))?;
            arrays.push((name, kind, data.to_vec()));
            at = end;
        }
        if at != bytes.len() {
            bail!("{} bytes after the checkpoint's last array", bytes.len() - at);
        }
        Ok(Snapshot { state: header.state, arrays })
    }
}

/// Where a [`SeededRng`] stands: its seed, stream and position, which place it exactly.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RngPosition {
    seed: [u8; 32],
    stream: u64,
    /// In 32-bit words; as text, since JSON numbers stop short of 128 bits.
    word: String,
}

impl RngPosition {
    pub fn of(rng: &SeededRng) -> RngPosition {
        RngPosition { seed: rng.get_seed(), stream: rng.get_stream(), word: rng.get_word_pos().to_string() }
    }

    pub fn restore(&self) -> Result<SeededRng> {
        let mut rng = SeededRng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word.parse().context("a generator position that is not a number")?);
        Ok(rng)
    }
}

/// Every float parameter of `module`, in the module's visiting order, flattened and concatenated.
pub fn module_values<M: Module>(module: &M) -> Vec<f32> {
    struct Gather(Vec<f32>);
    impl ModuleVisitor for Gather {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(super::values(param.val().inner()));
        }
    }
    let mut gather = Gather(Vec::new());
    module.visit(&mut gather);
    gather.0
}

/// `module` with its float parameters replaced by `values` (as [`module_values`] lays them out),
/// each keeping whether it is trained.
pub fn with_module_values<M: Module>(module: M, values: &[f32]) -> Result<M> {
    struct Scatter<'a> {
        values: &'a [f32],
        at: usize,
        short: bool,
    }
    impl ModuleMapper for Scatter<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|value| {
                let shape = value.shape();
                let n = shape.num_elements();
                let Some(slice) = self.values.get(self.at..self.at + n) else {
                    self.short = true;
                    return value;
                };
                self.at += n;
                let require_grad = value.is_require_grad();
                let restored = Tensor::<D>::from_data(TensorData::new(slice.to_vec(), shape), &value.device());
                if require_grad { restored.require_grad() } else { restored }
            })
        }
    }
    let mut scatter = Scatter { values, at: 0, short: false };
    let module = module.map(&mut scatter);
    ensure!(
        !scatter.short && scatter.at == values.len(),
        "the checkpoint holds {} parameters, the model {}",
        values.len(),
        if scatter.short { "more".to_string() } else { scatter.at.to_string() }
    );
    Ok(module)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, RngCore};

    use super::*;
    use crate::nn::{Activation, Init, Mlp};

    #[test]
    fn arrays_and_state_come_back_bit_for_bit() {
        let mut snapshot = Snapshot::new(&("epoch", 7u64)).unwrap();
        let awkward = [0.1f32, -0.0, f32::MIN_POSITIVE / 3.0, f32::NAN, f32::INFINITY, 1.0 + f32::EPSILON];
        snapshot.put_f32("w", &awkward);
        snapshot.put_f64("loss", &[0.1, 1e-310, f64::NAN]);
        snapshot.put_u32("order", &[3, 1, 2]);
        let back = Snapshot::from_bytes(&snapshot.to_bytes().unwrap()).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.f32s("w").unwrap()), bits(&awkward));
        let loss: Vec<u64> = back.f64s("loss").unwrap().iter().map(|x| x.to_bits()).collect();
        assert_eq!(loss, [0.1f64.to_bits(), 1e-310f64.to_bits(), f64::NAN.to_bits()]);
        assert_eq!(back.u32s("order").unwrap(), [3, 1, 2]);
        assert!(back.adam().unwrap().is_none(), "no optimiser state saved");
        let mut with_adam = Snapshot::new(&()).unwrap();
        with_adam.put_adam(&MomentsOnHost { m: vec![0.5, -0.0], v: vec![1e-30, 2.0], t: 7 });
        let adam = Snapshot::from_bytes(&with_adam.to_bytes().unwrap()).unwrap().adam().unwrap().unwrap();
        assert_eq!((bits(&adam.m), bits(&adam.v), adam.t), (bits(&[0.5, -0.0]), bits(&[1e-30, 2.0]), 7));
        assert_eq!(back.state::<(String, u64)>().unwrap(), ("epoch".to_string(), 7));
        assert!(back.f32s("missing").is_err() && back.f64s("w").is_err());
        let bytes = snapshot.to_bytes().unwrap();
        assert!(Snapshot::from_bytes(&bytes[..bytes.len() - 1]).is_err(), "a truncated checkpoint");
    }

    #[test]
    fn a_generator_resumes_where_it_stood() {
        let mut rng = SeededRng::seed_from_u64(42);
        // An odd number of 32-bit draws leaves the generator inside a 64-bit word and a block.
        for _ in 0..37 {
            rng.next_u32();
        }
        let _: f64 = rng.random();
        let position = RngPosition::of(&rng);
        let json = serde_json::to_string(&position).unwrap();
        let mut resumed = serde_json::from_str::<RngPosition>(&json).unwrap().restore().unwrap();
        let ahead: Vec<u64> = (0..100).map(|_| rng.next_u64()).collect();
        let again: Vec<u64> = (0..100).map(|_| resumed.next_u64()).collect();
        assert_eq!(ahead, again);
    }

    #[test]
    fn module_values_round_trip_into_another_model() {
        let device = Device::flex().autodiff();
        let a = Mlp::new(&[3, 5, 2], Activation::Relu, &mut Init::new(1), &device);
        let b = Mlp::new(&[3, 5, 2], Activation::Relu, &mut Init::new(2), &device);
        let values = module_values(&a);
        assert_eq!(values, a.flat(), "the visiting order is Mlp::flat's");
        let restored = with_module_values(b, &values).unwrap();
        assert_eq!(restored.flat(), a.flat());
        assert!(restored.layers[0].weight.val().is_require_grad(), "still trained");
        let other = Mlp::new(&[3, 4, 2], Activation::Relu, &mut Init::new(2), &device);
        assert!(with_module_values(other.clone(), &values).is_err(), "too many values");
        assert!(with_module_values(other, &values[..10]).is_err(), "too few values");
    }
}
