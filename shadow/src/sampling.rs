//! Which code objects get a shadow comparison, and when comparing stops.
//!
//! **Sampling** (`--shadow-sample RATE`) picks a deterministic fraction of *modules*: a code
//! object is compared when the 64-bit FNV-1a hash of its `co_filename` (UTF-8 bytes), mapped to
//! `[0, 1)` by its top 53 bits, is below `RATE`. Every code object of a file shares the
//! decision, the same files are chosen on every run and machine (FNV-1a has no per-process
//! seed, unlike std's `RandomState`), and raising the rate only adds files.
//!
//! **Budget** (`--shadow-budget FRACTION`) bounds the shadow engine's cost: comparing stops
//! for good once the shadow engine's cumulative time exceeds
//! `max(floor, FRACTION × run time so far)`. The floor (default
//! [`DEFAULT_BUDGET_FLOOR`], 50 ms of shadow time) is the warm-up allowance: at start-up the
//! run is young and imports come in bursts, so without it a run would stop comparing after
//! its first few modules. Once exhausted, the budget stays exhausted and records when.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A rate or fraction that is not a finite number in range.
#[derive(Clone, Debug, PartialEq)]
pub struct RateError {
    pub flag: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl std::fmt::Display for RateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.flag, self.value, self.reason)
    }
}

impl std::error::Error for RateError {}

/// Parses `0.25`, `1`, `0` or `25%`.
fn parse_fraction(flag: &'static str, text: &str) -> Result<f64, RateError> {
    let err = |reason| RateError {
        flag,
        value: text.to_owned(),
        reason,
    };
    let t = text.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(p) => (p.trim(), 100.0),
        None => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| err("expected a number such as 0.1 or 10%"))?;
    if !v.is_finite() {
        return Err(err("must be finite"));
    }
    Ok(v / scale)
}

/// Chooses the modules to compare (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    rate: f64,
    /// Hashes strictly below this are sampled; `u64::MAX` with `all` for rate 1.
    threshold: u64,
    all: bool,
}

impl Sampler {
    /// A sampler comparing the fraction `rate` of files, `0 <= rate <= 1`.
    pub fn new(rate: f64) -> Result<Self, RateError> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(RateError {
                flag: "--shadow-sample",
                value: rate.to_string(),
                reason: "must be between 0 and 1 (or 0% and 100%)",
            });
        }
        // Compare on the top 53 bits so that the threshold is exact in f64.
        let threshold = (rate * (1u64 << 53) as f64) as u64;
        Ok(Sampler {
            rate,
            threshold,
            all: rate >= 1.0,
        })
    }

    /// Parses a `--shadow-sample` value: `0.1`, `1`, `10%`.
    pub fn parse(text: &str) -> Result<Self, RateError> {
        let v = parse_fraction("--shadow-sample", text)?;
        Sampler::new(v).map_err(|mut e| {
            e.value = text.to_owned();
            e
        })
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Whether code from `filename` is compared.
    pub fn should_compare(&self, filename: &str) -> bool {
        self.all || (fnv1a64(filename.as_bytes()) >> 11) < self.threshold
    }
}

impl Default for Sampler {
    /// Compare everything.
    fn default() -> Self {
        Sampler::new(1.0).expect("1.0 is a valid rate")
    }
}

/// The default warm-up floor of the budget: 50 ms of shadow-engine time.
pub const DEFAULT_BUDGET_FLOOR: Duration = Duration::from_millis(50);

/// The shadow-engine time budget (see the module docs). Shared by all threads.
#[derive(Debug)]
pub struct Budget {
    fraction: f64,
    floor_ns: u64,
    spent_ns: AtomicU64,
    exhausted: AtomicBool,
    /// (run time, shadow time) when the budget ran out.
    exhausted_at: Mutex<Option<(u64, u64)>>,
}

/// A snapshot of the budget for the summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetState {
    /// `null` when no budget was set (comparison never stops for cost).
    pub fraction: Option<f64>,
    pub floor_seconds: f64,
    pub shadow_seconds: f64,
    pub exhausted: bool,
    /// Run time (seconds since start) at which comparison stopped.
    pub exhausted_at_seconds: Option<f64>,
}

impl Budget {
    /// A budget of `fraction` of the run time (`0 < fraction`), with the warm-up `floor`.
    pub fn new(fraction: f64, floor: Duration) -> Result<Self, RateError> {
        // More than 1 would never run out (the shadow's time is part of the run's).
        if !(fraction.is_finite() && fraction > 0.0 && fraction <= 1.0) {
            return Err(RateError {
                flag: "--shadow-budget",
                value: fraction.to_string(),
                reason: "must be a fraction of run time above 0 and at most 1 (100%), such as 0.05 or 5%",
            });
        }
        Ok(Budget {
            fraction,
            floor_ns: u64::try_from(floor.as_nanos()).unwrap_or(u64::MAX),
            spent_ns: AtomicU64::new(0),
            exhausted: AtomicBool::new(false),
            exhausted_at: Mutex::new(None),
        })
    }

    /// Parses a `--shadow-budget` value (`0.05`, `5%`) with the default floor.
    pub fn parse(text: &str) -> Result<Self, RateError> {
        let v = parse_fraction("--shadow-budget", text)?;
        Budget::new(v, DEFAULT_BUDGET_FLOOR).map_err(|mut e| {
            e.value = text.to_owned();
            e
        })
    }

    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    /// Whether comparing has stopped. One relaxed load: cheap enough for every code object.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// Adds `shadow_ns` of shadow-engine time at run time `run_elapsed`, and returns whether
    /// comparing may go on.
    pub fn charge(&self, shadow_ns: u64, run_elapsed: Duration) -> bool {
        let spent = self.spent_ns.fetch_add(shadow_ns, Ordering::Relaxed) + shadow_ns;
        if self.is_exhausted() {
            return false;
        }
        let run_ns = u64::try_from(run_elapsed.as_nanos()).unwrap_or(u64::MAX);
        let allowance = ((run_ns as f64) * self.fraction).max(self.floor_ns as f64);
        if (spent as f64) <= allowance {
            return true;
        }
        if !self.exhausted.swap(true, Ordering::Relaxed) {
            *self.exhausted_at.lock().unwrap_or_else(|p| p.into_inner()) = Some((run_ns, spent));
            tracing::info!(
                fraction = self.fraction,
                shadow_seconds = spent as f64 / 1e9,
                run_seconds = run_ns as f64 / 1e9,
                "shadow budget exhausted: comparing stops for the rest of the run"
            );
        }
        false
    }

    /// Shadow-engine time charged so far.
    pub fn spent(&self) -> Duration {
        Duration::from_nanos(self.spent_ns.load(Ordering::Relaxed))
    }

    pub fn state(&self) -> BudgetState {
        let at = *self.exhausted_at.lock().unwrap_or_else(|p| p.into_inner());
        BudgetState {
            fraction: Some(self.fraction),
            floor_seconds: self.floor_ns as f64 / 1e9,
            shadow_seconds: self.spent().as_secs_f64(),
            exhausted: self.is_exhausted(),
            exhausted_at_seconds: at.map(|(run, _)| run as f64 / 1e9),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    fn files(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("/srv/app/pkg{}/mod_{i}.py", i % 17))
            .collect()
    }

    #[test]
    fn sampling_is_deterministic_and_per_file() {
        let a = Sampler::new(0.3).unwrap();
        let b = Sampler::parse("30%").unwrap();
        let chosen = |s: &Sampler| -> Vec<bool> {
            files(2000).iter().map(|f| s.should_compare(f)).collect()
        };
        assert_eq!(chosen(&a), chosen(&b));
        // Pinned choices, computed independently (a few lines of Python FNV-1a): a change of
        // hash or mapping would silently change which modules a team's runs compare.
        let pinned: Vec<bool> = files(12).iter().map(|f| a.should_compare(f)).collect();
        let expect = [
            false, true, true, false, false, false, true, false, false, false, false, true,
        ];
        assert_eq!(pinned, expect);
    }

    #[test]
    fn sampling_rate_is_roughly_honoured() {
        for rate in [0.01, 0.1, 0.5, 0.9] {
            let s = Sampler::new(rate).unwrap();
            let n = 20_000;
            let hit = files(n).iter().filter(|f| s.should_compare(f)).count();
            let got = hit as f64 / n as f64;
            assert!((got - rate).abs() < 0.02, "rate {rate}: got {got}");
        }
    }

    #[test]
    fn sampling_edges_and_monotonicity() {
        let none = Sampler::new(0.0).unwrap();
        let all = Sampler::parse("1").unwrap();
        let low = Sampler::new(0.2).unwrap();
        let high = Sampler::new(0.6).unwrap();
        for f in files(3000) {
            assert!(!none.should_compare(&f));
            assert!(all.should_compare(&f));
            if low.should_compare(&f) {
                assert!(high.should_compare(&f), "raising the rate dropped {f}");
            }
        }
    }

    #[test]
    fn bad_rates_are_errors() {
        for bad in ["1.5", "-0.1", "abc", "NaN", "inf", "150%", ""] {
            let e = Sampler::parse(bad).unwrap_err();
            assert_eq!(e.flag, "--shadow-sample");
            assert_eq!(e.value, bad);
        }
        for bad in ["0", "-1", "x", "inf"] {
            assert!(Budget::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Budget::parse("5%").unwrap().fraction(), 0.05);
    }

    #[test]
    fn budget_stops_when_shadow_time_exceeds_fraction() {
        let b = Budget::new(0.10, Duration::from_millis(5)).unwrap();
        let ms = Duration::from_millis;
        // 1 s into the run the allowance is 100 ms.
        assert!(b.charge(60_000_000, ms(1000)));
        assert!(b.charge(40_000_000, ms(1000))); // exactly 100 ms: still within
        assert!(!b.is_exhausted());
        assert!(!b.charge(1, ms(1000)));
        assert!(b.is_exhausted());
        // Sticky: time passing does not re-open it.
        assert!(!b.charge(0, ms(60_000)));
        let st = b.state();
        assert!(st.exhausted);
        assert_eq!(st.exhausted_at_seconds, Some(1.0));
        assert!((st.shadow_seconds - 0.100_000_001).abs() < 1e-9);
    }

    #[test]
    fn budget_floor_covers_warm_up() {
        let b = Budget::new(0.01, Duration::from_millis(50)).unwrap();
        // 10 ms into the run, 40 ms of shadow time is 400% of run time but under the floor.
        assert!(b.charge(40_000_000, Duration::from_millis(10)));
        assert!(!b.is_exhausted());
        // Past the floor, with the run still young: stop.
        assert!(!b.charge(20_000_000, Duration::from_millis(20)));
        assert!(b.is_exhausted());
    }

    #[test]
    fn budget_is_shared_across_threads() {
        let b = std::sync::Arc::new(Budget::new(0.5, Duration::ZERO).unwrap());
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        b.charge(1_000, Duration::from_millis(10));
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        // 4 ms of charges against an allowance of 5 ms.
        assert_eq!(b.spent(), Duration::from_millis(4));
        assert!(!b.is_exhausted());
        assert!(!b.charge(1_000_001, Duration::from_millis(10)));
    }
}
