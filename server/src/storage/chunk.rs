//! The compact form of a probe's raw results for one hour: what `result_chunks.data` holds once
//! the hour is compacted (see `results::compact`).
//!
//! A row per result costs about 275 bytes with its index: a tuple header, the probe's id, a
//! 32-character request id and a slot for every column, most of them the same as in the result
//! before. A chunk stores each result as what changed since the one before it: the time as the
//! change in spacing (a probe checks at a steady interval, so this is a byte or two), the status
//! and response size only when they differ, the phases as variable-length integers, the request
//! id as its 16 bytes. A plain HTTP check takes about 27 bytes.
//!
//! Results decode to exactly what their rows read back as (the values the row's columns could
//! hold), so a reader cannot tell a compacted hour from a hot one.
//!
//! Layout: a version byte, the count, then per result a flags byte, a phases byte, an optional
//! second flags byte and the values its bits announce, in the order [`encode`] writes them.

use app::model::{Component, EchoCount, ErrorClass, Outcome, Phases, PoolReading, ProbeResult};
use chrono::{DateTime, Utc};
use uuid::Uuid;

const VERSION: u8 = 1;

// The first flags byte.
const OUTCOME_MASK: u8 = 0b11;
const STATUS_CHANGED: u8 = 1 << 2;
const BYTES_CHANGED: u8 = 1 << 3;
const ERROR: u8 = 1 << 4;
const HEX_ID: u8 = 1 << 5;
const MORE: u8 = 1 << 7;
// The phases byte: bits 0–4 the five phases (dns, connect, tls, ttfb, transfer).
// The second flags byte.
const DETAIL: u8 = 1;
const BODY: u8 = 1 << 1;
const CERT_CHANGED: u8 = 1 << 2;
const COMPONENTS_CHANGED: u8 = 1 << 3;
const POOL: u8 = 1 << 4;
const ECHO: u8 = 1 << 5;
const LOCATION_CHANGED: u8 = 1 << 6;

/// A chunk that does not decode: stored by another version, or damaged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("compacted results do not decode: {0}")]
pub struct ChunkError(&'static str);

/// What a result shares with the one before it in the chunk.
#[derive(Default)]
struct Previous {
    at_us: i64,
    step_us: i64,
    status: Option<u16>,
    response_bytes: u64,
    cert_days_left: Option<i32>,
    components: Vec<Component>,
    location: Option<String>,
}

/// Encodes results of one probe, oldest first, all within the hour starting at `hour`.
pub fn encode(hour: DateTime<Utc>, results: &[ProbeResult]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + results.len() * 32);
    out.push(VERSION);
    put_u(&mut out, results.len() as u64);
    let mut prev = Previous { at_us: hour.timestamp_micros(), ..Previous::default() };
    for r in results {
        let at_us = r.at.timestamp_micros();
        let step = at_us - prev.at_us;
        let hex_id = hex16(&r.request_id);
        let components_json = (r.components != prev.components).then(|| json(&r.components));
        let mut flags = r.outcome as u8 & OUTCOME_MASK;
        let mut more = 0u8;
        set(&mut flags, STATUS_CHANGED, r.status != prev.status);
        set(&mut flags, BYTES_CHANGED, r.response_bytes != prev.response_bytes);
        set(&mut flags, ERROR, r.error.is_some());
        set(&mut flags, HEX_ID, hex_id.is_some());
        set(&mut more, DETAIL, r.detail.is_some());
        set(&mut more, BODY, r.body_excerpt.is_some());
        set(&mut more, CERT_CHANGED, r.cert_days_left != prev.cert_days_left);
        set(&mut more, COMPONENTS_CHANGED, components_json.is_some());
        set(&mut more, POOL, r.pool.is_some());
        set(&mut more, ECHO, r.echo.is_some());
        set(&mut more, LOCATION_CHANGED, r.location != prev.location);
        set(&mut flags, MORE, more != 0);
        let p = &r.phases;
        let phases = [p.dns_us, p.connect_us, p.tls_us, p.ttfb_us, p.transfer_us];
        let present = phases.iter().enumerate().fold(0u8, |m, (i, v)| m | (u8::from(v.is_some()) << i));
        out.push(flags);
        out.push(present);
        if more != 0 {
            out.push(more);
        }
        put_i(&mut out, step - prev.step_us);
        if r.status != prev.status {
            put_u(&mut out, r.status.map_or(0, |s| u64::from(s) + 1));
        }
        if let Some(e) = r.error {
            put_u(&mut out, e.index() as u64);
        }
        for v in phases.into_iter().flatten() {
            put_u(&mut out, v);
        }
        put_u(&mut out, p.total_us);
        if r.response_bytes != prev.response_bytes {
            put_u(&mut out, r.response_bytes);
        }
        match hex_id {
            Some(id) => out.extend_from_slice(&id),
            None => put_str(&mut out, &r.request_id),
        }
        if let Some(d) = &r.detail {
            put_str(&mut out, d);
        }
        if let Some(b) = &r.body_excerpt {
            put_str(&mut out, b);
        }
        if r.cert_days_left != prev.cert_days_left {
            put_u(&mut out, r.cert_days_left.map_or(0, |d| zigzag(i64::from(d)) + 1));
        }
        if let Some(c) = &components_json {
            put_str(&mut out, c);
        }
        if let Some(pool) = &r.pool {
            put_pool(&mut out, pool);
        }
        if let Some(e) = r.echo {
            put_u(&mut out, u64::from(e.sent));
            put_u(&mut out, u64::from(e.received));
        }
        if r.location != prev.location {
            match &r.location {
                Some(l) => {
                    out.push(1);
                    put_str(&mut out, l);
                }
                None => out.push(0),
            }
        }
        prev.step_us = step;
        prev.at_us = at_us;
        prev.status = r.status;
        prev.response_bytes = r.response_bytes;
        prev.cert_days_left = r.cert_days_left;
        prev.location.clone_from(&r.location);
        if components_json.is_some() {
            prev.components.clone_from(&r.components);
        }
    }
    out
}

/// Decodes a chunk of `probe` for the hour starting at `hour`, oldest first.
pub fn decode(probe: Uuid, hour: DateTime<Utc>, data: &[u8]) -> Result<Vec<ProbeResult>, ChunkError> {
    let mut r = Reader { data, at: 0 };
    if r.byte()? != VERSION {
        return Err(ChunkError("unknown version"));
    }
    let n = usize::try_from(r.u()?).map_err(|_| ChunkError("count"))?;
    // Every result takes at least three bytes: a damaged count cannot allocate beyond the data.
    let mut results = Vec::with_capacity(n.min(data.len() / 3));
    let mut prev = Previous { at_us: hour.timestamp_micros(), ..Previous::default() };
    for _ in 0..n {
        let flags = r.byte()?;
        let present = r.byte()?;
        let more = if flags & MORE != 0 { r.byte()? } else { 0 };
        let step = prev.step_us.checked_add(r.i()?).ok_or(ChunkError("time"))?;
        let at_us = prev.at_us.checked_add(step).ok_or(ChunkError("time"))?;
        let at = DateTime::from_timestamp_micros(at_us).ok_or(ChunkError("time"))?;
        let outcome = match flags & OUTCOME_MASK {
            0 => Outcome::Up,
            1 => Outcome::Degraded,
            _ => Outcome::Down,
        };
        let status = if flags & STATUS_CHANGED != 0 {
            match r.u()? {
                0 => None,
                s => Some(u16::try_from(s - 1).map_err(|_| ChunkError("status"))?),
            }
        } else {
            prev.status
        };
        let error = if flags & ERROR != 0 {
            let i = usize::try_from(r.u()?).map_err(|_| ChunkError("error class"))?;
            Some(*ErrorClass::ALL.get(i).ok_or(ChunkError("error class"))?)
        } else {
            None
        };
        let mut phase = |bit: u8| -> Result<Option<u64>, ChunkError> {
            if present & (1 << bit) != 0 { r.u().map(Some) } else { Ok(None) }
        };
        let (dns_us, connect_us, tls_us, ttfb_us, transfer_us) =
            (phase(0)?, phase(1)?, phase(2)?, phase(3)?, phase(4)?);
        let total_us = r.u()?;
        let response_bytes = if flags & BYTES_CHANGED != 0 { r.u()? } else { prev.response_bytes };
        let request_id = if flags & HEX_ID != 0 {
            let id: [u8; 16] = r.take(16)?.try_into().map_err(|_| ChunkError("request id"))?;
            Uuid::from_bytes(id).simple().to_string()
        } else {
            r.string()?
        };
        let detail = if more & DETAIL != 0 { Some(r.string()?) } else { None };
        let body_excerpt = if more & BODY != 0 { Some(r.string()?) } else { None };
        let cert_days_left = if more & CERT_CHANGED != 0 {
            match r.u()? {
                0 => None,
                z => Some(i32::try_from(unzigzag(z - 1)).map_err(|_| ChunkError("certificate days"))?),
            }
        } else {
            prev.cert_days_left
        };
        let components = if more & COMPONENTS_CHANGED != 0 {
            serde_json::from_str::<Vec<Component>>(&r.string()?).map_err(|_| ChunkError("components"))?
        } else {
            prev.components.clone()
        };
        let pool = if more & POOL != 0 { Some(r.pool()?) } else { None };
        let echo = if more & ECHO != 0 {
            let count = |v: u64| u32::try_from(v).map_err(|_| ChunkError("echo count"));
            Some(EchoCount { sent: count(r.u()?)?, received: count(r.u()?)? })
        } else {
            None
        };
        let location = if more & LOCATION_CHANGED != 0 {
            match r.byte()? {
                0 => None,
                _ => Some(r.string()?),
            }
        } else {
            prev.location.clone()
        };
        prev = Previous {
            at_us,
            step_us: step,
            status,
            response_bytes,
            cert_days_left,
            components: components.clone(),
            location: location.clone(),
        };
        results.push(ProbeResult {
            probe_id: probe,
            at,
            outcome,
            status,
            error,
            detail,
            phases: Phases { dns_us, connect_us, tls_us, ttfb_us, transfer_us, total_us },
            response_bytes,
            request_id,
            body_excerpt,
            cert_days_left,
            components,
            pool,
            echo,
            location,
        });
    }
    if r.at != data.len() {
        return Err(ChunkError("trailing bytes"));
    }
    Ok(results)
}

fn set(flags: &mut u8, bit: u8, on: bool) {
    if on {
        *flags |= bit;
    }
}

/// The 16 bytes of a request id written as 32 lowercase hex digits (the prober's own), which
/// decode back to the same text; anything else (a pushed result's id) is kept as text.
fn hex16(id: &str) -> Option<[u8; 16]> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    Uuid::try_parse(id).ok().map(|u| *u.as_bytes())
}

fn json(components: &[Component]) -> String {
    serde_json::to_string(components).unwrap_or_else(|_| "[]".into())
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_u(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i(out: &mut Vec<u8>, v: i64) {
    put_u(out, zigzag(v));
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Gauges are mostly whole numbers (connections): those take a varint, others their 8 bytes.
fn put_pool(out: &mut Vec<u8>, p: &PoolReading) {
    let fields = pool_fields(p);
    let present = fields.iter().enumerate().fold(0u8, |m, (i, v)| m | (u8::from(v.is_some()) << i));
    let whole = fields.iter().enumerate().fold(0u8, |m, (i, v)| m | (u8::from(v.is_some_and(is_whole)) << i));
    out.push(present);
    out.push(whole);
    for v in fields.into_iter().flatten() {
        if is_whole(v) {
            put_i(out, v as i64);
        } else {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn pool_fields(p: &PoolReading) -> [Option<f64>; 6] {
    [p.in_use, p.idle, p.max, p.waiting, p.requests_per_s, p.errors_per_s]
}

/// Exactly representable as an i64 and back (negative zero is not: it keeps its sign as bytes).
fn is_whole(v: f64) -> bool {
    v.fract() == 0.0 && v.abs() < 9.0e15 && !(v == 0.0 && v.is_sign_negative())
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, ChunkError> {
        let b = *self.data.get(self.at).ok_or(ChunkError("truncated"))?;
        self.at += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ChunkError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len()).ok_or(ChunkError("truncated"))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u(&mut self) -> Result<u64, ChunkError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ChunkError("varint too long"))
    }

    fn i(&mut self) -> Result<i64, ChunkError> {
        self.u().map(unzigzag)
    }

    fn string(&mut self) -> Result<String, ChunkError> {
        let n = usize::try_from(self.u()?).map_err(|_| ChunkError("length"))?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| ChunkError("text"))
    }

    fn pool(&mut self) -> Result<PoolReading, ChunkError> {
        let present = self.byte()?;
        let whole = self.byte()?;
        let mut fields = [None; 6];
        for (i, slot) in fields.iter_mut().enumerate() {
            if present & (1 << i) == 0 {
                continue;
            }
            *slot = Some(if whole & (1 << i) != 0 {
                self.i()? as f64
            } else {
                let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| ChunkError("gauge"))?;
                f64::from_le_bytes(b)
            });
        }
        let [in_use, idle, max, waiting, requests_per_s, errors_per_s] = fields;
        Ok(PoolReading { in_use, idle, max, waiting, requests_per_s, errors_per_s })
    }
}

#[cfg(test)]
mod tests {
    use app::model::ComponentState;
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn hour() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).single().expect("valid")
    }

    fn http(i: i64) -> ProbeResult {
        let mut r = ProbeResult::bare(
            Uuid::from_u128(7),
            hour() + chrono::Duration::microseconds(i * 30_000_000 + (i * 7919) % 2000),
            Outcome::Up,
            Uuid::from_u128(0xabc0_0000 + i as u128).simple().to_string(),
        );
        r.status = Some(200);
        r.response_bytes = 1234;
        r.phases = Phases {
            dns_us: None,
            connect_us: Some(180 + (i as u64 * 37) % 100),
            tls_us: None,
            ttfb_us: Some(1500 + (i as u64 * 613) % 2000),
            transfer_us: Some(40),
            total_us: 1800 + (i as u64 * 613) % 2000,
        };
        r
    }

    #[test]
    fn an_hour_of_plain_http_checks_takes_under_thirty_bytes_each() {
        let results: Vec<ProbeResult> = (0..120).map(http).collect();
        let data = encode(hour(), &results);
        assert!(data.len() < 120 * 30, "{} bytes for 120 results", data.len());
        assert_eq!(decode(Uuid::from_u128(7), hour(), &data).expect("decodes"), results);
    }

    #[test]
    fn every_field_survives_and_changes_between_results_are_kept() {
        let mut a = http(0);
        a.outcome = Outcome::Down;
        a.status = Some(503);
        a.error = Some(ErrorClass::ALL[3]);
        a.detail = Some("upstream said no".into());
        a.body_excerpt = Some("<h1>503</h1>".into());
        a.cert_days_left = Some(-2);
        a.components =
            vec![Component { name: "db".into(), state: ComponentState::Down, detail: Some("timeout".into()) }];
        a.pool = Some(PoolReading {
            in_use: Some(5.0),
            idle: Some(-0.0),
            max: Some(20.0),
            waiting: None,
            requests_per_s: Some(12.25),
            errors_per_s: Some(f64::MAX),
        });
        a.echo = Some(EchoCount { sent: 3, received: 1 });
        a.location = Some("eu-west".into());
        a.request_id = "r7-pushed".into();
        let mut b = http(1);
        b.status = None;
        b.components = a.components.clone();
        b.location = a.location.clone();
        let mut c = http(2);
        c.at = b.at; // two results in the same microsecond
        let results = vec![a, b, c, http(3)];
        let data = encode(hour(), &results);
        let back = decode(Uuid::from_u128(7), hour(), &data).expect("decodes");
        assert_eq!(back, results);
        assert!(back[0].pool.expect("pool").idle.expect("idle").is_sign_negative());
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let data = encode(hour(), &(0..5).map(http).collect::<Vec<_>>());
        for cut in 0..data.len() {
            assert!(decode(Uuid::nil(), hour(), &data[..cut]).is_err(), "cut at {cut}");
        }
        let mut versioned = data.clone();
        versioned[0] = 9;
        assert_eq!(decode(Uuid::nil(), hour(), &versioned), Err(ChunkError("unknown version")));
        let mut longer = data;
        longer.push(0);
        assert_eq!(decode(Uuid::nil(), hour(), &longer), Err(ChunkError("trailing bytes")));
        assert!(decode(Uuid::nil(), hour(), &[VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).is_err());
    }

    fn any_result() -> impl Strategy<Value = ProbeResult> {
        let opt_u = || proptest::option::of(0u64..=i32::MAX as u64);
        (
            (
                0i64..3_600_000_000,
                0u8..3,
                proptest::option::of(any::<u16>()),
                proptest::option::of(0usize..ErrorClass::ALL.len()),
            ),
            (opt_u(), opt_u(), opt_u(), opt_u(), opt_u(), 0u64..=i32::MAX as u64, 0u64..=i32::MAX as u64),
            (any::<bool>(), "[a-z0-9-]{0,40}", proptest::option::of(".{0,20}"), proptest::option::of(any::<i32>())),
            (
                proptest::option::of(any::<f64>()),
                proptest::option::of(-1e6f64..1e6),
                proptest::option::of((0u32..100, 0u32..100)),
            ),
            (proptest::option::of("[a-z-]{1,12}"), any::<bool>()),
        )
            .prop_map(
                |(
                    (off, o, status, err),
                    (dns, con, tls, ttfb, tr, total, bytes),
                    (hexid, id, detail, cert),
                    (g1, g2, echo),
                    (loc, comp),
                )| {
                    let outcome = [Outcome::Up, Outcome::Degraded, Outcome::Down][o as usize];
                    let id = if hexid { Uuid::from_u128(off as u128 * 7_777).simple().to_string() } else { id };
                    let mut r = ProbeResult::bare(
                        Uuid::from_u128(1),
                        hour() + chrono::Duration::microseconds(off),
                        outcome,
                        id,
                    );
                    r.status = status;
                    r.error = err.map(|i| ErrorClass::ALL[i]);
                    r.detail = detail.clone();
                    r.body_excerpt = detail;
                    r.phases = Phases {
                        dns_us: dns,
                        connect_us: con,
                        tls_us: tls,
                        ttfb_us: ttfb,
                        transfer_us: tr,
                        total_us: total,
                    };
                    r.response_bytes = bytes;
                    r.cert_days_left = cert;
                    r.pool = (g1.is_some() || g2.is_some()).then_some(PoolReading {
                        in_use: g2,
                        requests_per_s: g1,
                        ..Default::default()
                    });
                    r.echo = echo.map(|(sent, received)| EchoCount { sent, received });
                    r.location = loc;
                    if comp {
                        r.components =
                            vec![Component { name: "cache".into(), state: ComponentState::Up, detail: None }];
                    }
                    r
                },
            )
    }

    proptest! {
        #[test]
        fn any_hour_of_results_decodes_to_itself(mut results in proptest::collection::vec(any_result(), 0..60)) {
            results.sort_by_key(|r| r.at);
            let data = encode(hour(), &results);
            let back = decode(Uuid::from_u128(1), hour(), &data).expect("decodes");
            // NaN is not equal to itself: compare the gauges' bits.
            let bits = |v: &[ProbeResult]| v.iter().map(|r| r.pool.map(|p| pool_fields(&p).map(|f| f.map(f64::to_bits)))).collect::<Vec<_>>();
            prop_assert_eq!(bits(&back), bits(&results));
            let strip = |v: Vec<ProbeResult>| v.into_iter().map(|mut r| { r.pool = None; r }).collect::<Vec<_>>();
            prop_assert_eq!(strip(back), strip(results));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(Uuid::nil(), hour(), &data);
        }
    }
}
