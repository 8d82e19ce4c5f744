//! The Markdown export of a postmortem, and its frozen charts as standalone SVG files.

use std::fmt::Write as _;

use app::model::{EntryKind, Postmortem, Section, human_secs};

/// The style sheet the charts' colour variables come from: the export uses its light theme.
const STYLE: &str = include_str!("../../../../style/main.css");

/// `--chart-*` declarations of the style sheet's first (light) `:root` block.
fn light_chart_vars() -> String {
    let root = STYLE.split(":root {").nth(1).and_then(|r| r.split('}').next()).unwrap_or("");
    root.lines().map(str::trim).filter(|l| l.starts_with("--chart-")).collect::<Vec<_>>().join(" ")
}

/// A chart drawn for the page (colours as CSS variables) as a file that stands alone.
pub fn standalone_svg(svg: &str) -> String {
    let Some(open) = svg.find("<svg").and_then(|i| svg[i..].find('>').map(|j| i + j + 1)) else {
        return svg.to_string();
    };
    let mut out = String::with_capacity(svg.len() + 600);
    out.push_str(&svg[..open]);
    let _ = write!(out, "<style>svg {{ {} background: #ffffff; }}</style>", light_chart_vars());
    out.push_str(&svg[open..]);
    out
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Table cells hold one line and no column separators.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Where the export's charts go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charts {
    /// Links to the SVG files beside the export (`charts/{n}.svg`).
    Files,
    /// Each chart's standalone SVG in the Markdown itself, for a file that travels alone.
    Inline,
}

/// The whole document as Markdown: metrics, the four answers, every section, action items, the
/// charts and the timeline.
pub fn markdown(p: &Postmortem, charts: Charts) -> String {
    let mut md = String::new();
    let i = &p.incident;
    let _ = writeln!(md, "# Postmortem: incident #{} — {}\n", i.number, i.title);
    let _ = writeln!(
        md,
        "- **Status:** {} (revision {})\n- **Severity:** {} ({})\n- **Incident:** {}\n- **Commander:** {}",
        p.status.label(),
        p.revision,
        i.severity.as_str(),
        i.severity.meaning(),
        i.status.as_str(),
        i.commander.as_deref().unwrap_or("none"),
    );
    if let (Some(by), Some(at)) = (&p.published_by, p.published_at) {
        let _ = writeln!(md, "- **Published:** {} by {by}", when(at));
    }
    let _ = writeln!(md, "- **Window:** {} → {}\n", when(p.window_from), when(p.window_to));

    md.push_str("## Metrics\n\n| Metric | Value | From | To | Note |\n|---|---|---|---|---|\n");
    for m in &p.metrics {
        let value = m.value_secs().map(human_secs).unwrap_or_else(|| "—".into());
        let mark = |x: &Option<app::model::Mark>| {
            x.as_ref().map(|x| format!("{} at {} ({})", x.what, when(x.at), x.source)).unwrap_or_else(|| "—".into())
        };
        let mut note = m.note.clone().unwrap_or_default();
        if let Some(o) = &m.overridden {
            let computed = m.computed_secs.map(human_secs).unwrap_or_else(|| "none".into());
            let _ = write!(
                note,
                "{}overridden by {} (computed {computed}): {}",
                if note.is_empty() { "" } else { "; " },
                o.by,
                o.reason
            );
        }
        let _ = writeln!(
            md,
            "| {} ({}) | {} | {} | {} | {} |",
            m.kind.label(),
            m.kind.short(),
            value,
            cell(&mark(&m.from)),
            cell(&mark(&m.to)),
            cell(&note)
        );
    }
    md.push('\n');

    let section = |md: &mut String, s: Section, level: &str| {
        let text = p.doc.section(s).trim();
        let _ = writeln!(md, "{level} {}\n\n{}\n", s.title(), if text.is_empty() { "_Not answered._" } else { text });
    };
    section(&mut md, Section::Summary, "##");
    section(&mut md, Section::Impact, "##");
    md.push_str("## The four questions\n\n");
    for q in Section::QUESTIONS {
        section(&mut md, q, "###");
    }
    for s in [Section::ContributingFactors, Section::WentWell, Section::WentBadly] {
        section(&mut md, s, "##");
    }

    md.push_str("## Action items\n\n");
    if p.doc.action_items.is_empty() {
        md.push_str("_None._\n\n");
    } else {
        md.push_str("| Action | Owner | Due | Status | Link |\n|---|---|---|---|---|\n");
        for a in &p.doc.action_items {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                cell(&a.title),
                cell(&a.owner),
                a.due.map(|d| d.to_string()).unwrap_or_default(),
                a.status.as_str().replace('_', " "),
                a.link.as_deref().map(cell).unwrap_or_default()
            );
        }
        md.push('\n');
    }
    section(&mut md, Section::Hypotheses, "##");
    section(&mut md, Section::ChecklistSteps, "##");

    md.push_str("## Charts\n\n");
    if p.charts.is_empty() {
        md.push_str("_No probe data for the affected services._\n\n");
    }
    for c in &p.charts {
        match charts {
            Charts::Files => {
                let _ = writeln!(md, "![{} {}](charts/{}.svg)\n", c.service, c.kind.as_str(), c.position);
            }
            Charts::Inline => {
                let _ = writeln!(md, "**{} {}**\n\n{}\n", c.service, c.kind.as_str(), standalone_svg(&c.svg));
            }
        }
    }

    md.push_str("## Timeline\n\n");
    for e in p.timeline.iter().filter(|e| e.deleted.is_none()) {
        let kind = if e.kind == EntryKind::Automatic { "triage" } else { e.kind.as_str() };
        let _ = writeln!(md, "- **{}** · {} · {}", when(e.happened_at), kind, e.author);
        for line in e.text.lines() {
            let _ = writeln!(md, "  {line}");
        }
    }
    md.push('\n');

    if !p.revisions.is_empty() {
        md.push_str("## Revisions\n\n");
        for r in &p.revisions {
            let _ = writeln!(
                md,
                "- Revision {} amended by {} at {}: {}",
                r.revision,
                r.amended_by,
                when(r.amended_at),
                r.reason
            );
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_charts_carry_the_light_colours() {
        let svg = standalone_svg("<svg width=\"10\" height=\"10\"><rect fill=\"var(--chart-bad)\"/></svg>");
        assert!(svg.starts_with("<svg width=\"10\" height=\"10\"><style>svg { --chart-axis: #8c959f;"), "{svg}");
        assert!(svg.contains("--chart-bad: #cf222e;"));
        assert!(svg.ends_with("<rect fill=\"var(--chart-bad)\"/></svg>"));
        assert_eq!(light_chart_vars().matches("--chart-").count(), 12, "every chart colour");
    }

    #[test]
    fn table_cells_stay_on_one_line() {
        assert_eq!(cell("a | b\nc"), "a \\| b c");
    }
}
