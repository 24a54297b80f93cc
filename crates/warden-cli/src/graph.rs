//! `warden graph DIR`, `warden graph paths DIR --from NODE --to NODE`, `warden findings DIR`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use warden_core::{Finding, Inventory, Severity, ToolRef, check, finding};
use warden_graph::Invocation;
use warden_graph::{Graph, GraphFinding, Remediation, View};
use warden_policy::Reachability;

use crate::check::report_load_error;
use crate::output::{self, Format};

/// `CanInvoke` edges from the Cedar engine (warden-policy): what policy could ever allow, so a
/// forbidden tool has no edge and a tool whose every call needs approval is gated.
struct CedarInvoke(warden_policy::PolicyEngine);

impl CedarInvoke {
    /// `rule`: the inventory approval rule covering the tool, which holds every allowed call.
    fn decide(&self, agent: &str, tool: &ToolRef, rule: Option<&str>) -> Invocation {
        match self.0.could_allow(agent, tool) {
            Reachability::Never => Invocation::Never,
            Reachability::Always => Invocation::Always,
            Reachability::NeedsApproval { approvers } => Invocation::WithApproval(
                rule.map(str::to_string)
                    .unwrap_or_else(|| format!("policy:{}", approvers.join("+"))),
            ),
            // Depends on arguments, time, taint or delegation: reachable without a human
            // unless an approval rule covers every call.
            Reachability::Conditional { .. } => match rule {
                Some(r) => Invocation::WithApproval(r.to_string()),
                None => Invocation::Conditional,
            },
        }
    }
}

impl warden_graph::InvokePolicy for CedarInvoke {
    fn could_invoke(&self, inv: &Inventory, agent: &str, tool: &ToolRef) -> Invocation {
        let rule = inv.tool(tool).and_then(|(_, t)| {
            inv.approval_rules_for(tool, t)
                .first()
                .map(|r| r.id.value.clone())
        });
        self.decide(agent, tool, rule.as_deref())
    }

    /// The agent's entitled tools only: every policy set holds the generated
    /// `inventory.not-entitled` forbid (`unless principal.entitled.contains(resource)`), so
    /// Cedar answers `Never` for any other tool and asking would only cost time (agents ×
    /// tools evaluations instead of one per entitlement). The approval rule is looked up
    /// once per tool rather than per agent and tool.
    fn invocations(
        &self,
        _inv: &Inventory,
        agent: &warden_core::model::Agent,
        tools: &warden_graph::ToolTable<'_>,
    ) -> Vec<(u32, Invocation)> {
        tools
            .entitled(agent)
            .into_iter()
            .filter_map(|(i, _)| {
                let t = tools.get(i);
                let d = self.decide(&agent.id.value, &t.tool_ref, t.approval_rule);
                (d != Invocation::Never).then_some((i, d))
            })
            .collect()
    }
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GraphArgs {
    #[command(subcommand)]
    command: Option<GraphCommand>,
    #[command(flatten)]
    export: ExportArgs,
}

#[derive(Subcommand)]
enum GraphCommand {
    /// Attack paths between two nodes: count, shortest path, smallest cut.
    Paths(PathsArgs),
}

#[derive(Args)]
struct Sources {
    /// Inventory directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// AWS IAM export (`aws iam get-account-authorization-details` JSON).
    #[arg(long)]
    iam: Option<PathBuf>,
    /// Also scan this path (agent code, MCP client configs): its findings are reported, its
    /// secrets become credential nodes held by the agents whose `code` contains them, and the
    /// MCP servers of client configs become connector nodes those agents use.
    #[arg(long)]
    scan: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    Json,
    Dot,
    Opengraph,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    src: Sources,
    #[arg(long, value_enum, default_value = "json")]
    format: GraphFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct PathsArgs {
    #[command(flatten)]
    src: Sources,
    /// Start node id (e.g. `resource:support-inbox`, `agent:support-triage`).
    #[arg(long)]
    from: String,
    /// End node id (e.g. `resource:payments-ledger`, `identity:aws-admin`).
    #[arg(long)]
    to: String,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FindingsFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Args)]
pub struct FindingsArgs {
    #[command(flatten)]
    src: Sources,
    #[arg(long, value_enum, default_value = "text")]
    format: FindingsFormat,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, default_value = "high", value_parser = output::parse_severity)]
    fail_on: Severity,
}

enum Loaded {
    /// Inventory, graph, the scanner's findings, tools a Cedar `@approval` policy can gate.
    Ok(Box<Inventory>, Box<Graph>, Vec<Finding>, BTreeSet<String>),
    Unusable(ExitCode),
}

/// Loads the inventory, the Cedar policies, the optional IAM export and the optional scan;
/// returns the graph and the scanner's findings.
fn load(src: &Sources, json_errors: bool) -> anyhow::Result<Loaded> {
    let fmt = if json_errors {
        Format::Json
    } else {
        Format::Text
    };
    let inv = match Inventory::load(&src.dir) {
        Ok(inv) => inv,
        Err(e) => return Ok(Loaded::Unusable(report_load_error(&e, fmt))),
    };
    let engine = warden_policy::PolicyEngine::load(&inv)
        .with_context(|| format!("loading the policies of {}", src.dir.display()))?;
    let mut scan_findings = Vec::new();
    let mut creds = Vec::new();
    let mut servers = Vec::new();
    if let Some(root) = &src.scan {
        let out = warden_scan::scan_path(
            root,
            &warden_scan::ScanOptions::default(),
            &warden_scan::SecretScanner::new(),
            None,
        )
        .with_context(|| format!("scanning {}", root.display()))?;
        for f in &out.findings {
            if f.rule_id.starts_with("scan.secret.")
                && let Some(l) = &f.location
            {
                creds.push(warden_graph::ScannedCredential {
                    file: l.file.clone(),
                    line: l.line,
                    rule_id: f.rule_id.clone(),
                    fingerprint: warden_scan::walk::finding_fingerprint(f).map(str::to_string),
                    identity: None,
                });
            }
        }
        for s in out.facts.iter().flat_map(|f| &f.services) {
            servers.push(warden_graph::ScannedServer {
                file: s.file.clone(),
                line: s.line,
                name: s.name.clone(),
                client: s.client.as_str().to_string(),
                transport: s.transport.clone(),
                command: s.command.clone(),
                args: s.args.clone(),
                url: s.url.clone(),
                env: s.env.clone(),
                headers: s.headers.clone(),
            });
        }
        scan_findings = out.findings;
    }
    let gated = engine.approval_gated_tools();
    let fingerprint = |rule: &str, value: &str| warden_scan::secrets::fingerprint(rule, value);
    let scan = src.scan.as_deref().map(|root| warden_graph::ScanInput {
        root,
        credentials: &creds,
        servers: &servers,
        fingerprint: &fingerprint,
    });
    let g = warden_graph::build_all(
        &inv,
        &CedarInvoke(engine),
        src.iam.as_deref(),
        scan.as_ref(),
    )?;
    Ok(Loaded::Ok(Box::new(inv), Box::new(g), scan_findings, gated))
}

fn write_out(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

pub fn run_graph(args: GraphArgs) -> anyhow::Result<ExitCode> {
    if let Some(GraphCommand::Paths(p)) = args.command {
        return run_paths(p);
    }
    let a = args.export;
    let g = match load(&a.src, a.format != GraphFormat::Dot)? {
        Loaded::Ok(_, g, _, _) => g,
        Loaded::Unusable(code) => return Ok(code),
    };
    let text = match a.format {
        GraphFormat::Json => {
            serde_json::to_string_pretty(&warden_graph::export::to_json(&g))? + "\n"
        }
        GraphFormat::Dot => warden_graph::export::to_dot(&g),
        GraphFormat::Opengraph => {
            serde_json::to_string_pretty(&warden_graph::export::to_opengraph(&g))? + "\n"
        }
    };
    write_out(a.output.as_deref(), &text)?;
    Ok(output::EXIT_OK)
}

fn run_paths(a: PathsArgs) -> anyhow::Result<ExitCode> {
    let g = match load(&a.src, a.format == Format::Json)? {
        Loaded::Ok(_, g, _, _) => g,
        Loaded::Unusable(code) => return Ok(code),
    };
    let node = |id: &str| {
        g.node_index(id)
            .ok_or_else(|| warden_graph::GraphError::UnknownNode(id.to_string()))
    };
    let (from, to) = match (node(&a.from), node(&a.to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(output::EXIT_UNUSABLE());
        }
    };
    let v = View::new(&g);
    let all = |_: u32| true;
    let (count, complete) = v.count_paths(&[from], &[to], &all, 1_000_000);
    let shortest = v.shortest_path(&[from], &|n| n == to, &all);
    let cut = v.min_cut(&[from], &[to], &all);
    let after = cut.as_ref().map(|c| {
        View::with_remedies(&g, c)
            .count_paths(&[from], &[to], &all, 1_000_000)
            .0
    });
    match a.format {
        Format::Json => {
            let doc = serde_json::json!({
                "from": a.from,
                "to": a.to,
                "paths": count,
                "paths_complete": complete,
                "shortest": shortest.as_ref().map(|p| p.iter().map(|&e| g.edge_id(e)).collect::<Vec<_>>()),
                "shortest_rendered": shortest.as_ref().map(|p| g.render_path(p)),
                "cut": cut,
                "cut_found": cut.is_some(),
                "paths_after_cut": after,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Text => {
            let more = if complete {
                ""
            } else {
                " (at least; counting stopped)"
            };
            println!("{count} path(s) from {} to {}{more}", a.from, a.to);
            if let Some(p) = &shortest {
                println!("shortest: {}", g.render_path(p));
            }
            match (&cut, after) {
                (Some(c), Some(n)) if !c.is_empty() => {
                    println!("smallest cut ({} change(s)):", c.len());
                    for r in c {
                        println!("  - {r}");
                    }
                    println!("paths left with the cut applied: {n}");
                }
                (None, _) => println!(
                    "no cut over human-changeable edges separates them (a path uses only declared tool behaviour)"
                ),
                _ => {}
            }
        }
    }
    Ok(output::EXIT_OK)
}

/// One reported finding and, for graph findings, its remediation.
struct Reported {
    finding: Finding,
    remediation: Option<Remediation>,
}

pub fn run_findings(a: FindingsArgs) -> anyhow::Result<ExitCode> {
    let (inv, g, scanned, gated) = match load(&a.src, a.format != FindingsFormat::Text)? {
        Loaded::Ok(inv, g, scanned, gated) => (inv, g, scanned, gated),
        Loaded::Unusable(code) => return Ok(code),
    };
    // Governance checks, counting tools a Cedar `@approval` policy gates as covered.
    let mut all: Vec<Reported> = check::check_with(&inv, &gated)
        .into_iter()
        .map(|f| Reported {
            finding: f,
            remediation: None,
        })
        .collect();
    all.extend(scanned.into_iter().map(|f| Reported {
        finding: f,
        remediation: None,
    }));
    all.extend(warden_graph::analyse(&g).into_iter().map(
        |GraphFinding {
             finding,
             remediation,
         }| Reported {
            finding,
            remediation,
        },
    ));
    all.sort_by(|x, y| {
        let (a, b) = (&x.finding, &y.finding);
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule_id.cmp(&b.rule_id))
            .then_with(|| a.location.cmp(&b.location))
            .then_with(|| a.subject.cmp(&b.subject))
    });
    let plain: Vec<Finding> = all.iter().map(|r| r.finding.clone()).collect();
    match a.format {
        FindingsFormat::Text => print!("{}", finding::render_text(&plain)),
        FindingsFormat::Json => {
            let list: Vec<serde_json::Value> = all
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(&r.finding).unwrap_or_default();
                    if let Some(rem) = &r.remediation {
                        v["remediation"] = serde_json::to_value(rem).unwrap_or_default();
                    }
                    v
                })
                .collect();
            let doc = serde_json::json!({
                "inventory": a.src.dir,
                "graph": {"nodes": g.node_count(), "edges": g.edge_count()},
                "findings": list,
                "summary": output::summary_json(&plain),
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        FindingsFormat::Sarif => {
            println!(
                "{}",
                serde_json::to_string_pretty(&warden_scan::sarif::to_sarif(&plain))?
            );
        }
    }
    Ok(output::findings_exit(&plain, a.fail_on))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_graph::InvokePolicy;

    /// Asking Cedar only about entitled tools loses nothing: on the example organisation the
    /// answers equal asking about every declared tool.
    #[test]
    fn entitled_tools_only_equals_asking_about_every_tool() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme");
        let inv = Inventory::load(&dir).unwrap();
        let cedar = CedarInvoke(warden_policy::PolicyEngine::load(&inv).unwrap());
        let table = warden_graph::ToolTable::new(&inv);
        let mut edges = 0;
        for agent in inv.agents.values() {
            let fast = cedar.invocations(&inv, agent, &table);
            let full: Vec<(u32, Invocation)> = (0..table.len() as u32)
                .filter_map(|i| {
                    let t = table.get(i);
                    let d = cedar.decide(&agent.id.value, &t.tool_ref, t.approval_rule);
                    (d != Invocation::Never).then_some((i, d))
                })
                .collect();
            assert_eq!(fast, full, "agent {}", agent.id.value);
            edges += full.len();
        }
        assert!(
            edges > 10,
            "the example has entitlements to compare ({edges})"
        );
    }
}
