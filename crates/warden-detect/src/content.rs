//! Text extraction from MCP payloads: the parts of a `tools/call` result or of
//! `resources/read` contents that reach the model, including text inside JSON.

use std::borrow::Cow;
use std::fmt::Write;

use serde_json::Value;

/// One piece of text and where it came from (a JSON pointer into the payload). The text is
/// borrowed from the payload unless it was found inside text that is itself JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct TextPart<'a> {
    pub pointer: String,
    pub text: Cow<'a, str>,
}

/// Bound on nesting when text parts themselves hold JSON.
const MAX_JSON_DEPTH: u8 = 2;

/// Text parts of a `tools/call` result (`content[]` text parts, embedded resources'
/// `text`, `structuredContent`) or of `resources/read` (`contents[]`). Any other JSON value
/// contributes its string leaves. Text that is itself JSON is walked too (bounded depth).
pub fn text_parts(payload: &Value) -> Vec<TextPart<'_>> {
    let mut out = Vec::new();
    walk(payload, &mut String::new(), 0, &mut |pointer, text| {
        out.push(TextPart {
            pointer: pointer.to_string(),
            text,
        })
    });
    out
}

/// Calls `found` with the pointer and text of every string leaf under `v`; `ptr` is the
/// pointer to `v`, extended in place while walking and restored on return.
fn walk<'a>(v: &'a Value, ptr: &mut String, depth: u8, found: &mut dyn FnMut(&str, Cow<'a, str>)) {
    let at = ptr.len();
    match v {
        Value::String(s) => {
            let t = s.trim_start();
            if depth < MAX_JSON_DEPTH
                && (t.starts_with('{') || t.starts_with('['))
                && let Ok(inner) = serde_json::from_str::<Value>(s)
                && !inner.is_string()
            {
                ptr.push_str("#json");
                walk(&inner, ptr, depth + 1, &mut |p, text| {
                    found(p, Cow::Owned(text.into_owned()))
                });
            } else {
                found(ptr, Cow::Borrowed(s));
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let _ = write!(ptr, "/{i}");
                walk(x, ptr, depth, found);
                ptr.truncate(at);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                // Binary payloads and identifiers are not prose for the model.
                if matches!(
                    k.as_str(),
                    "blob" | "data" | "mimeType" | "type" | "uri" | "_meta"
                ) {
                    continue;
                }
                ptr.push('/');
                for c in k.chars() {
                    match c {
                        '~' => ptr.push_str("~0"),
                        '/' => ptr.push_str("~1"),
                        c => ptr.push(c),
                    }
                }
                walk(x, ptr, depth, found);
                ptr.truncate(at);
            }
        }
        _ => {}
    }
    ptr.truncate(at);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_result_parts_and_json_inside_text() {
        let r = json!({
            "content": [
                {"type": "text", "text": "hello"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "file:///a", "text": "inner"}},
                {"type": "text", "text": "{\"note\": \"deep\"}"}
            ],
            "structuredContent": {"summary": "s"}
        });
        let p = text_parts(&r);
        let texts: Vec<&str> = p.iter().map(|t| t.text.as_ref()).collect();
        assert_eq!(texts, vec!["hello", "inner", "deep", "s"]);
        assert_eq!(p[2].pointer, "/content/3/text#json/note");
        assert_eq!(p[3].pointer, "/structuredContent/summary");
    }

    #[test]
    fn pointers_escape_keys_and_do_not_carry_a_sibling_path() {
        let r = json!({"a/b": {"c~d": "x"}, "list": ["y", {"k": "{\"n\": [\"z\"]}"}], "e": "w"});
        let p = text_parts(&r);
        let got: Vec<(&str, &str)> = p
            .iter()
            .map(|t| (t.pointer.as_str(), t.text.as_ref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/a~1b/c~0d", "x"),
                ("/list/0", "y"),
                ("/list/1/k#json/n/0", "z"),
                ("/e", "w"),
            ]
        );
    }
}
