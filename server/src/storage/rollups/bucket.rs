//! One rollup bucket of one probe: counts by outcome and error class, the latency histogram, and
//! pool gauges. Merging two rollups gives exactly the rollup of both sets of results, so minutes
//! merge into hours, hours into days, and any range into a chart point.

use app::model::{EchoCount, ErrorClass, Outcome, PhaseMeans, PoolReading, SeriesPoint};
use chrono::{DateTime, Utc};

use super::histogram::LatencyHistogram;

pub const ERROR_CLASSES: usize = ErrorClass::ALL.len();

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rollup {
    pub n_up: u64,
    pub n_degraded: u64,
    pub n_down: u64,
    pub errors: [u64; ERROR_CLASSES],
    pub latency: LatencyHistogram,
    pub pool_in_use: Option<f64>,
    pub pool_idle: Option<f64>,
    pub pool_max: Option<f64>,
    pub pool_waiting: Option<f64>,
    pub req_rate_sum: f64,
    pub err_rate_sum: f64,
    pub rate_samples: u64,
    /// Sums of the phases (DNS, connect, TLS, TTFB, transfer) of the timed checks, and how many.
    pub phase_sum_us: [u64; PHASES],
    pub phase_n: u64,
    /// ICMP echoes sent and lost.
    pub echo_sent: u64,
    pub echo_lost: u64,
}

/// DNS, connect, TLS, time to first byte, transfer.
pub const PHASES: usize = 5;

fn keep_max(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

fn keep_min(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// The parts of a result a rollup needs.
#[derive(Clone, Copy, Debug)]
pub struct Observation {
    pub outcome: Outcome,
    pub error: Option<ErrorClass>,
    /// `None` for results whose duration says nothing about the target's speed (see
    /// [`latency_counts`]).
    pub total_us: Option<u64>,
    pub pool: Option<PoolReading>,
    /// The check's phases in µs (a phase that did not happen, e.g. TLS over HTTP, is 0); `None`
    /// when the check was not timed (see [`latency_counts`]) or carries no phases (pushed).
    pub phases_us: Option<[u64; PHASES]>,
    pub echo: Option<EchoCount>,
}

/// Whether a result's total time belongs in the latency percentiles: answered checks and
/// timeouts do (a timeout is the slowest answer there is); a connection refused in 1 ms or a
/// check blocked by policy would only pull the percentiles down.
pub fn latency_counts(status: Option<u16>, error: Option<ErrorClass>) -> bool {
    status.is_some() || error == Some(ErrorClass::Timeout) || error.is_none()
}

impl Rollup {
    pub fn count(&self) -> u64 {
        self.n_up + self.n_degraded + self.n_down
    }

    pub fn observe(&mut self, o: &Observation) {
        match o.outcome {
            Outcome::Up => self.n_up += 1,
            Outcome::Degraded => self.n_degraded += 1,
            Outcome::Down => self.n_down += 1,
        }
        if let Some(class) = o.error {
            self.errors[class.index()] += 1;
        }
        if let Some(us) = o.total_us {
            self.latency.record(us);
            if let Some(phases) = o.phases_us {
                for (sum, v) in self.phase_sum_us.iter_mut().zip(phases) {
                    *sum = sum.saturating_add(v);
                }
                self.phase_n += 1;
            }
        }
        if let Some(e) = o.echo {
            self.echo_sent += u64::from(e.sent);
            self.echo_lost += u64::from(e.sent.saturating_sub(e.received));
        }
        if let Some(p) = o.pool {
            self.pool_in_use = keep_max(self.pool_in_use, p.in_use);
            self.pool_idle = keep_min(self.pool_idle, p.idle);
            self.pool_max = keep_max(self.pool_max, p.max);
            self.pool_waiting = keep_max(self.pool_waiting, p.waiting);
            if let Some(r) = p.requests_per_s {
                self.req_rate_sum += r;
                self.err_rate_sum += p.errors_per_s.unwrap_or(0.0);
                self.rate_samples += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &Rollup) {
        self.n_up += other.n_up;
        self.n_degraded += other.n_degraded;
        self.n_down += other.n_down;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.latency.merge(&other.latency);
        self.pool_in_use = keep_max(self.pool_in_use, other.pool_in_use);
        self.pool_idle = keep_min(self.pool_idle, other.pool_idle);
        self.pool_max = keep_max(self.pool_max, other.pool_max);
        self.pool_waiting = keep_max(self.pool_waiting, other.pool_waiting);
        self.req_rate_sum += other.req_rate_sum;
        self.err_rate_sum += other.err_rate_sum;
        self.rate_samples += other.rate_samples;
        for (a, b) in self.phase_sum_us.iter_mut().zip(other.phase_sum_us) {
            *a = a.saturating_add(b);
        }
        self.phase_n += other.phase_n;
        self.echo_sent += other.echo_sent;
        self.echo_lost += other.echo_lost;
    }

    /// The chart point for this bucket; the error rate counts `down` results.
    pub fn to_point(&self, at: DateTime<Utc>) -> SeriesPoint {
        self.to_point_with(at, self.latency.percentiles([0.50, 0.95, 0.99]))
    }

    /// The chart point with p50/p95/p99 (µs) computed elsewhere (from an encoded histogram).
    pub fn to_point_with(&self, at: DateTime<Utc>, latency_us: [Option<f64>; 3]) -> SeriesPoint {
        let count = self.count();
        let failed = self.n_down;
        let errors = ErrorClass::ALL.iter().zip(self.errors).filter(|(_, n)| *n > 0).map(|(c, n)| (*c, n)).collect();
        let [p50, p95, p99] = latency_us.map(|v| v.map(|us| us / 1000.0));
        let has_pool = self.pool_in_use.is_some()
            || self.pool_max.is_some()
            || self.pool_waiting.is_some()
            || self.rate_samples > 0;
        let pool = has_pool.then(|| PoolReading {
            in_use: self.pool_in_use,
            idle: self.pool_idle,
            max: self.pool_max,
            waiting: self.pool_waiting,
            requests_per_s: (self.rate_samples > 0).then(|| self.req_rate_sum / self.rate_samples as f64),
            errors_per_s: (self.rate_samples > 0).then(|| self.err_rate_sum / self.rate_samples as f64),
        });
        SeriesPoint {
            at,
            count,
            up: self.n_up,
            degraded: self.n_degraded,
            down: self.n_down,
            error_pct: (count > 0).then(|| failed as f64 * 100.0 / count as f64),
            errors,
            p50_ms: p50,
            p95_ms: p95,
            p99_ms: p99,
            phases_ms: (self.phase_n > 0).then(|| {
                let [dns, connect, tls, ttfb, transfer] =
                    self.phase_sum_us.map(|s| s as f64 / self.phase_n as f64 / 1000.0);
                PhaseMeans { dns, connect, tls, ttfb, transfer }
            }),
            pool,
            loss_pct: (self.echo_sent > 0).then(|| self.echo_lost as f64 * 100.0 / self.echo_sent as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(outcome: Outcome, error: Option<ErrorClass>, total_us: u64) -> Observation {
        Observation { outcome, error, total_us: Some(total_us), pool: None, phases_us: None, echo: None }
    }

    #[test]
    fn merging_equals_observing_everything_in_one() {
        let all: Vec<Observation> = (0..500u64)
            .map(|i| match i % 10 {
                0 => obs(Outcome::Down, Some(ErrorClass::Timeout), 5_000_000),
                1 => obs(Outcome::Degraded, None, 900_000 + i),
                _ => obs(Outcome::Up, None, 10_000 + i * 37),
            })
            .collect();
        let mut whole = Rollup::default();
        all.iter().for_each(|o| whole.observe(o));
        let mut a = Rollup::default();
        let mut b = Rollup::default();
        all[..123].iter().for_each(|o| a.observe(o));
        all[123..].iter().for_each(|o| b.observe(o));
        a.merge(&b);
        assert_eq!(a, whole);
        let p = whole.to_point(Utc::now());
        assert_eq!((p.count, p.up, p.degraded, p.down), (500, 400, 50, 50));
        assert_eq!(p.error_pct, Some(10.0));
        assert_eq!(p.errors.get(&ErrorClass::Timeout), Some(&50));
    }

    #[test]
    fn phase_means_cover_timed_checks_only_and_survive_merging() {
        let timed = |phases: [u64; PHASES]| Observation {
            outcome: Outcome::Up,
            error: None,
            total_us: Some(phases.iter().sum()),
            pool: None,
            phases_us: Some(phases),
            echo: None,
        };
        let (mut a, mut b) = (Rollup::default(), Rollup::default());
        a.observe(&timed([1_000, 2_000, 0, 10_000, 1_000]));
        b.observe(&timed([3_000, 4_000, 0, 30_000, 3_000]));
        // Refused in 1 ms: not timed, so it must not drag the means down.
        b.observe(&Observation {
            outcome: Outcome::Down,
            error: Some(ErrorClass::Connect),
            total_us: None,
            pool: None,
            phases_us: None,
            echo: None,
        });
        a.merge(&b);
        let p = a.to_point(Utc::now()).phases_ms.expect("phases");
        assert_eq!((p.dns, p.connect, p.tls, p.ttfb, p.transfer), (2.0, 3.0, 0.0, 20.0, 2.0));
        assert_eq!(Rollup::default().to_point(Utc::now()).phases_ms, None);
    }

    #[test]
    fn pool_gauges_keep_the_worst_of_the_bucket() {
        let mut r = Rollup::default();
        for (in_use, idle, waiting) in [(3.0, 7.0, 0.0), (10.0, 0.0, 12.0), (6.0, 4.0, 1.0)] {
            r.observe(&Observation {
                outcome: Outcome::Up,
                error: None,
                total_us: Some(1000),
                pool: Some(PoolReading {
                    in_use: Some(in_use),
                    idle: Some(idle),
                    max: Some(10.0),
                    waiting: Some(waiting),
                    requests_per_s: Some(30.0),
                    errors_per_s: Some(3.0),
                }),
                phases_us: None,
                echo: None,
            });
        }
        let pool = r.to_point(Utc::now()).pool.expect("pool");
        assert_eq!((pool.in_use, pool.idle, pool.max, pool.waiting), (Some(10.0), Some(0.0), Some(10.0), Some(12.0)));
        assert_eq!((pool.requests_per_s, pool.errors_per_s), (Some(30.0), Some(3.0)));
    }

    #[test]
    fn echo_loss_is_lost_over_sent_and_merges_exactly() {
        let ping = |sent, received| Observation {
            echo: Some(EchoCount { sent, received }),
            ..obs(if received == 0 { Outcome::Down } else { Outcome::Up }, None, 1_000)
        };
        let (mut a, mut b) = (Rollup::default(), Rollup::default());
        a.observe(&ping(3, 3));
        a.observe(&ping(3, 2));
        b.observe(&ping(4, 0));
        b.observe(&obs(Outcome::Up, None, 500));
        assert_eq!(a.to_point(Utc::now()).loss_pct.map(|l| (l * 100.0).round() / 100.0), Some(16.67));
        a.merge(&b);
        // 5 of 10 echoes lost, whatever the split into checks and buckets.
        assert_eq!(a.to_point(Utc::now()).loss_pct, Some(50.0));
        assert_eq!(Rollup::default().to_point(Utc::now()).loss_pct, None, "no echoes, no loss figure");
    }

    #[test]
    fn an_empty_bucket_has_no_percentiles() {
        let p = Rollup::default().to_point(Utc::now());
        assert_eq!((p.count, p.p50_ms, p.error_pct, p.pool), (0, None, None, None));
    }
}
