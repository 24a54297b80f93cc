//! `warden check`: governance gaps in a loaded inventory, as findings.
//!
//! | rule id | severity | what |
//! |---|---|---|
//! | `check.orphaned-agent` | high | agent without an owner, or whose owner is not a known human |
//! | `check.ungated-irreversible-action` | high/critical | irreversible, `external_send`, `code_exec` or `privileged` tool that no approval rule covers |
//! | `check.handoff-unbounded-context` | medium | handoff without an explicit context allow-list |
//! | `check.handoff-no-ttl` | medium | handoff without a TTL |
//! | `check.handoff-credential-in-context` | high | a handoff's allow-list names a credential-like key |
//! | `check.handoff-depth-over-limit` | medium | a handoff's `max_depth` exceeds `settings.max_delegation_depth` |
//! | `check.dangling-entitlement` | high | agent entitled to a connector or tool that does not exist |
//! | `check.dangling-reference` | medium | any other reference to an unknown entity |
//! | `check.sod-owner-approver` | medium/high | separation of duties required, but an approver owns a requesting agent |
//! | `check.approval-without-approvers` | high | approval rule naming no human who could approve |
//! | `check.invalid-duration` | high | a TTL or expiry that does not parse |
//! | `check.unpinned-mcp-server` | medium | stdio MCP server launched from a package without a pinned version |
//! | `check.insecure-transport` | medium | remote MCP server over plain HTTP |

use std::collections::BTreeSet;

use crate::finding::{Finding, Severity, sort_findings};
use crate::inventory::{Approver, Inventory, Sourced, ToolRef, parse_approver};
use crate::model::{Effect, McpTransport, Spanned};
use crate::parse_duration;

/// Runs every governance check and returns the findings, most severe first.
pub fn check(inv: &Inventory) -> Vec<Finding> {
    check_with(inv, &BTreeSet::new())
}

/// Like [`check`], where `policy_gated` holds the tools (`connector.tool`) that a Cedar policy
/// carrying an `@approval` annotation can gate: those count as covered by an approval rule.
pub fn check_with(inv: &Inventory, policy_gated: &BTreeSet<String>) -> Vec<Finding> {
    let mut out = Vec::new();
    orphaned_agents(inv, &mut out);
    ungated_actions(inv, policy_gated, &mut out);
    handoffs(inv, &mut out);
    dangling(inv, &mut out);
    approvals(inv, &mut out);
    connectors(inv, &mut out);
    sort_findings(&mut out);
    out
}

fn orphaned_agents(inv: &Inventory, out: &mut Vec<Finding>) {
    for a in inv.agents.values() {
        let id = &a.id.value;
        match &a.owner {
            None => out.push(
                Finding::new(
                    "check.orphaned-agent",
                    Severity::High,
                    format!("agent `{id}` has no owner"),
                )
                .at(Some(a.loc(&a.id)))
                .subject(id)
                .fix(
                    "add `owner:` naming the human accountable for this agent, or retire the agent",
                )
                .owasp(&["ASI10", "ASI03"]),
            ),
            Some(owner) if !inv.humans.contains_key(&owner.value) => out.push(
                Finding::new(
                    "check.orphaned-agent",
                    Severity::High,
                    format!(
                        "agent `{id}` is owned by `{}`, who is not a known human",
                        owner.value
                    ),
                )
                .at(Some(a.loc(owner)))
                .subject(id)
                .fix(
                    "declare the owner under `humans:` or transfer ownership to a current employee",
                )
                .owasp(&["ASI10", "ASI03"]),
            ),
            Some(_) => {}
        }
    }
}

fn risky_flags(tool: &crate::model::Tool) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if tool.irreversible {
        flags.push("irreversible");
    }
    for e in &tool.effects {
        if e.is_high_risk() {
            flags.push(e.as_str());
        }
    }
    flags
}

fn ungated_actions(inv: &Inventory, policy_gated: &BTreeSet<String>, out: &mut Vec<Finding>) {
    // Tool → entitled agents, built once (asking every agent per risky tool is quadratic in
    // the size of the organisation).
    let mut users_of: std::collections::HashMap<ToolRef, Vec<&str>> =
        std::collections::HashMap::new();
    for a in inv.agents.values() {
        for t in inv.entitled_tools(a) {
            users_of.entry(t).or_default().push(a.id.value.as_str());
        }
    }
    for c in inv.connectors.values() {
        for (name, spanned) in &c.tools {
            let tool = &spanned.value;
            let flags = risky_flags(tool);
            if flags.is_empty() {
                continue;
            }
            let r = ToolRef {
                connector: c.id.value.clone(),
                tool: name.clone(),
            };
            if !inv.approval_rules_for(&r, tool).is_empty() || policy_gated.contains(&r.qualified())
            {
                continue;
            }
            let critical = tool.irreversible
                && (tool.effects.contains(&Effect::Privileged)
                    || tool.effects.contains(&Effect::ExternalSend));
            let users: &[&str] = users_of.get(&r).map(Vec::as_slice).unwrap_or_default();
            let mut f = Finding::new(
                "check.ungated-irreversible-action",
                if critical {
                    Severity::Critical
                } else {
                    Severity::High
                },
                format!(
                    "tool `{r}` is {} but no approval rule covers it",
                    flags.join(", ")
                ),
            )
            .at(Some(c.loc(spanned)))
            .subject(r.qualified())
            .fix(format!(
                "add an approval rule whose `when` matches `{r}` (by tool, effect or `irreversible: true`)"
            ))
            .owasp(&["ASI02", "ASI09"]);
            if !users.is_empty() {
                f = f.evidence(format!("entitled agents: {}", users.join(", ")));
            }
            out.push(f);
        }
    }
}

fn handoffs(inv: &Inventory, out: &mut Vec<Finding>) {
    for h in &inv.handoffs {
        let (from, to) = (&h.from.value, &h.to.value);
        if h.context.is_none() {
            out.push(
                Finding::new(
                    "check.handoff-unbounded-context",
                    Severity::Medium,
                    format!("handoff `{from}` → `{to}` has no context allow-list: the whole context travels"),
                )
                .at(Some(h.loc(&h.to)))
                .subject(format!("{from}->{to}"))
                .fix("list the context keys the receiving agent needs under `context:`")
                .owasp(&["ASI07", "ASI06"]),
            );
        }
        match &h.ttl {
            None => out.push(
                Finding::new(
                    "check.handoff-no-ttl",
                    Severity::Medium,
                    format!(
                        "handoff `{from}` → `{to}` has no TTL: handed-off context never expires"
                    ),
                )
                .at(Some(h.loc(&h.to)))
                .subject(format!("{from}->{to}"))
                .fix("add `ttl:` (for example `15m`) so handed-off context and authority expire")
                .owasp(&["ASI07", "ASI03"]),
            ),
            Some(ttl) => invalid_duration(h, ttl, "handoff TTL", out),
        }
        for key in h.context.iter().flatten() {
            if looks_like_credential_key(key) {
                out.push(
                    Finding::new(
                        "check.handoff-credential-in-context",
                        Severity::High,
                        format!("handoff `{from}` → `{to}` lets context key `{key}` travel: credentials must not cross agents"),
                    )
                    .at(Some(h.loc(&h.to)))
                    .subject(format!("{from}->{to}"))
                    .fix(format!("remove `{key}` from the allow-list; the receiving agent authenticates with its own identity through the gateway"))
                    .owasp(&["ASI03", "ASI07"]),
                );
            }
        }
        if let (Some(depth), Some(limit)) = (h.max_depth, inv.settings.max_delegation_depth)
            && depth > limit
        {
            out.push(
                Finding::new(
                    "check.handoff-depth-over-limit",
                    Severity::Medium,
                    format!("handoff `{from}` → `{to}` allows {depth} further handoffs; the organisation's limit is {limit}"),
                )
                .at(Some(h.loc(&h.to)))
                .subject(format!("{from}->{to}"))
                .fix(format!("lower `max_depth` to at most {limit}"))
                .owasp(&["ASI08", "ASI03"]),
            );
        }
    }
}

/// Context keys that name secrets rather than task data.
pub fn looks_like_credential_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    const NEEDLES: [&str; 10] = [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "private_key",
        "credential",
        "authorization",
        "cookie",
    ];
    NEEDLES.iter().any(|n| k.contains(n)) || k == "session_id" || k == "bearer"
}

fn invalid_duration<T>(src: &Sourced<T>, d: &Spanned<String>, what: &str, out: &mut Vec<Finding>) {
    if let Err(e) = parse_duration(&d.value) {
        out.push(
            Finding::new(
                "check.invalid-duration",
                Severity::High,
                format!("{what}: {e}"),
            )
            .at(Some(src.loc(d)))
            .fix("write a duration such as 30s, 15m, 24h or 7d"),
        );
    }
}

fn dangling(inv: &Inventory, out: &mut Vec<Finding>) {
    let dangling_ref = |src_loc, what: String, fix: &str| {
        Finding::new("check.dangling-reference", Severity::Medium, what)
            .at(Some(src_loc))
            .fix(fix.to_string())
    };
    for a in inv.agents.values() {
        let id = &a.id.value;
        for u in &a.uses {
            let problem = match u.value.split_once('.') {
                None => Some(format!("`{}` is not of the form connector.tool", u.value)),
                Some((c, t)) => match inv.connectors.get(c) {
                    None => Some(format!("connector `{c}` does not exist")),
                    Some(conn) if t != "*" && !conn.tools.contains_key(t) => {
                        Some(format!("connector `{c}` has no tool `{t}`"))
                    }
                    _ => None,
                },
            };
            if let Some(p) = problem {
                out.push(
                    Finding::new(
                        "check.dangling-entitlement",
                        Severity::High,
                        format!("agent `{id}` is entitled to `{}`: {p}", u.value),
                    )
                    .at(Some(a.loc(u)))
                    .subject(id)
                    .fix("remove the entitlement or declare the connector/tool it names")
                    .owasp(&["ASI03", "ASI04"]),
                );
            }
        }
        if let Some(ra) = &a.runs_as
            && !inv.identities.contains_key(&ra.value)
        {
            out.push(
                dangling_ref(
                    a.loc(ra),
                    format!("agent `{id}` runs as unknown identity `{}`", ra.value),
                    "declare the identity under `identities:`",
                )
                .subject(id),
            );
        }
        for r in a.reads.iter().chain(a.writes.iter()) {
            if !inv.resources.contains_key(&r.value) {
                out.push(
                    dangling_ref(
                        a.loc(r),
                        format!("agent `{id}` references unknown resource `{}`", r.value),
                        "declare the resource under `resources:`",
                    )
                    .subject(id),
                );
            }
        }
    }
    for h in &inv.handoffs {
        for end in [&h.from, &h.to] {
            if !inv.agents.contains_key(&end.value) {
                out.push(dangling_ref(
                    h.loc(end),
                    format!("handoff names unknown agent `{}`", end.value),
                    "declare the agent or remove the handoff",
                ));
            }
        }
    }
    for hu in inv.humans.values() {
        for g in &hu.groups {
            if !inv.groups.contains_key(&g.value) {
                out.push(dangling_ref(
                    hu.loc(g),
                    format!("human `{}` is in unknown group `{}`", hu.id.value, g.value),
                    "declare the group under `groups:`",
                ));
            }
        }
    }
    for i in inv.identities.values() {
        for r in &i.access {
            if !inv.resources.contains_key(&r.value) {
                out.push(dangling_ref(
                    i.loc(r),
                    format!(
                        "identity `{}` reaches unknown resource `{}`",
                        i.id.value, r.value
                    ),
                    "declare the resource under `resources:`",
                ));
            }
        }
        for r in &i.can_assume {
            if !inv.identities.contains_key(&r.value) {
                out.push(dangling_ref(
                    i.loc(r),
                    format!(
                        "identity `{}` can assume unknown identity `{}`",
                        i.id.value, r.value
                    ),
                    "declare the identity under `identities:`",
                ));
            }
        }
    }
    for c in inv.connectors.values() {
        let tool_res = c.tools.values().flat_map(|t| t.value.resources.iter());
        for r in c.resources.iter().chain(tool_res) {
            if !inv.resources.contains_key(&r.value) {
                out.push(dangling_ref(
                    c.loc(r),
                    format!(
                        "connector `{}` reaches unknown resource `{}`",
                        c.id.value, r.value
                    ),
                    "declare the resource under `resources:`",
                ));
            }
        }
        if let Some(ra) = &c.runs_as
            && !inv.identities.contains_key(&ra.value)
        {
            out.push(dangling_ref(
                c.loc(ra),
                format!(
                    "connector `{}` runs as unknown identity `{}`",
                    c.id.value, ra.value
                ),
                "declare the identity under `identities:`",
            ));
        }
    }
}

fn approvals(inv: &Inventory, out: &mut Vec<Finding>) {
    for rule in &inv.approvals {
        let rid = &rule.id.value;
        if let Some(e) = &rule.expires {
            invalid_duration(rule, e, "approval expiry", out);
        }
        let mut approvers: BTreeSet<String> = BTreeSet::new();
        for a in &rule.approvers {
            let unknown = match parse_approver(&a.value) {
                Approver::Group(g) => !inv.groups.contains_key(g),
                Approver::Human(h) => !inv.humans.contains_key(h),
            };
            if unknown {
                out.push(
                    Finding::new(
                        "check.dangling-reference",
                        Severity::Medium,
                        format!("approval rule `{rid}` names unknown approver `{}`", a.value),
                    )
                    .at(Some(rule.loc(a)))
                    .fix("declare the group or human, or fix the reference (`group:ID` / `human:ID`)"),
                );
            }
            approvers.extend(inv.approver_humans(&a.value));
        }
        if (approvers.len() as u32) < rule.approvals_required.max(1) {
            out.push(
                Finding::new(
                    "check.approval-without-approvers",
                    Severity::High,
                    format!(
                        "approval rule `{rid}` needs {} approval(s) but names {} human(s) who could give one",
                        rule.approvals_required.max(1),
                        approvers.len()
                    ),
                )
                .at(Some(rule.loc(&rule.id)))
                .subject(rid)
                .fix("add humans to the approver groups, or lower `approvals_required`")
                .owasp(&["ASI09"]),
            );
        }
        if !rule.separation_of_duties {
            continue;
        }
        // Requesting agents: those entitled to a tool this rule covers.
        for agent in inv.agents.values() {
            let Some(owner) = &agent.owner else { continue };
            if !approvers.contains(&owner.value) {
                continue;
            }
            let covered: Vec<ToolRef> = inv
                .entitled_tools(agent)
                .into_iter()
                .filter(|r| {
                    inv.tool(r)
                        .map(|(_, t)| crate::inventory::approval_matches(&rule.when, r, t))
                        .unwrap_or(false)
                })
                .collect();
            if covered.is_empty() {
                continue;
            }
            let remaining = approvers.len() - 1;
            let impossible = (remaining as u32) < rule.approvals_required.max(1);
            out.push(
                Finding::new(
                    "check.sod-owner-approver",
                    if impossible { Severity::High } else { Severity::Medium },
                    format!(
                        "approval rule `{rid}` requires separation of duties, but approver `{}` owns requesting agent `{}`{}",
                        owner.value,
                        agent.id.value,
                        if impossible { " and is the only approver: these calls can never be approved" } else { "" }
                    ),
                )
                .at(Some(rule.loc(&rule.id)))
                .subject(rid)
                .evidence(format!(
                    "`{}` may call: {}",
                    agent.id.value,
                    covered.iter().map(|r| r.qualified()).collect::<Vec<_>>().join(", ")
                ))
                .fix(format!(
                    "name an approver group that does not contain `{}`, or move the agent to another owner",
                    owner.value
                ))
                .owasp(&["ASI09", "ASI03"]),
            );
        }
    }
}

fn connectors(inv: &Inventory, out: &mut Vec<Finding>) {
    for c in inv.connectors.values() {
        if c.id.value == "warden" {
            // `warden.*` tool names are the gateway's own (warden.handoff, warden.context).
            out.push(
                Finding::new(
                    "check.reserved-connector-id",
                    Severity::High,
                    "connector id `warden` is reserved: the gateway answers `warden.*` tools itself, so this connector's tools can never be called".to_string(),
                )
                .at(Some(c.loc(&c.id)))
                .subject(&c.id.value)
                .fix("rename the connector"),
            );
        }
        let Some(mcp) = &c.mcp else { continue };
        if let Some(pkg) = unpinned_package(mcp) {
            out.push(
                Finding::new(
                    "check.unpinned-mcp-server",
                    Severity::Medium,
                    format!(
                        "connector `{}` launches `{pkg}` without a pinned version: the next publish runs unreviewed",
                        c.id.value
                    ),
                )
                .at(Some(c.loc(&c.id)))
                .subject(&c.id.value)
                .fix(format!("pin an exact version, e.g. `{pkg}@1.2.3` (npm) or `{pkg}==1.2.3` (PyPI)"))
                .owasp(&["ASI04"]),
            );
        }
        if let Some(url) = &mcp.url
            && is_remote_plain_http(url)
        {
            out.push(
                Finding::new(
                    "check.insecure-transport",
                    Severity::Medium,
                    format!(
                        "connector `{}` reaches a remote MCP server over plain HTTP",
                        c.id.value
                    ),
                )
                .at(Some(c.loc(&c.id)))
                .subject(&c.id.value)
                .evidence(url.clone())
                .fix("use https:// for remote servers")
                .owasp(&["ASI04", "ASI07"]),
            );
        }
    }
}

/// True for `http://` URLs whose host is not loopback.
pub fn is_remote_plain_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host_port
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(host_port);
    let host = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or("")
    };
    !(host == "localhost" || host.starts_with("127.") || host == "::1")
}

/// For a stdio server launched through a package runner (`npx`, `uvx`, `pipx run`,
/// `bunx`, `pnpm dlx`, `docker run`), the package or image it runs when that is not
/// pinned to an exact version; `None` when pinned or not launched from a package.
pub fn unpinned_package(mcp: &McpTransport) -> Option<String> {
    let cmd = mcp.command.as_deref()?;
    let base = cmd.rsplit('/').next().unwrap_or(cmd);
    let args: Vec<&str> = mcp.args.iter().map(String::as_str).collect();
    unpinned_package_in(base, &args)
}

/// [`unpinned_package`] on a command's base name and arguments.
pub fn unpinned_package_in(base: &str, args: &[&str]) -> Option<String> {
    let first_positional = |args: &[&str]| -> Option<String> {
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if *a == "--package" || *a == "-p" || *a == "--from" {
                return it.next().map(|s| s.to_string());
            }
            if a.starts_with('-') {
                continue;
            }
            return Some(a.to_string());
        }
        None
    };
    match base {
        "npx" | "bunx" => {
            let pkg = first_positional(args)?;
            (!npm_pinned(&pkg)).then_some(pkg)
        }
        "pnpm" | "yarn" if args.first() == Some(&"dlx") => {
            let pkg = first_positional(&args[1..])?;
            (!npm_pinned(&pkg)).then_some(pkg)
        }
        "uvx" | "pipx" => {
            let rest = if args.first() == Some(&"run") {
                &args[1..]
            } else {
                args
            };
            let pkg = first_positional(rest)?;
            (!pypi_pinned(&pkg)).then_some(pkg)
        }
        "docker" | "podman" if args.first() == Some(&"run") => {
            // The image is the first positional after `run` that is not an option value.
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                if a.starts_with('-') {
                    let takes_value = matches!(
                        *a,
                        "-e" | "--env"
                            | "-v"
                            | "--volume"
                            | "-p"
                            | "--publish"
                            | "--name"
                            | "-w"
                            | "--workdir"
                            | "--network"
                            | "-u"
                            | "--user"
                            | "--mount"
                            | "--env-file"
                            | "--entrypoint"
                    );
                    if takes_value {
                        it.next();
                    }
                    continue;
                }
                let pinned = a.contains("@sha256:")
                    || a.rsplit('/')
                        .next()
                        .and_then(|last| last.split_once(':'))
                        .map(|(_, tag)| tag != "latest")
                        .unwrap_or(false);
                return (!pinned).then(|| a.to_string());
            }
            None
        }
        _ => None,
    }
}

fn npm_pinned(spec: &str) -> bool {
    let name_and_version = spec.strip_prefix('@').map_or(spec, |s| s);
    match name_and_version.split_once('@') {
        Some((_, v)) => {
            !v.is_empty()
                && v != "latest"
                && v.chars().next().is_some_and(|c| c.is_ascii_digit())
                && !v.contains(['^', '~', '*', 'x', '>', '<', ' '])
        }
        None => false,
    }
}

fn pypi_pinned(spec: &str) -> bool {
    spec.contains("==") || (spec.contains('@') && !spec.ends_with("@latest"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_pins() {
        assert_eq!(
            unpinned_package_in("npx", &["-y", "@acme/payments-mcp"]),
            Some("@acme/payments-mcp".into())
        );
        assert_eq!(
            unpinned_package_in("npx", &["-y", "@acme/payments-mcp@1.4.2"]),
            None
        );
        assert_eq!(
            unpinned_package_in("npx", &["-y", "pkg@latest"]),
            Some("pkg@latest".into())
        );
        assert_eq!(
            unpinned_package_in("npx", &["pkg@^1.2"]),
            Some("pkg@^1.2".into())
        );
        assert_eq!(
            unpinned_package_in("uvx", &["mcp-server-git"]),
            Some("mcp-server-git".into())
        );
        assert_eq!(unpinned_package_in("uvx", &["mcp-server-git==0.6.2"]), None);
        assert_eq!(
            unpinned_package_in("docker", &["run", "-i", "--rm", "-e", "X", "mcp/github"]),
            Some("mcp/github".into())
        );
        assert_eq!(
            unpinned_package_in("docker", &["run", "-i", "mcp/github:1.0.2"]),
            None
        );
        assert_eq!(unpinned_package_in("node", &["server.js"]), None);
    }

    #[test]
    fn remote_http() {
        assert!(is_remote_plain_http("http://mcp.example.com/mcp"));
        assert!(!is_remote_plain_http("http://127.0.0.1:9100/mcp"));
        assert!(!is_remote_plain_http("http://localhost/mcp"));
        assert!(!is_remote_plain_http("http://[::1]:80/mcp"));
        assert!(!is_remote_plain_http("https://mcp.example.com/mcp"));
    }
}
