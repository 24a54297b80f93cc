//! Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant whitespace.
//! The audit chain hashes this form so that key order in storage never matters. It is the
//! same function that computes approval argument digests (`warden_approval::canonical`), so
//! digests in audit records and approvals always agree.

pub use warden_approval::canonical::canonical_json;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn key_order_does_not_matter() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":null}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&b),
            r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#
        );
    }
}
