//! Delegation tokens: who started a task, which agents it passed through, and what the
//! current holder may still do.
//!
//! A token is a [biscuit](https://www.biscuitsec.org/): an ed25519-signed chain of blocks.
//!
//! - The **authority block** (signed with Warden's root key) names the task, the human at the
//!   root, the first agent, the maximum chain depth, an expiry, and a check that restricts
//!   tools to the first agent's entitlements.
//! - Each **handoff appends a block** (no root key needed: attenuation works offline with the
//!   public key) naming the next agent and adding its own tool check and expiry. Biscuit
//!   evaluates the checks of every block, so a tool is allowed only if *every* agent on the
//!   chain is entitled to it, and the earliest expiry wins: a handoff can narrow authority,
//!   never widen it. Blocks cannot be removed or altered without breaking the signatures.
//!
//! [`verify`] checks the signatures, every block's checks for the requested tool at the
//! current time, the depth limit from the (trusted) authority block, that the chain is
//! consistent (each hop names the previous holder), and that the presenter is the last
//! holder. Whether each hop is a *declared* handoff is the caller's check (it has the
//! inventory): see [`DelegationClaims::hops`].

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use biscuit_auth::builder::{self, Algorithm, Term};
use biscuit_auth::{
    AuthorizerBuilder, AuthorizerLimits, Biscuit, BlockBuilder, KeyPair, PrivateKey, PublicKey,
};
use serde::{Deserialize, Serialize};

use crate::HandoffError;

/// Warden's delegation signing key.
pub struct DelegationKeys {
    keypair: KeyPair,
}

impl DelegationKeys {
    pub fn generate() -> Self {
        DelegationKeys {
            keypair: KeyPair::new(),
        }
    }

    /// Restores a key from [`DelegationKeys::private_hex`].
    pub fn from_private_hex(hex_key: &str) -> Result<Self, HandoffError> {
        let pk = PrivateKey::from_bytes_hex(hex_key, Algorithm::Ed25519)
            .map_err(|e| HandoffError::InvalidToken(format!("bad private key: {e}")))?;
        Ok(DelegationKeys {
            keypair: KeyPair::from(&pk),
        })
    }

    /// The private key, hex-encoded, for the store's secret table. Never log it.
    pub fn private_hex(&self) -> String {
        self.keypair.private().to_bytes_hex()
    }

    /// The public key: enough to verify and attenuate tokens offline.
    pub fn public_key(&self) -> PublicKey {
        self.keypair.public()
    }

    pub fn public_hex(&self) -> String {
        self.keypair.public().to_bytes_hex()
    }
}

/// Parses a public key written by [`DelegationKeys::public_hex`].
pub fn public_key_from_hex(hex_key: &str) -> Result<PublicKey, HandoffError> {
    PublicKey::from_bytes_hex(hex_key, Algorithm::Ed25519)
        .map_err(|e| HandoffError::InvalidToken(format!("bad public key: {e}")))
}

/// One hop of a chain, as recorded in its block's context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// 0 for the first agent (acting for the root human).
    pub depth: u32,
    pub agent: String,
    /// The previous holder; `None` for the first agent.
    pub from: Option<String>,
    /// Unix seconds of this block's expiry check, as its writer stated it. Informational:
    /// [`verify_until`] re-checks it against the signed checks before relying on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationClaims {
    pub task_id: String,
    /// The human who started the task.
    pub root_human: String,
    /// Every agent on the chain, first to current holder.
    pub chain: Vec<String>,
    pub hops: Vec<Hop>,
    /// Number of handoffs (chain length − 1).
    pub depth: u32,
    pub max_depth: u32,
    /// The revocation id (hex) of every block, authority first: a token derived from
    /// another carries all of its ids, so revoking one id ends that token and everything
    /// handed on from it.
    #[serde(default)]
    pub revocation_ids: Vec<String>,
}

/// The revocation id (hex) of the token's last block: the id that ends this token and
/// every token later derived from it.
pub fn own_revocation_id(token_b64: &str, public_key: &PublicKey) -> Result<String, HandoffError> {
    let token = Biscuit::from_base64(token_b64, *public_key).map_err(bad)?;
    token
        .revocation_identifiers()
        .last()
        .map(hex::encode)
        .ok_or_else(|| bad("token has no blocks"))
}

fn tool_set(tools: &BTreeSet<String>) -> Term {
    builder::set(tools.iter().map(|t| builder::string(t)).collect())
}

fn params(pairs: Vec<(&str, Term)>) -> HashMap<String, Term> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn bad(e: impl std::fmt::Display) -> HandoffError {
    HandoffError::InvalidToken(e.to_string())
}

/// Issues the first token of a task: `root_human` asked `agent` to do something.
pub fn issue(
    keys: &DelegationKeys,
    task_id: &str,
    root_human: &str,
    agent: &str,
    entitled: &BTreeSet<String>,
    expires_at: SystemTime,
    max_depth: u32,
) -> Result<String, HandoffError> {
    let hop = Hop {
        depth: 0,
        agent: agent.to_string(),
        from: None,
        expires_at: Some(unix_secs(expires_at)),
    };
    let token = Biscuit::builder()
        .code_with_params(
            r#"
            task({task});
            root_human({human});
            max_depth({max});
            check if tool($t), {tools}.contains($t);
            check if time($time), $time <= {exp};
            "#,
            params(vec![
                ("task", builder::string(task_id)),
                ("human", builder::string(root_human)),
                ("max", builder::int(max_depth as i64)),
                ("tools", tool_set(entitled)),
                ("exp", builder::date(&expires_at)),
            ]),
            HashMap::new(),
        )
        .map_err(bad)?
        .context(serde_json::to_string(&hop).map_err(bad)?)
        .build(&keys.keypair)
        .map_err(bad)?;
    token.to_base64().map_err(bad)
}

/// Appends a handoff `from → to` to a token. Needs only the public key: any holder can
/// narrow a token offline, nobody can widen one.
pub fn attenuate(
    token_b64: &str,
    public_key: &PublicKey,
    from: &str,
    to: &str,
    to_entitled: &BTreeSet<String>,
    expires_at: SystemTime,
) -> Result<String, HandoffError> {
    let token = Biscuit::from_base64(token_b64, *public_key).map_err(bad)?;
    let hops = hops_of(&token)?;
    let last = hops.last().ok_or_else(|| bad("token has no hops"))?;
    if last.agent != from {
        return Err(HandoffError::WrongHolder {
            holder: last.agent.clone(),
            presenter: from.to_string(),
        });
    }
    let hop = Hop {
        depth: last.depth + 1,
        agent: to.to_string(),
        from: Some(from.to_string()),
        expires_at: Some(unix_secs(expires_at)),
    };
    let block = BlockBuilder::new()
        .code_with_params(
            r#"
            check if tool($t), {tools}.contains($t);
            check if time($time), $time <= {exp};
            "#,
            params(vec![
                ("tools", tool_set(to_entitled)),
                ("exp", builder::date(&expires_at)),
            ]),
            HashMap::new(),
        )
        .map_err(bad)?
        .context(serde_json::to_string(&hop).map_err(bad)?);
    token.append(block).map_err(bad)?.to_base64().map_err(bad)
}

fn hops_of(token: &Biscuit) -> Result<Vec<Hop>, HandoffError> {
    let mut hops = Vec::new();
    for (i, ctx) in token.context().into_iter().enumerate() {
        let ctx = ctx.ok_or_else(|| bad(format!("block {i} has no hop record")))?;
        let hop: Hop = serde_json::from_str(&ctx).map_err(|e| bad(format!("block {i}: {e}")))?;
        let expected_from = hops.last().map(|h: &Hop| h.agent.clone());
        if hop.depth != i as u32 || hop.from != expected_from {
            return Err(bad(format!("block {i} does not continue the chain")));
        }
        hops.push(hop);
    }
    Ok(hops)
}

/// Datalog limits of one verification. Biscuit's default time budget (1 ms) is exceeded by
/// an unoptimised build on a busy machine and reads as an invalid token; the checks here are
/// a handful of facts, so facts and iterations stay small and only the time is generous.
const VERIFY_LIMITS: AuthorizerLimits = AuthorizerLimits {
    max_facts: 1000,
    max_iterations: 100,
    max_time: Duration::from_millis(250),
};

/// Verifies that `presenter` may call `tool` now under this token.
pub fn verify(
    token_b64: &str,
    public_key: &PublicKey,
    presenter: &str,
    tool: &str,
    now: SystemTime,
) -> Result<DelegationClaims, HandoffError> {
    verify_inner(token_b64, public_key, presenter, tool, now, false).map(|(c, _)| c)
}

/// [`verify`], plus how long the answer holds: `Some(t)` (Unix seconds) when the same call
/// is allowed at every instant up to and including second `t`. `t` is the earliest expiry
/// the hops state, *confirmed* by authorising the call again at `t` (the expiry checks are
/// monotone in time, so passing now and at `t` means passing in between); a hop that states
/// no expiry, or a later one than its signed check, gives `None`. For verification caches.
pub fn verify_until(
    token_b64: &str,
    public_key: &PublicKey,
    presenter: &str,
    tool: &str,
    now: SystemTime,
) -> Result<(DelegationClaims, Option<i64>), HandoffError> {
    verify_inner(token_b64, public_key, presenter, tool, now, true)
}

fn authorizer_at(
    token: &Biscuit,
    tool: &str,
    time: SystemTime,
) -> Result<biscuit_auth::Authorizer, HandoffError> {
    AuthorizerBuilder::new()
        .code_with_params(
            "tool({tool}); time({now}); allow if true;",
            params(vec![
                ("tool", builder::string(tool)),
                ("now", builder::date(&time)),
            ]),
            HashMap::new(),
        )
        .map_err(bad)?
        .set_limits(VERIFY_LIMITS)
        .build(token)
        .map_err(bad)
}

fn verify_inner(
    token_b64: &str,
    public_key: &PublicKey,
    presenter: &str,
    tool: &str,
    now: SystemTime,
    until: bool,
) -> Result<(DelegationClaims, Option<i64>), HandoffError> {
    let token = Biscuit::from_base64(token_b64, *public_key).map_err(bad)?;
    let hops = hops_of(&token)?;
    let holder = hops.last().ok_or_else(|| bad("token has no hops"))?;
    if holder.agent != presenter {
        return Err(HandoffError::WrongHolder {
            holder: holder.agent.clone(),
            presenter: presenter.to_string(),
        });
    }
    let mut authorizer = authorizer_at(&token, tool, now)?;
    // Authority-block facts are signed by the root key: trust them.
    let (task_id,): (String,) = query_one(&mut authorizer, "q($x) <- task($x)")?;
    let (root_human,): (String,) = query_one(&mut authorizer, "q($x) <- root_human($x)")?;
    let (max_depth,): (i64,) = query_one(&mut authorizer, "q($x) <- max_depth($x)")?;
    let depth = holder.depth;
    if depth as i64 > max_depth {
        return Err(HandoffError::TooDeep {
            depth,
            max: max_depth as u32,
        });
    }
    if let Err(e) = authorizer.authorize() {
        return Err(classify_failure(tool, e));
    }
    let mut holds_until = None;
    if until {
        let stated: Option<Vec<i64>> = hops.iter().map(|h| h.expires_at).collect();
        if let Some(t) = stated.and_then(|v| v.into_iter().min())
            && t >= unix_secs(now)
        {
            let at = UNIX_EPOCH + Duration::from_secs(t as u64);
            if authorizer_at(&token, tool, at)?.authorize().is_ok() {
                holds_until = Some(t);
            }
        }
    }
    Ok((
        DelegationClaims {
            task_id,
            root_human,
            chain: hops.iter().map(|h| h.agent.clone()).collect(),
            hops,
            depth,
            max_depth: max_depth as u32,
            revocation_ids: token
                .revocation_identifiers()
                .iter()
                .map(hex::encode)
                .collect(),
        },
        holds_until,
    ))
}

fn query_one<T>(authorizer: &mut biscuit_auth::Authorizer, rule: &str) -> Result<T, HandoffError>
where
    T: TryFrom<biscuit_auth::builder::Fact, Error = biscuit_auth::error::Token>,
{
    let mut rows: Vec<T> = authorizer.query(rule).map_err(bad)?;
    if rows.len() != 1 {
        return Err(bad(format!(
            "expected one answer to `{rule}`, got {}",
            rows.len()
        )));
    }
    Ok(rows.remove(0))
}

/// Tells an expired token from a tool outside the intersection, for a clear error.
fn classify_failure(tool: &str, e: biscuit_auth::error::Token) -> HandoffError {
    let text = format!("{e:?}");
    if text.contains("time(") {
        HandoffError::Expired
    } else if text.contains("tool(") {
        HandoffError::ToolNotDelegated {
            tool: tool.to_string(),
        }
    } else {
        HandoffError::InvalidToken(e.to_string())
    }
}

/// An expiry `ttl` from now.
pub fn expiry_in(ttl: Duration) -> SystemTime {
    SystemTime::now() + ttl
}

/// Unix seconds of a time, for stores and audit records.
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
