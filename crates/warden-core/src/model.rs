//! The manifest schema: what one YAML file under an inventory directory may declare.
//!
//! Every struct denies unknown fields so that a typo (`ownr:`) is an error that names the
//! file, line and column instead of a silently ignored setting. Identifiers and references
//! are wrapped in [`Spanned`] so that semantic findings (an agent without an owner, a
//! dangling entitlement) can point at the line that declared them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
pub use serde_saphyr::Spanned;

/// One manifest file. All sections are optional; an inventory is the union of its files.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub humans: Vec<Human>,
    #[serde(default)]
    pub groups: Vec<Group>,
    #[serde(default)]
    pub identities: Vec<Identity>,
    #[serde(default)]
    pub agents: Vec<Agent>,
    #[serde(default)]
    pub connectors: Vec<Connector>,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default)]
    pub approvals: Vec<ApprovalRule>,
    /// Handoffs may be declared here (with `from`) or nested under an agent.
    #[serde(default)]
    pub handoffs: Vec<Handoff>,
    #[serde(default)]
    pub settings: Option<Settings>,
}

/// A person: an agent owner, an approver, a console user.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Human {
    pub id: Spanned<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    /// Webhook endpoints notified about approval requests this human may answer.
    #[serde(default)]
    pub webhooks: Vec<String>,
}

/// A named set of humans; approver groups are groups.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Webhook URLs that receive approval requests addressed to this group.
    #[serde(default)]
    pub webhooks: Vec<String>,
}

/// What an identity is in the system that grants it access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    ServiceAccount,
    Role,
    User,
    ApiKey,
}

/// A service account, cloud role or API credential an agent runs as.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub id: Spanned<String>,
    pub kind: IdentityKind,
    /// Cloud or system that issues it: `aws`, `gcp`, `azure`, `okta`, `internal`, …
    #[serde(default)]
    pub provider: Option<String>,
    /// The provider's own name for it (an ARN, an email, a client id).
    #[serde(default)]
    pub external_id: Option<String>,
    /// Resources this identity can reach directly (its entitlement scope).
    #[serde(default)]
    pub access: Vec<Spanned<String>>,
    /// Identities this one can assume or impersonate.
    #[serde(default)]
    pub can_assume: Vec<Spanned<String>>,
    /// Marks an administrator-equivalent identity (tier zero).
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub description: Option<String>,
}

/// An autonomous LLM-driven worker.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub id: Spanned<String>,
    /// The human accountable for it. Missing or unknown: an orphaned agent.
    #[serde(default)]
    pub owner: Option<Spanned<String>>,
    #[serde(default)]
    pub runs_as: Option<Spanned<String>>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub framework: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    /// Entitlements: `connector.tool`, or `connector.*` for every tool of a connector.
    #[serde(default)]
    pub uses: Vec<Spanned<String>>,
    #[serde(default)]
    pub handoffs: Vec<AgentHandoff>,
    /// Resources (memory stores, queues) this agent writes outside of tools.
    #[serde(default)]
    pub writes: Vec<Spanned<String>>,
    /// Resources this agent loads into its context at start (memory, RAG corpora).
    #[serde(default)]
    pub reads: Vec<Spanned<String>>,
    /// Where its source code lives, relative to the inventory directory (for `warden scan`).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub limits: Option<Limits>,
}

/// Rate and concurrency caps enforced by the gateway.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub calls_per_minute: Option<u32>,
    #[serde(default)]
    pub max_concurrency: Option<u32>,
}

/// A handoff nested under its sending agent.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentHandoff {
    pub to: Spanned<String>,
    /// Allow-list of context keys that may travel. Missing: unbounded context (a finding).
    #[serde(default)]
    pub context: Option<Vec<String>>,
    /// How long the handed-off context lives, e.g. `15m`. Missing: a finding.
    #[serde(default)]
    pub ttl: Option<Spanned<String>>,
    /// Maximum delegation depth below this handoff.
    #[serde(default)]
    pub max_depth: Option<u32>,
}

/// A handoff declared at top level.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    #[serde(default)]
    pub context: Option<Vec<String>>,
    #[serde(default)]
    pub ttl: Option<Spanned<String>>,
    #[serde(default)]
    pub max_depth: Option<u32>,
}

/// Something an agent reaches through the gateway.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Connector {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// An MCP server, over stdio (`command`) or Streamable HTTP (`url`).
    #[serde(default)]
    pub mcp: Option<McpTransport>,
    /// A plain HTTP API.
    #[serde(default)]
    pub http: Option<HttpApi>,
    /// The identity the connector itself uses upstream (its credentials).
    #[serde(default)]
    pub runs_as: Option<Spanned<String>>,
    /// Resources this connector's tools reach unless a tool says otherwise.
    #[serde(default)]
    pub resources: Vec<Spanned<String>>,
    /// Tool definitions are pinned automatically on first sight (otherwise `warden tools approve`).
    #[serde(default)]
    pub pin_on_first_sight: bool,
    /// What the gateway does with content from this connector that the detector flags.
    #[serde(default)]
    pub on_injection: Option<InjectionAction>,
    /// Redact secrets and PII in results before they reach the agent.
    #[serde(default)]
    pub redact_results: bool,
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Tools by their upstream name; each keeps the location of its definition.
    #[serde(default)]
    pub tools: BTreeMap<String, Spanned<Tool>>,
}

/// What the gateway does when a result from a connector looks like a prompt injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectionAction {
    Flag,
    Taint,
    Block,
}

/// How the gateway reaches an MCP server.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct McpTransport {
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment for the child. Values `${env:NAME}` or `${file:PATH}` are resolved at start.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// Headers sent upstream (credentials of the connector, never the agent's token).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A plain HTTP API connector.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpApi {
    pub base_url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// What a tool does when called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Read,
    Write,
    ExternalSend,
    CodeExec,
    Privileged,
}

impl Effect {
    pub const ALL: [Effect; 5] = [
        Effect::Read,
        Effect::Write,
        Effect::ExternalSend,
        Effect::CodeExec,
        Effect::Privileged,
    ];

    /// The name used in manifests, Cedar action groups and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Write => "write",
            Effect::ExternalSend => "external_send",
            Effect::CodeExec => "code_exec",
            Effect::Privileged => "privileged",
        }
    }

    /// Effects that change the world in a way a human should review.
    pub fn is_high_risk(self) -> bool {
        matches!(
            self,
            Effect::ExternalSend | Effect::CodeExec | Effect::Privileged
        )
    }
}

/// One callable of a connector.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub effects: Vec<Effect>,
    #[serde(default)]
    pub irreversible: bool,
    /// Returns content from outside the organisation (email, web pages, tickets).
    #[serde(default)]
    pub untrusted_output: bool,
    /// Data classes the tool touches (`customer-pii`, `payment`, …).
    #[serde(default)]
    pub data: Vec<String>,
    /// Resources the tool reaches (defaults to the connector's).
    #[serde(default)]
    pub resources: Vec<Spanned<String>>,
    /// Declared arguments: their types and ranges type `context.args` in Cedar.
    #[serde(default)]
    pub args: BTreeMap<String, ArgSpec>,
    #[serde(default)]
    pub limits: Option<Limits>,
}

/// The type of one declared tool argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgType {
    String,
    Integer,
    Number,
    Boolean,
}

/// A declared tool argument.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArgSpec {
    #[serde(rename = "type")]
    pub ty: ArgType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default, rename = "enum")]
    pub one_of: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// How sensitive a resource is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Deserialize, Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    Public,
    #[default]
    Internal,
    Confidential,
    Restricted,
}

impl Sensitivity {
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Public => "public",
            Sensitivity::Internal => "internal",
            Sensitivity::Confidential => "confidential",
            Sensitivity::Restricted => "restricted",
        }
    }
}

/// What kind of thing a resource is; drives the security graph's node kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    #[default]
    Datastore,
    Bucket,
    Queue,
    Api,
    Environment,
    /// Content from outside the organisation: an inbox, the web, a ticket queue, a RAG corpus.
    UntrustedSource,
    /// Somewhere data leaves the organisation: outbound email, a webhook, a chat.
    ExternalSink,
    /// Agent memory that persists across sessions.
    Memory,
    /// Warden's own configuration, policies or inventory.
    Governance,
}

/// A data store, bucket, queue, API or environment the tools reach.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub id: Spanned<String>,
    #[serde(default)]
    pub kind: ResourceKind,
    #[serde(default)]
    pub sensitivity: Sensitivity,
    #[serde(default)]
    pub trust_domain: Option<String>,
    /// Tier zero: payment, IAM admin, production data.
    #[serde(default)]
    pub tier_zero: bool,
    #[serde(default)]
    pub data: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Which calls need a human.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    pub id: Spanned<String>,
    pub when: ApprovalMatch,
    /// `group:ID` or `human:ID`; a bare id names a group.
    pub approvers: Vec<Spanned<String>>,
    #[serde(default = "yes")]
    pub separation_of_duties: bool,
    /// How long an approval holds, e.g. `30m`.
    #[serde(default)]
    pub expires: Option<Spanned<String>>,
    #[serde(default = "one")]
    pub approvals_required: u32,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}

/// What an approval rule covers. Within a field any entry matches; all given fields must match.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalMatch {
    #[serde(default)]
    pub effects: Vec<Effect>,
    /// `connector.tool` or `connector.*`.
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub irreversible: Option<bool>,
    #[serde(default)]
    pub data: Vec<String>,
}

/// Gateway-wide and posture settings.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// How long a `tools/call` waits for a human before returning the approval id, e.g. `60s`.
    #[serde(default)]
    pub approval_hold: Option<String>,
    /// Maximum delegation chain depth.
    #[serde(default)]
    pub max_delegation_depth: Option<u32>,
    /// Injection detector score threshold (0..1).
    #[serde(default)]
    pub injection_threshold: Option<f64>,
    /// Extra PII patterns (regexes) redacted from tool results.
    #[serde(default)]
    pub pii_patterns: BTreeMap<String, String>,
    #[serde(default)]
    pub bom_policy: Option<BomPolicy>,
}

/// What the AI bill of materials may contain.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BomPolicy {
    #[serde(default)]
    pub allowed_providers: Vec<String>,
    #[serde(default)]
    pub allowed_models: Vec<String>,
    /// `name` or `name@<range>` (semver requirement) that must not appear.
    #[serde(default)]
    pub denied_packages: Vec<String>,
}
