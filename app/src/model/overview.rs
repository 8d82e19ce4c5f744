//! The overview's tiles: one per service, everything a glance needs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Criticality, ErrorClass, Outcome, StateChange};

/// One service on the overview. Figures cover the last five minutes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceTile {
    pub id: Uuid,
    pub name: String,
    pub tags: Vec<String>,
    pub criticality: Criticality,
    /// Worst confirmed state of its enabled probes; `None` before any result.
    pub state: Option<Outcome>,
    pub probes: u32,
    /// Probes the network policy refuses to run: shown as a configuration problem.
    #[serde(default, skip_serializing_if = "super::probe::is_zero")]
    pub blocked: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    /// Failed checks ÷ checks of its HTTP and readiness probes, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_in_use: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_waiting: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<DateTime<Utc>>,
    /// p95 in ms per [`TREND_STEP_SECS`] over the last hour, oldest first (the sparkline); `null`
    /// where no timed check ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub p95_trend: Vec<Option<f64>>,
    /// The maintenance window under way for this service, if any (its title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
    /// The availability budget left of its objective, if it has one: (percent, seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<(f64, f64)>,
    /// A probe run from several locations that is not up: where from ("down from 1 of 3
    /// locations: eu-west").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<String>,
}

/// A sparkline step: five minutes…
pub const TREND_STEP_SECS: i64 = 300;
/// …twelve of them, the last hour.
pub const TREND_BUCKETS: usize = 12;

impl ServiceTile {
    /// Sort key, worst first: down, degraded, up, then services without data; then by name.
    pub fn severity_rank(&self) -> u8 {
        match self.state {
            Some(Outcome::Down) => 0,
            Some(Outcome::Degraded) => 1,
            Some(Outcome::Up) => 2,
            None => 3,
        }
    }

    /// Does the text filter match (case-insensitive, on the name or any tag)?
    pub fn matches(&self, filter: &str) -> bool {
        self.matches_lowercase(&filter.trim().to_lowercase())
    }

    /// [`Self::matches`] with the filter already trimmed and lowercased (once per page, not per
    /// tile: the overview runs it over every service).
    fn matches_lowercase(&self, needle: &str) -> bool {
        let has = |s: &str| {
            if s.is_ascii() {
                s.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
            } else {
                s.to_lowercase().contains(needle)
            }
        };
        needle.is_empty() || has(&self.name) || self.tags.iter().any(|t| has(t))
    }
}

/// The overview: tiles and when they were computed (the page shows the age).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overview {
    pub at: DateTime<Utc>,
    pub services: Vec<ServiceTile>,
}

/// The service Triage watches itself through (`--self-watch`).
pub const SELF_SERVICE: &str = "triage";

/// Tiles on one overview page: the page, its SSR and its hydration data stay this small however
/// many services there are.
pub const OVERVIEW_PAGE: usize = 100;
/// Tags listed with their counts, the worst first.
pub const OVERVIEW_TAGS: usize = 40;

/// The overview's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverviewSort {
    /// Down, degraded, up, no data; then by name.
    #[default]
    Worst,
    Name,
}

/// Which states the overview shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateFilter {
    /// Down or degraded.
    Problems,
    Down,
    Degraded,
    Up,
    /// No result yet.
    NoData,
}

impl StateFilter {
    pub const ALL: [Self; 5] = [Self::Problems, Self::Down, Self::Degraded, Self::Up, Self::NoData];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Problems => "problems",
            Self::Down => "down",
            Self::Degraded => "degraded",
            Self::Up => "up",
            Self::NoData => "no_data",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn admits(self, state: Option<Outcome>) -> bool {
        match self {
            Self::Problems => matches!(state, Some(Outcome::Down | Outcome::Degraded)),
            Self::Down => state == Some(Outcome::Down),
            Self::Degraded => state == Some(Outcome::Degraded),
            Self::Up => state == Some(Outcome::Up),
            Self::NoData => state.is_none(),
        }
    }
}

/// The overview's view state, as the URL holds it (`/?q=shop&state=down&tag=edge&sort=name&page=2`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverviewQuery {
    /// Text matched against names and tags, case-insensitive.
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub sort: OverviewSort,
    #[serde(default)]
    pub state: Option<StateFilter>,
    /// Only services with exactly this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// 1-based; past the last page means the last page.
    #[serde(default = "first_page")]
    pub page: u32,
}

fn first_page() -> u32 {
    1
}

impl OverviewQuery {
    /// The view state a URL's query holds; anything unknown falls back to the default.
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            q: get("q").unwrap_or_default(),
            sort: if get("sort").as_deref() == Some("name") { OverviewSort::Name } else { OverviewSort::Worst },
            state: get("state").as_deref().and_then(StateFilter::parse),
            tag: get("tag").filter(|t| !t.is_empty()),
            page: get("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1),
        }
    }

    /// `?q=…&state=…`, defaults left out; empty for the default view.
    pub fn query_string(&self) -> String {
        use crate::markup::query_value;
        let mut parts = Vec::new();
        if !self.q.is_empty() {
            parts.push(format!("q={}", query_value(&self.q)));
        }
        if let Some(state) = self.state {
            parts.push(format!("state={}", state.as_str()));
        }
        if let Some(tag) = &self.tag {
            parts.push(format!("tag={}", query_value(tag)));
        }
        if self.sort == OverviewSort::Name {
            parts.push("sort=name".into());
        }
        if self.page > 1 {
            parts.push(format!("page={}", self.page));
        }
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    }

    /// The overview's URL for this view state.
    pub fn href(&self) -> String {
        format!("/{}", self.query_string())
    }
}

/// Services by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub down: u32,
    pub degraded: u32,
    pub up: u32,
    pub no_data: u32,
}

impl StateCounts {
    fn add(&mut self, state: Option<Outcome>) {
        match state {
            Some(Outcome::Down) => self.down += 1,
            Some(Outcome::Degraded) => self.degraded += 1,
            Some(Outcome::Up) => self.up += 1,
            None => self.no_data += 1,
        }
    }

    pub fn total(&self) -> u32 {
        self.down + self.degraded + self.up + self.no_data
    }

    pub fn of(&self, filter: StateFilter) -> u32 {
        match filter {
            StateFilter::Problems => self.down + self.degraded,
            StateFilter::Down => self.down,
            StateFilter::Degraded => self.degraded,
            StateFilter::Up => self.up,
            StateFilter::NoData => self.no_data,
        }
    }
}

/// A tag with how many services carry it, and how many of those are in trouble.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagCount {
    pub tag: String,
    pub services: u32,
    pub down: u32,
    pub degraded: u32,
}

/// The overview's body (counts, tiles, pages) as the server renders it: into the page it serves,
/// and as `GET /api/v1/overview.html` for the open page's refreshes. The browser swaps the HTML
/// in and never decodes a tile or a count, which keeps a JSON decoder, chrono's parser and the
/// views of the counts out of the first-load bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverviewBody {
    pub html: String,
}

/// The body's mark that the page should offer its first-run panel (only Triage itself is
/// watched, or the demo runs); the browser reads it from the HTML.
pub const FIRST_RUN_MARK: &str = "data-first-run=\"true\"";

/// What a view state selects from the overview: one page of tiles and the counts.
#[derive(Debug)]
pub struct OverviewSelection<'a> {
    pub total: u32,
    pub only_self: bool,
    pub counts: StateCounts,
    pub tags: Vec<TagCount>,
    pub matched: u32,
    pub page: u32,
    pub pages: u32,
    pub tiles: Vec<&'a ServiceTile>,
}

impl Overview {
    /// The page of tiles a view state asks for, with its counts.
    pub fn select(&self, query: &OverviewQuery) -> OverviewSelection<'_> {
        let needle = query.q.trim().to_lowercase();
        let tag_ok = |t: &ServiceTile| query.tag.as_ref().is_none_or(|tag| t.tags.iter().any(|x| x == tag));
        let state_ok = |t: &ServiceTile| query.state.is_none_or(|s| s.admits(t.state));
        let mut counts = StateCounts::default();
        let mut tags: std::collections::HashMap<&str, TagCount> = Default::default();
        let mut hits: Vec<&ServiceTile> = Vec::new();
        for t in self.services.iter().filter(|t| t.matches_lowercase(&needle)) {
            let (by_tag, by_state) = (tag_ok(t), state_ok(t));
            if by_tag {
                counts.add(t.state);
            }
            if by_state {
                for tag in &t.tags {
                    let c = tags.entry(tag).or_insert_with(|| TagCount { tag: tag.clone(), ..Default::default() });
                    c.services += 1;
                    c.down += u32::from(t.state == Some(Outcome::Down));
                    c.degraded += u32::from(t.state == Some(Outcome::Degraded));
                }
            }
            if by_tag && by_state {
                hits.push(t);
            }
        }
        match query.sort {
            OverviewSort::Worst => {
                hits.sort_by(|a, b| a.severity_rank().cmp(&b.severity_rank()).then_with(|| a.name.cmp(&b.name)))
            }
            OverviewSort::Name => hits.sort_by(|a, b| a.name.cmp(&b.name)),
        }
        let mut tags: Vec<TagCount> = tags.into_values().collect();
        tags.sort_by(|a, b| {
            (b.down, b.degraded, b.services).cmp(&(a.down, a.degraded, a.services)).then_with(|| a.tag.cmp(&b.tag))
        });
        // The chosen tag stays listed (with no services if the other filters exclude them all),
        // so a click on it can always widen the view again.
        if let Some(chosen) = &query.tag {
            match tags.iter().position(|t| &t.tag == chosen) {
                Some(at) if at >= OVERVIEW_TAGS => tags.swap(at, OVERVIEW_TAGS - 1),
                Some(_) => {}
                None => {
                    tags.truncate(OVERVIEW_TAGS - 1);
                    tags.push(TagCount { tag: chosen.clone(), ..Default::default() });
                }
            }
        }
        tags.truncate(OVERVIEW_TAGS);
        let matched = hits.len();
        let pages = matched.div_ceil(OVERVIEW_PAGE).max(1);
        let page = (query.page.max(1) as usize).min(pages);
        let tiles = hits.into_iter().skip((page - 1) * OVERVIEW_PAGE).take(OVERVIEW_PAGE).collect();
        OverviewSelection {
            total: self.services.len() as u32,
            only_self: self.services.iter().all(|s| s.name == SELF_SERVICE),
            counts,
            tags,
            matched: matched as u32,
            page: page as u32,
            pages: pages as u32,
            tiles,
        }
    }
}

/// A finished check, as pushed live to browsers (the full result is in the results API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveResult {
    pub service_id: Uuid,
    pub probe_id: Uuid,
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    pub total_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorClass>,
    pub request_id: String,
    /// Where it was checked from, when not by the server itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl LiveResult {
    /// What a live page is told about a stored result.
    pub fn of(service_id: Uuid, r: &super::ProbeResult) -> Self {
        Self {
            service_id,
            probe_id: r.probe_id,
            at: r.at,
            outcome: r.outcome,
            total_us: r.phases.total_us,
            status: r.status,
            error: r.error,
            request_id: r.request_id.clone(),
            location: r.location.clone(),
        }
    }
}

/// What `GET /api/v1/events` sends, as the `data` of SSE events named `result` and `state`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    Result(LiveResult),
    State(StateChange),
}

impl LiveEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Result(_) => "result",
            Self::State(_) => "state",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(name: &str, state: Option<Outcome>) -> ServiceTile {
        ServiceTile {
            id: Uuid::nil(),
            name: name.into(),
            tags: vec!["checkout".into()],
            criticality: Criticality::High,
            state,
            probes: 3,
            blocked: 0,
            p95_ms: Some(41.5),
            error_pct: Some(0.0),
            pool_in_use: Some(7.0),
            pool_max: Some(10.0),
            pool_waiting: None,
            last_check: None,
            p95_trend: Vec::new(),
            maintenance: None,
            budget: None,
            locations: None,
        }
    }

    #[test]
    fn tile_json_format_is_pinned() {
        assert_eq!(
            serde_json::to_string(&tile("shop", Some(Outcome::Down))).expect("ser"),
            r#"{"id":"00000000-0000-0000-0000-000000000000","name":"shop","tags":["checkout"],"criticality":"high","state":"down","probes":3,"p95_ms":41.5,"error_pct":0.0,"pool_in_use":7.0,"pool_max":10.0}"#
        );
    }

    #[test]
    fn the_trend_keeps_its_gaps() {
        let t = ServiceTile { p95_trend: vec![None, Some(12.5)], ..tile("shop", None) };
        let json = serde_json::to_string(&t).expect("ser");
        assert!(json.ends_with(r#""p95_trend":[null,12.5]}"#), "{json}");
        assert_eq!(serde_json::from_str::<ServiceTile>(&json).expect("de"), t);
    }

    #[test]
    fn live_event_json_format_is_pinned() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T03:00:00Z").expect("time").with_timezone(&Utc);
        let e = LiveEvent::Result(LiveResult {
            service_id: Uuid::nil(),
            probe_id: Uuid::nil(),
            at,
            outcome: Outcome::Down,
            total_us: 1500,
            status: Some(500),
            error: Some(ErrorClass::Status),
            request_id: "ab12".into(),
            location: None,
        });
        assert_eq!(e.name(), "result");
        assert_eq!(
            serde_json::to_string(&e).expect("ser"),
            r#"{"type":"result","service_id":"00000000-0000-0000-0000-000000000000","probe_id":"00000000-0000-0000-0000-000000000000","at":"2026-11-23T03:00:00Z","outcome":"down","total_us":1500,"status":500,"error":"status","request_id":"ab12"}"#
        );
    }

    fn fleet() -> Overview {
        let mut services = Vec::new();
        for i in 0..250u32 {
            let state = match i % 50 {
                0 => Some(Outcome::Down),
                1 | 2 => Some(Outcome::Degraded),
                3 => None,
                _ => Some(Outcome::Up),
            };
            let mut t = tile(&format!("svc-{i:03}"), state);
            t.tags = vec![format!("team-{}", i % 5)];
            if i % 2 == 0 {
                t.tags.push("edge".into());
            }
            services.push(t);
        }
        let at = DateTime::parse_from_rfc3339("2026-12-07T03:00:00Z").expect("time").with_timezone(&Utc);
        Overview { at, services }
    }

    #[test]
    fn a_page_holds_the_worst_first_and_counts_the_whole_fleet() {
        let o = fleet();
        let p = o.select(&OverviewQuery { page: 1, ..Default::default() });
        assert_eq!((p.total, p.matched, p.page, p.pages), (250, 250, 1, 3));
        assert_eq!(p.tiles.len(), OVERVIEW_PAGE);
        assert_eq!(p.counts, StateCounts { down: 5, degraded: 10, up: 230, no_data: 5 });
        let head: Vec<Option<Outcome>> = p.tiles.iter().take(16).map(|t| t.state).collect();
        assert_eq!(&head[..5], &[Some(Outcome::Down); 5]);
        assert_eq!(&head[5..15], &[Some(Outcome::Degraded); 10]);
        assert_eq!(head[15], Some(Outcome::Up));
        let last = o.select(&OverviewQuery { page: 99, ..Default::default() });
        assert_eq!((last.page, last.tiles.len()), (3, 50), "past the end shows the last page");
        assert_eq!(last.tiles.last().map(|t| t.state), Some(None), "services without data come last");
        assert!(!p.only_self);
    }

    #[test]
    fn each_facet_counts_what_a_click_on_it_would_show() {
        let o = fleet();
        let q = OverviewQuery { state: Some(StateFilter::Problems), tag: Some("edge".into()), ..Default::default() };
        let p = o.select(&q);
        // Problems tagged edge: the even ones among i % 50 in {0, 2}.
        assert!(p.tiles.iter().all(|t| t.tags.contains(&"edge".into()) && t.severity_rank() <= 1));
        assert_eq!(p.matched, 10);
        // The state counts ignore the state filter (but keep the tag): every edge service.
        assert_eq!(p.counts.total(), 125);
        assert_eq!(p.counts.of(StateFilter::Problems), p.matched);
        // The tag counts ignore the tag filter (but keep the state): problems per tag.
        let edge = p.tags.iter().find(|t| t.tag == "edge").expect("edge listed");
        assert_eq!((edge.services, edge.down, edge.degraded), (10, 5, 5));
        assert_eq!(p.tags.iter().map(|t| t.services).sum::<u32>(), 10 + 15, "problems under edge and the team tags");
        assert_eq!(p.tags[0].tag, "edge", "the tag with most down services first");
        let text = o.select(&OverviewQuery { q: " SVC-00 ".into(), ..Default::default() });
        assert_eq!(text.matched, 10);
        assert_eq!(text.counts.total(), 10);
    }

    #[test]
    fn a_chosen_tag_stays_listed_beyond_the_top_tags() {
        let mut o = fleet();
        for (i, t) in o.services.iter_mut().enumerate() {
            t.tags.push(format!("zz-{i}"));
        }
        let p = o.select(&OverviewQuery { tag: Some("zz-210".into()), ..Default::default() });
        assert_eq!(p.tags.len(), OVERVIEW_TAGS);
        assert!(p.tags.iter().any(|t| t.tag == "zz-210"));
        assert_eq!(p.matched, 1);
        // Excluded by the state filter, it is still listed, with nothing under it.
        let q = OverviewQuery { tag: Some("zz-210".into()), state: Some(StateFilter::Down), ..Default::default() };
        let p = o.select(&q);
        assert_eq!(p.matched, 0);
        assert_eq!(p.tags.len(), 8, "the 7 tags of down services, and the chosen one");
        assert_eq!(p.tags.last(), Some(&TagCount { tag: "zz-210".into(), ..Default::default() }));
    }

    #[test]
    fn only_triage_itself_is_first_run() {
        let mut o = fleet();
        o.services.truncate(1);
        o.services[0].name = SELF_SERVICE.into();
        assert!(o.select(&OverviewQuery::default()).only_self);
    }

    #[test]
    fn view_state_round_trips_through_the_url() {
        assert_eq!(OverviewQuery { page: 1, ..Default::default() }.href(), "/");
        let q = OverviewQuery {
            q: "shop api".into(),
            sort: OverviewSort::Name,
            state: Some(StateFilter::NoData),
            tag: Some("a&b=c".into()),
            page: 3,
        };
        let url = q.href();
        assert_eq!(url, "/?q=shop%20api&state=no_data&tag=a%26b%3Dc&sort=name&page=3");
        let decoded: std::collections::HashMap<String, String> = url[2..]
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace("%20", " ").replace("%26", "&").replace("%3D", "=")))
            .collect();
        assert_eq!(OverviewQuery::from_query(|k| decoded.get(k).cloned()), q);
        let junk = OverviewQuery::from_query(|k| Some(if k == "page" { "0".into() } else { "nonsense".into() }));
        assert_eq!((junk.sort, junk.state, junk.page), (OverviewSort::Worst, None, 1));
    }

    #[test]
    fn state_filters_round_trip_their_names() {
        for f in StateFilter::ALL {
            assert_eq!(StateFilter::parse(f.as_str()), Some(f));
            assert_eq!(serde_json::to_string(&f).expect("ser"), format!("\"{}\"", f.as_str()));
        }
        assert_eq!(StateFilter::parse("sideways"), None);
    }

    #[test]
    fn worst_first_and_filter_on_name_or_tag() {
        let mut tiles = [tile("b", Some(Outcome::Up)), tile("a", None), tile("c", Some(Outcome::Down))];
        tiles.sort_by(|x, y| x.severity_rank().cmp(&y.severity_rank()).then(x.name.cmp(&y.name)));
        let names: Vec<&str> = tiles.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["c", "b", "a"]);
        assert!(tiles[0].matches("CHECK") && tiles[0].matches("c") && !tiles[0].matches("zzz"));
    }
}
