//! The one seeded generator behind every random draw of the study (initial weights, shuffles,
//! dropout, random labels, sampled data): ChaCha with 12 rounds, from `rand_chacha`, whose
//! generators are documented as deterministic and portable across versions. `rand`'s `StdRng` is
//! the same algorithm today, but its documentation reserves the right to change it in any release,
//! which would silently change every number of the study.

pub type SeededRng = rand_chacha::ChaCha12Rng;

#[cfg(test)]
mod tests {
    use rand::{RngCore, SeedableRng};

    use super::SeededRng;

    #[test]
    fn the_stream_is_chacha12_as_rand_pins_it() {
        // rand 0.9's own value-stability vector for its ChaCha12-based StdRng.
        let seed =
            [1, 0, 0, 0, 23, 0, 0, 0, 200, 1, 0, 0, 210, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut rng = SeededRng::from_seed(seed);
        assert_eq!(rng.next_u64(), 10719222850664546238);
    }

    #[test]
    fn seeding_from_a_number_draws_what_std_rng_drew() {
        // Switching from StdRng changed no number of the study.
        for seed in [0, 1, 7, 0x5eed_da7a, u64::MAX] {
            let mut ours = SeededRng::seed_from_u64(seed);
            let mut std = rand::rngs::StdRng::seed_from_u64(seed);
            let (a, b): (Vec<u64>, Vec<u64>) = (0..64).map(|_| (ours.next_u64(), std.next_u64())).unzip();
            assert_eq!(a, b, "seed {seed}");
        }
    }
}
