//! Metrics scrapes: a Prometheus text body reduced to what Triage charts, the connection-pool
//! gauges (in use, idle, max, waiting) and request/error counters, later turned into rates.
//!
//! Exporters name the same gauges differently; [`PoolMapping::default`] knows the names below and
//! a probe may override any list. An entry is a metric name (every series of it is summed: several
//! pools, several routes) or a selector that narrows it by labels, `name{label="value"}` or
//! `name{label!="value"}`, comma-separated, with PromQL's meaning (a missing label reads as "").
//!
//! | Stack, exporter | in use | idle | max | waiting |
//! | --- | --- | --- | --- | --- |
//! | HikariCP through Micrometer | `hikaricp_connections_active` | `hikaricp_connections_idle` | `hikaricp_connections_max` | `hikaricp_connections_pending` |
//! | HikariCP's own collector | `hikaricp_active_connections` | `hikaricp_idle_connections` | `hikaricp_max_connections` | `hikaricp_pending_threads` |
//! | Go `database/sql`, client_golang `NewDBStatsCollector` | `go_sql_in_use_connections` | `go_sql_idle_connections` | `go_sql_max_open_connections` | none |
//! | Go `database/sql`, dlmiddlecote/sqlstats | `go_sql_stats_connections_in_use` | `go_sql_stats_connections_idle` | `go_sql_stats_connections_max_open` | none |
//! | sqlx, deadpool, bb8 | `*_in_use` | `*_idle` | `*_max` | `*_waiting` |
//! | ActiveRecord, Discourse `prometheus_exporter` | `ruby_active_record_connection_pool_busy` | `…_idle` | `…_size` | `…_waiting` |
//! | node-postgres, node-postgres-prometheus-exporter | `pg_pool_active_connections` | `pg_pool_idle_connections` | `pg_pool_max` | `pg_pool_waiting_connections` |
//! | OpenTelemetry (node-postgres, newer instrumentations) | `db_client_connection_count{db_client_connection_state="used"}` | `…="idle"` | `db_client_connection_max` | `db_client_connection_pending_requests` |
//! | OpenTelemetry, earlier names (Npgsql 8/9; SQLAlchemy through a Collector) | `db_client_connections_usage{state="used"}` | `…{state="idle"}` | `db_client_connections_max` | `db_client_connections_pending_requests` |
//! | SQLAlchemy through the Python SDK's Prometheus exporter | `db_client_connections_usage_connections{state="used"}` | `…{state="idle"}` | none | none |
//! | generic | `db_connections_active`, `pool_connections_in_use` | `*_idle` | `*_max` | `*_waiting`, `db_connections_pending` |
//! | pgbouncer_exporter (server side) | `pgbouncer_pools_server_active_connections` | `pgbouncer_pools_server_idle_connections` | `pgbouncer_databases_pool_size{database!="pgbouncer"}` | `pgbouncer_pools_client_waiting_connections` |
//! | postgres_exporter (the server) | `pg_stat_activity_count` | `pg_stat_activity_count{state="idle"}` | `pg_settings_max_connections` | none |
//! | mysqld_exporter (the server) | `mysql_global_status_threads_connected` | none | `mysql_global_variables_max_connections` | none |
//!
//! "None" stays unknown: a gauge is never derived from a counter, a maximum is never guessed, and
//! a stated maximum of 0 (database/sql's "unlimited") reads as none.
//! The gauges of one reading come from one exporter: once the in-use series is found, the other
//! gauges are not taken from a different exporter of the table (a user's own names always count).

use prometheus_parse::{Sample, Value as PromValue};
use serde::{Deserialize, Serialize};

/// Which series feed each pool gauge (the first entry present in the scrape wins), and from which
/// share of the maximum in use the pool counts as saturated. Entries are metric names or label
/// selectors (see the module documentation).
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

/// One exporter's series for the pool gauges; an empty list where it has none.
struct Family {
    in_use: &'static [&'static str],
    idle: &'static [&'static str],
    max: &'static [&'static str],
    waiting: &'static [&'static str],
    total: &'static [&'static str],
}

const NONE: &[&str] = &[];

/// The built-in exporters, most specific first: application pools, then the generic names, then
/// pgbouncer, and the database servers last. Order is priority, since the first entry present
/// wins: a scrape that carries an application pool and a server's own counts reads the pool.
const FAMILIES: &[Family] = &[
    // Spring Boot's /actuator/prometheus; one `pool` label per pool.
    Family {
        in_use: &["hikaricp_connections_active"],
        idle: &["hikaricp_connections_idle"],
        max: &["hikaricp_connections_max"],
        waiting: &["hikaricp_connections_pending"],
        total: &["hikaricp_connections"],
    },
    // HikariCP's PrometheusMetricsTrackerFactory, for applications without Micrometer.
    Family {
        in_use: &["hikaricp_active_connections"],
        idle: &["hikaricp_idle_connections"],
        max: &["hikaricp_max_connections"],
        waiting: &["hikaricp_pending_threads"],
        total: &["hikaricp_connections"],
    },
    // database/sql counts the waits it has seen (`go_sql_wait_count_total`) but not who waits
    // now, and a running count says nothing about this instant: no waiting gauge here.
    Family {
        in_use: &["go_sql_in_use_connections"],
        idle: &["go_sql_idle_connections"],
        max: &["go_sql_max_open_connections"],
        waiting: NONE,
        total: &["go_sql_open_connections"],
    },
    // The same DBStats, as dlmiddlecote/sqlstats names them (`waited_for` is a counter too).
    Family {
        in_use: &["go_sql_stats_connections_in_use"],
        idle: &["go_sql_stats_connections_idle"],
        max: &["go_sql_stats_connections_max_open"],
        waiting: NONE,
        total: &["go_sql_stats_connections_open"],
    },
    Family {
        in_use: &["sqlx_pool_connections_in_use"],
        idle: &["sqlx_pool_connections_idle"],
        max: &["sqlx_pool_connections_max"],
        waiting: &["sqlx_pool_connections_waiting"],
        total: &["sqlx_pool_connections"],
    },
    Family {
        in_use: &["deadpool_connections_in_use"],
        idle: &["deadpool_connections_idle"],
        max: &["deadpool_connections_max"],
        waiting: &["deadpool_connections_waiting"],
        total: NONE,
    },
    Family {
        in_use: &["bb8_connections_in_use"],
        idle: &["bb8_connections_idle"],
        max: &["bb8_connections_max"],
        waiting: &["bb8_connections_waiting"],
        total: NONE,
    },
    // `ruby_` is prometheus_exporter's default prefix; the bare names follow for a collector
    // configured with an empty one.
    Family {
        in_use: &["ruby_active_record_connection_pool_busy"],
        idle: &["ruby_active_record_connection_pool_idle"],
        max: &["ruby_active_record_connection_pool_size"],
        waiting: &["ruby_active_record_connection_pool_waiting"],
        total: &["ruby_active_record_connection_pool_connections"],
    },
    Family {
        in_use: &["active_record_connection_pool_busy"],
        idle: &["active_record_connection_pool_idle"],
        max: &["active_record_connection_pool_size"],
        waiting: &["active_record_connection_pool_waiting"],
        total: &["active_record_connection_pool_connections"],
    },
    // node-postgres has no exporter of its own (`pg.Pool` only offers totalCount, idleCount and
    // waitingCount as properties) and no third-party one is in wide use. These are the names of
    // @christiangalsterer/node-postgres-prometheus-exporter, which documents them; OpenTelemetry's
    // instrumentation-pg is the other route, covered by the next family.
    Family {
        in_use: &["pg_pool_active_connections"],
        idle: &["pg_pool_idle_connections"],
        max: &["pg_pool_max"],
        waiting: &["pg_pool_waiting_connections"],
        total: &["pg_pool_size"],
    },
    // OpenTelemetry database client conventions as they stand now (`db.client.connection.*`,
    // the state in `db.client.connection.state`), translated to Prometheus names.
    Family {
        in_use: &[r#"db_client_connection_count{db_client_connection_state="used"}"#],
        idle: &[r#"db_client_connection_count{db_client_connection_state="idle"}"#],
        max: &["db_client_connection_max"],
        waiting: &["db_client_connection_pending_requests"],
        total: &["db_client_connection_count"],
    },
    // The earlier experimental names (conventions up to 1.24), as Npgsql 8 and 9 and SQLAlchemy's
    // instrumentation emit them.
    Family {
        in_use: &[r#"db_client_connections_usage{state="used"}"#],
        idle: &[r#"db_client_connections_usage{state="idle"}"#],
        max: &["db_client_connections_max"],
        waiting: &["db_client_connections_pending_requests"],
        total: &["db_client_connections_usage"],
    },
    // SQLAlchemy's instrument declares the unit "connections", and the Python SDK's own
    // Prometheus exporter appends a unit the name does not end with. That instrumentation reports
    // the usage only: no maximum, no waiting.
    Family {
        in_use: &[r#"db_client_connections_usage_connections{state="used"}"#],
        idle: &[r#"db_client_connections_usage_connections{state="idle"}"#],
        max: NONE,
        waiting: NONE,
        total: &["db_client_connections_usage_connections"],
    },
    Family {
        in_use: &["db_connections_active", "db_connections_in_use"],
        idle: &["db_connections_idle"],
        max: &["db_connections_max"],
        waiting: &["db_connections_waiting", "db_connections_pending"],
        total: &["db_connections"],
    },
    Family {
        in_use: &["pool_connections_in_use"],
        idle: &["pool_connections_idle"],
        max: &["pool_connections_max"],
        waiting: &["pool_connections_waiting"],
        total: &["pool_connections"],
    },
    // pgbouncer's pool is its server side: server connections handed to a client against
    // `pool_size`, while clients queue for one. `max_client_conn` bounds clients, not the pool.
    // `pool_size` is per user and database pair, so with several users on one database the sum
    // understates the room. The admin console shows up as the pseudo-database "pgbouncer", which
    // has no server behind it and must not add to the maximum.
    Family {
        in_use: &["pgbouncer_pools_server_active_connections"],
        idle: &["pgbouncer_pools_server_idle_connections"],
        max: &[r#"pgbouncer_databases_pool_size{database!="pgbouncer"}"#],
        waiting: &["pgbouncer_pools_client_waiting_connections"],
        total: NONE,
    },
    // The server's own view, for "too many clients": every connection takes one of the
    // max_connections slots whatever it is doing, so in use is the sum over all states. Idle ones
    // are counted in it too (they hold a slot) and are shown apart because they are the ones an
    // application pool could give back. The slots reserved for superusers are not subtracted: the
    // limit shown is the one the server states.
    Family {
        in_use: &["pg_stat_activity_count"],
        idle: &[r#"pg_stat_activity_count{state="idle"}"#],
        max: &["pg_settings_max_connections"],
        waiting: NONE,
        total: NONE,
    },
    // Connected threads against max_connections. `threads_running` would make connected minus
    // running look like "idle", but that is a derivation no exporter states.
    Family {
        in_use: &["mysql_global_status_threads_connected"],
        idle: NONE,
        max: &["mysql_global_variables_max_connections"],
        waiting: NONE,
        total: NONE,
    },
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    InUse,
    Idle,
    Max,
    Waiting,
    Total,
}

impl Field {
    fn names(self, family: &Family) -> &'static [&'static str] {
        match self {
            Field::InUse => family.in_use,
            Field::Idle => family.idle,
            Field::Max => family.max,
            Field::Waiting => family.waiting,
            Field::Total => family.total,
        }
    }

    /// The built-in entries for this gauge, in priority order, each once.
    fn defaults(self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for family in FAMILIES {
            for name in self.names(family) {
                if !out.iter().any(|known| known.as_str() == *name) {
                    out.push((*name).to_string());
                }
            }
        }
        out
    }
}

impl Default for PoolMapping {
    fn default() -> Self {
        Self {
            in_use: Field::InUse.defaults(),
            idle: Field::Idle.defaults(),
            max: Field::Max.defaults(),
            waiting: Field::Waiting.defaults(),
            total: Field::Total.defaults(),
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

/// A mapping entry understood: a metric name and the label matchers that narrow it.
#[derive(Debug, PartialEq, Eq)]
struct Selector {
    name: String,
    matchers: Vec<Matcher>,
}

#[derive(Debug, PartialEq, Eq)]
struct Matcher {
    label: String,
    value: String,
    /// `=` when true, `!=` when false.
    equal: bool,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn skip_spaces(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| c.is_whitespace()).is_some() {}
}

impl Selector {
    /// `None` for an entry that is neither a name nor a well-formed selector: such an entry
    /// matches nothing rather than something unintended.
    fn parse(entry: &str) -> Option<Selector> {
        let entry = entry.trim();
        let (name, inner) = match entry.split_once('{') {
            None => (entry, None),
            Some((name, rest)) => (name.trim_end(), Some(rest.trim_end().strip_suffix('}')?)),
        };
        if !is_metric_name(name) {
            return None;
        }
        let mut matchers = Vec::new();
        if let Some(inner) = inner {
            let mut chars = inner.chars().peekable();
            loop {
                skip_spaces(&mut chars);
                if chars.peek().is_none() {
                    break;
                }
                let mut label = String::new();
                while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
                    label.push(c);
                }
                if label.is_empty() {
                    return None;
                }
                skip_spaces(&mut chars);
                let equal = match chars.next()? {
                    '=' => true,
                    '!' if chars.next_if_eq(&'=').is_some() => false,
                    _ => return None,
                };
                skip_spaces(&mut chars);
                if chars.next()? != '"' {
                    return None;
                }
                let mut value = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            'n' => value.push('\n'),
                            escaped => value.push(escaped),
                        },
                        c => value.push(c),
                    }
                }
                matchers.push(Matcher { label, value, equal });
                skip_spaces(&mut chars);
                match chars.next() {
                    None => break,
                    Some(',') => {}
                    Some(_) => return None,
                }
            }
        }
        Some(Selector { name: name.to_string(), matchers })
    }

    fn matches(&self, sample: &Sample) -> bool {
        sample.metric == self.name
            && self.matchers.iter().all(|m| {
                let value = sample.labels.get(m.label.as_str()).unwrap_or("");
                (value == m.value.as_str()) == m.equal
            })
    }
}

/// Whether a mapping entry is a metric name or a well-formed selector (for the probe's spec, so a
/// typo is refused rather than silently matching nothing).
pub fn is_selector(entry: &str) -> bool {
    Selector::parse(entry).is_some()
}

/// Counters and untyped values, for the request and error counters.
fn scalar(v: &PromValue) -> Option<f64> {
    match v {
        PromValue::Counter(x) | PromValue::Gauge(x) | PromValue::Untyped(x) if x.is_finite() => Some(*x),
        _ => None,
    }
}

/// A pool gauge is a level now; a series the exporter declares a counter is a running total and
/// never stands in for one.
fn gauge_value(v: &PromValue) -> Option<f64> {
    match v {
        PromValue::Gauge(x) | PromValue::Untyped(x) if x.is_finite() => Some(*x),
        _ => None,
    }
}

/// The sum over the samples of the first admitted entry that has any readable sample.
fn pick(
    samples: &[Sample],
    list: &[String],
    admit: impl Fn(&str) -> bool,
    read: fn(&PromValue) -> Option<f64>,
) -> Option<f64> {
    list.iter().filter(|entry| admit(entry.as_str())).find_map(|entry| {
        let selector = Selector::parse(entry)?;
        let values: Vec<f64> = samples.iter().filter(|s| selector.matches(s)).filter_map(|s| read(&s.value)).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>())
    })
}

fn is_present(samples: &[Sample], entry: &str) -> bool {
    Selector::parse(entry)
        .is_some_and(|selector| samples.iter().any(|s| selector.matches(s) && gauge_value(&s.value).is_some()))
}

/// The built-in exporter the reading is anchored to: the one owning the first in-use entry
/// present (or, without one, the first total, idle, max or waiting entry present). `None` when
/// that entry is not from the table, e.g. a probe's own name.
fn anchor_family(samples: &[Sample], mapping: &PoolMapping) -> Option<&'static Family> {
    let fields = [
        (mapping.in_use.as_slice(), Field::InUse),
        (mapping.total.as_slice(), Field::Total),
        (mapping.idle.as_slice(), Field::Idle),
        (mapping.max.as_slice(), Field::Max),
        (mapping.waiting.as_slice(), Field::Waiting),
    ];
    let (entry, field) = fields.iter().find_map(|(list, field)| {
        list.iter().find(|entry| is_present(samples, entry.as_str())).map(|entry| (entry.as_str(), *field))
    })?;
    FAMILIES.iter().find(|family| lists(family, field, entry))
}

/// Whether `entry` may feed `field` in a reading anchored to `anchor`: an entry of another
/// built-in exporter would mix two pools (an application's in-use count against the database's
/// max_connections, say), so it is left out; names the table does not know are always admitted.
fn admits(anchor: Option<&Family>, field: Field, entry: &str) -> bool {
    let Some(anchor) = anchor else {
        return true;
    };
    !FAMILIES.iter().any(|family| lists(family, field, entry)) || lists(anchor, field, entry)
}

fn lists(family: &Family, field: Field, entry: &str) -> bool {
    field.names(family).contains(&entry)
}

struct Reader<'a> {
    samples: &'a [Sample],
    anchor: Option<&'static Family>,
}

impl Reader<'_> {
    fn gauge(&self, list: &[String], field: Field) -> Option<f64> {
        pick(self.samples, list, |entry| admits(self.anchor, field, entry), gauge_value)
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
    let samples = scrape.samples.as_slice();
    let reader = Reader { samples, anchor: anchor_family(samples, mapping) };
    let idle = reader.gauge(&mapping.idle, Field::Idle);
    let in_use = reader
        .gauge(&mapping.in_use, Field::InUse)
        .or_else(|| Some((reader.gauge(&mapping.total, Field::Total)? - idle?).max(0.0)));
    // A maximum of zero is no limit at all (database/sql's SetMaxOpenConns(0) means unlimited).
    let max = reader.gauge(&mapping.max, Field::Max).filter(|m| *m > 0.0);
    let waiting = reader.gauge(&mapping.waiting, Field::Waiting);
    let request_selector = mapping
        .requests
        .iter()
        .filter_map(|entry| Selector::parse(entry))
        .find(|selector| samples.iter().any(|s| selector.matches(s)));
    let server_errors_total = request_selector.and_then(|selector| {
        let mut seen = false;
        let sum: f64 = samples
            .iter()
            .filter(|s| selector.matches(s))
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
        max,
        waiting,
        requests_total: pick(samples, &mapping.requests, |_| true, scalar),
        errors_total: pick(samples, &mapping.errors, |_| true, scalar),
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

    type Gauges = (Option<f64>, Option<f64>, Option<f64>, Option<f64>);

    /// in use, idle, max and waiting as the default mapping reads a fixture.
    fn gauges(body: &str) -> Gauges {
        let s = extract(body, &PoolMapping::default()).expect("parses");
        (s.in_use, s.idle, s.max, s.waiting)
    }

    const GO_DBSTATS: &str = include_str!("../../../tests/fixtures/formats/go-dbstats-collector.prom");
    const GO_SQLSTATS: &str = include_str!("../../../tests/fixtures/formats/go-sqlstats.prom");
    const HIKARI: &str = include_str!("../../../tests/fixtures/formats/hikaricp-micrometer.prom");
    const PGBOUNCER: &str = include_str!("../../../tests/fixtures/formats/pgbouncer-exporter.prom");
    const NODE_PG: &str = include_str!("../../../tests/fixtures/formats/node-postgres-exporter.prom");
    const OTEL_NODE_PG: &str = include_str!("../../../tests/fixtures/formats/otel-node-postgres-collector.prom");
    const OTEL_NPGSQL: &str = include_str!("../../../tests/fixtures/formats/otel-npgsql-dotnet.prom");
    const OTEL_SQLALCHEMY: &str = include_str!("../../../tests/fixtures/formats/otel-sqlalchemy-python.prom");
    const ACTIVE_RECORD: &str = include_str!("../../../tests/fixtures/formats/active-record-prometheus-exporter.prom");
    const POSTGRES: &str = include_str!("../../../tests/fixtures/formats/postgres-exporter.prom");
    const MYSQL: &str = include_str!("../../../tests/fixtures/formats/mysqld-exporter.prom");

    #[test]
    fn go_database_sql_through_client_golang_has_no_waiting_gauge() {
        // The wait count (18342) is a counter: it must not surface as requests waiting.
        assert_eq!(gauges(GO_DBSTATS), (Some(26.0), Some(2.0), Some(35.0), None));
    }

    #[test]
    fn go_database_sql_through_sqlstats() {
        assert_eq!(gauges(GO_SQLSTATS), (Some(6.0), Some(4.0), Some(20.0), None));
    }

    #[test]
    fn an_unlimited_go_pool_has_no_maximum() {
        let body = "\
# TYPE go_sql_max_open_connections gauge
go_sql_max_open_connections{db_name=\"orders\"} 0
# TYPE go_sql_in_use_connections gauge
go_sql_in_use_connections{db_name=\"orders\"} 40
";
        let s = extract(body, &PoolMapping::default()).expect("parses");
        assert_eq!((s.in_use, s.max, s.saturation()), (Some(40.0), None, None));
    }

    #[test]
    fn hikaricp_through_micrometer() {
        assert_eq!(gauges(HIKARI), (Some(10.0), Some(0.0), Some(10.0), Some(14.0)));
        let s = extract(HIKARI, &PoolMapping::default()).expect("parses");
        assert_eq!((s.requests_total, s.server_errors_total), (Some(1245.0), Some(41.0)));
    }

    #[test]
    fn pgbouncer_reads_its_server_side_without_the_admin_console() {
        assert_eq!(gauges(PGBOUNCER), (Some(23.0), Some(2.0), Some(30.0), Some(35.0)));
    }

    #[test]
    fn node_postgres_through_its_exporter() {
        assert_eq!(gauges(NODE_PG), (Some(10.0), Some(0.0), Some(10.0), Some(4.0)));
    }

    #[test]
    fn node_postgres_through_opentelemetry_states_no_maximum() {
        assert_eq!(gauges(OTEL_NODE_PG), (Some(10.0), Some(0.0), None, Some(6.0)));
    }

    #[test]
    fn npgsql_through_opentelemetry_sums_its_pools() {
        assert_eq!(gauges(OTEL_NPGSQL), (Some(101.0), Some(4.0), Some(120.0), Some(23.0)));
    }

    #[test]
    fn sqlalchemy_through_the_python_exporter_reports_usage_only() {
        assert_eq!(gauges(OTEL_SQLALCHEMY), (Some(8.0), Some(2.0), None, None));
    }

    #[test]
    fn active_record_through_prometheus_exporter_sums_processes() {
        assert_eq!(gauges(ACTIVE_RECORD), (Some(9.0), Some(1.0), Some(10.0), Some(3.0)));
    }

    #[test]
    fn postgres_exporter_counts_every_connection_against_max_connections() {
        let (in_use, idle, max, waiting) = gauges(POSTGRES);
        assert_eq!((in_use, idle, max, waiting), (Some(97.0), Some(52.0), Some(100.0), None));
        let s = extract(POSTGRES, &PoolMapping::default()).expect("parses");
        assert!(s.saturation().is_some_and(|r| r >= app::model::POOL_SATURATED_AT), "97 of 100 is too many clients");
    }

    #[test]
    fn mysqld_exporter_counts_connected_threads() {
        assert_eq!(gauges(MYSQL), (Some(151.0), None, Some(151.0), None));
    }

    #[test]
    fn an_application_pool_wins_over_the_database_in_one_scrape() {
        let both = format!("{HIKARI}{POSTGRES}");
        assert_eq!(gauges(&both), (Some(10.0), Some(0.0), Some(10.0), Some(14.0)));
        // SQLAlchemy states no maximum; the server's max_connections is another pool's limit.
        let both = format!("{POSTGRES}{OTEL_SQLALCHEMY}");
        assert_eq!(gauges(&both), (Some(8.0), Some(2.0), None, None));
    }

    #[test]
    fn a_counter_never_stands_in_for_a_gauge() {
        let body = "# TYPE db_connections_waiting counter\ndb_connections_waiting 5\ndb_connections_active 3\n";
        assert_eq!(gauges(body), (Some(3.0), None, None, None));
    }

    #[test]
    fn selectors_parse_names_and_label_matchers() {
        let s = Selector::parse(r#" db_client_connections_usage { state = "used" , pool_name!="a \"b\"" , } "#)
            .expect("parses");
        assert_eq!(s.name, "db_client_connections_usage");
        assert_eq!(
            s.matchers,
            vec![
                Matcher { label: "state".into(), value: "used".into(), equal: true },
                Matcher { label: "pool_name".into(), value: "a \"b\"".into(), equal: false },
            ]
        );
        assert_eq!(Selector::parse("up"), Some(Selector { name: "up".into(), matchers: Vec::new() }));
        assert_eq!(Selector::parse("x{}").map(|s| s.matchers.len()), Some(0));
        for bad in ["", "9lives", "x{state=used}", "x{state=\"used\"", "x{=\"v\"}", "x{a~\"v\"}", "x{a=\"v\" b=\"w\"}"]
        {
            assert_eq!(Selector::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn selectors_in_overrides_pick_labelled_series() {
        let mapping = PoolMapping {
            in_use: names(&[r#"app_conns{state="busy"}"#]),
            idle: names(&[r#"app_conns{state="free"}"#]),
            total: names(&["app_conns"]),
            max: names(&[r#"app_limit{kind!="soft"}"#]),
            ..Default::default()
        };
        let body = "\
app_conns{pool=\"a\",state=\"busy\"} 3
app_conns{pool=\"b\",state=\"busy\"} 2
app_conns{pool=\"a\",state=\"free\"} 1
app_limit{kind=\"soft\"} 4
app_limit{kind=\"hard\"} 8
app_limit 2
";
        let s = extract(body, &mapping).expect("parses");
        // A missing label reads as "", which differs from "soft": the unlabelled limit counts.
        assert_eq!((s.in_use, s.idle, s.max), (Some(5.0), Some(1.0), Some(10.0)));
    }

    #[test]
    fn the_defaults_list_application_pools_before_database_servers() {
        let d = PoolMapping::default();
        let at = |name: &str| d.in_use.iter().position(|n| n == name).expect(name);
        assert!(at("hikaricp_connections_active") < at("db_connections_active"));
        assert!(at("db_connections_active") < at("pgbouncer_pools_server_active_connections"));
        assert!(at("pgbouncer_pools_server_active_connections") < at("pg_stat_activity_count"));
        assert_eq!(d.total.iter().filter(|n| n.as_str() == "hikaricp_connections").count(), 1, "listed once");
        assert!(d.waiting.iter().all(|n| !n.starts_with("go_sql")), "database/sql has no waiting gauge");
    }
}
