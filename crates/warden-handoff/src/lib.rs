//! # warden-handoff
//!
//! Handoffs between agents, made explicit, minimal, expiring and attributable to a human.
//!
//! - [`plan_handoff`] checks a handoff `A → B` against the inventory's declared handoffs,
//!   keeps only the context keys the handoff's allow-list names (reporting the dropped ones),
//!   and stamps every kept entry with provenance (who wrote it, whether it is tainted) and an
//!   expiry. It is pure: the gateway adds the Cedar `handoff` decision, stores the entries and
//!   writes the audit record.
//! - [`delegation`] issues and verifies delegation tokens (biscuit: ed25519-signed, verifiable
//!   offline with the public key, attenuable by appending blocks). Each hop of a chain adds a
//!   check restricting tools to that agent's entitlements, so what the last agent may do is the
//!   intersection of everyone's on the chain; the chain's depth and expiry are bounded.
//!
//! No I/O: storage and transport are the gateway's and the store's.

pub mod delegation;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_core::Inventory;

pub use delegation::{DelegationClaims, DelegationKeys};

/// TTL applied when a declared handoff names none (`warden check` reports those).
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// Why a handoff or a delegation token was refused.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("agent `{0}` is not in the inventory")]
    UnknownAgent(String),
    #[error("handoff `{from}` → `{to}` is not declared in the inventory")]
    Undeclared { from: String, to: String },
    #[error("delegation chain would be {depth} handoffs deep; the limit is {max}")]
    TooDeep { depth: u32, max: u32 },
    #[error("delegation token has expired")]
    Expired,
    #[error(
        "delegation token does not allow `{tool}` (an agent up the chain is not entitled to it)"
    )]
    ToolNotDelegated { tool: String },
    #[error("delegation token was issued to `{holder}`, not `{presenter}`")]
    WrongHolder { holder: String, presenter: String },
    #[error("delegation token is invalid: {0}")]
    InvalidToken(String),
    #[error("invalid handoff TTL `{0}`")]
    InvalidTtl(String),
}

/// One context entry as it travels: the value plus where it came from and when it expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextEntry {
    pub key: String,
    pub value: Value,
    /// The agent (or `agent/connector.tool`) that wrote the value.
    pub written_by: String,
    /// The value came from, or was written by a session that read, untrusted content.
    pub tainted: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the entry is purged after this.
    pub expires_at: i64,
}

impl ContextEntry {
    pub fn is_expired(&self, now_unix: i64) -> bool {
        now_unix >= self.expires_at
    }
}

/// What the sender knows about where its context came from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Provenance {
    /// Per-key writer; keys not listed were written by the sending agent itself.
    #[serde(default)]
    pub written_by: BTreeMap<String, String>,
    /// Keys known to carry untrusted content.
    #[serde(default)]
    pub tainted_keys: BTreeSet<String>,
    /// The sending session read untrusted input: every key it hands off is tainted.
    #[serde(default)]
    pub session_tainted: bool,
}

/// The outcome of a handoff that the inventory allows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandoffPlan {
    pub from: String,
    pub to: String,
    /// Entries that travel, sorted by key.
    pub kept: Vec<ContextEntry>,
    /// Keys the allow-list does not name: they stay behind.
    pub dropped: Vec<String>,
    pub ttl_secs: u64,
    /// Some kept entry is tainted: the receiving session starts tainted.
    pub tainted: bool,
    /// The handoff's `max_depth`, if it declares one.
    pub max_depth: Option<u32>,
}

/// Applies the inventory's declaration of `from → to` to a context payload.
///
/// A declared handoff without an allow-list lets no key travel (fail closed); one without a
/// TTL gets [`DEFAULT_TTL`].
pub fn plan_handoff(
    inv: &Inventory,
    from: &str,
    to: &str,
    payload: &serde_json::Map<String, Value>,
    provenance: &Provenance,
    now_unix: i64,
) -> Result<HandoffPlan, HandoffError> {
    for a in [from, to] {
        if !inv.agents.contains_key(a) {
            return Err(HandoffError::UnknownAgent(a.to_string()));
        }
    }
    let decl = inv
        .handoff(from, to)
        .ok_or_else(|| HandoffError::Undeclared {
            from: from.to_string(),
            to: to.to_string(),
        })?;
    let ttl = match &decl.ttl {
        Some(t) => warden_core::parse_duration(&t.value)
            .map_err(|_| HandoffError::InvalidTtl(t.value.clone()))?,
        None => DEFAULT_TTL,
    };
    let allowed: BTreeSet<&str> = decl
        .context
        .as_ref()
        .map(|keys| keys.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let expires_at = now_unix.saturating_add(ttl.as_secs() as i64);
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for (key, value) in payload {
        if !allowed.contains(key.as_str()) {
            dropped.push(key.clone());
            continue;
        }
        kept.push(ContextEntry {
            key: key.clone(),
            value: value.clone(),
            written_by: provenance
                .written_by
                .get(key)
                .cloned()
                .unwrap_or_else(|| from.to_string()),
            tainted: provenance.session_tainted || provenance.tainted_keys.contains(key),
            created_at: now_unix,
            expires_at,
        });
    }
    kept.sort_by(|a, b| a.key.cmp(&b.key));
    dropped.sort();
    let tainted = kept.iter().any(|e| e.tainted);
    Ok(HandoffPlan {
        from: from.to_string(),
        to: to.to_string(),
        kept,
        dropped,
        ttl_secs: ttl.as_secs(),
        tainted,
        max_depth: decl.max_depth,
    })
}

/// Removes expired entries, returning the keys purged (for the audit record).
pub fn purge_expired(entries: &mut Vec<ContextEntry>, now_unix: i64) -> Vec<String> {
    let mut purged = Vec::new();
    entries.retain(|e| {
        if e.is_expired(now_unix) {
            purged.push(e.key.clone());
            false
        } else {
            true
        }
    });
    purged
}
