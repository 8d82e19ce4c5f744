//! What the configuration pages exchange with the server: the services and probes an admin edits
//! (with secrets masked), a saved probe, and the JSONPath tester's answer.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PolicyRefusal, Probe, ProbeSpec, Service};

/// Shown instead of a secret value. A form that sends it back unchanged keeps the stored value.
pub const SECRET_MASK: &str = "••••••••";

/// Every service and probe, as the configuration page lists them (secrets masked).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub services: Vec<Service>,
    pub probes: Vec<Probe>,
}

/// How much of the catalog a page needs: a form needs the services and at most its own probe,
/// not every probe of a large fleet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogScope {
    /// Every service and every probe (the configuration list).
    #[default]
    All,
    /// The services only.
    Services,
    /// The services and this probe.
    Probe(uuid::Uuid),
}

/// A probe written from the form; `push_token` once, when one was issued, and `refused` when the
/// network policy refuses its target (saved all the same: the admin may be about to allow it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedProbe {
    pub probe: Probe,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<PolicyRefusal>,
}

/// A JSONPath assertion tried on a sample body: the nodes the path selects, and whether the
/// assertion holds (with the same words a failed check would store).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonPathTest {
    pub nodes: Vec<String>,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What an import or a file applied from the browser did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub dry_run: bool,
    pub services: Vec<String>,
    pub probes: Vec<String>,
    /// Probes whose name is taken: left as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub existing: Vec<String>,
    /// What the source file had that Triage could not map, each with its place in the file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmapped: Vec<String>,
}

/// The built-in demo: whether it runs, its service, and the scenarios it can be switched to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DemoStatus {
    pub running: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<Uuid>,
    /// The scenario it plays now (`healthy`, `slow`, `errors`, `pool`, `unready`, `down`).
    #[serde(default)]
    pub scenario: String,
    #[serde(default)]
    pub scenarios: Vec<String>,
}

/// An entry of the probes' network allowlist: from the command line (`--probe-allow`, read-only
/// here) or added by an admin in the browser (kept in the database).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllowEntry {
    pub cidr: String,
    #[serde(default)]
    pub note: String,
    /// Who added it; none for command-line entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub from_command_line: bool,
}

/// A change of the network allowlist (or none: only list it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowChange {
    List,
    Add { cidr: String, note: String },
    Remove { cidr: String },
}

/// What to do with the built-in demo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemoCommand {
    Show,
    Start,
    Scenario(String),
    Remove,
}

/// The password part of a URL's userinfo, as a byte range (`http://user:secret@host`).
fn url_password(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let authority_len = url[start..].find(['/', '?', '#']).unwrap_or(url.len() - start);
    let authority = &url[start..start + authority_len];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some(start + colon + 1..start + at)
}

/// Scheme, host and port of a target URL (`https://shop.internal:443`), userinfo left out.
fn origin(url: Option<&str>) -> Option<String> {
    let url = url?;
    let start = url.find("://")? + 3;
    let authority_len = url[start..].find(['/', '?', '#']).unwrap_or(url.len() - start);
    let authority = &url[start..start + authority_len];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(format!("{}{}", url[..start].to_ascii_lowercase(), host.to_ascii_lowercase()))
}

impl ProbeSpec {
    /// Whether any value still holds [`SECRET_MASK`] (an export's placeholder).
    pub fn holds_mask(&self) -> bool {
        self.headers.values().chain(&self.body).chain(&self.send).any(|v| v.contains(SECRET_MASK))
            || self.url.as_deref().is_some_and(|u| u.contains(SECRET_MASK))
    }

    /// The spec with every secret replaced by [`SECRET_MASK`]: header values, the body, and a
    /// password in the URL. What the browser receives; the stored values never leave the server.
    pub fn masked(&self) -> Self {
        let mut s = self.clone();
        for v in s.headers.values_mut() {
            *v = SECRET_MASK.into();
        }
        if s.body.is_some() {
            s.body = Some(SECRET_MASK.into());
        }
        // A TCP conversation may log in (`AUTH …`).
        if s.send.is_some() {
            s.send = Some(SECRET_MASK.into());
        }
        if let Some(url) = &mut s.url
            && let Some(range) = url_password(url)
            && !range.is_empty()
        {
            url.replace_range(range, SECRET_MASK);
        }
        s
    }

    /// Puts back the secrets of `stored` (the probe being edited or cloned) wherever the form
    /// sent the mask unchanged. Returns the field that still holds a mask with nothing to restore
    /// it from (a header added under a new name with the mask typed in, say).
    pub fn unmask(&mut self, stored: Option<&ProbeSpec>) -> Result<(), &'static str> {
        // Secrets stay with the target they were given for: a changed scheme, host or port must
        // have them typed again, or a token would follow the probe to any host.
        let same_target = stored.is_some_and(|s| origin(s.url.as_deref()) == origin(self.url.as_deref()));
        if let Some(stored) = stored.filter(|_| same_target) {
            for (name, v) in self.headers.iter_mut() {
                if v == SECRET_MASK
                    && let Some(original) = stored.headers.get(name)
                {
                    v.clone_from(original);
                }
            }
            if self.body.as_deref() == Some(SECRET_MASK) {
                self.body.clone_from(&stored.body);
            }
            if self.send.as_deref() == Some(SECRET_MASK) {
                self.send.clone_from(&stored.send);
            }
            if self.url.is_some() && self.url == stored.masked().url {
                self.url.clone_from(&stored.url);
            }
        }
        if self.headers.values().any(|v| v == SECRET_MASK) {
            return Err("headers");
        }
        if self.body.as_deref() == Some(SECRET_MASK) {
            return Err("body");
        }
        if self.send.as_deref() == Some(SECRET_MASK) {
            return Err("send");
        }
        if self.url.as_deref().is_some_and(|u| u.contains(SECRET_MASK)) {
            return Err("url");
        }
        Ok(())
    }
}

impl Probe {
    /// The probe as the browser may see it: secrets masked.
    pub fn masked(mut self) -> Self {
        self.spec = self.spec.masked();
        self
    }

    /// Whether the probe runs (paused probes keep their definition and results).
    pub fn is_enabled(&self) -> bool {
        self.spec.enabled
    }
}

/// Which probes a bulk action covers: chosen ones, or every probe of the services with a tag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    #[serde(default)]
    pub probes: Vec<Uuid>,
    #[serde(default)]
    pub services: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// A bulk action on a [`Selection`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Pause,
    Resume,
    Delete,
}

impl BulkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Delete => "delete",
        }
    }
}

/// What a bulk action did: how many probes it changed, and those it left (file-managed ones).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkOutcome {
    pub changed: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProbeKind;

    fn spec() -> ProbeSpec {
        let mut s = ProbeSpec::new("api", "shop", ProbeKind::Http, Some("https://bot:hunter2@shop.example/healthz"));
        s.headers.insert("authorization".into(), "Bearer abc".into());
        s.headers.insert("x-env".into(), "prod".into());
        s.body = Some("{\"password\":\"p\"}".into());
        s
    }

    #[test]
    fn masking_hides_every_secret() {
        let m = spec().masked();
        let json = serde_json::to_string(&m).expect("ser");
        for secret in ["hunter2", "Bearer abc", "prod", "password"] {
            assert!(!json.contains(secret), "{secret} leaked: {json}");
        }
        assert_eq!(m.url.as_deref(), Some("https://bot:••••••••@shop.example/healthz"));
        assert_eq!(m.headers["authorization"], SECRET_MASK);
    }

    #[test]
    fn a_form_sent_back_unchanged_keeps_the_stored_secrets() {
        let stored = spec();
        let mut back = stored.masked();
        back.interval_secs = 10;
        back.headers.insert("x-env".into(), "staging".into());
        back.unmask(Some(&stored)).expect("restorable");
        assert_eq!(back.headers["authorization"], "Bearer abc");
        assert_eq!(back.headers["x-env"], "staging", "a value typed in wins");
        assert_eq!(back.body, stored.body);
        assert_eq!(back.url, stored.url);
    }

    #[test]
    fn a_changed_url_keeps_no_masked_password() {
        let stored = spec();
        let mut back = stored.masked();
        back.url = Some("https://bot:••••••••@other.example/".into());
        assert!(back.unmask(Some(&stored)).is_err(), "the old password must not follow a new host");
        assert!(!back.url.as_deref().unwrap_or_default().contains("hunter2"));
        let mut fresh = ProbeSpec::new("b", "shop", ProbeKind::Http, Some("http://h/"));
        fresh.headers.insert("authorization".into(), SECRET_MASK.into());
        assert_eq!(fresh.unmask(None), Err("headers"));
    }

    #[test]
    fn secrets_do_not_follow_the_probe_to_another_host() {
        let stored = spec();
        let mut moved = stored.masked();
        moved.url = Some("https://echo.example/headers".into());
        assert_eq!(moved.unmask(Some(&stored)), Err("headers"), "the token must be typed again for a new host");
        let mut same = stored.masked();
        same.url = Some("https://bot:••••••••@SHOP.example/other-path".into());
        assert_eq!(same.unmask(Some(&stored)), Err("url"), "a changed path with a masked password is refused");
        let mut path_only = stored.masked();
        path_only.url = Some("https://shop.example/readyz".into());
        path_only.unmask(Some(&stored)).expect("same host, new path");
        assert_eq!(path_only.headers["authorization"], "Bearer abc");
    }

    #[test]
    fn urls_without_a_password_are_unchanged() {
        for url in ["http://shop/healthz", "http://user@shop/", "tcp://db:5432", "dns:///shop?type=A"] {
            let s = ProbeSpec::new("a", "s", ProbeKind::Http, Some(url));
            assert_eq!(s.masked().url.as_deref(), Some(url));
        }
    }
}
