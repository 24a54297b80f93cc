//! Canonical JSON (object keys sorted by their UTF-8 bytes, no insignificant whitespace)
//! and the argument digest that binds an approval to one exact call. The same form as the
//! audit trail's (`warden_store::canonical_json`), so digests agree across crates.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Serialises `v` canonically.
pub fn canonical_json(v: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical(v, &mut out);
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Appends the canonical form of `v` to `out`: keys sorted by their bytes, strings and
/// numbers exactly as serde_json writes them. Written in place (no text per key or value):
/// the audit trail hashes every record in this form and digests every call's arguments.
pub fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing JSON into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

/// sha256 (hex) of the canonical JSON of a call's arguments.
pub fn args_digest(args: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(args).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first implementation (one text per key and scalar): the in-place writer must
    /// produce exactly its output, or stored chains and digests would stop verifying.
    fn reference(v: &Value, out: &mut String) {
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
                    reference(&map[*k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    reference(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }

    #[test]
    fn in_place_writer_matches_the_reference_form() {
        let samples = [
            r#"{"z":1,"a":{"y":[1,{"d":2.5,"c":-3}],"x":null},"é":"ü\n\"q\"","":true}"#,
            r#"[1e300,-0.0,1.5e-7,18446744073709551615,-9223372036854775808,"\u0000\u001f\t"]"#,
            r#"{"kind":"decision","args":{"to":"x@y","amount":600},"policies":["p1","p2"],"tainted":false,"latency_ms":0.241}"#,
            r#"{"B":1,"a":2,"aa":3,"a\u00e9":4,"ab":5}"#,
            r#""plain""#,
            r#"{}"#,
        ];
        for text in samples {
            let v: Value = serde_json::from_str(text).unwrap();
            let mut want = String::new();
            reference(&v, &mut want);
            assert_eq!(canonical_json(&v), want, "for {text}");
        }
    }

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
