//! What the scanner (`warden-scan`, `--scan PATH`) adds to the graph.
//!
//! - **Secrets** become credential nodes `credential:scan:<file>:<line>` (property
//!   `scanned`), held (`HoldsCredential`, changeable: remove the secret) by every agent whose
//!   `code` directory contains the file. A scanned secret **authenticates as** an identity
//!   when that is known, by fingerprint only (the scanner's `sha256(rule_id \0 value)`; no
//!   value is stored or compared in the clear):
//!   - its fingerprint equals that of the value behind an inventory connector's credential
//!     reference (`${env:NAME}` read from the environment of this process, `${file:PATH}`
//!     read relative to the inventory root) → it authenticates as the identity each connector
//!     holding that reference runs as (property `same_secret_as`: the inventory credential);
//!   - it is an AWS access key id (`scan.secret.aws`) whose fingerprint equals that of an
//!     `AccessKeyId` in the IAM export (`AccessKeyMetadata` of a user, or a top-level
//!     `AccessKeyMetadata` list as `aws iam list-access-keys` prints it) → it authenticates
//!     as that IAM user.
//!
//!   Not linked: AWS secret access keys (the export has no hash of them), provider API keys
//!   (no identity model for the provider), secrets whose value is not reachable here.
//! - **MCP servers** found in client configs (`.mcp.json`, Claude Desktop, Cursor, VS Code,
//!   Windsurf) become connector nodes: the inventory connector they match (same URL; or same
//!   command and package, the first argument that is not a flag, or the same arguments when
//!   there is no such argument; several matches: the one named like the server, else the
//!   first by id), else a new node `connector:scan:<file>:<server>` (property `declared` =
//!   `false`, which the rule `graph.undeclared-connector` reports). The credentials the
//!   server's `env` and `headers` reference (`${env:NAME}`, `${NAME}`, `$NAME`,
//!   `${input:NAME}`, `${file:PATH}` under a credential-like key or `Authorization`) become
//!   `HoldsCredential` edges to `credential:env:NAME` (the same node an inventory reference
//!   to that variable has) and friends; literal secrets the scanner found inside the
//!   server's entry are held as their scanned credential nodes. Each agent whose `code`
//!   directory contains the config `Uses` the connector (traversable: the agent runs the
//!   server with the server's credentials and identity, outside the gateway's per-tool
//!   policy; changeable: remove the entry).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use warden_core::Inventory;
use warden_core::check::looks_like_credential_key;

use crate::graph::{EdgeKind, FxMap, GraphBuilder, NodeKind};

/// A secret the scanner found in a file: becomes a credential node.
#[derive(Debug, Clone)]
pub struct ScannedCredential {
    /// The file, as the scanner reported it (relative to the scanned root).
    pub file: PathBuf,
    pub line: u64,
    /// The scanner's rule (`scan.secret.aws`, …).
    pub rule_id: String,
    /// The scanner's fingerprint of the value (`sha256(rule_id \0 value)`, hex), when known.
    pub fingerprint: Option<String>,
    /// The identity it authenticates as, when the caller knows it (inventory identity id).
    pub identity: Option<String>,
}

/// One MCP server entry of a client configuration found by the scanner.
#[derive(Debug, Clone, Default)]
pub struct ScannedServer {
    /// The config file, relative to the scanned root.
    pub file: PathBuf,
    /// The line of the server's key in the file.
    pub line: u64,
    pub name: String,
    /// `claude-code`, `claude-desktop`, `cursor`, `vscode`, `windsurf`.
    pub client: String,
    /// `stdio`, `http` or `sse`.
    pub transport: String,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub url: Option<String>,
    pub env: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

/// Everything `--scan` contributes.
pub struct ScanInput<'a> {
    /// The scanned root; scanner paths are relative to it.
    pub root: &'a Path,
    pub credentials: &'a [ScannedCredential],
    pub servers: &'a [ScannedServer],
    /// The scanner's fingerprint function (`warden_scan::secrets::fingerprint`): values the
    /// graph can see are hashed with it and compared to scanned fingerprints, never stored.
    pub fingerprint: &'a dyn Fn(&str, &str) -> String,
}

/// The agents whose `code` directory contains a scanned file.
struct CodeDirs {
    /// (agent node, code directory: canonical when it exists, else as joined)
    dirs: Vec<(u32, PathBuf, String)>,
}

impl CodeDirs {
    fn new(b: &mut GraphBuilder, inv: &Inventory) -> Self {
        let mut dirs = Vec::new();
        for a in inv.agents.values() {
            let Some(code) = &a.code else { continue };
            let dir = inv.root.join(code);
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            let ai = b.node(
                format!("agent:{}", a.id.value),
                NodeKind::Agent,
                &a.id.value,
            );
            dirs.push((ai, dir, code.trim_end_matches('/').to_string()));
        }
        CodeDirs { dirs }
    }

    /// Agents holding `rel` (relative to the scanned `root`).
    fn holders(&self, root: &Path, rel: &Path) -> Vec<u32> {
        let abs = root.join(rel);
        let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
        self.dirs
            .iter()
            .filter(|(_, dir, code)| abs.starts_with(dir) || rel.starts_with(code))
            .map(|(a, _, _)| *a)
            .collect()
    }
}

/// `file:line` of a scanned path as a source-table entry.
fn src_at(b: &mut GraphBuilder, root: &Path, rel: &Path, line: u64) -> u32 {
    let f = b.sources_mut().file(&root.join(rel).display().to_string());
    b.sources_mut()
        .loc(f, u32::try_from(line).unwrap_or(u32::MAX), 0)
}

/// Adds the scanner's secrets and MCP servers (see the module docs). `iam`: the loaded
/// export and its principals' nodes (from [`crate::iam::add_iam`]).
pub fn add_scan(
    b: &mut GraphBuilder,
    inv: &Inventory,
    scan: &ScanInput<'_>,
    iam: Option<(&crate::iam::IamExport, &[u32])>,
) {
    let code = CodeDirs::new(b, inv);
    let root = scan.root;
    // Secrets.
    let mut cred_nodes: Vec<u32> = Vec::with_capacity(scan.credentials.len());
    for c in scan.credentials {
        let label = format!("{}:{}", c.file.display(), c.line);
        let ki = b.node(
            format!("credential:scan:{label}"),
            NodeKind::Credential,
            &label,
        );
        let s = src_at(b, root, &c.file, c.line);
        {
            let n = b.node_mut(ki);
            n.source = Some(s);
            n.attrs.props.insert("rule_id".into(), c.rule_id.clone());
            n.attrs.props.insert("scanned".into(), "true".into());
        }
        for a in code.holders(root, &c.file) {
            b.edge(a, ki, EdgeKind::HoldsCredential, s);
        }
        if let Some(ident) = &c.identity {
            let ii = b.node(format!("identity:{ident}"), NodeKind::Identity, ident);
            b.edge(ki, ii, EdgeKind::AuthenticatesAs, s);
        }
        cred_nodes.push(ki);
    }
    link_by_fingerprint(b, inv, scan, iam, &cred_nodes);
    // MCP servers.
    for (k, srv) in scan.servers.iter().enumerate() {
        let s = src_at(b, root, &srv.file, srv.line);
        let ci = match matching_connector(inv, srv) {
            Some((id, how)) => {
                let ci = b.node(format!("connector:{id}"), NodeKind::Connector, id);
                let seen = format!("{}:{}", srv.file.display(), srv.name);
                let n = b.node_mut(ci);
                let entry = n.attrs.props.entry("client_configs".into()).or_default();
                if !entry.split(',').any(|x| x == seen) {
                    if !entry.is_empty() {
                        entry.push(',');
                    }
                    entry.push_str(&seen);
                }
                n.attrs.props.insert("matched_by".into(), how.into());
                ci
            }
            None => {
                let id = format!("connector:scan:{}:{}", srv.file.display(), srv.name);
                let ci = b.node(id, NodeKind::Connector, &srv.name);
                let n = b.node_mut(ci);
                n.source = Some(s);
                let p = &mut n.attrs.props;
                p.insert("declared".into(), "false".into());
                p.insert("client".into(), srv.client.clone());
                p.insert("transport".into(), srv.transport.clone());
                p.insert("config".into(), srv.file.display().to_string());
                if let Some(c) = &srv.command {
                    let mut cmd = c.clone();
                    for a in &srv.args {
                        cmd.push(' ');
                        cmd.push_str(a);
                    }
                    p.insert("command".into(), cmd);
                }
                if let Some(u) = &srv.url {
                    p.insert("url".into(), u.clone());
                }
                ci
            }
        };
        // Referenced credentials.
        for (key, value) in srv.env.iter().chain(&srv.headers) {
            if !(looks_like_credential_key(key) || key.eq_ignore_ascii_case("authorization")) {
                continue;
            }
            for r in client_refs(value) {
                let ki = b.node(format!("credential:{r}"), NodeKind::Credential, &r);
                b.edge(ci, ki, EdgeKind::HoldsCredential, s);
            }
        }
        // Literal secrets the scanner found inside this server's entry.
        let end = block_end(scan.servers, k);
        for (c, &ki) in scan.credentials.iter().zip(&cred_nodes) {
            if c.file == srv.file && c.line >= srv.line && c.line < end {
                b.edge(ci, ki, EdgeKind::HoldsCredential, s);
            }
        }
        for a in code.holders(root, &srv.file) {
            b.edge(a, ci, EdgeKind::Uses, s);
        }
    }
}

/// The first line after server `k`'s entry: the next server's line in the same file.
fn block_end(servers: &[ScannedServer], k: usize) -> u64 {
    let me = &servers[k];
    servers
        .iter()
        .filter(|o| o.file == me.file && o.line > me.line)
        .map(|o| o.line)
        .min()
        .unwrap_or(u64::MAX)
}

/// `AuthenticatesAs` edges from scanned secrets whose fingerprint matches a value the graph
/// can see: inventory credential references and IAM access key ids.
fn link_by_fingerprint(
    b: &mut GraphBuilder,
    inv: &Inventory,
    scan: &ScanInput<'_>,
    iam: Option<(&crate::iam::IamExport, &[u32])>,
    cred_nodes: &[u32],
) {
    let rules: BTreeSet<&str> = scan
        .credentials
        .iter()
        .filter(|c| c.fingerprint.is_some())
        .map(|c| c.rule_id.as_str())
        .collect();
    if rules.is_empty() {
        return;
    }
    // Inventory credential reference → the identities its connectors run as.
    let mut refs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in inv.connectors.values() {
        let mut values: Vec<&String> = Vec::new();
        if let Some(m) = &c.mcp {
            values.extend(m.env.values().chain(m.headers.values()));
        }
        if let Some(h) = &c.http {
            values.extend(h.headers.values());
        }
        for v in values {
            for r in crate::build::secret_refs(v) {
                let ids = refs.entry(r).or_default();
                if let Some(ra) = &c.runs_as {
                    ids.insert(ra.value.clone());
                }
            }
        }
    }
    // Fingerprint → what it authenticates as.
    enum Target {
        Inventory(String),
        Iam(u32),
    }
    let mut known: FxMap<String, Vec<Target>> = FxMap::default();
    for r in refs.keys() {
        // The value lives only in this block; only its fingerprints are kept.
        let value = if let Some(name) = r.strip_prefix("env:") {
            std::env::var(name).ok()
        } else if let Some(p) = r.strip_prefix("file:") {
            std::fs::read_to_string(inv.root.join(p))
                .ok()
                .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
        } else {
            None
        };
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        for rule in &rules {
            known
                .entry((scan.fingerprint)(rule, &value))
                .or_default()
                .push(Target::Inventory(r.clone()));
        }
    }
    if let Some((export, nodes)) = iam {
        for (p, &node) in export.principals.iter().zip(nodes) {
            for key in &p.access_keys {
                for rule in rules.iter().filter(|r| r.starts_with("scan.secret.aws")) {
                    known
                        .entry((scan.fingerprint)(rule, key))
                        .or_default()
                        .push(Target::Iam(node));
                }
            }
        }
    }
    for (c, &ki) in scan.credentials.iter().zip(cred_nodes) {
        let Some(targets) = c.fingerprint.as_ref().and_then(|f| known.get(f)) else {
            continue;
        };
        let s = src_at(b, scan.root, &c.file, c.line);
        for t in targets {
            match t {
                Target::Inventory(r) => {
                    b.node_mut(ki)
                        .attrs
                        .props
                        .insert("same_secret_as".into(), format!("credential:{r}"));
                    for ident in refs.get(r).into_iter().flatten() {
                        let ii = b.node(format!("identity:{ident}"), NodeKind::Identity, ident);
                        b.edge(ki, ii, EdgeKind::AuthenticatesAs, s);
                    }
                }
                Target::Iam(node) => {
                    b.edge(ki, *node, EdgeKind::AuthenticatesAs, s);
                }
            }
        }
    }
}

/// The inventory connector a scanned server is, and how it matched (`url`, `package`,
/// `command`).
fn matching_connector<'i>(
    inv: &'i Inventory,
    srv: &ScannedServer,
) -> Option<(&'i str, &'static str)> {
    let norm = |u: &str| u.trim().trim_end_matches('/').to_ascii_lowercase();
    let base = |c: &str| {
        Path::new(c)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(c)
            .to_string()
    };
    let package = |args: &[String]| args.iter().find(|a| !a.starts_with('-')).cloned();
    let mut found: Vec<(&str, &'static str)> = Vec::new();
    for c in inv.connectors.values() {
        let Some(m) = &c.mcp else { continue };
        let how = match (&srv.url, &m.url, &srv.command, &m.command) {
            (Some(a), Some(b), _, _) if norm(a) == norm(b) => Some("url"),
            (_, _, Some(a), Some(b)) if base(a) == base(b) => {
                match (package(&srv.args), package(&m.args)) {
                    (Some(x), Some(y)) if x == y => Some("package"),
                    (None, None) if srv.args == m.args => Some("command"),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(h) = how {
            found.push((c.id.value.as_str(), h));
        }
    }
    found
        .iter()
        .find(|(id, _)| *id == srv.name)
        .or(found.first())
        .copied()
}

/// Credential references in a client-config value: `${env:NAME}`, `${NAME}`, `$NAME`,
/// `${input:NAME}` (VS Code prompts), `${file:PATH}` → `env:NAME`, `input:NAME`, `file:PATH`.
pub fn client_refs(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'{') {
            let Some(end) = v[i + 2..].find('}') else {
                break;
            };
            let inner = &v[i + 2..i + 2 + end];
            if let Some(n) = inner.strip_prefix("env:") {
                out.push(format!("env:{n}"));
            } else if let Some(f) = inner.strip_prefix("file:") {
                out.push(format!("file:{f}"));
            } else if let Some(n) = inner.strip_prefix("input:") {
                out.push(format!("input:{n}"));
            } else if !inner.is_empty()
                && inner
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_')
            {
                out.push(format!("env:{inner}"));
            }
            i += 2 + end + 1;
        } else {
            let name: String = v[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(format!("env:{name}"));
            }
            i += 1 + name.len();
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_config_references() {
        assert_eq!(
            client_refs("Bearer ${GITHUB_TOKEN}"),
            vec!["env:GITHUB_TOKEN"]
        );
        assert_eq!(client_refs("${env:A} $B"), vec!["env:A", "env:B"]);
        assert_eq!(client_refs("${input:api-key}"), vec!["input:api-key"]);
        assert_eq!(client_refs("${file:secrets/x}"), vec!["file:secrets/x"]);
        assert!(client_refs("ghp_literal").is_empty());
        assert!(client_refs("$").is_empty());
    }
}
