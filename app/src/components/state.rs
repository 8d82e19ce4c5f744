//! How a state reads on every page: colour (by class), an icon and a word, never colour alone.

use crate::model::{Outcome, ProbeStatus};

/// CSS class and label for a probe's or service's state; `None` means no result yet.
pub fn state_label(state: Option<Outcome>) -> (&'static str, &'static str) {
    match state {
        Some(Outcome::Up) => ("state state-up", "✔ up"),
        Some(Outcome::Degraded) => ("state state-degraded", "▲ degraded"),
        Some(Outcome::Down) => ("state state-down", "✖ down"),
        None => ("state state-none", "○ no data"),
    }
}

/// CSS class and label for a probe: its confirmed state, `unknown` before the first
/// confirmation, and a configuration state while the network policy refuses its checks.
pub fn probe_state_label(status: Option<&ProbeStatus>) -> (&'static str, &'static str) {
    match status {
        Some(s) if s.blocked() => ("state state-config", "⚙ blocked by policy"),
        Some(ProbeStatus { state: None, .. }) => ("state state-none", "○ confirming"),
        Some(s) => state_label(s.state),
        None => state_label(None),
    }
}
