//! Change events: what shipped or changed on a service, and when. Field names are part of the
//! REST API (`POST /api/v1/changes`, which CI scripts call) and pinned by tests.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Deploy,
    Config,
    FeatureFlag,
    Migration,
    Infra,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 5] = [Self::Deploy, Self::Config, Self::FeatureFlag, Self::Migration, Self::Infra];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Config => "config",
            Self::FeatureFlag => "feature_flag",
            Self::Migration => "migration",
            Self::Infra => "infra",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// In a sentence: "deploy v1.4.2 of shop", "feature flag checkout-v2 of shop".
    pub fn label(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Config => "config change",
            Self::FeatureFlag => "feature flag",
            Self::Migration => "migration",
            Self::Infra => "infra change",
        }
    }

    /// One letter for a chart marker.
    pub fn letter(self) -> &'static str {
        match self {
            Self::Deploy => "D",
            Self::Config => "C",
            Self::FeatureFlag => "F",
            Self::Migration => "M",
            Self::Infra => "I",
        }
    }
}

/// `POST /api/v1/changes`. `service` is a service's name or id; `at` defaults to now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangeInput {
    pub service: String,
    pub kind: ChangeKind,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// An http(s) link to the pipeline run, pull request or release notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Who made the change (a person, or the pipeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// When a change that takes time (a rollout, a migration) finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
}

/// A stored change event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeEvent {
    pub id: Uuid,
    pub service_id: Uuid,
    /// The service's name when it was read.
    pub service: String,
    pub kind: ChangeKind,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Who posted it: an email, `token:<name>` or `cli`.
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

impl ChangeEvent {
    /// "deploy v1.4.2 of shop", or with no version "config change “raise the pool to 80” of shop".
    pub fn headline(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v} of {}", self.kind.label(), self.service),
            None => format!("{} “{}” of {}", self.kind.label(), self.title, self.service),
        }
    }

    /// The marker's hover text on a chart: the headline, the time and who.
    pub fn hover(&self) -> String {
        let who = self.author.as_deref().map(|a| format!(" by {a}")).unwrap_or_default();
        format!("{} at {} UTC{who}: {}", self.headline(), self.at.format("%Y-%m-%d %H:%M"), self.title)
    }
}

/// "3 minutes before", "1 hour 5 minutes before", "at the same minute as".
pub fn lead_time(change: DateTime<Utc>, signal: DateTime<Utc>) -> String {
    let d: Duration = signal - change;
    let mins = d.num_minutes();
    if d < Duration::zero() {
        return match -mins {
            0 => "less than a minute after".to_string(),
            1 => "1 minute after".to_string(),
            after => format!("{after} minutes after"),
        };
    }
    match mins {
        0 => "less than a minute before".to_string(),
        1 => "1 minute before".to_string(),
        m if m < 60 => format!("{m} minutes before"),
        m => {
            let (h, r) = (m / 60, m % 60);
            let hours = format!("{h} hour{}", if h == 1 { "" } else { "s" });
            if r == 0 { format!("{hours} before") } else { format!("{hours} {r} min before") }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_format_is_pinned() {
        let input: ChangeInput = serde_json::from_value(serde_json::json!({
            "service": "shop", "kind": "feature_flag", "title": "checkout-v2 on", "version": "v1.4.2",
            "link": "https://ci.example/runs/7", "author": "alice", "at": "2026-12-07T14:02:00Z"
        }))
        .expect("input");
        assert_eq!(input.kind, ChangeKind::FeatureFlag);
        assert_eq!(input.ends_at, None);
        let bad = serde_json::from_value::<ChangeInput>(serde_json::json!({
            "service": "shop", "kind": "deploy", "title": "x", "sha": "abc"
        }));
        assert!(bad.is_err(), "unknown fields are refused");
        let e = ChangeEvent {
            id: Uuid::nil(),
            service_id: Uuid::nil(),
            service: "shop".into(),
            kind: ChangeKind::Deploy,
            title: "Release 1.4.2".into(),
            version: Some("v1.4.2".into()),
            link: None,
            author: None,
            at: "2026-12-07T14:02:00Z".parse().expect("time"),
            ends_at: None,
            recorded_by: "token:ci".into(),
            recorded_at: "2026-12-07T14:02:01Z".parse().expect("time"),
        };
        assert_eq!(
            serde_json::to_value(&e).expect("json"),
            serde_json::json!({
                "id": Uuid::nil(), "service_id": Uuid::nil(), "service": "shop", "kind": "deploy",
                "title": "Release 1.4.2", "version": "v1.4.2", "at": "2026-12-07T14:02:00Z",
                "recorded_by": "token:ci", "recorded_at": "2026-12-07T14:02:01Z"
            })
        );
        assert_eq!(e.headline(), "deploy v1.4.2 of shop");
    }

    #[test]
    fn lead_times_read_naturally() {
        let t: DateTime<Utc> = "2026-12-07T14:02:00Z".parse().expect("time");
        assert_eq!(lead_time(t, t + Duration::minutes(3)), "3 minutes before");
        assert_eq!(lead_time(t, t + Duration::seconds(20)), "less than a minute before");
        assert_eq!(lead_time(t, t + Duration::minutes(65)), "1 hour 5 min before");
        assert_eq!(lead_time(t, t + Duration::minutes(120)), "2 hours before");
        assert_eq!(lead_time(t + Duration::minutes(1), t), "1 minute after");
        assert_eq!(lead_time(t + Duration::seconds(20), t), "less than a minute after");
    }
}
