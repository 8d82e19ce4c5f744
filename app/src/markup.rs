//! Escaping for the few places that build HTML as text (chart SVGs, the overview's tiles) instead
//! of through `view!`, which escapes by itself.

/// Appends `s` escaped for both text and double-quoted attribute values.
pub fn push_escaped(buf: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
        buf.push_str(&rest[..i]);
        buf.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[i + 1..];
    }
    buf.push_str(rest);
}

/// `s` escaped, as a new string.
pub fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

/// `s` percent-encoded for a URL query value (every byte but the unreserved characters), so a
/// filter typed by a user survives a round trip through the URL.
pub fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_keep_only_unreserved_characters() {
        assert_eq!(query_value("shop api"), "shop%20api");
        assert_eq!(query_value("a&b=c/ü~"), "a%26b%3Dc%2F%C3%BC~");
    }

    #[test]
    fn markup_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escaped(r#"<img src=x onerror="a&b">'"#), "&lt;img src=x onerror=&quot;a&amp;b&quot;&gt;&#39;");
        assert_eq!(escaped("svc-0001 ünïcode · ok"), "svc-0001 ünïcode · ok");
        assert_eq!(escaped(""), "");
    }
}
