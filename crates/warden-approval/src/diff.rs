//! What changed between two calls' (redacted) arguments: the console shows it against the
//! last approved call of the same agent and tool, so an approver sees what is new.

use serde::Serialize;
use serde_json::Value;

/// One difference, at a JSON pointer-like path (`/recipient`, `/items/2/sku`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArgChange {
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// Differences from `before` to `after`, in path order.
pub fn diff_args(before: &Value, after: &Value) -> Vec<ArgChange> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<ArgChange>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = format!("{path}/{}", escape(k));
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => walk(&p, va, vb, out),
                    (Some(va), None) => out.push(ArgChange {
                        path: p,
                        change: "removed",
                        before: Some(va.clone()),
                        after: None,
                    }),
                    (None, Some(vb)) => out.push(ArgChange {
                        path: p,
                        change: "added",
                        before: None,
                        after: Some(vb.clone()),
                    }),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                walk(&format!("{path}/{i}"), va, vb, out);
            }
        }
        _ if a == b => {}
        _ => out.push(ArgChange {
            path: if path.is_empty() {
                "/".into()
            } else {
                path.to_string()
            },
            change: "changed",
            before: Some(a.clone()),
            after: Some(b.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_added_removed_and_changed_paths() {
        let before =
            json!({"amount": 120, "charge": "ch_1", "note": "x", "lines": [1, 2], "a/b": 1});
        let after =
            json!({"amount": 4900, "charge": "ch_1", "iban": "DE00", "lines": [1, 3], "a/b": 1});
        let d = diff_args(&before, &after);
        let paths: Vec<(&str, &str)> = d.iter().map(|c| (c.path.as_str(), c.change)).collect();
        assert_eq!(
            paths,
            vec![
                ("/amount", "changed"),
                ("/iban", "added"),
                ("/lines/1", "changed"),
                ("/note", "removed")
            ]
        );
        assert_eq!(d[0].before, Some(json!(120)));
        assert_eq!(d[0].after, Some(json!(4900)));
        assert!(diff_args(&after, &after).is_empty());
        // Arrays of different length are one change.
        let d = diff_args(&json!({"l": [1]}), &json!({"l": [1, 2]}));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "/l");
    }
}
