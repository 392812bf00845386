//! How sure the evidence makes us of a rate: [`RateBound`], the upper end of an exact 95 %
//! Clopper–Pearson interval.
//!
//! A rate gate ("at most 0.1 % of comparisons diverge unexpectedly") is a claim about every
//! program the recorder will ever name, made from a sample of them. The measured rate of a
//! small sample says little: 0 unexpected divergences in 43 comparisons is a rate of 0 %, yet
//! an engine that got one name in 20 wrong would produce that clean sample about one time in
//! ten. So the gate compares the *upper bound* of a 95 % confidence interval to its
//! threshold: it passes only when the evidence makes a rate above the threshold unlikely.
//!
//! ## Why Clopper–Pearson
//!
//! The interval is Clopper–Pearson's, computed exactly from the binomial distribution
//! (through the regularized incomplete beta function): for `k` unexpected divergences in `n`
//! comparisons the upper end `p` solves `P(X ≤ k | n, p) = 2.5 %`. It is *exact* in the sense
//! that matters for a gate: its coverage is at least 95 % for every `n` and every true rate.
//! The Wilson score interval, the usual alternative, is narrower on average but its coverage
//! drops below the nominal level for rates close to 0 — exactly where a rollout gate lives —
//! so a gate built on it would pass somewhat too early. A gate that refuses a little longer is
//! the safer error. (For `k = 0` the bound is `1 − 0.025^(1/n)`: 8.2 % for 43 comparisons.)
//!
//! The bound is the upper end of the two-sided 95 % interval (a one-sided 97.5 % bound), the
//! interval a reader checking the report with a statistics package gets by default.

use serde::Serialize;
use statrs::function::beta::beta_reg;

/// The confidence level of [`RateBound`].
pub const CONFIDENCE: f64 = 0.95;

/// The name of the interval, as the reports print it.
pub const METHOD: &str = "Clopper-Pearson";

/// A measured rate and the upper end of its 95 % Clopper–Pearson interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RateBound {
    /// Events counted (unexpected divergences).
    pub events: u64,
    /// Trials (comparisons).
    pub trials: u64,
    /// `events / trials`.
    pub rate: f64,
    /// The upper end of the 95 % interval.
    pub upper: f64,
    /// `"Clopper-Pearson"`.
    pub method: &'static str,
    /// `0.95`.
    pub confidence: f64,
}

impl RateBound {
    /// The bound for `events` in `trials`; `None` without trials (no rate).
    pub fn of(events: u64, trials: u64) -> Option<RateBound> {
        (trials > 0).then(|| RateBound {
            events,
            trials,
            rate: events as f64 / trials as f64,
            upper: upper_bound(events, trials),
            method: METHOD,
            confidence: CONFIDENCE,
        })
    }
}

/// The upper end of the two-sided 95 % Clopper–Pearson interval for `events` in `trials`
/// (`trials > 0`, `events ≤ trials`; `events` is clamped to `trials`).
pub fn upper_bound(events: u64, trials: u64) -> f64 {
    assert!(trials > 0, "a rate needs at least one trial");
    let k = events.min(trials);
    if k == trials {
        return 1.0;
    }
    // The upper end is the (1 − α/2) quantile of Beta(k + 1, n − k): the p at which the
    // regularized incomplete beta function I_p(k + 1, n − k) reaches 1 − α/2. I_p is
    // increasing in p, so bisection finds it to the last bit in at most ~1100 halvings of
    // [0, 1]; in practice the interval stops shrinking well before.
    let (a, b) = ((k + 1) as f64, (trials - k) as f64);
    let target = 1.0 - (1.0 - CONFIDENCE) / 2.0;
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..2000 {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            break;
        }
        if beta_reg(a, b, mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The fewest further comparisons without an unexpected divergence after which the bound of
/// `events` in `trials + m` is at most `max`; `None` when no number would do (`max = 0`: no
/// finite sample bounds a rate at exactly 0, or `max ≥ 1` is not a bound that more evidence
/// changes — then 0 is returned since any evidence passes).
pub fn clean_trials_to_pass(events: u64, trials: u64, max: f64) -> Option<u64> {
    if max >= 1.0 {
        return Some(0);
    }
    if max <= 0.0 {
        return None;
    }
    let passes = |m: u64| {
        let n = trials.saturating_add(m);
        n > 0 && upper_bound(events, n) <= max
    };
    if passes(0) {
        return Some(0);
    }
    // Exponential search for a passing m, then bisection for the first one. The bound falls
    // towards 0 as clean trials are added, so a passing m exists; u64 is far beyond need (the
    // bound for 0 in 2^40 trials is ~3e-12).
    let mut hi = 1u64;
    while !passes(hi) {
        if hi >= 1 << 62 {
            return None;
        }
        hi *= 2;
    }
    let mut lo = hi / 2; // fails (or is 0, which failed above)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if passes(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_events_has_the_closed_form() {
        for n in [1u64, 2, 43, 1000, 3687, 1_000_000] {
            let closed = -(0.025_f64.ln() / n as f64).exp_m1();
            let got = upper_bound(0, n);
            assert!(
                ((got - closed) / closed).abs() < 1e-9,
                "n={n}: {got} vs {closed}"
            );
        }
    }

    #[test]
    fn all_events_bound_is_one() {
        assert_eq!(upper_bound(7, 7), 1.0);
    }

    #[test]
    fn known_values() {
        // Reference values computed independently, by bisection on the binomial CDF summed
        // term by term (the same numbers as R's `binom.test(k, n)$conf.int[2]`).
        let cases = [
            (1u64, 43u64, 0.122_890),
            (5, 100, 0.112_835),
            (10, 1000, 0.018_313),
        ];
        for (k, n, want) in cases {
            let got = upper_bound(k, n);
            assert!((got - want).abs() < 5e-6, "{k}/{n}: {got} vs {want}");
        }
    }

    #[test]
    fn clean_trials_is_the_first_passing_count() {
        let m = clean_trials_to_pass(0, 43, 0.001).unwrap();
        assert!(upper_bound(0, 43 + m) <= 0.001);
        assert!(upper_bound(0, 43 + m - 1) > 0.001);
        assert_eq!(clean_trials_to_pass(0, 10_000, 0.001), Some(0));
        // docs/rollout.md's figures, computed independently (bisection on the binomial CDF).
        assert_eq!(clean_trials_to_pass(0, 43, 0.001), Some(3_645));
        assert_eq!(clean_trials_to_pass(1, 43, 0.001), Some(5_527));
        assert_eq!(clean_trials_to_pass(0, 43, 0.0), None);
        let m = clean_trials_to_pass(3, 100, 0.01).unwrap();
        assert!(upper_bound(3, 100 + m) <= 0.01 && upper_bound(3, 100 + m - 1) > 0.01);
    }
}
