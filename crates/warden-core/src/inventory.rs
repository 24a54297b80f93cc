//! Loading an inventory directory into one indexed, cross-file view.
//!
//! Layout of an inventory directory:
//!
//! ```text
//! DIR/*.yaml, DIR/*.yml          manifests (any number; the inventory is their union)
//! DIR/inventory/**/*.y{a,}ml     more manifests, for larger organisations
//! DIR/policies/*.cedar           Cedar policies (validated by warden-policy)
//! DIR/tests/*.yaml               policy test cases (run by `warden policy test`)
//! ```
//!
//! Anything else under `DIR` (agent source code, MCP client configs) is not a manifest.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::CoreError;
use crate::finding::SourceLocation;
use crate::model::*;

/// An item together with the manifest file that declared it.
#[derive(Debug)]
pub struct Sourced<T> {
    /// Path relative to the inventory root (as given on the command line, joined).
    pub file: PathBuf,
    pub item: T,
}

impl<T> std::ops::Deref for Sourced<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.item
    }
}

impl<T> Sourced<T> {
    /// The location of a spanned value inside this item's file.
    pub fn loc<V>(&self, span: &Spanned<V>) -> SourceLocation {
        SourceLocation {
            file: self.file.clone(),
            line: span.referenced.line(),
            column: span.referenced.column(),
        }
    }
}

/// A handoff, normalised from either declaration form.
#[derive(Debug)]
pub struct HandoffDecl {
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    pub context: Option<Vec<String>>,
    pub ttl: Option<Spanned<String>>,
    pub max_depth: Option<u32>,
}

/// A Cedar policy file, kept as text for warden-policy to parse and validate.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    pub path: PathBuf,
    pub text: String,
}

/// A reference to one tool: `connector.tool`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ToolRef {
    pub connector: String,
    pub tool: String,
}

impl ToolRef {
    /// Splits `connector.tool` at the first dot (connector ids never contain dots).
    pub fn parse(s: &str) -> Option<ToolRef> {
        let (c, t) = s.split_once('.')?;
        if c.is_empty() || t.is_empty() {
            return None;
        }
        Some(ToolRef {
            connector: c.to_string(),
            tool: t.to_string(),
        })
    }

    /// The qualified name, also the tool's name at the gateway and its Cedar action id.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.connector, self.tool)
    }
}

impl std::fmt::Display for ToolRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.connector, self.tool)
    }
}

/// The declared world, indexed by id.
#[derive(Debug, Default)]
pub struct Inventory {
    pub root: PathBuf,
    pub manifest_files: Vec<PathBuf>,
    pub humans: BTreeMap<String, Sourced<Human>>,
    pub groups: BTreeMap<String, Sourced<Group>>,
    pub identities: BTreeMap<String, Sourced<Identity>>,
    pub agents: BTreeMap<String, Sourced<Agent>>,
    pub connectors: BTreeMap<String, Sourced<Connector>>,
    pub resources: BTreeMap<String, Sourced<Resource>>,
    pub approvals: Vec<Sourced<ApprovalRule>>,
    pub handoffs: Vec<Sourced<HandoffDecl>>,
    pub settings: Settings,
    pub policies: Vec<PolicyFile>,
}

/// Most bytes one manifest may have; beyond that it is not an inventory but an accident.
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

fn is_yaml(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, CoreError> {
    let rd = fs::read_dir(dir).map_err(|e| CoreError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| CoreError::io(dir, e))?;
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

fn collect_yaml_recursive(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CoreError> {
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            collect_yaml_recursive(&p, out)?;
        } else if is_yaml(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Lists the manifest files of an inventory directory in a stable order.
pub fn manifest_paths(root: &Path) -> Result<Vec<PathBuf>, CoreError> {
    if !root.is_dir() {
        return Err(CoreError::NotADirectory(root.to_path_buf()));
    }
    let mut files: Vec<PathBuf> = sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_file() && is_yaml(p))
        .collect();
    let sub = root.join("inventory");
    if sub.is_dir() {
        collect_yaml_recursive(&sub, &mut files)?;
    }
    Ok(files)
}

/// Parses one manifest's text; `file` is used in error messages only.
pub fn parse_manifest(file: &Path, text: &str) -> Result<Manifest, CoreError> {
    if text.trim().is_empty() {
        return Ok(Manifest::default());
    }
    serde_saphyr::from_str::<Manifest>(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        CoreError::Manifest {
            location: SourceLocation {
                file: file.to_path_buf(),
                line,
                column,
            },
            message: first_line_of_yaml_error(&e.to_string()),
            rendered: e
                .to_string()
                .replace("<input>", &file.display().to_string()),
        }
    })
}

/// serde-saphyr renders a message followed by a source snippet; keep the message.
fn first_line_of_yaml_error(rendered: &str) -> String {
    let msg = rendered.lines().next().unwrap_or(rendered).trim();
    let msg = msg.strip_prefix("error: ").unwrap_or(msg);
    // Messages read "line 5 column 5: unknown field ..."; the location is reported separately.
    match msg.split_once(": ") {
        Some((head, tail)) if head.starts_with("line ") => tail.to_string(),
        _ => msg.to_string(),
    }
}

impl Inventory {
    /// Loads and indexes every manifest and policy file under `root`.
    ///
    /// Fails on unreadable files, malformed YAML, unknown fields, type errors, invalid ids
    /// and duplicate ids: all of them make the inventory unusable. Governance gaps (an
    /// orphaned agent, a dangling entitlement) are not errors: [`crate::check`] reports them.
    pub fn load(root: &Path) -> Result<Inventory, CoreError> {
        let mut inv = Inventory {
            root: root.to_path_buf(),
            ..Default::default()
        };
        for path in manifest_paths(root)? {
            let meta = fs::metadata(&path).map_err(|e| CoreError::io(&path, e))?;
            if meta.len() > MAX_MANIFEST_BYTES {
                return Err(CoreError::TooLarge(path, meta.len()));
            }
            let text = fs::read_to_string(&path).map_err(|e| CoreError::io(&path, e))?;
            let manifest = parse_manifest(&path, &text)?;
            inv.add_manifest(&path, manifest)?;
            inv.manifest_files.push(path);
        }
        let pdir = root.join("policies");
        if pdir.is_dir() {
            for p in sorted_entries(&pdir)? {
                if p.extension().and_then(|e| e.to_str()) == Some("cedar") {
                    let text = fs::read_to_string(&p).map_err(|e| CoreError::io(&p, e))?;
                    inv.policies.push(PolicyFile { path: p, text });
                }
            }
        }
        Ok(inv)
    }

    /// Builds an inventory from manifest texts (for tests and generated organisations).
    pub fn from_manifests<'a>(
        docs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Inventory, CoreError> {
        let mut inv = Inventory::default();
        for (name, text) in docs {
            let path = PathBuf::from(name);
            let m = parse_manifest(&path, text)?;
            inv.add_manifest(&path, m)?;
            inv.manifest_files.push(path);
        }
        Ok(inv)
    }

    fn add_manifest(&mut self, file: &Path, m: Manifest) -> Result<(), CoreError> {
        let src = |file: &Path| file.to_path_buf();
        fn insert<T>(
            map: &mut BTreeMap<String, Sourced<T>>,
            kind: &'static str,
            file: &Path,
            id: &Spanned<String>,
            item: T,
        ) -> Result<(), CoreError> {
            validate_id(kind, file, id)?;
            if let Some(prev) = map.get(&id.value) {
                return Err(CoreError::Duplicate {
                    kind,
                    id: id.value.clone(),
                    location: SourceLocation {
                        file: file.to_path_buf(),
                        line: id.referenced.line(),
                        column: id.referenced.column(),
                    },
                    first: prev.file.clone(),
                });
            }
            map.insert(
                id.value.clone(),
                Sourced {
                    file: file.to_path_buf(),
                    item,
                },
            );
            Ok(())
        }
        for h in m.humans {
            let id = h.id.clone();
            insert(&mut self.humans, "human", file, &id, h)?;
        }
        for g in m.groups {
            let id = g.id.clone();
            insert(&mut self.groups, "group", file, &id, g)?;
        }
        for i in m.identities {
            let id = i.id.clone();
            insert(&mut self.identities, "identity", file, &id, i)?;
        }
        for mut a in m.agents {
            for h in std::mem::take(&mut a.handoffs) {
                self.handoffs.push(Sourced {
                    file: src(file),
                    item: HandoffDecl {
                        from: a.id.clone(),
                        to: h.to,
                        context: h.context,
                        ttl: h.ttl,
                        max_depth: h.max_depth,
                    },
                });
            }
            let id = a.id.clone();
            insert(&mut self.agents, "agent", file, &id, a)?;
        }
        for c in m.connectors {
            let id = c.id.clone();
            if id.value.contains('.') {
                return Err(CoreError::InvalidId {
                    kind: "connector",
                    id: id.value.clone(),
                    location: loc_of(file, &id),
                    why: "connector ids may not contain `.` (it separates connector and tool)",
                });
            }
            if c.mcp.is_some() && c.http.is_some() {
                return Err(CoreError::InvalidId {
                    kind: "connector",
                    id: id.value.clone(),
                    location: loc_of(file, &id),
                    why: "a connector is either `mcp` or `http`, not both",
                });
            }
            if let Some(mcp) = &c.mcp
                && mcp.command.is_some() == mcp.url.is_some()
            {
                return Err(CoreError::InvalidId {
                    kind: "connector",
                    id: id.value.clone(),
                    location: loc_of(file, &id),
                    why: "`mcp` needs exactly one of `command` (stdio) or `url` (Streamable HTTP)",
                });
            }
            insert(&mut self.connectors, "connector", file, &id, c)?;
        }
        for r in m.resources {
            let id = r.id.clone();
            insert(&mut self.resources, "resource", file, &id, r)?;
        }
        for a in m.approvals {
            validate_id("approval rule", file, &a.id)?;
            if let Some(prev) = self.approvals.iter().find(|p| p.id.value == a.id.value) {
                return Err(CoreError::Duplicate {
                    kind: "approval rule",
                    id: a.id.value.clone(),
                    location: loc_of(file, &a.id),
                    first: prev.file.clone(),
                });
            }
            self.approvals.push(Sourced {
                file: src(file),
                item: a,
            });
        }
        for h in m.handoffs {
            self.handoffs.push(Sourced {
                file: src(file),
                item: HandoffDecl {
                    from: h.from,
                    to: h.to,
                    context: h.context,
                    ttl: h.ttl,
                    max_depth: h.max_depth,
                },
            });
        }
        if let Some(s) = m.settings {
            self.settings = s;
        }
        Ok(())
    }

    /// Looks up `connector.tool`.
    pub fn tool(&self, r: &ToolRef) -> Option<(&Sourced<Connector>, &Tool)> {
        let c = self.connectors.get(&r.connector)?;
        let t = c.tools.get(&r.tool)?;
        Some((c, &t.value))
    }

    /// Every declared tool, in stable order.
    pub fn all_tools(&self) -> impl Iterator<Item = (ToolRef, &Sourced<Connector>, &Tool)> {
        self.connectors.values().flat_map(|c| {
            c.tools.iter().map(move |(name, t)| {
                (
                    ToolRef {
                        connector: c.id.value.clone(),
                        tool: name.clone(),
                    },
                    c,
                    &t.value,
                )
            })
        })
    }

    /// The tools an agent's `uses` entitles it to, with wildcards expanded.
    /// References to missing connectors or tools are skipped (`check` reports them).
    pub fn entitled_tools(&self, agent: &Agent) -> Vec<ToolRef> {
        let mut out = Vec::new();
        for u in &agent.uses {
            let Some((c, t)) = u.value.split_once('.') else {
                continue;
            };
            let Some(conn) = self.connectors.get(c) else {
                continue;
            };
            if t == "*" {
                for name in conn.tools.keys() {
                    out.push(ToolRef {
                        connector: c.to_string(),
                        tool: name.clone(),
                    });
                }
            } else if conn.tools.contains_key(t) {
                out.push(ToolRef {
                    connector: c.to_string(),
                    tool: t.to_string(),
                });
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The groups a human belongs to.
    pub fn groups_of(&self, human: &str) -> Vec<String> {
        self.humans
            .get(human)
            .map(|h| h.groups.iter().map(|g| g.value.clone()).collect())
            .unwrap_or_default()
    }

    /// The humans an approver reference (`group:X`, `human:Y`, bare group id) designates.
    pub fn approver_humans(&self, approver: &str) -> Vec<String> {
        match parse_approver(approver) {
            Approver::Human(h) => {
                if self.humans.contains_key(h) {
                    vec![h.to_string()]
                } else {
                    Vec::new()
                }
            }
            Approver::Group(g) => self
                .humans
                .values()
                .filter(|h| h.groups.iter().any(|x| x.value == g))
                .map(|h| h.id.value.clone())
                .collect(),
        }
    }

    /// Approval rules that cover a tool.
    pub fn approval_rules_for(&self, r: &ToolRef, tool: &Tool) -> Vec<&Sourced<ApprovalRule>> {
        self.approvals
            .iter()
            .filter(|a| approval_matches(&a.when, r, tool))
            .collect()
    }

    /// Handoffs sent by an agent.
    pub fn handoffs_from<'a>(
        &'a self,
        agent: &'a str,
    ) -> impl Iterator<Item = &'a Sourced<HandoffDecl>> {
        self.handoffs.iter().filter(move |h| h.from.value == agent)
    }

    /// A declared handoff between two agents, if any.
    pub fn handoff(&self, from: &str, to: &str) -> Option<&Sourced<HandoffDecl>> {
        self.handoffs
            .iter()
            .find(|h| h.from.value == from && h.to.value == to)
    }
}

/// An approver reference.
#[derive(Debug, PartialEq, Eq)]
pub enum Approver<'a> {
    Group(&'a str),
    Human(&'a str),
}

/// `group:X` and bare `X` name groups; `human:Y` names a person.
pub fn parse_approver(s: &str) -> Approver<'_> {
    if let Some(h) = s.strip_prefix("human:") {
        Approver::Human(h)
    } else {
        Approver::Group(s.strip_prefix("group:").unwrap_or(s))
    }
}

/// Whether an approval rule's `when` covers a tool.
pub fn approval_matches(when: &ApprovalMatch, r: &ToolRef, tool: &Tool) -> bool {
    let mut any_criterion = false;
    if !when.effects.is_empty() {
        any_criterion = true;
        if !when.effects.iter().any(|e| tool.effects.contains(e)) {
            return false;
        }
    }
    if !when.tools.is_empty() {
        any_criterion = true;
        let q = r.qualified();
        let wildcard = format!("{}.*", r.connector);
        if !when.tools.iter().any(|t| *t == q || *t == wildcard) {
            return false;
        }
    }
    if let Some(irr) = when.irreversible {
        any_criterion = true;
        if tool.irreversible != irr {
            return false;
        }
    }
    if !when.data.is_empty() {
        any_criterion = true;
        if !when.data.iter().any(|d| tool.data.contains(d)) {
            return false;
        }
    }
    any_criterion
}

fn loc_of(file: &Path, id: &Spanned<String>) -> SourceLocation {
    SourceLocation {
        file: file.to_path_buf(),
        line: id.referenced.line(),
        column: id.referenced.column(),
    }
}

/// Ids are what policies, URLs and audit records quote: keep them printable and unambiguous.
fn validate_id(kind: &'static str, file: &Path, id: &Spanned<String>) -> Result<(), CoreError> {
    let v = &id.value;
    let ok = !v.is_empty()
        && v.len() <= 200
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+:/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidId {
            kind,
            id: v.clone(),
            location: loc_of(file, id),
            why: "ids are 1–200 characters of letters, digits and - _ . @ + : /",
        })
    }
}
