//! How a state reads on every page: colour (by class), an icon and a word, never colour alone.

use crate::model::Outcome;

/// CSS class and label for a probe's or service's state; `None` means no result yet.
pub fn state_label(state: Option<Outcome>) -> (&'static str, &'static str) {
    match state {
        Some(Outcome::Up) => ("state state-up", "✔ up"),
        Some(Outcome::Degraded) => ("state state-degraded", "▲ degraded"),
        Some(Outcome::Down) => ("state state-down", "✖ down"),
        None => ("state state-none", "○ no data"),
    }
}
