//! Text from scenarios is hostile: every string that reaches a page goes
//! through [`esc`] (element text and attribute values) or [`script_json`]
//! (data inside a `<script>` element), so no name, description or metadata
//! can close an element or start a script.

use serde::Serialize;

/// `text` with `&`, `<`, `>`, `"` and `'` escaped: safe in element text and
/// in quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `value` as JSON that can sit inside `<script type="application/json">`:
/// `<`, `>` and `&` (which occur only inside JSON strings) and the line
/// separators U+2028 and U+2029 are written as `\u` escapes, so the text can
/// neither end the element nor be read as markup.
pub fn script_json<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).expect("page data serialises");
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            esc(r#"</script><img src=x onerror="a('b')">&"#),
            "&lt;/script&gt;&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn script_data_cannot_close_its_element() {
        let text = script_json(&vec!["</script><script>alert(1)</script>\u{2028}"]);
        assert!(!text.contains('<') && !text.contains('>'));
        let back: Vec<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, vec!["</script><script>alert(1)</script>\u{2028}"]);
    }
}
