//! A baseline: the exponentially weighted mean and variance of one count per bucket
//! (West's incremental form), judged by how many standard deviations a bucket is
//! from it. The deviation is never taken below that of a Poisson count of the same
//! mean (√mean, at least 1): a quiet subject's baseline of zero variance must not
//! make its first request an anomaly.

#[derive(Debug, Clone, Copy, Default)]
pub struct Baseline {
    pub mean: f64,
    pub variance: f64,
    /// Buckets learnt from.
    pub buckets: u32,
}

impl Baseline {
    /// Learns bucket count `x`; `alpha` is the new bucket's weight.
    pub fn learn(&mut self, x: f64, alpha: f64) {
        if self.buckets == 0 {
            self.mean = x;
            self.variance = 0.0;
        } else {
            let diff = x - self.mean;
            let increment = alpha * diff;
            self.mean += increment;
            self.variance = (1.0 - alpha) * (self.variance + diff * increment);
        }
        self.buckets = self.buckets.saturating_add(1);
    }

    /// How many standard deviations `x` is above the mean.
    pub fn deviation(&self, x: f64) -> f64 {
        let floor = self.mean.max(1.0);
        let sd = self.variance.max(floor).sqrt();
        (x - self.mean) / sd
    }
}

/// The weight of a new bucket for a memory of `half_life` buckets.
pub fn alpha(half_life: u32) -> f64 {
    1.0 - 0.5f64.powf(1.0 / f64::from(half_life.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_count_is_learnt_and_a_spike_stands_out() {
        let mut b = Baseline::default();
        let a = alpha(60);
        // A day of minutes around 100 (±10, alternating).
        for minute in 0..1440 {
            b.learn(if minute % 2 == 0 { 90.0 } else { 110.0 }, a);
        }
        assert!((b.mean - 100.0).abs() < 1.0, "{b:?}");
        assert!((b.variance.sqrt() - 10.0).abs() < 1.0, "{b:?}");
        assert!(b.deviation(110.0) < 1.5);
        assert!(b.deviation(200.0) > 9.0);
    }

    #[test]
    fn a_quiet_baseline_does_not_call_a_few_requests_a_spike() {
        let mut b = Baseline::default();
        for _ in 0..100 {
            b.learn(0.0, alpha(60));
        }
        assert!(b.deviation(2.0) <= 2.0);
        assert_eq!(alpha(1), 0.5);
    }
}
