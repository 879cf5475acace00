//! When to renew and when to try again: pure functions of the certificate's dates,
//! the CA's suggested window, the failures so far and a random draw, so that tests
//! give their own.

use std::time::Duration;

/// The first wait after a failed order; doubled per failure after it.
pub const FIRST_RETRY: Duration = Duration::from_secs(5 * 60);
/// The longest wait between attempts.
pub const LONGEST_RETRY: Duration = Duration::from_secs(6 * 3600);

/// When a certificate valid from `not_before` to `not_after` (Unix seconds) is
/// renewed: `renew_before` its expiry, or at two thirds of its life when
/// `renew_before` is as long as its life (a short-lived certificate).
pub fn renew_at(not_before: i64, not_after: i64, renew_before: Duration) -> i64 {
    let life = not_after - not_before;
    let before = i64::try_from(renew_before.as_secs()).unwrap_or(i64::MAX);
    match before < life {
        true => not_after - before,
        false => not_before + life * 2 / 3,
    }
}

/// When to renew in the CA's suggested window from `start` to `end` (Unix seconds;
/// RFC 9773 §4.2): at a uniformly random point of it (`random` in 0..1), so that a
/// CA's clients do not all come at its start.
pub fn in_window(start: i64, end: i64, random: f64) -> i64 {
    let span = (end - start).max(0) as f64;
    start + (span * random.clamp(0.0, 1.0)) as i64
}

/// The wait after the `failures`-th failure in a row (`random` in 0..1): 5 min,
/// 10, 20, ... up to 6 h, plus up to half of it again, so that hosts and sets do not
/// retry in step. Five failed validations an hour per name is Let's Encrypt's limit:
/// this makes four at most.
pub fn backoff(failures: u32, random: f64) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let base = doubled.min(LONGEST_RETRY);
    base + base.mul_f64(random.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn renewal_is_renew_before_expiry_or_at_two_thirds_of_a_short_life() {
        let thirty_days = Duration::from_secs(30 * 86_400);
        assert_eq!(renew_at(0, 90 * DAY, thirty_days), 60 * DAY);
        // A 6-day certificate: renewing 30 days before expiry would be at once, forever.
        assert_eq!(renew_at(0, 6 * DAY, thirty_days), 4 * DAY);
        assert_eq!(renew_at(1000, 1060, Duration::from_secs(40)), 1020);
    }

    #[test]
    fn a_window_renewal_is_within_the_window_and_an_empty_window_is_its_start() {
        assert_eq!(in_window(100, 200, 0.0), 100);
        assert_eq!(in_window(100, 200, 0.5), 150);
        assert_eq!(in_window(100, 200, 1.0), 200);
        assert_eq!(in_window(100, 50, 0.7), 100);
    }

    #[test]
    fn failures_back_off_doubling_with_jitter_up_to_a_ceiling() {
        assert_eq!(backoff(1, 0.0), FIRST_RETRY);
        assert_eq!(backoff(2, 0.0), FIRST_RETRY * 2);
        assert_eq!(backoff(3, 1.0), FIRST_RETRY * 4 + FIRST_RETRY * 2);
        assert_eq!(backoff(40, 0.0), LONGEST_RETRY);
        // Within an hour: at most four attempts whatever the draw.
        let mut at = Duration::ZERO;
        let mut attempts = 1;
        for failures in 1.. {
            at += backoff(failures, 0.0);
            if at >= Duration::from_secs(3600) {
                break;
            }
            attempts += 1;
        }
        assert_eq!(attempts, 4);
    }
}
