//! Markdown from people (timeline entries, later postmortems) to HTML that is safe to insert into
//! a page: pulldown-cmark renders, ammonia keeps only harmless tags, attributes and URL schemes.
//! Raw HTML in the source is treated as text-to-sanitise, never trusted.

use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser, html};

/// Schemes a link or image may use; anything else (`javascript:`, `data:`, `vbscript:`) loses its URL.
const SCHEMES: [&str; 3] = ["http", "https", "mailto"];

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.url_schemes(SCHEMES.into_iter().collect())
        // External links must not get a handle on the incident room (window.opener).
        .link_rel(Some("noopener noreferrer nofollow"))
        // Images would let anyone who can post make every viewer's browser fetch a URL of theirs.
        .rm_tags(["img"])
        .add_tag_attributes("code", ["class"])
        .url_relative(ammonia::UrlRelative::PassThrough);
    b
});

/// Renders `source` to sanitised HTML.
pub fn render(source: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut raw = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut raw, Parser::new_ext(source, options));
    CLEANER.clean(&raw).to_string()
}

/// `s` as Markdown that reads as exactly `s`: every ASCII punctuation mark is backslash-escaped
/// (CommonMark allows that for all of them) and line breaks become spaces, so text from a script
/// (a change's title, its author) cannot add emphasis, links or headings to an entry it lands in.
pub fn escape_inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
            out.push(c);
        } else if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_text_renders_as_itself() {
        let hostile = "**bold** [x](javascript:alert(1)) <b>hi</b>\n# h `c` _i_ ~~s~~ | a |";
        let html = render(&escape_inline(hostile));
        for tag in ["<strong>", "<a ", "<b>", "<h1>", "<code>", "<em>", "<del>", "<table>"] {
            assert!(!html.contains(tag), "{tag} in {html}");
        }
        assert!(html.contains("**bold**"), "{html}");
        assert!(html.contains("&lt;b&gt;hi&lt;/b&gt;"), "{html}");
        assert_eq!(escape_inline("deploy v1 of shop"), "deploy v1 of shop");
        assert_eq!(escape_inline("a\nb"), "a b");
    }

    #[test]
    fn renders_the_usual_markdown() {
        let html = render("**p95** is `4.1×` baseline\n\n- [link](https://example.com/x)\n");
        assert!(html.contains("<strong>p95</strong>"), "{html}");
        assert!(html.contains("<code>4.1×</code>"), "{html}");
        assert!(html.contains(r#"href="https://example.com/x""#), "{html}");
        assert!(html.contains(r#"rel="noopener noreferrer nofollow""#), "{html}");
    }

    #[test]
    fn scripts_and_handlers_go() {
        let html = render("<script>alert(1)</script><b onclick=\"x()\">b</b>\n\n[x](javascript:alert(1))");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onclick"), "{html}");
        assert!(html.contains("<a") && !html.contains("javascript:"), "the link stays, its URL goes: {html}");
    }

    /// Known cross-site scripting vectors (raw HTML, attribute breakouts, encoded and obfuscated
    /// schemes, SVG/MathML, CSS), each alone and inside Markdown links, images, reference links and
    /// autolinks: none may leave a script element, an event handler, or a `javascript:`,
    /// `vbscript:` or `data:` URL in the output.
    #[test]
    fn known_xss_vectors_leave_nothing_executable() {
        let payloads = [
            "<script>alert(1)</script>",
            "<SCRIPT SRC=http://xss.example/xss.js></SCRIPT>",
            "<scr<script>ipt>alert(1)</scr</script>ipt>",
            "<img src=x onerror=alert(1)>",
            "<img src=\"javascript:alert('XSS');\">",
            "<IMG SRC=JaVaScRiPt:alert('XSS')>",
            "<img src=`javascript:alert(1)`>",
            "<svg onload=alert(1)>",
            "<svg><script>alert(1)</script></svg>",
            "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
            "<body onload=alert(1)>",
            "<iframe src=\"javascript:alert(1)\"></iframe>",
            "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
            "<object data=\"javascript:alert(1)\"></object>",
            "<embed src=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\"JAVASCRIPT:alert(1)\">x</a>",
            "<a href=\" javascript:alert(1)\">x</a>",
            "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
            "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">x</a>",
            "<a href=\"vbscript:msgbox(1)\">x</a>",
            "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
            "<a href=x onmouseover=alert(1)>x</a>",
            "<div style=\"background:url(javascript:alert(1))\">x</div>",
            "<style>@import 'javascript:alert(1)';</style>",
            "<link rel=stylesheet href=javascript:alert(1)>",
            "<meta http-equiv=refresh content=\"0;url=javascript:alert(1)\">",
            "<form action=javascript:alert(1)><input type=submit></form>",
            "<button formaction=javascript:alert(1)>x</button>",
            "<input onfocus=alert(1) autofocus>",
            "<details open ontoggle=alert(1)>",
            "<video><source onerror=alert(1)></video>",
            "<marquee onstart=alert(1)>",
            "<base href=\"javascript:alert(1)//\">",
            "\"><script>alert(1)</script>",
            "'><img src=x onerror=alert(1)>",
            "<!--<script>-->alert(1)<!--</script>-->",
            "<table background=\"javascript:alert(1)\">",
            "<p onclick=alert(1)>p</p>",
            "<code onclick=alert(1) class=x>c</code>",
        ];
        let urls = [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "javascript&#58;alert(1)",
            "&#x6A;avascript:alert(1)",
            "vbscript:msgbox(1)",
            "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
            "java\\tscript:alert(1)",
            "%6A%61%76%61%73%63%72%69%70%74:alert(1)",
        ];
        let mut vectors: Vec<String> = Vec::new();
        for p in payloads {
            vectors.push(p.to_string());
            vectors.push(format!("**bold** {p} _after_"));
            vectors.push(format!("- item\n- {p}\n"));
        }
        for u in urls {
            vectors.push(format!("[click]({u})"));
            vectors.push(format!("![img]({u})"));
            vectors.push(format!("[ref][1]\n\n[1]: {u}"));
            vectors.push(format!("<{u}>"));
            vectors.push(format!("[x]({u} \"title\")"));
        }
        assert!(vectors.len() >= 100, "{} vectors", vectors.len());
        let tag = regex::Regex::new(r"<[a-zA-Z][^>]*>").unwrap();
        let handler = regex::Regex::new(r#"(?i)\son[a-z]+\s*="#).unwrap();
        let url_attr = regex::Regex::new(
            r#"(?i)\s(?:href|src|action|formaction|background|data|srcdoc|style|xlink:href)\s*=\s*"([^"]*)""#,
        )
        .unwrap();
        for v in &vectors {
            let html = render(v);
            let lower = html.to_ascii_lowercase();
            for forbidden in [
                "<script", "<iframe", "<object", "<embed", "<style", "<svg", "<math", "<base", "<form", "<meta",
                "<link",
            ] {
                assert!(!lower.contains(forbidden), "{forbidden} survived {v:?}: {html}");
            }
            for t in tag.find_iter(&html) {
                assert!(!handler.is_match(t.as_str()), "event handler survived {v:?}: {html}");
                for cap in url_attr.captures_iter(t.as_str()) {
                    let value = decode(&cap[1]);
                    let squashed: String = value.chars().filter(|c| !c.is_whitespace() && !c.is_control()).collect();
                    let squashed = squashed.to_ascii_lowercase();
                    for scheme in ["javascript:", "vbscript:", "data:"] {
                        assert!(!squashed.starts_with(scheme), "{scheme} URL survived {v:?}: {html}");
                    }
                }
            }
        }
    }

    /// Enough entity decoding to see through `&#106;` and `&#x6A;` and `&colon;`.
    fn decode(s: &str) -> String {
        let re = regex::Regex::new(r"&#[xX]?[0-9a-fA-F]+;?|&colon;|&amp;").unwrap();
        re.replace_all(s, |c: &regex::Captures<'_>| {
            let m = &c[0];
            match m {
                "&colon;" => ":".to_string(),
                "&amp;" => "&".to_string(),
                _ => {
                    let body = m.trim_start_matches("&#").trim_end_matches(';');
                    let n = if let Some(h) = body.strip_prefix(['x', 'X']) {
                        u32::from_str_radix(h, 16).ok()
                    } else {
                        body.parse().ok()
                    };
                    n.and_then(char::from_u32).map(String::from).unwrap_or_default()
                }
            }
        })
        .into_owned()
    }
}
