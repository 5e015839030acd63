//! [pure] Seeded randomness and key choice. Every random choice of a run comes from the seed,
//! so a run's sequence of requests per session is reproducible.

use crate::options::Distribution;

/// xorshift64*: small, fast and good enough to pick keys (not for cryptography).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator per (seed, stream): distinct sessions get independent streams.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let state = crate::value::mix(stream as u32, seed ^ (stream << 32));
        Rng {
            state: if state == 0 { 0x9E37_79B9 } else { state },
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..bound` (Lemire's multiply-shift; the bias is below 2^-32 for our bounds).
    pub fn below(&mut self, bound: u32) -> u32 {
        (((self.next_u64() >> 32) * bound as u64) >> 32) as u32
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks keys in `0..key_count` following the distribution.
#[derive(Debug, Clone)]
pub struct KeyChooser {
    key_count: u32,
    distribution: Distribution,
}

impl KeyChooser {
    pub fn new(key_count: usize, distribution: Distribution) -> KeyChooser {
        assert!(key_count > 0 && key_count <= u32::MAX as usize);
        KeyChooser {
            key_count: key_count as u32,
            distribution,
        }
    }

    pub fn choose(&self, rng: &mut Rng) -> u32 {
        match self.distribution {
            Distribution::Uniform => rng.below(self.key_count),
            Distribution::HotKey {
                hot_fraction,
                hot_keys,
            } => {
                if rng.unit() < hot_fraction {
                    rng.below(hot_keys.min(self.key_count))
                } else {
                    rng.below(self.key_count)
                }
            }
        }
    }

    /// `count` distinct keys (a multi names each key once, so its writes are independent).
    pub fn choose_distinct(&self, rng: &mut Rng, count: usize, out: &mut Vec<u32>) {
        assert!(count <= self.key_count as usize);
        out.clear();
        while out.len() < count {
            let key = self.choose(rng);
            if !out.contains(&key) {
                out.push(key);
            } else if out.len() as u32 >= self.hot_keys_or_all() {
                // The hot set is exhausted: draw the rest uniformly so this always ends.
                let key = rng.below(self.key_count);
                if !out.contains(&key) {
                    out.push(key);
                }
            }
        }
    }

    fn hot_keys_or_all(&self) -> u32 {
        match self.distribution {
            Distribution::Uniform => self.key_count,
            Distribution::HotKey { hot_keys, .. } => hot_keys.min(self.key_count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_streams_differ() {
        let mut a = Rng::new(7, 1);
        let mut b = Rng::new(7, 1);
        let mut c = Rng::new(7, 2);
        let first: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(first, (0..5).map(|_| c.next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn uniform_covers_every_key_and_stays_in_range() {
        let chooser = KeyChooser::new(10, Distribution::Uniform);
        let mut rng = Rng::new(1, 0);
        let mut hits = [0u32; 10];
        for _ in 0..10_000 {
            hits[chooser.choose(&mut rng) as usize] += 1;
        }
        assert!(hits.iter().all(|&h| (800..1200).contains(&h)), "{hits:?}");
    }

    #[test]
    fn hotkey_sends_the_hot_fraction_to_the_hot_keys() {
        let chooser = KeyChooser::new(
            1000,
            Distribution::HotKey {
                hot_fraction: 0.9,
                hot_keys: 2,
            },
        );
        let mut rng = Rng::new(3, 0);
        let hot = (0..100_000)
            .filter(|_| chooser.choose(&mut rng) < 2)
            .count();
        // 0.9 directly plus 0.1 * 2/1000 from the uniform remainder.
        assert!((89_000..91_000).contains(&hot), "{hot}");
    }

    #[test]
    fn distinct_choice_terminates_even_with_one_hot_key() {
        let chooser = KeyChooser::new(
            10,
            Distribution::HotKey {
                hot_fraction: 1.0,
                hot_keys: 1,
            },
        );
        let mut rng = Rng::new(3, 0);
        let mut keys = Vec::new();
        chooser.choose_distinct(&mut rng, 4, &mut keys);
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 4);
    }
}
