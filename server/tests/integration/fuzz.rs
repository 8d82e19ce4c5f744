//! Property-based fuzzing of everything that parses what others send or write: the Prometheus
//! text reader, readiness bodies, JSONPath assertions, the probe file, the Markdown sanitiser,
//! duration and size options, and the address classifier behind the network policy. None may
//! panic, and each keeps the promise it makes (a sanitised page has no script, an address hidden
//! inside an IPv6 form is judged as itself, a size reads back as written).
//!
//! `TRIAGE_FUZZ_CASES` sets the cases per property: 2,000 in the test command, 100,000 for the
//! long run in `docs/reliability.md`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use app::model::{CompareOp, JsonPathAssertion};
use proptest::prelude::*;
use server::config::{ByteSize, DurationArg};
use server::monitor::check::policy::classify;
use server::monitor::check::scrape::{self, PoolMapping};
use server::monitor::check::{assertions, readiness};
use server::monitor::probe_file;

fn cases() -> u32 {
    std::env::var("TRIAGE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() }
}

/// Text that looks like a Prometheus exposition more often than random bytes would: comments,
/// names with labels (escaped or not), values in every spelling, timestamps, garbage in between.
fn exposition() -> impl Strategy<Value = String> {
    let name = "[a-z_:][a-z0-9_:]{0,24}";
    let label = r#"[a-z_]{1,8}="([^"\\\n]|\\["\\n]){0,12}""#;
    let value = prop_oneof![
        Just("NaN".to_string()),
        Just("+Inf".to_string()),
        Just("-Inf".to_string()),
        "-?[0-9]{1,20}(\\.[0-9]{0,10})?([eE][+-]?[0-9]{1,4})?",
        ".{0,8}",
    ];
    let line = prop_oneof![
        (name, prop::collection::vec(label, 0..4), value, prop::option::of("[0-9]{1,14}")).prop_map(
            |(n, labels, v, ts)| {
                let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
                format!("{n}{labels} {v}{}", ts.map(|t| format!(" {t}")).unwrap_or_default())
            }
        ),
        "# (HELP|TYPE|EOF)[^\n]{0,30}",
        "[^\n]{0,40}",
    ];
    prop::collection::vec(line, 0..30).prop_map(|lines| lines.join("\n"))
}

/// JSON of any shape, with the keys readiness formats use showing up often.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let key = prop_oneof![
        Just("status".to_string()),
        Just("checks".to_string()),
        Just("components".to_string()),
        Just("entries".to_string()),
        Just("details".to_string()),
        Just("state".to_string()),
        "[a-zA-Z/_ ]{0,10}",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        prop_oneof![Just("UP"), Just("DOWN"), Just("Healthy"), Just("pass"), Just("fail"), Just("")]
            .prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(5, 120, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Markdown mixed with the HTML and URLs an attacker would try.
fn hostile_markdown() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<script>alert(1)</script>".to_string()),
        Just("<img src=x onerror=alert(1)>".to_string()),
        Just("[x](javascript:alert(1))".to_string()),
        Just("[x](JaVaScRiPt:alert(1))".to_string()),
        Just("<a href=\"javascript:alert(1)\">x</a>".to_string()),
        Just("<svg onload=alert(1)>".to_string()),
        Just("<iframe src=//evil>".to_string()),
        Just("<style>*{}</style>".to_string()),
        Just("![i](data:text/html,<script>x</script>)".to_string()),
        Just("`code` **bold** _em_ > quote\n- item\n1. one\n".to_string()),
        Just("<div style=\"background:url(javascript:x)\">d</div>".to_string()),
        "[<>\"'=a-z /:;()\n`*_#\\[\\]!-]{0,30}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

/// A probe file in roughly the right shape, with values of every kind where values go.
fn probe_file_text() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "\"[^\"\\\\\n]{0,20}\"",
        "-?[0-9]{1,12}",
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("{ a = 1 }".to_string()),
        "[^\n]{0,16}",
    ];
    let key = prop_oneof![
        Just("name"),
        Just("service"),
        Just("kind"),
        Just("url"),
        Just("interval_secs"),
        Just("timeout_ms"),
        Just("failures_to_down"),
        Just("headers"),
        Just("criticality"),
        Just("tags"),
        Just("packets"),
        Just("assert"),
    ];
    let table =
        (prop_oneof![Just("[[service]]"), Just("[[probe]]"), Just("[x]")], prop::collection::vec((key, value), 0..8))
            .prop_map(|(head, kvs)| {
                let body: Vec<String> = kvs.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{head}\n{}\n", body.join("\n"))
            });
    prop::collection::vec(table, 0..5).prop_map(|t| t.concat())
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_prometheus_reader_never_panics_and_reads_only_finite_gauges(text in exposition()) {
        if let Ok(sample) = scrape::extract(&text, &PoolMapping::default()) {
            for v in [sample.in_use, sample.idle, sample.max, sample.waiting].into_iter().flatten() {
                prop_assert!(!v.is_nan(), "a NaN gauge from {text:?}");
            }
        }
        let _ = scrape::extract(&text, &PoolMapping::default());
    }

    #[test]
    fn readiness_bodies_never_panic(body in json(), raw in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = serde_json::to_vec(&body).expect("serialise");
        let report = readiness::parse(&text);
        for c in &report.components {
            prop_assert!(!c.name.trim().is_empty(), "a component without a name: {report:?}");
        }
        let _ = readiness::parse(&raw);
    }

    #[test]
    fn json_paths_never_panic(path in "\\$[.\\[\\]?@a-z0-9*'=!<> ()&|-]{0,30}", body in json()) {
        let a = JsonPathAssertion { path, op: CompareOp::Eq, value: Some(serde_json::json!("UP")) };
        let _ = assertions::try_json_path(&a, &body.to_string());
    }

    #[test]
    fn the_probe_file_never_panics(text in probe_file_text(), raw in "\\PC{0,200}") {
        let _ = probe_file::parse(&text);
        let _ = probe_file::parse(&raw);
    }

    #[test]
    fn sanitised_markdown_never_carries_script(source in hostile_markdown()) {
        let html = app::markdown::render(&source).to_ascii_lowercase();
        // Text is escaped, so every raw `<` starts a tag the sanitiser let through: look inside
        // those only (the words may appear as text, harmlessly).
        for tag in html.split('<').skip(1).map(|t| t.split('>').next().unwrap_or(t)) {
            for banned in ["script", "iframe", "svg", "style", "object", "embed"] {
                prop_assert!(!tag.starts_with(banned), "<{tag}> survived from {source:?}");
            }
            prop_assert!(!tag.contains("javascript:"), "<{tag}> links to script, from {source:?}");
            prop_assert!(!tag.contains(" style="), "<{tag}> carries a style, from {source:?}");
            let handler = tag.split_whitespace().skip(1).any(|attr| attr.starts_with("on") && attr.contains('='));
            prop_assert!(!handler, "<{tag}> carries an event handler, from {source:?}");
        }
    }

    #[test]
    fn durations_and_sizes_read_back_as_written_and_never_panic(n in 0u32..1_000_000, pick in 0usize..5, junk in "\\PC{0,12}") {
        let (unit, secs) = [("s", 1u64), ("m", 60), ("h", 3600), ("d", 86_400), ("", 1)][pick];
        let d: DurationArg = format!("{n}{unit}").parse().expect("a duration");
        prop_assert_eq!(d.0.as_secs(), u64::from(n) * secs);
        let ms: DurationArg = format!("{n}ms").parse().expect("milliseconds");
        prop_assert_eq!(ms.0.as_millis(), u128::from(n));
        let (unit, mult) = [("KiB", 1usize << 10), ("MiB", 1 << 20), ("kB", 1000), ("", 1), ("B", 1)][pick];
        let b: ByteSize = format!("{n}{unit}").parse().expect("a size");
        prop_assert_eq!(b.0, n as usize * mult);
        let _ = junk.parse::<DurationArg>();
        let _ = junk.parse::<ByteSize>();
    }

    #[test]
    fn an_address_hidden_in_ipv6_is_judged_as_itself(octets in any::<[u8; 4]>(), ip in any_ip()) {
        let _ = classify(ip);
        let v4 = Ipv4Addr::from(octets);
        let denied = classify(IpAddr::V4(v4)).is_err();
        let [a, b, c, d] = octets;
        let hi = u16::from_be_bytes([a, b]);
        let lo = u16::from_be_bytes([c, d]);
        let forms = [
            v4.to_ipv6_mapped(),
            Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo),
            Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo),
            Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
            Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1),
        ];
        for form in forms {
            // A denied IPv4 address stays denied in every disguise (an allowed one may still be
            // refused for the IPv6 range itself, never the other way round).
            if denied {
                prop_assert!(classify(IpAddr::V6(form)).is_err(), "{v4} passed as {form}");
            }
        }
    }
}
