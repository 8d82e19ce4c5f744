//! Metrics scrapes: a Prometheus text body reduced to what Triage charts, the connection-pool
//! gauges (in use, idle, max, waiting) and request/error counters, later turned into rates.
//!
//! Exporters name the same gauges differently; [`PoolMapping::default`] knows the common names
//! (plain `db_connections_*`, HikariCP, sqlx / deadpool / bb8-style) and a probe may override them.
//! Series with several label sets (several pools, several routes) are summed.

use serde::{Deserialize, Serialize};

/// Which metric names feed each pool gauge (the first name present in the scrape wins), and from
/// which share of the maximum in use the pool counts as saturated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolMapping {
    pub in_use: Vec<String>,
    pub idle: Vec<String>,
    pub max: Vec<String>,
    pub waiting: Vec<String>,
    /// Total open connections, used for `in_use` (total − idle) when no in-use gauge exists.
    pub total: Vec<String>,
    pub requests: Vec<String>,
    pub errors: Vec<String>,
    pub saturated_at: f64,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

impl Default for PoolMapping {
    fn default() -> Self {
        Self {
            in_use: names(&[
                "db_connections_active",
                "db_connections_in_use",
                "hikaricp_connections_active",
                "sqlx_pool_connections_in_use",
                "deadpool_connections_in_use",
                "bb8_connections_in_use",
                "pool_connections_in_use",
            ]),
            idle: names(&[
                "db_connections_idle",
                "hikaricp_connections_idle",
                "sqlx_pool_connections_idle",
                "deadpool_connections_idle",
                "bb8_connections_idle",
                "pool_connections_idle",
            ]),
            max: names(&[
                "db_connections_max",
                "hikaricp_connections_max",
                "sqlx_pool_connections_max",
                "deadpool_connections_max",
                "bb8_connections_max",
                "pool_connections_max",
            ]),
            waiting: names(&[
                "db_connections_waiting",
                "db_connections_pending",
                "hikaricp_connections_pending",
                "sqlx_pool_connections_waiting",
                "deadpool_connections_waiting",
                "bb8_connections_waiting",
                "pool_connections_waiting",
            ]),
            total: names(&["db_connections", "hikaricp_connections", "sqlx_pool_connections", "pool_connections"]),
            requests: names(&["http_requests_total", "http_server_requests_seconds_count", "requests_total"]),
            errors: names(&["http_request_errors_total", "http_errors_total", "errors_total"]),
            saturated_at: app::model::POOL_SATURATED_AT,
        }
    }
}

/// What one scrape yielded. `None` where the target exposes no matching series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolSample {
    pub in_use: Option<f64>,
    pub idle: Option<f64>,
    pub max: Option<f64>,
    pub waiting: Option<f64>,
    /// Counter values, cumulative as exposed; [`counter_rate`] turns two of them into a rate.
    pub requests_total: Option<f64>,
    pub errors_total: Option<f64>,
    /// Requests whose `status`/`code` label says 5xx, when the request counter carries one.
    pub server_errors_total: Option<f64>,
}

impl PoolSample {
    /// in use ÷ max, when both are known and max > 0.
    pub fn saturation(&self) -> Option<f64> {
        match (self.in_use, self.max) {
            (Some(used), Some(max)) if max > 0.0 => Some(used / max),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not Prometheus text: {0}")]
pub struct ScrapeError(String);

fn scalar(v: &prometheus_parse::Value) -> Option<f64> {
    use prometheus_parse::Value::*;
    match v {
        Counter(x) | Gauge(x) | Untyped(x) if x.is_finite() => Some(*x),
        _ => None,
    }
}

/// Parses a Prometheus text body and picks the mapped series.
pub fn extract(body: &str, mapping: &PoolMapping) -> Result<PoolSample, ScrapeError> {
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .map_err(|e| ScrapeError(e.to_string()))?;
    // The parser skips lines it cannot read, so a login page "parses" to nothing: content without
    // a single sample is not a metrics endpoint.
    let content = body.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if content && scrape.samples.is_empty() {
        return Err(ScrapeError("no sample could be read from the body".into()));
    }
    // Sum of every sample of the first listed metric that is present.
    let pick = |candidates: &[String]| -> Option<f64> {
        candidates.iter().find_map(|name| {
            let values: Vec<f64> =
                scrape.samples.iter().filter(|s| &s.metric == name).filter_map(|s| scalar(&s.value)).collect();
            (!values.is_empty()).then(|| values.iter().sum())
        })
    };
    let idle = pick(&mapping.idle);
    let in_use = pick(&mapping.in_use).or_else(|| Some(pick(&mapping.total)? - idle?).map(|v| v.max(0.0)));
    let request_metric = mapping.requests.iter().find(|name| scrape.samples.iter().any(|s| &s.metric == *name));
    let server_errors_total = request_metric.and_then(|name| {
        let mut seen = false;
        let sum: f64 = scrape
            .samples
            .iter()
            .filter(|s| &s.metric == name)
            .filter_map(|s| {
                let code = s.labels.get("status").or_else(|| s.labels.get("code"))?;
                seen = true;
                code.starts_with('5').then(|| scalar(&s.value)).flatten()
            })
            .sum();
        seen.then_some(sum)
    });
    Ok(PoolSample {
        in_use,
        idle,
        max: pick(&mapping.max),
        waiting: pick(&mapping.waiting),
        requests_total: pick(&mapping.requests),
        errors_total: pick(&mapping.errors),
        server_errors_total,
    })
}

/// Per-second rate between two readings of a counter taken `seconds` apart. A smaller second
/// reading means the target restarted: its counter began again at zero, so the new value is the
/// increase since then.
pub fn counter_rate(previous: f64, current: f64, seconds: f64) -> Option<f64> {
    if seconds.is_nan() || seconds <= 0.0 || !previous.is_finite() || !current.is_finite() {
        return None;
    }
    let increase = if current >= previous { current - previous } else { current };
    Some(increase / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_db_gauges_and_status_labelled_requests() {
        let body = "\
# TYPE db_connections_active gauge
db_connections_active 7
db_connections_idle 3
db_connections_max 10
db_connections_waiting 0
# TYPE http_requests_total counter
http_requests_total{route=\"/a\",status=\"200\"} 90
http_requests_total{route=\"/b\",status=\"500\"} 6
http_requests_total{route=\"/b\",status=\"503\"} 4
";
        let s = extract(body, &PoolMapping::default()).expect("parses");
        assert_eq!((s.in_use, s.idle, s.max, s.waiting), (Some(7.0), Some(3.0), Some(10.0), Some(0.0)));
        assert_eq!(s.requests_total, Some(100.0));
        assert_eq!(s.server_errors_total, Some(10.0));
        assert_eq!(s.saturation(), Some(0.7));
    }

    #[test]
    fn hikaricp_names_are_understood_and_pools_summed() {
        let body = "\
hikaricp_connections_active{pool=\"main\"} 10
hikaricp_connections_active{pool=\"reports\"} 5
hikaricp_connections_idle{pool=\"main\"} 0
hikaricp_connections_idle{pool=\"reports\"} 0
hikaricp_connections_max{pool=\"main\"} 10
hikaricp_connections_max{pool=\"reports\"} 5
hikaricp_connections_pending{pool=\"main\"} 12
";
        let s = extract(body, &PoolMapping::default()).expect("parses");
        assert_eq!((s.in_use, s.max, s.waiting), (Some(15.0), Some(15.0), Some(12.0)));
        assert_eq!(s.saturation(), Some(1.0));
    }

    #[test]
    fn in_use_is_derived_from_total_minus_idle() {
        let s = extract("pool_connections 8\npool_connections_idle 3\n", &PoolMapping::default()).expect("parses");
        assert_eq!(s.in_use, Some(5.0));
    }

    #[test]
    fn mappings_can_be_overridden() {
        let mapping =
            PoolMapping { in_use: names(&["myapp_db_busy"]), max: names(&["myapp_db_limit"]), ..Default::default() };
        let s = extract("myapp_db_busy 4\nmyapp_db_limit 16\ndb_connections_active 99\n", &mapping).expect("parses");
        assert_eq!((s.in_use, s.max), (Some(4.0), Some(16.0)));
    }

    #[test]
    fn missing_series_stay_unknown() {
        let s = extract("process_cpu_seconds_total 12.5\n", &PoolMapping::default()).expect("parses");
        assert_eq!(s, PoolSample::default());
        assert_eq!(s.saturation(), None);
    }

    #[test]
    fn a_page_that_is_not_metrics_is_refused() {
        assert!(extract("<html><body>Sign in</body></html>\n", &PoolMapping::default()).is_err());
        assert!(extract("", &PoolMapping::default()).is_ok(), "an empty exposition is valid");
        assert!(extract("# HELP x y\n", &PoolMapping::default()).is_ok());
    }

    #[test]
    fn counter_rates_handle_restarts() {
        assert_eq!(counter_rate(100.0, 160.0, 30.0), Some(2.0));
        assert_eq!(counter_rate(5000.0, 30.0, 15.0), Some(2.0), "reset: the new value is the increase");
        assert_eq!(counter_rate(1.0, 2.0, 0.0), None);
        assert_eq!(counter_rate(f64::NAN, 2.0, 1.0), None);
    }
}
