//! AWS IAM import: `aws iam get-account-authorization-details` JSON.
//!
//! Users, groups and roles become identity (and group) nodes. A principal whose ARN equals an
//! inventory identity's `external_id` is that identity's node. From the `Allow` statements of
//! inline, attached managed and group policies (the default version of each managed policy)
//! and the roles' trust policies, the import derives the classic escalation edges:
//!
//! - `CanAssume`: `sts:AssumeRole` on the role and the role trusts the principal (by ARN, or
//!   the account root when the principal's own policy allows the call);
//! - `CanPassRole`: `iam:PassRole` on a role that a service trusts, together with the right to
//!   create that service's compute (`lambda:CreateFunction` + `lambda:InvokeFunction`,
//!   `ec2:RunInstances`, `glue:CreateDevEndpoint`, `cloudformation:CreateStack`, …);
//! - `CanUpdateTrust`: `iam:UpdateAssumeRolePolicy` on the role;
//! - `CanCreateAccessKey`: `iam:CreateAccessKey` / `iam:CreateLoginProfile` /
//!   `iam:UpdateLoginProfile` on another user.
//!
//! A principal is administrator-equivalent when it is allowed `*` or `iam:*` on `*`, has
//! `AdministratorAccess` attached, or can rewrite its own permissions (`iam:CreatePolicyVersion`,
//! `iam:Put*Policy`, `iam:Attach*Policy` on `*`). Deny statements, conditions, permission
//! boundaries and SCPs are not evaluated: the import over-approximates (documented).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::GraphError;
use crate::graph::{EdgeKind, GraphBuilder, NodeKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Group,
    Role,
}

/// One `Allow` statement, flattened.
#[derive(Debug, Clone, Default)]
pub struct Statement {
    pub actions: Vec<String>,
    pub not_action: bool,
    pub resources: Vec<String>,
    /// Trust policies: `Principal.AWS` and `Principal.Service`.
    pub aws_principals: Vec<String>,
    pub services: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub arn: String,
    pub name: String,
    pub kind: PrincipalKind,
    /// Allow statements from inline and attached policies (users: and their groups').
    pub allows: Vec<Statement>,
    /// Roles: trust policy allow statements.
    pub trust: Vec<Statement>,
    /// Users: the groups (names) they belong to.
    pub groups: Vec<String>,
    pub attached: Vec<String>,
    /// Users: access key ids (`AccessKeyMetadata`, when the export carries it). Identifiers,
    /// not secrets; used only to recognise a scanned key id (by fingerprint).
    pub access_keys: Vec<String>,
}

/// A parsed export.
#[derive(Debug, Clone, Default)]
pub struct IamExport {
    pub principals: Vec<Principal>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Percent-decoding for policy documents exported URL-encoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn document(v: &Value) -> Option<Value> {
    match v {
        Value::Object(_) => Some(v.clone()),
        Value::String(s) => serde_json::from_str(s)
            .ok()
            .or_else(|| serde_json::from_str(&percent_decode(s)).ok()),
        _ => None,
    }
}

fn allow_statements(doc: &Value) -> Vec<Statement> {
    let stmts = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => return Vec::new(),
    };
    stmts
        .iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .map(|s| {
            let (actions, not_action) = match s.get("Action") {
                Some(a) => (strings(Some(a)), false),
                None => (strings(s.get("NotAction")), true),
            };
            let (aws, svc) = match s.get("Principal") {
                Some(Value::String(p)) => (vec![p.clone()], Vec::new()),
                Some(p @ Value::Object(_)) => (strings(p.get("AWS")), strings(p.get("Service"))),
                _ => (Vec::new(), Vec::new()),
            };
            Statement {
                actions,
                not_action,
                resources: strings(s.get("Resource")),
                aws_principals: aws,
                services: svc,
            }
        })
        .collect()
}

fn inline(list: Option<&Value>) -> Vec<Statement> {
    let mut out = Vec::new();
    if let Some(Value::Array(a)) = list {
        for p in a {
            if let Some(d) = p.get("PolicyDocument").and_then(document) {
                out.extend(allow_statements(&d));
            }
        }
    }
    out
}

fn attached_arns(v: &Value) -> Vec<String> {
    match v.get("AttachedManagedPolicies") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|p| {
                p.get("PolicyArn")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl IamExport {
    pub fn load(path: &Path) -> Result<IamExport, GraphError> {
        let text = std::fs::read_to_string(path).map_err(|e| GraphError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::parse(&text).map_err(|message| GraphError::Iam {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<IamExport, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let obj = v.as_object().ok_or("the top level is not an object")?;
        let known = [
            "UserDetailList",
            "GroupDetailList",
            "RoleDetailList",
            "Policies",
        ];
        if !known.iter().any(|k| obj.contains_key(*k)) {
            return Err(format!("none of the keys {} is present", known.join(", ")));
        }
        // Managed policies: default version document.
        let mut managed: HashMap<String, Vec<Statement>> = HashMap::new();
        if let Some(Value::Array(ps)) = v.get("Policies") {
            for p in ps {
                let Some(arn) = p.get("Arn").and_then(Value::as_str) else {
                    continue;
                };
                let mut st = Vec::new();
                if let Some(Value::Array(vs)) = p.get("PolicyVersionList") {
                    for ver in vs {
                        if ver.get("IsDefaultVersion").and_then(Value::as_bool) == Some(true)
                            && let Some(d) = ver.get("Document").and_then(document)
                        {
                            st.extend(allow_statements(&d));
                        }
                    }
                }
                managed.insert(arn.to_string(), st);
            }
        }
        let resolve = |arns: &[String]| -> Vec<Statement> {
            let mut out = Vec::new();
            for a in arns {
                if let Some(s) = managed.get(a) {
                    out.extend(s.iter().cloned());
                } else if a.ends_with(":policy/AdministratorAccess") {
                    out.push(Statement {
                        actions: vec!["*".into()],
                        resources: vec!["*".into()],
                        ..Default::default()
                    });
                }
            }
            out
        };
        let mut principals = Vec::new();
        let mut groups: HashMap<String, Vec<Statement>> = HashMap::new();
        if let Some(Value::Array(gs)) = v.get("GroupDetailList") {
            for g in gs {
                let (Some(arn), Some(name)) = (
                    g.get("Arn").and_then(Value::as_str),
                    g.get("GroupName").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let attached = attached_arns(g);
                let mut allows = inline(g.get("GroupPolicyList"));
                allows.extend(resolve(&attached));
                groups.insert(name.to_string(), allows.clone());
                principals.push(Principal {
                    arn: arn.into(),
                    name: name.into(),
                    kind: PrincipalKind::Group,
                    allows,
                    trust: Vec::new(),
                    groups: Vec::new(),
                    attached,
                    access_keys: Vec::new(),
                });
            }
        }
        if let Some(Value::Array(us)) = v.get("UserDetailList") {
            for u in us {
                let (Some(arn), Some(name)) = (
                    u.get("Arn").and_then(Value::as_str),
                    u.get("UserName").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let attached = attached_arns(u);
                let member = strings(u.get("GroupList"));
                let mut allows = inline(u.get("UserPolicyList"));
                allows.extend(resolve(&attached));
                for g in &member {
                    if let Some(s) = groups.get(g) {
                        allows.extend(s.iter().cloned());
                    }
                }
                let access_keys = key_ids(u.get("AccessKeyMetadata"));
                principals.push(Principal {
                    arn: arn.into(),
                    name: name.into(),
                    kind: PrincipalKind::User,
                    allows,
                    trust: Vec::new(),
                    groups: member,
                    attached,
                    access_keys,
                });
            }
        }
        if let Some(Value::Array(rs)) = v.get("RoleDetailList") {
            for r in rs {
                let (Some(arn), Some(name)) = (
                    r.get("Arn").and_then(Value::as_str),
                    r.get("RoleName").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let attached = attached_arns(r);
                let mut allows = inline(r.get("RolePolicyList"));
                allows.extend(resolve(&attached));
                let trust = r
                    .get("AssumeRolePolicyDocument")
                    .and_then(document)
                    .map(|d| allow_statements(&d))
                    .unwrap_or_default();
                principals.push(Principal {
                    arn: arn.into(),
                    name: name.into(),
                    kind: PrincipalKind::Role,
                    allows,
                    trust,
                    groups: Vec::new(),
                    attached,
                    access_keys: Vec::new(),
                });
            }
        }
        // `aws iam list-access-keys` output merged in at the top level: keys by user name.
        if let Some(Value::Array(keys)) = v.get("AccessKeyMetadata") {
            for k in keys {
                let (Some(user), Some(id)) = (
                    k.get("UserName").and_then(Value::as_str),
                    k.get("AccessKeyId").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if let Some(p) = principals
                    .iter_mut()
                    .find(|p| p.kind == PrincipalKind::User && p.name == user)
                    && !p.access_keys.iter().any(|x| x == id)
                {
                    p.access_keys.push(id.to_string());
                }
            }
        }
        Ok(IamExport { principals })
    }
}

/// `AccessKeyId`s of an `AccessKeyMetadata` list.
fn key_ids(v: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(keys)) = v else {
        return Vec::new();
    };
    keys.iter()
        .filter_map(|k| k.get("AccessKeyId").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// Case-insensitive glob with `*` and `?` (IAM action and resource patterns).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl Principal {
    /// Whether some Allow statement grants `action` on `resource`.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.allows.iter().any(|s| {
            let action_ok = if s.not_action {
                !s.actions.iter().any(|a| glob_match(a, action))
            } else {
                s.actions.iter().any(|a| glob_match(a, action))
            };
            action_ok && s.resources.iter().any(|r| glob_match(r, resource))
        })
    }

    fn account(&self) -> Option<&str> {
        self.arn.split(':').nth(4)
    }

    /// Why this principal is administrator-equivalent, if it is.
    pub fn admin_reason(&self) -> Option<String> {
        if self
            .attached
            .iter()
            .any(|a| a.ends_with(":policy/AdministratorAccess"))
        {
            return Some("AdministratorAccess attached".into());
        }
        if let Some(s) = self.allows.iter().find(|s| {
            !s.not_action
                && s.resources.iter().any(|r| r == "*")
                && s.actions
                    .iter()
                    .any(|a| a == "*" || a.eq_ignore_ascii_case("iam:*"))
        }) {
            return Some(format!("allowed `{}` on `*`", s.actions.join(",")));
        }
        let self_edit: &[&str] = match self.kind {
            PrincipalKind::User => &[
                "iam:CreatePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:AttachUserPolicy",
                "iam:PutUserPolicy",
                "iam:AddUserToGroup",
            ],
            PrincipalKind::Role => &[
                "iam:CreatePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:AttachRolePolicy",
                "iam:PutRolePolicy",
            ],
            PrincipalKind::Group => &[
                "iam:CreatePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:AttachGroupPolicy",
                "iam:PutGroupPolicy",
            ],
        };
        for act in self_edit {
            let target = if act.contains("PolicyVersion") {
                "arn:aws:iam::000000000000:policy/any".to_string()
            } else {
                self.arn.clone()
            };
            if self.allows(act, &target) {
                return Some(format!("can rewrite its own permissions ({act})"));
            }
        }
        None
    }

    /// Whether this role's trust policy lets `p` assume it, and whether that needs `p`'s own
    /// policy to allow `sts:AssumeRole` (true for account-root trust).
    fn trusts(&self, p: &Principal) -> Option<bool> {
        let mut via_root = false;
        for s in &self.trust {
            if !s.actions.iter().any(|a| glob_match(a, "sts:AssumeRole")) {
                continue;
            }
            for a in &s.aws_principals {
                if a == &p.arn {
                    return Some(false);
                }
                let root = p
                    .account()
                    .map(|acct| a == "*" || a == acct || *a == format!("arn:aws:iam::{acct}:root"));
                if root == Some(true) {
                    via_root = true;
                }
            }
        }
        via_root.then_some(true)
    }

    fn trusted_services(&self) -> Vec<String> {
        self.trust
            .iter()
            .filter(|s| s.actions.iter().any(|a| glob_match(a, "sts:AssumeRole")))
            .flat_map(|s| s.services.iter().cloned())
            .collect()
    }
}

/// The permissions that let a principal run code as a role trusted by `service`.
fn compute_launch(p: &Principal, service: &str) -> Option<&'static str> {
    let any = |acts: &[&str]| acts.iter().all(|a| p.allows(a, "*"));
    let s = service.to_ascii_lowercase();
    if s.starts_with("lambda.")
        && any(&["lambda:CreateFunction"])
        && (p.allows("lambda:InvokeFunction", "*")
            || p.allows("lambda:CreateEventSourceMapping", "*"))
    {
        return Some("lambda:CreateFunction + invoke");
    }
    if s.starts_with("ec2.") && any(&["ec2:RunInstances"]) {
        return Some("ec2:RunInstances");
    }
    if s.starts_with("glue.") && any(&["glue:CreateDevEndpoint"]) {
        return Some("glue:CreateDevEndpoint");
    }
    if s.starts_with("cloudformation.") && any(&["cloudformation:CreateStack"]) {
        return Some("cloudformation:CreateStack");
    }
    if s.starts_with("ecs-tasks.") && any(&["ecs:RunTask"]) {
        return Some("ecs:RunTask");
    }
    if s.starts_with("codebuild.") && any(&["codebuild:CreateProject", "codebuild:StartBuild"]) {
        return Some("codebuild:CreateProject + StartBuild");
    }
    if s.starts_with("sagemaker.") && any(&["sagemaker:CreateNotebookInstance"]) {
        return Some("sagemaker:CreateNotebookInstance");
    }
    None
}

/// Adds the export's principals and escalation edges to `b`; `source` names the file.
/// Adds the export's principals and escalation edges; returns each principal's node (in
/// `export.principals` order).
pub fn add_iam(b: &mut GraphBuilder, export: &IamExport, source: &str) -> Vec<u32> {
    // Inventory identities by external id.
    let by_arn: HashMap<String, u32> = b
        .nodes()
        .iter()
        .enumerate()
        .filter(|(_, n)| n.kind == NodeKind::Identity)
        .filter_map(|(i, n)| {
            n.attrs
                .props
                .get("external_id")
                .map(|x| (x.clone(), i as u32))
        })
        .collect();
    let src = b.intern_source(source);
    let mut idx: Vec<u32> = Vec::with_capacity(export.principals.len());
    for p in &export.principals {
        let i = match by_arn.get(&p.arn) {
            Some(&i) => i,
            None => {
                let kind = if p.kind == PrincipalKind::Group {
                    NodeKind::Group
                } else {
                    NodeKind::Identity
                };
                b.node(format!("iam:{}", p.arn), kind, &p.name)
            }
        };
        let n = b.node_mut(i);
        n.attrs.props.insert("arn".into(), p.arn.clone());
        n.attrs.props.insert(
            "iam_kind".into(),
            match p.kind {
                PrincipalKind::User => "user",
                PrincipalKind::Group => "group",
                PrincipalKind::Role => "role",
            }
            .into(),
        );
        if n.source.is_none() {
            n.source = Some(src);
        }
        if p.kind != PrincipalKind::Group
            && let Some(why) = p.admin_reason()
        {
            n.attrs.admin = true;
            n.attrs.tier_zero = true;
            n.attrs.props.insert("admin_reason".into(), why);
        }
        idx.push(i);
    }
    let by_group: HashMap<&str, u32> = export
        .principals
        .iter()
        .zip(&idx)
        .filter(|(p, _)| p.kind == PrincipalKind::Group)
        .map(|(p, &i)| (p.name.as_str(), i))
        .collect();
    for (pi, p) in export.principals.iter().enumerate() {
        if p.kind == PrincipalKind::Group {
            continue;
        }
        let from = idx[pi];
        for g in &p.groups {
            if let Some(&gi) = by_group.get(g.as_str()) {
                b.edge(from, gi, EdgeKind::MemberOf, src);
            }
        }
        for (ti, t) in export.principals.iter().enumerate() {
            if ti == pi {
                continue;
            }
            let to = idx[ti];
            match t.kind {
                PrincipalKind::Role => {
                    match t.trusts(p) {
                        Some(false) => {
                            b.edge(from, to, EdgeKind::CanAssume, src);
                        }
                        Some(true) if p.allows("sts:AssumeRole", &t.arn) => {
                            b.edge(from, to, EdgeKind::CanAssume, src);
                        }
                        _ => {}
                    }
                    if p.allows("iam:PassRole", &t.arn) {
                        for s in t.trusted_services() {
                            if let Some(how) = compute_launch(p, &s) {
                                let e = b.edge(from, to, EdgeKind::CanPassRole, src);
                                let _ = e;
                                b.node_mut(to)
                                    .attrs
                                    .props
                                    .insert("passable_via".into(), format!("{s} ({how})"));
                                break;
                            }
                        }
                    }
                    if p.allows("iam:UpdateAssumeRolePolicy", &t.arn) {
                        b.edge(from, to, EdgeKind::CanUpdateTrust, src);
                    }
                }
                PrincipalKind::User => {
                    if [
                        "iam:CreateAccessKey",
                        "iam:CreateLoginProfile",
                        "iam:UpdateLoginProfile",
                    ]
                    .iter()
                    .any(|a| p.allows(a, &t.arn))
                    {
                        b.edge(from, to, EdgeKind::CanCreateAccessKey, src);
                    }
                }
                PrincipalKind::Group => {}
            }
        }
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_iam_patterns() {
        assert!(glob_match("iam:*", "iam:PassRole"));
        assert!(glob_match("IAM:passrole", "iam:PassRole"));
        assert!(glob_match(
            "arn:aws:iam::*:role/svc-*",
            "arn:aws:iam::1:role/svc-x"
        ));
        assert!(!glob_match(
            "arn:aws:iam::*:role/svc-*",
            "arn:aws:iam::1:user/svc-x"
        ));
        assert!(glob_match("s3:Get?bject", "s3:GetObject"));
        assert!(!glob_match("s3:Get", "s3:GetObject"));
    }

    #[test]
    fn percent_encoded_documents_parse() {
        let enc = "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        let d = document(&Value::String(enc.into())).expect("decodes");
        assert_eq!(allow_statements(&d).len(), 1);
    }
}
