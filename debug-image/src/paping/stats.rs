//! The numbers behind paping's summary, kept in constant memory however
//! long the run: counts per outcome, and over the connected probes' times
//! min/max/mean, standard deviation, percentiles and jitter.
//!
//! - Mean and standard deviation (population, as ping's `mdev`) come from
//!   Welford's running update, exact.
//! - Percentiles (nearest rank: the smallest time with at least p% of the
//!   probes at or below it) come from a log-linear [`Histogram`]: exact
//!   below 1.024 ms, within 0.1% above, in 48 KiB, so a week of probes at
//!   any rate costs no more memory than ten.
//! - Jitter is the mean absolute difference between the times of
//!   consecutive connected probes (RFC 3550's idea, without its smoothing).

use serde::Serialize;

use super::probe::Outcome;

/// Times are microseconds throughout.
#[derive(Debug, Default)]
pub struct Stats {
    pub attempted: u64,
    pub connected: u64,
    failures: Failures,
    min: u64,
    max: u64,
    mean: f64,
    /// Sum of squared differences from the running mean (Welford's M2).
    m2: f64,
    previous: Option<u64>,
    jitter_sum: f64,
    jitter_count: u64,
    histogram: Histogram,
}

/// Failed probes by cause.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Failures {
    pub refused: u64,
    pub timed_out: u64,
    pub no_route: u64,
    pub reset_after_connect: u64,
    pub other: u64,
}

impl Failures {
    pub fn total(&self) -> u64 {
        self.refused + self.timed_out + self.no_route + self.reset_after_connect + self.other
    }
}

/// The summary as printed and as serialized for `-o json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub attempted: u64,
    pub connected: u64,
    pub failed: u64,
    pub loss_percent: f64,
    pub failures: Failures,
    /// Over the connected probes; absent when none connected.
    pub time_us: Option<Times>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Times {
    pub min: u64,
    pub max: u64,
    pub avg: f64,
    pub stddev: f64,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub jitter: f64,
}

impl Stats {
    /// Counts one finished probe; `time_us` matters only for connected ones.
    pub fn record(&mut self, outcome: &Outcome, time_us: u64) {
        self.attempted += 1;
        let f = &mut self.failures;
        match outcome {
            Outcome::Connected => {}
            Outcome::Refused => f.refused += 1,
            Outcome::TimedOut => f.timed_out += 1,
            Outcome::NoRoute(_) => f.no_route += 1,
            Outcome::ResetAfterConnect => f.reset_after_connect += 1,
            Outcome::Other(_) => f.other += 1,
        }
        if *outcome != Outcome::Connected {
            return;
        }
        self.connected += 1;
        if self.connected == 1 {
            self.min = time_us;
            self.max = time_us;
        } else {
            self.min = self.min.min(time_us);
            self.max = self.max.max(time_us);
        }
        let x = time_us as f64;
        let delta = x - self.mean;
        self.mean += delta / self.connected as f64;
        self.m2 += delta * (x - self.mean);
        if let Some(prev) = self.previous {
            self.jitter_sum += prev.abs_diff(time_us) as f64;
            self.jitter_count += 1;
        }
        self.previous = Some(time_us);
        self.histogram.add(time_us);
    }

    pub fn summary(&self) -> Summary {
        let failed = self.failures.total();
        let loss_percent = if self.attempted == 0 {
            0.0
        } else {
            failed as f64 * 100.0 / self.attempted as f64
        };
        let time_us = (self.connected > 0).then(|| Times {
            min: self.min,
            max: self.max,
            avg: self.mean,
            stddev: (self.m2 / self.connected as f64).sqrt(),
            p50: self.histogram.percentile(50.0),
            p95: self.histogram.percentile(95.0),
            p99: self.histogram.percentile(99.0),
            jitter: if self.jitter_count == 0 {
                0.0
            } else {
                self.jitter_sum / self.jitter_count as f64
            },
        });
        Summary {
            attempted: self.attempted,
            connected: self.connected,
            failed,
            loss_percent,
            failures: self.failures,
            time_us,
        }
    }
}

/// Values below 2^EXACT_BITS µs get a bucket each.
const EXACT_BITS: u32 = 10;
/// Above that, each power of two is split into 2^SUB_BITS buckets.
const SUB_BITS: u32 = 9;
/// Largest value kept apart (~71 minutes in µs); larger ones share its bucket.
const MAX_VALUE: u64 = u32::MAX as u64;
const BUCKETS: usize = (1 << EXACT_BITS) + (32 - EXACT_BITS as usize) * (1 << SUB_BITS);

/// Counts of values in log-linear buckets (HdrHistogram's layout, small).
#[derive(Debug)]
pub struct Histogram {
    counts: Vec<u32>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

impl Histogram {
    fn index(value: u64) -> usize {
        let v = value.min(MAX_VALUE);
        if v < (1 << EXACT_BITS) {
            return v as usize;
        }
        let top = 63 - v.leading_zeros(); // position of the highest set bit
        let shift = top - SUB_BITS;
        let within = (v >> shift) as usize - (1 << SUB_BITS);
        (1 << EXACT_BITS) + (top - EXACT_BITS) as usize * (1 << SUB_BITS) + within
    }

    /// The value a bucket stands for: its midpoint (exact below 1024).
    fn value(index: usize) -> u64 {
        if index < (1 << EXACT_BITS) {
            return index as u64;
        }
        let rest = index - (1 << EXACT_BITS);
        let top = (rest >> SUB_BITS) as u32 + EXACT_BITS;
        let within = (rest & ((1 << SUB_BITS) - 1)) as u64;
        let shift = top - SUB_BITS;
        let low = ((1u64 << SUB_BITS) + within) << shift;
        low + (1u64 << shift) / 2
    }

    pub fn add(&mut self, value: u64) {
        let i = Self::index(value);
        self.counts[i] = self.counts[i].saturating_add(1);
        self.total += 1;
    }

    /// Nearest-rank percentile `p` (0-100]; 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Self::value(i);
            }
        }
        Self::value(BUCKETS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nearest rank over a sorted copy: the definition the histogram meets.
    fn exact_percentile(values: &[u64], p: f64) -> u64 {
        let mut v = values.to_vec();
        v.sort_unstable();
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        v[rank - 1]
    }

    #[test]
    fn buckets_round_trip_within_a_tenth_of_a_percent() {
        for v in (0..5000).chain([65_535, 1_000_000, 20_123_456, MAX_VALUE]) {
            let back = Histogram::value(Histogram::index(v));
            if v < 1024 {
                assert_eq!(back, v);
            } else {
                let err = back.abs_diff(v) as f64 / v as f64;
                assert!(err <= 0.001, "{v} -> {back}");
            }
        }
        assert!(Histogram::index(MAX_VALUE) < BUCKETS);
        assert_eq!(Histogram::index(u64::MAX), Histogram::index(MAX_VALUE));
    }

    #[test]
    fn percentiles_match_nearest_rank() {
        // A spread of latencies around 20 ms with a slow tail.
        let values: Vec<u64> = (0..1000u64)
            .map(|i| 20_000 + (i * 7919) % 600 + if i % 50 == 0 { 30_000 } else { 0 })
            .collect();
        let mut h = Histogram::default();
        values.iter().for_each(|&v| h.add(v));
        for p in [50.0, 95.0, 99.0, 100.0] {
            let exact = exact_percentile(&values, p);
            let got = h.percentile(p);
            assert!(
                got.abs_diff(exact) as f64 <= exact as f64 * 0.001,
                "p{p}: {got} vs {exact}"
            );
        }
        let small = [5u64, 1, 3, 2, 4];
        let mut h = Histogram::default();
        small.iter().for_each(|&v| h.add(v));
        assert_eq!(h.percentile(50.0), 3);
        assert_eq!(h.percentile(95.0), 5);
        assert_eq!(Histogram::default().percentile(50.0), 0);
    }

    #[test]
    fn summary_counts_and_moments() {
        let mut s = Stats::default();
        for t in [100, 300, 200, 400] {
            s.record(&Outcome::Connected, t);
        }
        s.record(&Outcome::Refused, 50);
        s.record(&Outcome::TimedOut, 1_000_000);
        s.record(&Outcome::ResetAfterConnect, 120);
        let sum = s.summary();
        assert_eq!(sum.attempted, 7);
        assert_eq!(sum.connected, 4);
        assert_eq!(sum.failed, 3);
        assert!((sum.loss_percent - 300.0 / 7.0).abs() < 1e-9);
        assert_eq!(
            sum.failures,
            Failures {
                refused: 1,
                timed_out: 1,
                no_route: 0,
                reset_after_connect: 1,
                other: 0
            }
        );
        let t = sum.time_us.unwrap();
        assert_eq!((t.min, t.max), (100, 400));
        assert!((t.avg - 250.0).abs() < 1e-9);
        // Population standard deviation of 100, 300, 200, 400.
        assert!((t.stddev - 125f64.sqrt() * 10.0).abs() < 1e-9);
        assert_eq!((t.p50, t.p95, t.p99), (200, 400, 400));
        // |300-100| + |200-300| + |400-200| over 3.
        assert!((t.jitter - 500.0 / 3.0).abs() < 1e-9);

        let mut none = Stats::default();
        none.record(&Outcome::TimedOut, 1000);
        let sum = none.summary();
        assert_eq!(sum.time_us, None);
        assert_eq!(sum.loss_percent, 100.0);
    }
}
