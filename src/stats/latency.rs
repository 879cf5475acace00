//! Request durations in [`BINS`] bins on a log scale: bin `i` counts durations up to
//! 100 µs × √2^i (bin 0: up to 100 µs; the last: everything longer than the one
//! before, about 4.6 s). A quantile read from them is within a factor √2; Prometheus
//! gets every other bound (a factor 2 apart).

pub const BINS: usize = 32;

/// The bin of a duration of `micros`.
pub fn bin(micros: u64) -> usize {
    if micros <= 100 {
        return 0;
    }
    let steps = ((micros as f64 / 100.0).log2() * 2.0).ceil();
    (steps as usize).min(BINS - 1)
}

/// Bin `i`'s upper bound in seconds; `None` for the last (open-ended) bin.
pub fn upper_bound(i: usize) -> Option<f64> {
    (i < BINS - 1).then(|| 100e-6 * 2f64.powf(i as f64 / 2.0))
}

/// The `q` quantile (0..=1) of `counts` in seconds: the upper bound of the bin where
/// the count reaches `q` of the total (the last bin's lower bound when it is there);
/// `None` without any.
pub fn quantile(counts: &[u64; BINS], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return upper_bound(i).or_else(|| upper_bound(i - 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bin_holds_durations_up_to_its_bound() {
        assert_eq!(bin(0), 0);
        assert_eq!(bin(100), 0);
        assert_eq!(bin(101), 1);
        assert_eq!(bin(141), 1);
        assert_eq!(bin(142), 2);
        assert_eq!(bin(200), 2);
        assert_eq!(bin(u64::MAX), BINS - 1);
        for micros in [1, 150, 999, 12_345, 1_000_000] {
            let i = bin(micros);
            let bound = upper_bound(i).expect("bounded");
            assert!(micros as f64 / 1e6 <= bound + 1e-12, "{micros} in {i}");
            if i > 0 {
                assert!(micros as f64 / 1e6 > upper_bound(i - 1).expect("bounded"));
            }
        }
    }

    #[test]
    fn quantiles_are_bounds_of_the_bins_they_fall_in() {
        let mut counts = [0; BINS];
        assert_eq!(quantile(&counts, 0.5), None);
        counts[bin(1_000)] = 99; // 1 ms
        counts[bin(1_000_000)] = 1; // 1 s
        let p50 = quantile(&counts, 0.5).expect("p50");
        assert!((0.001..0.001 * 1.5).contains(&p50), "{p50}");
        let p99 = quantile(&counts, 0.99).expect("p99");
        assert_eq!(p99, p50);
        let max = quantile(&counts, 1.0).expect("max");
        assert!((1.0..1.5).contains(&max), "{max}");
    }
}
