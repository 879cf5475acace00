//! The token bucket, as GCRA (generic cell rate algorithm): one number per key, the
//! "theoretical arrival time" (TAT). A bucket of `burst` tokens refilling `rate`
//! tokens per `per` admits, over any interval T, at most `rate × T / per + burst`
//! requests. Pure arithmetic with `now` passed in, so it is tested with exact times;
//! the Redis store runs the same arithmetic in its server-side script.

use std::time::Duration;

/// A bucket's shape, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Time to earn one token: `per / rate`.
    pub interval: u64,
    /// How far the TAT may run ahead of now: `burst × interval`.
    pub tolerance: u64,
    pub burst: u64,
}

/// The outcome of taking `cost` tokens at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Admitted: store `tat`; `remaining` tokens are left, and the bucket is full
    /// again in `full_in` nanoseconds.
    Admit {
        tat: u64,
        remaining: u64,
        full_in: u64,
    },
    /// Refused: tokens are available again after `retry_after` nanoseconds.
    Deny { retry_after: u64 },
}

impl Quota {
    pub fn new(rate: u64, per: Duration, burst: u64) -> Self {
        let interval = (per.as_nanos() / u128::from(rate.max(1))).max(1);
        let interval = u64::try_from(interval).unwrap_or(u64::MAX);
        Self {
            interval,
            tolerance: interval.saturating_mul(burst),
            burst,
        }
    }

    /// Takes `cost` tokens from a bucket whose TAT is `tat` (0 for a new bucket).
    pub fn take(&self, tat: u64, now: u64, cost: u64) -> Take {
        let start = tat.max(now);
        let new_tat = start.saturating_add(self.interval.saturating_mul(cost));
        let ahead = new_tat - now;
        if ahead > self.tolerance {
            return Take::Deny {
                retry_after: ahead - self.tolerance,
            };
        }
        Take::Admit {
            tat: new_tat,
            remaining: (self.tolerance - ahead) / self.interval,
            full_in: ahead,
        }
    }

    /// Gives back `cost` tokens taken by a request another limit refused.
    pub fn refund(&self, tat: u64, cost: u64) -> u64 {
        tat.saturating_sub(self.interval.saturating_mul(cost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Offers one request every `step` ns for `span` ns; counts admissions.
    fn admitted(q: &Quota, step: u64, span: u64, cost: u64) -> u64 {
        let (mut tat, mut n, mut now) = (0, 0, 1_000 * S);
        let end = now + span;
        while now <= end {
            if let Take::Admit { tat: t, .. } = q.take(tat, now, cost) {
                tat = t;
                n += 1;
            }
            now += step;
        }
        n
    }

    #[test]
    fn a_burst_then_the_rate() {
        let q = Quota::new(10, Duration::from_secs(1), 5);
        // All at once: exactly the burst.
        assert_eq!(admitted(&q, 1, 1_000, 1), 5);
        // Over 10 s at a high offered rate: rate × T / per + burst (±1).
        let n = admitted(&q, S / 1000, 10 * S, 1);
        assert!((104..=106).contains(&n), "{n}");
    }

    #[test]
    fn refill_and_retry_after_are_exact() {
        let q = Quota::new(2, Duration::from_secs(1), 1);
        let now = 10 * S;
        let Take::Admit {
            tat,
            remaining,
            full_in,
        } = q.take(0, now, 1)
        else {
            panic!("first is admitted")
        };
        assert_eq!((remaining, full_in), (0, S / 2));
        assert_eq!(q.take(tat, now, 1), Take::Deny { retry_after: S / 2 });
        assert!(matches!(q.take(tat, now + S / 2, 1), Take::Admit { .. }));
    }

    #[test]
    fn cost_takes_several_tokens_and_refund_returns_them() {
        let q = Quota::new(10, Duration::from_secs(1), 10);
        let now = 5 * S;
        let Take::Admit { tat, remaining, .. } = q.take(0, now, 4) else {
            panic!("admitted")
        };
        assert_eq!(remaining, 6);
        assert!(matches!(q.take(tat, now, 7), Take::Deny { .. }));
        let back = q.refund(tat, 4);
        assert!(matches!(
            q.take(back, now, 10),
            Take::Admit { remaining: 0, .. }
        ));
    }

    #[test]
    fn keys_are_independent() {
        // Two buckets are two numbers: one draining has no effect on the other.
        let q = Quota::new(1, Duration::from_secs(1), 1);
        let now = S;
        let Take::Admit { tat: a, .. } = q.take(0, now, 1) else {
            panic!("a")
        };
        assert!(matches!(q.take(a, now, 1), Take::Deny { .. }));
        assert!(
            matches!(q.take(0, now, 1), Take::Admit { .. }),
            "b still has its token"
        );
    }
}
