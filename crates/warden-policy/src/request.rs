//! What the engine is asked: a tool call ([`Request`]) or a handoff ([`HandoffRequest`]).

use serde::{Deserialize, Serialize};
use warden_core::ToolRef;

use crate::PolicyError;

/// What the gateway knows about the session a call belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// Untrusted content (a tool with `untrusted_output`, a flagged result) entered the session.
    pub tainted: bool,
    /// Where the taint came from (`connector.tool` names), for explanations.
    #[serde(default)]
    pub taint_sources: Vec<String>,
}

/// A point in time, UTC, with second precision. Cedar sees `context.time.{hour, weekday, epoch}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UtcTime {
    /// Seconds since the Unix epoch.
    pub epoch: i64,
}

impl UtcTime {
    pub fn from_unix(epoch: i64) -> UtcTime {
        UtcTime { epoch }
    }

    pub fn from_unix_ms(ms: i64) -> UtcTime {
        UtcTime {
            epoch: ms.div_euclid(1000),
        }
    }

    pub fn now() -> UtcTime {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UtcTime {
            epoch: d.as_secs() as i64,
        }
    }

    /// Parses RFC 3339 (`2026-11-23T15:00:00Z`, offsets allowed and converted to UTC).
    pub fn parse_rfc3339(s: &str) -> Result<UtcTime, PolicyError> {
        let t =
            time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
                .map_err(|_| PolicyError::Time(s.to_string()))?;
        Ok(UtcTime {
            epoch: t.unix_timestamp(),
        })
    }

    /// Hour of the day, 0–23, UTC.
    pub fn hour(self) -> i64 {
        self.epoch.rem_euclid(86_400) / 3_600
    }

    /// ISO weekday: 1 = Monday … 7 = Sunday.
    pub fn weekday(self) -> i64 {
        // 1970-01-01 was a Thursday (4).
        (self.epoch.div_euclid(86_400) + 3).rem_euclid(7) + 1
    }

    /// RFC 3339 rendering, for reports.
    pub fn to_rfc3339(self) -> String {
        time::OffsetDateTime::from_unix_timestamp(self.epoch)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| self.epoch.to_string())
    }
}

/// One tool call to decide.
#[derive(Debug, Clone)]
pub struct Request {
    /// The calling agent (Cedar principal `Agent::"id"`).
    pub agent: String,
    /// Agents between the root human and `agent`, outermost first (empty when a human
    /// started `agent` directly). Its length is `context.delegation.depth`.
    pub delegation_chain: Vec<String>,
    /// The human at the root of the delegation, when known (`context.delegation.root`, "" otherwise).
    pub root_human: Option<String>,
    /// The tool (Cedar action `Action::"connector.tool"`, resource `Tool::"connector.tool"`).
    pub tool: ToolRef,
    /// The call's arguments as sent (a JSON object). Declared arguments become
    /// `context.args`; undeclared ones are left out of Cedar and listed in
    /// [`crate::Decision::ignored_args`].
    pub args: serde_json::Value,
    pub session: SessionState,
    pub time: UtcTime,
}

impl Request {
    /// A request with no delegation, a clean session and the current time.
    pub fn new(agent: impl Into<String>, tool: ToolRef, args: serde_json::Value) -> Request {
        Request {
            agent: agent.into(),
            delegation_chain: Vec::new(),
            root_human: None,
            tool,
            args,
            session: SessionState::default(),
            time: UtcTime::now(),
        }
    }
}

/// Agent `from` hands a task to agent `to` (Cedar action `Action::"handoff"`, principal
/// `Agent::"from"`, resource `Agent::"to"`).
#[derive(Debug, Clone)]
pub struct HandoffRequest {
    pub from: String,
    pub to: String,
    /// Context keys the sender wants to pass (`context.keys`).
    pub context_keys: Vec<String>,
    pub delegation_chain: Vec<String>,
    pub root_human: Option<String>,
    pub session: SessionState,
    pub time: UtcTime,
}
