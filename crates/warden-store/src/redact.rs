//! Argument redaction for the audit trail: values under credential-like key names, and
//! values that look like credentials wherever they are, become `"[REDACTED]"`.
//! The digest of the *unredacted* arguments is kept separately so a record still binds
//! the exact call.

use std::sync::LazyLock;

use regex::RegexSet;
use serde_json::Value;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

const SECRET_KEY_PARTS: &[&str] = &[
    "token",
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "credential",
    "private_key",
    "privatekey",
    "cookie",
    "session_key",
    "access_key",
    "client_secret",
];

static SECRET_VALUES: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)\bbearer\s+[a-z0-9._~+/=-]{8,}",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",
        r"\bgithub_pat_[A-Za-z0-9_]{40,}\b",
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
        r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",
        r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        r"\bwdn_[0-9a-f]{64}\b",
        r"(?i)\b(?:password|passwd|secret|api[_-]?key|token)\s*[=:]\s*\S{6,}",
    ])
    .expect("static patterns compile")
});

/// Whether an object key names a credential.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|p| k.contains(p))
}

/// Whether a string value looks like a credential.
pub fn looks_like_secret(s: &str) -> bool {
    SECRET_VALUES.is_match(s)
}

/// A copy of `v` with secrets replaced by [`REDACTED`].
pub fn redact_value(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let red = if is_secret_key(k) && !v.is_object() && !v.is_array() {
                        Value::String(REDACTED.to_string())
                    } else if is_secret_key(k) {
                        redact_all(v)
                    } else {
                        redact_value(v)
                    };
                    (k.clone(), red)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_value).collect()),
        Value::String(s) if looks_like_secret(s) => Value::String(REDACTED.to_string()),
        other => other.clone(),
    }
}

fn redact_all(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_all(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_all).collect()),
        Value::Null => Value::Null,
        _ => Value::String(REDACTED.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_by_key_and_by_pattern() {
        let args = json!({
            "to": "customer@example.com",
            "api_key": "hunter2hunter2",
            "headers": {"Authorization": "Basic abc"},
            "nested": {"note": "use ghp_abcdefghijklmnopqrstuvwxyz0123456789 please"},
            "list": ["plain", "AKIAABCDEFGHIJKLMNOP"],
            "amount": 120
        });
        let r = redact_value(&args);
        assert_eq!(r["to"], "customer@example.com");
        assert_eq!(r["api_key"], REDACTED);
        assert_eq!(r["headers"]["Authorization"], REDACTED);
        assert_eq!(r["nested"]["note"], REDACTED);
        assert_eq!(r["list"][0], "plain");
        assert_eq!(r["list"][1], REDACTED);
        assert_eq!(r["amount"], 120);
        let text = r.to_string();
        for secret in ["hunter2", "ghp_abc", "AKIAABC", "Basic abc"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}
