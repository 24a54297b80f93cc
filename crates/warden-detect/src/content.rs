//! Text extraction from MCP payloads: the parts of a `tools/call` result or of
//! `resources/read` contents that reach the model, including text inside JSON.

use serde_json::Value;

/// One piece of text and where it came from (a JSON pointer into the payload).
#[derive(Debug, Clone, PartialEq)]
pub struct TextPart {
    pub pointer: String,
    pub text: String,
}

/// Bound on nesting when text parts themselves hold JSON.
const MAX_JSON_DEPTH: u8 = 2;

/// Text parts of a `tools/call` result (`content[]` text parts, embedded resources'
/// `text`, `structuredContent`) or of `resources/read` (`contents[]`). Any other JSON value
/// contributes its string leaves. Text that is itself JSON is walked too (bounded depth).
pub fn text_parts(payload: &Value) -> Vec<TextPart> {
    let mut out = Vec::new();
    walk(payload, String::new(), 0, &mut out);
    out
}

fn walk(v: &Value, ptr: String, depth: u8, out: &mut Vec<TextPart>) {
    match v {
        Value::String(s) => {
            let t = s.trim_start();
            if depth < MAX_JSON_DEPTH
                && (t.starts_with('{') || t.starts_with('['))
                && let Ok(inner) = serde_json::from_str::<Value>(s)
                && !inner.is_string()
            {
                walk(&inner, format!("{ptr}#json"), depth + 1, out);
                return;
            }
            out.push(TextPart {
                pointer: ptr,
                text: s.clone(),
            });
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, format!("{ptr}/{i}"), depth, out);
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
                walk(
                    x,
                    format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1")),
                    depth,
                    out,
                );
            }
        }
        _ => {}
    }
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
        let texts: Vec<&str> = p.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, vec!["hello", "inner", "deep", "s"]);
        assert_eq!(p[2].pointer, "/content/3/text#json/note");
    }
}
