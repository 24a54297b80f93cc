//! `warden policy …`: the Cedar policy engine on the command line.
//!
//! - `warden policy schema DIR`    print the Cedar schema generated from the inventory
//! - `warden policy validate DIR`  parse and validate every policy (file:line errors, exit 2)
//! - `warden policy decide DIR --agent A --tool C.T [--args JSON] [--tainted] [--time RFC3339]`
//! - `warden policy test DIR`      run `DIR/tests/*.yaml`, exit 1 on any mismatch
//! - `warden policy diff DIR --against OTHER` what-if between two policy sets

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use warden_core::{Inventory, PolicyFile, ToolRef};
use warden_policy::{PolicyEngine, PolicyError, Request, SessionState, UtcTime, diff, suite};

use crate::output::{self, Format};

#[derive(Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print the Cedar schema generated from the inventory.
    Schema {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Parse and validate every policy against the generated schema.
    Validate {
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Decide one tool call.
    Decide(DecideArgs),
    /// Run the policy test suites in DIR/tests/*.yaml.
    Test {
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// What-if: which (agent, tool) pairs change between this inventory's policies and others.
    Diff {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Another policy directory (`*.cedar`, or an inventory directory with `policies/`).
        #[arg(long)]
        against: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Exit 1 when any pair changes (for CI on policy pull requests).
        #[arg(long)]
        fail_on_change: bool,
    },
}

#[derive(Args)]
struct DecideArgs {
    #[arg(default_value = ".")]
    dir: PathBuf,
    #[arg(long)]
    agent: String,
    /// `connector.tool`
    #[arg(long)]
    tool: String,
    /// The call's arguments, a JSON object.
    #[arg(long, default_value = "{}")]
    args: String,
    /// The session has read untrusted content.
    #[arg(long)]
    tainted: bool,
    /// Where the taint came from (repeatable; implies --tainted).
    #[arg(long = "taint-source")]
    taint_sources: Vec<String>,
    /// Delegation chain, outermost first (repeatable).
    #[arg(long = "delegated-by")]
    delegation: Vec<String>,
    #[arg(long)]
    root_human: Option<String>,
    /// Decision time, RFC 3339 (default: now).
    #[arg(long)]
    time: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PolicyCommand::Schema { dir } => {
            // Loading the engine checks the inventory and its policies first.
            let Some((inv, _)) = load(&dir, Format::Text)? else {
                return Ok(output::EXIT_UNUSABLE());
            };
            print!("{}", warden_policy::schema::schema_text(&inv)?);
            Ok(output::EXIT_OK)
        }
        PolicyCommand::Validate { dir, format } => {
            let Some((_, engine)) = load(&dir, format)? else {
                return Ok(output::EXIT_UNUSABLE());
            };
            let policies = engine.policies();
            match format {
                Format::Text => {
                    for p in &policies {
                        let loc = if p.generated {
                            "(generated from the inventory)".to_string()
                        } else {
                            format!("{}:{}", p.file.display(), p.line)
                        };
                        println!("ok  {:<7} {:<45} {loc}", p.effect, p.id);
                    }
                    println!(
                        "{} policies valid against the generated schema",
                        policies.len()
                    );
                }
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "valid": true, "policies": policies,
                    }))?
                ),
            }
            Ok(output::EXIT_OK)
        }
        PolicyCommand::Decide(a) => decide(a),
        PolicyCommand::Test { dir, format } => test(&dir, format),
        PolicyCommand::Diff {
            dir,
            against,
            format,
            fail_on_change,
        } => run_diff(&dir, &against, format, fail_on_change),
    }
}

/// Loads the inventory and its engine; prints load errors and returns `None` (exit 2).
pub fn load(dir: &Path, format: Format) -> anyhow::Result<Option<(Inventory, PolicyEngine)>> {
    let inv = match Inventory::load(dir) {
        Ok(inv) => inv,
        Err(e) => {
            crate::check::report_load_error(&e, format);
            return Ok(None);
        }
    };
    match PolicyEngine::load(&inv) {
        Ok(engine) => Ok(Some((inv, engine))),
        Err(e) => {
            report_policy_error(&e, format);
            Ok(None)
        }
    }
}

/// Prints policy errors, one per line with file:line (or as JSON).
pub fn report_policy_error(e: &PolicyError, format: Format) {
    let errs = e.flatten();
    match format {
        Format::Text => {
            for e in errs {
                eprintln!("error: {e}");
            }
        }
        Format::Json => {
            let list: Vec<serde_json::Value> = errs
                .iter()
                .map(|e| match e {
                    PolicyError::Policy {
                        file,
                        line,
                        policy,
                        message,
                    } => serde_json::json!({
                        "message": message, "policy": policy,
                        "location": {"file": file, "line": line, "column": 0},
                    }),
                    other => serde_json::json!({"message": other.to_string()}),
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"errors": list}))
                    .unwrap_or_default()
            );
        }
    }
}

fn decide(a: DecideArgs) -> anyhow::Result<ExitCode> {
    let tool = match ToolRef::parse(&a.tool) {
        Some(t) => t,
        None => {
            eprintln!("error: --tool `{}` is not `connector.tool`", a.tool);
            return Ok(output::EXIT_UNUSABLE());
        }
    };
    let args: serde_json::Value = match serde_json::from_str(&a.args) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => {
            eprintln!("error: --args must be a JSON object");
            return Ok(output::EXIT_UNUSABLE());
        }
        Err(e) => {
            eprintln!("error: --args is not JSON: {e}");
            return Ok(output::EXIT_UNUSABLE());
        }
    };
    let time = match &a.time {
        Some(t) => match UtcTime::parse_rfc3339(t) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --time: {e}");
                return Ok(output::EXIT_UNUSABLE());
            }
        },
        None => UtcTime::now(),
    };
    let Some((_, engine)) = load(&a.dir, a.format)? else {
        return Ok(output::EXIT_UNUSABLE());
    };
    let req = Request {
        agent: a.agent.clone(),
        delegation_chain: a.delegation,
        root_human: a.root_human,
        tool,
        args,
        session: SessionState {
            tainted: a.tainted || !a.taint_sources.is_empty(),
            taint_sources: a.taint_sources,
        },
        time,
    };
    let d = engine.decide(&req);
    match a.format {
        Format::Json => {
            let mut v = serde_json::to_value(&d)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("agent".into(), req.agent.clone().into());
                o.insert("tool".into(), req.tool.qualified().into());
                o.insert("time".into(), req.time.to_rfc3339().into());
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Text => {
            println!("{}  {} → {}", d.outcome.as_str(), req.agent, req.tool);
            if let Some(ap) = d.outcome.approval() {
                println!(
                    "  approvers: {}  (required: {}, ttl: {}, separation of duties: {})",
                    ap.approvers.join(", "),
                    ap.approvals_required,
                    ap.ttl_seconds
                        .map(|s| format!("{s}s"))
                        .unwrap_or_else(|| "gateway default".into()),
                    ap.separation_of_duties
                );
            }
            for p in &d.policies {
                println!("  {} {} ({}:{})", p.effect, p.id, p.file.display(), p.line);
            }
            for r in &d.reasons {
                println!("  reason: {r}");
            }
            if !d.ignored_args.is_empty() {
                println!(
                    "  undeclared arguments not seen by policy: {}",
                    d.ignored_args.join(", ")
                );
            }
        }
    }
    // A decision is an answer, not a failure: exit 0 whatever the outcome.
    Ok(output::EXIT_OK)
}

fn test(dir: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let Some((_, engine)) = load(dir, format)? else {
        return Ok(output::EXIT_UNUSABLE());
    };
    let results = match suite::run_dir(&engine, dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(output::EXIT_UNUSABLE());
        }
    };
    if results.is_empty() {
        eprintln!("error: no test cases under {}", dir.join("tests").display());
        return Ok(output::EXIT_UNUSABLE());
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "results": results,
                "summary": {"total": results.len(), "passed": results.len() - failed, "failed": failed},
            }))?
        ),
        Format::Text => {
            let w = results
                .iter()
                .map(|r| r.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            println!(
                "{:<6} {:<w$}  {:<15} {:<15} policies",
                "result", "case", "expected", "got"
            );
            for r in &results {
                println!(
                    "{:<6} {:<w$}  {:<15} {:<15} {}",
                    if r.passed { "ok" } else { "FAIL" },
                    r.name,
                    r.expected.as_str(),
                    r.decision.outcome.as_str(),
                    r.decision.policy_ids().join(", ")
                );
                for m in &r.mismatches {
                    println!("       {}:{}: {m}", r.file.display(), r.line);
                }
            }
            println!(
                "\n{} cases, {} passed, {} failed",
                results.len(),
                results.len() - failed,
                failed
            );
        }
    }
    Ok(if failed > 0 {
        output::EXIT_FINDINGS
    } else {
        output::EXIT_OK
    })
}

fn policy_files(dir: &Path) -> anyhow::Result<Vec<PolicyFile>> {
    let pdir = if dir.join("policies").is_dir() {
        dir.join("policies")
    } else {
        dir.to_path_buf()
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&pdir)
        .with_context(|| format!("reading {}", pdir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("cedar"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            Ok(PolicyFile { path: p, text })
        })
        .collect()
}

fn run_diff(dir: &Path, against: &Path, format: Format, fail: bool) -> anyhow::Result<ExitCode> {
    let Some((inv, before)) = load(dir, format)? else {
        return Ok(output::EXIT_UNUSABLE());
    };
    let files = match policy_files(against) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(output::EXIT_UNUSABLE());
        }
    };
    let after = match PolicyEngine::load_with_policies(&inv, &files) {
        Ok(e) => e,
        Err(e) => {
            report_policy_error(&e, format);
            return Ok(output::EXIT_UNUSABLE());
        }
    };
    let report = diff::diff(&inv, &before, &after);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => {
            println!(
                "{:<24} {:<28} {:<32} {:<32}",
                "agent", "tool", "before", "after"
            );
            let show = |s: &diff::PairSummary| {
                if s.outcome == "depends" {
                    format!("depends ({})", s.outcomes.join("/"))
                } else if s.approvers.is_empty() {
                    s.outcome.clone()
                } else {
                    format!("{} [{}]", s.outcome, s.approvers.join(", "))
                }
            };
            for c in &report.changes {
                println!(
                    "{:<24} {:<28} {:<32} {:<32}",
                    c.agent,
                    c.tool,
                    show(&c.before),
                    show(&c.after)
                );
            }
            println!(
                "\n{} of {} (agent, tool) pairs change ({} probed over arguments, taint, time and delegation)",
                report.changes.len(),
                report.pairs,
                report.probed_pairs
            );
        }
    }
    Ok(if fail && !report.changes.is_empty() {
        output::EXIT_FINDINGS
    } else {
        output::EXIT_OK
    })
}
