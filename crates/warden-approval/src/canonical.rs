//! Canonical JSON (object keys sorted by their UTF-8 bytes, no insignificant whitespace)
//! and the argument digest that binds an approval to one exact call. The same form as the
//! audit trail's (`warden_store::canonical_json`), so digests agree across crates.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Serialises `v` canonically.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// sha256 (hex) of the canonical JSON of a call's arguments.
pub fn args_digest(args: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(args).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ignores_key_order_and_whitespace_but_not_values() {
        let a: Value =
            serde_json::from_str(r#"{"to":"x@y","amount":600,"meta":{"b":1,"a":[1,2]}}"#).unwrap();
        let b: Value = serde_json::from_str(
            "{ \"meta\": {\"a\": [1, 2], \"b\": 1},\n \"amount\": 600, \"to\": \"x@y\" }",
        )
        .unwrap();
        assert_eq!(args_digest(&a), args_digest(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"amount":600,"meta":{"a":[1,2],"b":1},"to":"x@y"}"#
        );
        let c: Value =
            serde_json::from_str(r#"{"to":"x@y","amount":601,"meta":{"b":1,"a":[1,2]}}"#).unwrap();
        assert_ne!(args_digest(&a), args_digest(&c));
        // Array order is significant.
        let d: Value =
            serde_json::from_str(r#"{"to":"x@y","amount":600,"meta":{"b":1,"a":[2,1]}}"#).unwrap();
        assert_ne!(args_digest(&a), args_digest(&d));
        // Known vector: sha256("{}").
        assert_eq!(
            args_digest(&serde_json::json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
