//! Interleaved rounds: every variant of a comparison runs once per round, in an order
//! that rotates from round to round, and a ratio is the median of the per-round
//! ratios. A slow spell of the machine then lands on all variants of a round alike
//! and is cancelled out, instead of falling on one variant's runs.

use std::time::Duration;

/// One way of doing the work; each call does it once and returns the time it took
/// (setup such as building the input stays outside that time).
pub(crate) struct Variant<'a> {
    pub(crate) name: &'static str,
    run: Box<dyn FnMut() -> Duration + 'a>,
}

impl<'a> Variant<'a> {
    pub(crate) fn new(name: &'static str, run: impl FnMut() -> Duration + 'a) -> Self {
        Self {
            name,
            run: Box::new(run),
        }
    }
}

/// The times of each variant, one per round.
pub(crate) struct Timings {
    names: Vec<&'static str>,
    times: Vec<Vec<Duration>>,
}

/// Runs one untimed warm-up round (it fills the allocator's and the caches' state
/// the later rounds find) and then `rounds` timed rounds of all `variants`.
pub(crate) fn interleaved(rounds: usize, mut variants: Vec<Variant<'_>>) -> Timings {
    let k = variants.len();
    for v in &mut variants {
        (v.run)();
    }
    let mut times = vec![Vec::with_capacity(rounds); k];
    for round in 0..rounds {
        for i in 0..k {
            let v = (round + i) % k;
            times[v].push((variants[v].run)());
        }
    }
    Timings {
        names: variants.iter().map(|v| v.name).collect(),
        times,
    }
}

/// The ratio of two variants over the rounds: median, lowest and highest.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ratio {
    pub(crate) median: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
}

impl Timings {
    fn of(&self, name: &str) -> &[Duration] {
        let i = self
            .names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no variant {name}"));
        &self.times[i]
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.names.contains(&name)
    }

    pub(crate) fn rounds(&self) -> usize {
        self.times.first().map_or(0, Vec::len)
    }

    /// The median time of one variant.
    pub(crate) fn median(&self, name: &str) -> Duration {
        let mut t = self.of(name).to_vec();
        t.sort();
        let m = t.len() / 2;
        if t.len() % 2 == 1 {
            t[m]
        } else {
            (t[m - 1] + t[m]) / 2
        }
    }

    /// `a`'s time over `b`'s, round by round.
    pub(crate) fn ratio(&self, a: &str, b: &str) -> Ratio {
        let mut r: Vec<f64> = self
            .of(a)
            .iter()
            .zip(self.of(b))
            .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
            .collect();
        r.sort_by(f64::total_cmp);
        Ratio {
            median: median_sorted(&r),
            low: r[0],
            high: r[r.len() - 1],
        }
    }

    /// Items per second of one variant, from its median time.
    pub(crate) fn rate(&self, name: &str, items: u64) -> f64 {
        items as f64 / self.median(name).as_secs_f64()
    }
}

fn median_sorted(r: &[f64]) -> f64 {
    let m = r.len() / 2;
    if r.len() % 2 == 1 {
        r[m]
    } else {
        (r[m - 1] + r[m]) / 2.0
    }
}

/// `12.34 M/s`.
pub(crate) fn mega(per_second: f64) -> String {
    format!("{:.2} M/s", per_second / 1e6)
}
