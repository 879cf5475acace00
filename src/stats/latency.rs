//! Request durations in [`BINS`] bins on a log scale: bin `i` counts durations up to
//! 100 µs × √2^i (bin 0: up to 100 µs; the last: everything longer than the one
//! before, about 4.6 s). A quantile read from them is within a factor √2; Prometheus
//! gets every other bound (a factor 2 apart).

pub const BINS: usize = 32;

/// The bin of a duration of `micros`.
pub fn bin(micros: u64) -> usize {
    // The least i with micros ≤ 100·√2^i, that is micros² ≤ 10,000·2^i, in integers:
    // 2^i ≥ ⌈micros² / 10,000⌉. Durations past the last bound (100 s here) are capped
    // so that the square fits.
    let squared = micros.min(100_000_000).pow(2);
    let ratio = squared.div_ceil(10_000);
    let i = match ratio {
        0 | 1 => 0,
        r => (u64::BITS - (r - 1).leading_zeros()) as usize,
    };
    i.min(BINS - 1)
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
        // Every duration up to 20 ms, then a stride through the bounded bins (to 3.3 s).
        let sweep = (0..20_000).chain((20_000..3_000_000).step_by(997));
        for micros in sweep {
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
