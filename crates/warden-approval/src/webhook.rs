//! Webhook notifications about new approval requests: the JSON payload (with a
//! Slack-compatible `text`), its HMAC-SHA256 signature, and the retry schedule.
//!
//! A receiver verifies a delivery by recomputing
//! `hex(hmac_sha256(secret, timestamp + "." + body))` and comparing it, in constant time,
//! with the `X-Warden-Signature: sha256=<hex>` header; `X-Warden-Timestamp` (Unix seconds)
//! lets it refuse replays older than a few minutes ([`verify`]).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::model::ApprovalRequest;

/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Warden-Signature";
/// Header carrying the Unix time (seconds) that was signed.
pub const TIMESTAMP_HEADER: &str = "X-Warden-Timestamp";
/// Header carrying the delivery id (the same across retries of one delivery).
pub const DELIVERY_HEADER: &str = "X-Warden-Delivery";

/// The JSON body announcing a new request. `eligible` lists who may answer; `console_url`
/// (when the console is served) links to the pending-approvals page.
pub fn payload(req: &ApprovalRequest, eligible: &[String], console_url: Option<&str>) -> Value {
    let args = serde_json::to_string(&req.display_args).unwrap_or_default();
    let args = if args.chars().count() > 500 {
        format!("{}…", args.chars().take(500).collect::<String>())
    } else {
        args
    };
    let mut text = format!(
        "Approval needed: agent *{}* (owner {}) wants to call *{}* {}.\nArguments: `{}`\nApprovers: {} ({} approval{} required). Expires in {} s.\nRequest {}",
        req.agent,
        req.owner.as_deref().unwrap_or("none"),
        req.tool,
        if req.effects.is_empty() {
            String::new()
        } else {
            format!("[{}]", req.effects.join(", "))
        },
        args,
        req.approvers.join(", "),
        req.approvals_required,
        if req.approvals_required == 1 { "" } else { "s" },
        (req.expires_ms - req.created_ms) / 1000,
        req.id
    );
    if req.tainted {
        text.push_str("\n:warning: the session has read untrusted content");
    }
    if let Some(u) = console_url {
        text.push_str(&format!("\nReview: {u}"));
    }
    json!({
        "event": "approval.requested",
        "text": text,
        "approval": req,
        "eligible_approvers": eligible,
        "console_url": console_url,
    })
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `X-Warden-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks a delivery: the signature matches (constant-time) and the timestamp is within
/// `tolerance_s` of `now_s`.
pub fn verify(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    signature: &str,
    now_s: i64,
    tolerance_s: i64,
) -> bool {
    if (now_s - timestamp).abs() > tolerance_s {
        return false;
    }
    let Some(hexsig) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(bytes) = hex::decode(hexsig) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&bytes).is_ok()
}

/// Exponential backoff: attempt 1 is immediate, attempt `n ≥ 2` waits
/// `min(base × factor^(n−2), max_delay)`; no attempt after `max_attempts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    pub base: Duration,
    pub factor: u32,
    pub max_delay: Duration,
    pub max_attempts: u32,
}

impl Default for RetrySchedule {
    /// 1 s, 2 s, 4 s, … capped at 5 min, 8 attempts in all (≈ 4 minutes of retrying).
    fn default() -> Self {
        RetrySchedule {
            base: Duration::from_secs(1),
            factor: 2,
            max_delay: Duration::from_secs(300),
            max_attempts: 8,
        }
    }
}

impl RetrySchedule {
    /// How long to wait before attempt `attempt` (1-based); None when no attempt is left.
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || attempt > self.max_attempts {
            return None;
        }
        if attempt == 1 {
            return Some(Duration::ZERO);
        }
        let mut d = self.base;
        for _ in 2..attempt {
            d = d.saturating_mul(self.factor);
            if d >= self.max_delay {
                return Some(self.max_delay);
            }
        }
        Some(d.min(self.max_delay))
    }

    /// Whether an HTTP status is worth retrying (5xx, 408, 429); other 4xx are final.
    pub fn retryable_status(status: u16) -> bool {
        status >= 500 || status == 408 || status == 429
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NewRequest;

    #[test]
    fn signature_verifies_and_detects_tampering() {
        let body = br#"{"text":"hi"}"#;
        let sig = sign(b"s3cret", 1_700_000_000, body);
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert!(verify(
            b"s3cret",
            1_700_000_000,
            body,
            &sig,
            1_700_000_010,
            300
        ));
        assert!(!verify(
            b"other",
            1_700_000_000,
            body,
            &sig,
            1_700_000_010,
            300
        ));
        assert!(!verify(
            b"s3cret",
            1_700_000_001,
            body,
            &sig,
            1_700_000_010,
            300
        ));
        assert!(!verify(
            b"s3cret",
            1_700_000_000,
            br#"{"text":"ho"}"#,
            &sig,
            1_700_000_010,
            300
        ));
        assert!(!verify(
            b"s3cret",
            1_700_000_000,
            body,
            &sig,
            1_700_001_000,
            300
        ));
        assert!(!verify(
            b"s3cret",
            1_700_000_000,
            body,
            "md5=abc",
            1_700_000_010,
            300
        ));
    }

    #[test]
    fn signature_matches_rfc4231_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        // Our message is "<ts>.<body>": split the data at its first '.'-free prefix is not
        // possible, so check the primitive through a timestamp-free MAC.
        let mut m = HmacSha256::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let s = RetrySchedule {
            base: Duration::from_millis(100),
            factor: 2,
            max_delay: Duration::from_millis(500),
            max_attempts: 6,
        };
        let d: Vec<Option<u128>> = (1..=7)
            .map(|a| s.delay_before(a).map(|d| d.as_millis()))
            .collect();
        assert_eq!(
            d,
            vec![
                Some(0),
                Some(100),
                Some(200),
                Some(400),
                Some(500),
                Some(500),
                None
            ]
        );
        assert!(RetrySchedule::retryable_status(503));
        assert!(RetrySchedule::retryable_status(429));
        assert!(!RetrySchedule::retryable_status(404));
    }

    #[test]
    fn payload_has_slack_text_and_never_raw_args() {
        let r = ApprovalRequest::open(
            NewRequest {
                agent: "refund-agent".into(),
                owner: Some("dave".into()),
                tool: "payments.issue_refund".into(),
                effects: vec!["write".into(), "privileged".into()],
                args: serde_json::json!({"amount": 900, "api_key": "sk_live_abcdefghijklmnopqrstuv"}),
                display_args: serde_json::json!({"amount": 900, "api_key": "[REDACTED]"}),
                approvers: vec!["group:finance-leads".into()],
                approvals_required: 1,
                ttl_ms: 1_800_000,
                ..Default::default()
            },
            0,
        )
        .unwrap();
        let p = payload(&r, &["bob".into()], Some("http://127.0.0.1:7400/console/"));
        let text = p["text"].as_str().unwrap();
        assert!(text.contains("refund-agent") && text.contains("payments.issue_refund"));
        assert!(text.contains(&r.id));
        assert!(text.contains("Expires in 1800 s"));
        let all = p.to_string();
        assert!(!all.contains("sk_live"), "{all}");
        assert_eq!(p["approval"]["args_digest"], r.args_digest);
        assert!(p["approval"].get("args").is_none());
    }
}
