//! `warden tools list|diff|approve`: tool pins (issue 8). The gateway pins tool definitions
//! and holds back (quarantines) the ones that changed, were never approved, or look
//! poisoned; these commands show the state kept in the store, the difference between the
//! approved and the served definition, and approve a reviewed definition. A running gateway
//! picks an approval up at the next list or call of the tool, without a restart.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use warden_core::{Finding, Inventory, Severity, ToolRef};
use warden_detect::poison::shadowing_findings;
use warden_detect::{DefinitionChange, diff_definitions, find_shadowing};
use warden_gateway::pinning::{Held, quarantine_finding};
use warden_store::{ApproveOutcome, AuditEvent, Durability, ToolPin, ToolSighting};

use crate::output::{self, Format};
use crate::up::{StoreArgs, load_inventory, runtime};

#[derive(Args)]
pub struct ToolsArgs {
    #[command(subcommand)]
    cmd: ToolsCmd,
}

#[derive(Subcommand)]
enum ToolsCmd {
    /// Every tool the gateway has seen: pinned, quarantined (held back) or unpinned; shadowed names.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Exit 1 when a finding is at or above this severity (default: never).
        #[arg(long, value_parser = output::parse_severity)]
        fail_on: Option<Severity>,
    },
    /// The approved definition of CONNECTOR.TOOL against the one held back (exit 1 when they differ).
    Diff {
        /// Inventory directory.
        dir: std::path::PathBuf,
        /// The tool, as `connector.tool`.
        tool: String,
        /// SQLite database (default: DIR/.warden/warden.db) or `postgres://` URL.
        #[arg(long)]
        db: Option<std::path::PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Approve the held-back definition of CONNECTOR.TOOL (the one `tools diff` shows).
    Approve {
        /// Inventory directory.
        dir: std::path::PathBuf,
        /// The tool, as `connector.tool`.
        tool: String,
        /// SQLite database (default: DIR/.warden/warden.db) or `postgres://` URL.
        #[arg(long)]
        db: Option<std::path::PathBuf>,
        /// Approve only if the held-back definition has this hash (the one you reviewed).
        #[arg(long)]
        hash: Option<String>,
        /// Who approves (a human of the inventory; default: the login name).
        #[arg(long)]
        by: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

pub fn run(args: ToolsArgs) -> anyhow::Result<ExitCode> {
    match args.cmd {
        ToolsCmd::List {
            store,
            format,
            fail_on,
        } => list(store, format, fail_on),
        ToolsCmd::Diff {
            dir,
            tool,
            db,
            format,
        } => diff(StoreArgs { dir, db }, &tool, format),
        ToolsCmd::Approve {
            dir,
            tool,
            db,
            hash,
            by,
            format,
        } => approve(StoreArgs { dir, db }, &tool, hash, by, format),
    }
}

fn held_of(s: &ToolSighting, pin: Option<&ToolPin>) -> Held {
    Held {
        reason: s.reason,
        approved: pin.map(|p| p.hash.clone()),
        served: s.hash.clone(),
    }
}

/// Parses `connector.tool` and checks the connector exists.
fn tool_ref(inv: &Inventory, tool: &str) -> Result<ToolRef, String> {
    let tr = ToolRef::parse(tool)
        .ok_or_else(|| format!("`{tool}` is not a tool name (expected connector.tool)"))?;
    if !inv.connectors.contains_key(&tr.connector) {
        return Err(format!(
            "no connector `{}` in the inventory (connectors: {})",
            tr.connector,
            inv.connectors
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(tr)
}

fn list(store: StoreArgs, format: Format, fail_on: Option<Severity>) -> anyhow::Result<ExitCode> {
    let inv = match load_inventory(&store.dir, format) {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    let dir = store.dir.display().to_string();
    runtime()?.block_on(async {
        let st = store.open(true, Durability::Full).await?;
        let pins = st.tool_pins(None).await?;
        let sightings = st.tool_sightings(None).await?;
        st.close().await;
        let pin_of: BTreeMap<(String, String), &ToolPin> = pins
            .iter()
            .map(|p| ((p.connector.clone(), p.tool.clone()), p))
            .collect();
        let sighting_of: BTreeMap<(String, String), &ToolSighting> = sightings
            .iter()
            .map(|s| ((s.connector.clone(), s.tool.clone()), s))
            .collect();
        let mut keys: Vec<(String, String)> =
            pin_of.keys().chain(sighting_of.keys()).cloned().collect();
        for (cid, c) in &inv.connectors {
            if c.mcp.is_some() {
                keys.extend(c.tools.keys().map(|t| (cid.clone(), t.clone())));
            }
        }
        keys.sort();
        keys.dedup();
        let mut rows = Vec::new();
        let mut findings: Vec<Finding> = Vec::new();
        // Names per connector, for shadowing.
        let mut served: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (c, t) in &keys {
            let pin = pin_of.get(&(c.clone(), t.clone())).copied();
            let sighting = sighting_of.get(&(c.clone(), t.clone())).copied();
            let declared = inv
                .connectors
                .get(c)
                .is_some_and(|x| x.tools.contains_key(t));
            if pin.is_some() || sighting.is_some() {
                served
                    .entry(c.clone())
                    .or_default()
                    .push(json!({"name": t}));
            }
            let mut row = json!({
                "tool": format!("{c}.{t}"),
                "connector": c,
                "name": t,
                "declared": declared,
            });
            match (pin, sighting) {
                (_, Some(s)) => {
                    row["status"] = json!("quarantined");
                    row["reason"] = json!(s.reason);
                    row["served_hash"] = json!(s.hash);
                    row["first_seen"] = json!(s.first_seen);
                    row["last_seen"] = json!(s.last_seen);
                    findings.push(quarantine_finding(c, t, &held_of(s, pin), &dir));
                }
                (Some(_), None) => row["status"] = json!("pinned"),
                (None, None) => row["status"] = json!("unpinned"),
            }
            if let Some(p) = pin {
                row["hash"] = json!(p.hash);
                row["approved_by"] = json!(p.approved_by);
                row["approved_at"] = json!(p.approved_at);
            }
            rows.push(row);
        }
        let shadows = find_shadowing(served.iter().map(|(c, t)| (c.as_str(), t.as_slice())));
        findings.extend(shadowing_findings(&shadows));
        findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.subject.cmp(&b.subject)));
        match format {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "tools": rows,
                    "shadowing": shadows,
                    "findings": findings,
                    "summary": output::summary_json(&findings),
                }))?
            ),
            Format::Text => {
                println!("{:<40} {:<24} {:<20} hash", "tool", "status", "approved by");
                for r in &rows {
                    let status = r["status"].as_str().unwrap_or("");
                    let status = match r["reason"].as_str() {
                        Some(reason) => format!("{status} ({reason})"),
                        None => status.to_string(),
                    };
                    let hash = r["served_hash"]
                        .as_str()
                        .or(r["hash"].as_str())
                        .unwrap_or("-");
                    println!(
                        "{:<40} {:<24} {:<20} {}",
                        r["tool"].as_str().unwrap_or(""),
                        status,
                        r["approved_by"].as_str().unwrap_or("-"),
                        hash
                    );
                }
                for s in &shadows {
                    println!(
                        "shadowing: tool name `{}` is served by {}",
                        s.tool,
                        s.connectors.join(", ")
                    );
                }
                for f in findings
                    .iter()
                    .filter(|f| f.rule_id == "gateway.tool-quarantined")
                {
                    println!("{}: {}\n  fix: {}", f.severity, f.message, f.fix);
                }
            }
        }
        Ok(match fail_on {
            Some(s) => output::findings_exit(&findings, s),
            None => output::EXIT_OK,
        })
    })
}

/// One change, readable: `~ /description` then `- old` / `+ new` lines.
fn render_change(c: &DefinitionChange) -> String {
    let sign = match c.change {
        "added" => "+",
        "removed" => "-",
        _ => "~",
    };
    let mut out = format!("{sign} {} ({})\n", c.pointer, c.change);
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    for (mark, v) in [("-", &c.old), ("+", &c.new)] {
        if let Some(v) = v {
            for line in show(v).lines() {
                out.push_str(&format!("    {mark} {line}\n"));
            }
        }
    }
    out
}

fn diff(store: StoreArgs, tool: &str, format: Format) -> anyhow::Result<ExitCode> {
    let inv = match load_inventory(&store.dir, format) {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    let tr = match tool_ref(&inv, tool) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(output::EXIT_UNUSABLE());
        }
    };
    runtime()?.block_on(async {
        let st = store.open(true, Durability::Full).await?;
        let pin = st.tool_pin(&tr.connector, &tr.tool).await?;
        let sighting = st.tool_sighting(&tr.connector, &tr.tool).await?;
        st.close().await;
        let changes = match &sighting {
            Some(s) => diff_definitions(
                pin.as_ref().map(|p| &p.definition).unwrap_or(&json!({})),
                &s.definition,
            ),
            None => Vec::new(),
        };
        match format {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "tool": tr.qualified(),
                    "approved": pin,
                    "served": sighting,
                    "changes": changes,
                }))?
            ),
            Format::Text => match (&pin, &sighting) {
                (_, Some(s)) => {
                    match &pin {
                        Some(p) => println!(
                            "{tr}: approved {} (by {} at {})",
                            p.hash, p.approved_by, p.approved_at
                        ),
                        None => println!("{tr}: never approved"),
                    }
                    println!(
                        "{tr}: held back {} ({}, first seen {}, last seen {})",
                        s.hash,
                        s.reason.as_str(),
                        s.first_seen,
                        s.last_seen
                    );
                    println!();
                    for c in &changes {
                        print!("{}", render_change(c));
                    }
                    if let Some(ev) = &s.evidence {
                        println!("\npoisoning evidence:");
                        for e in ev.as_array().into_iter().flatten() {
                            println!(
                                "  {} {}: {}",
                                e["pointer"].as_str().unwrap_or(""),
                                e["rule"].as_str().unwrap_or(""),
                                e["snippet"].as_str().unwrap_or("")
                            );
                        }
                    }
                    println!(
                        "\napprove with: warden tools approve {} {tr} --hash {}",
                        store.dir.display(),
                        s.hash
                    );
                }
                (Some(p), None) => println!(
                    "{tr}: pinned {} (by {} at {}); nothing held back",
                    p.hash, p.approved_by, p.approved_at
                ),
                (None, None) => println!(
                    "{tr}: never seen by the gateway (it is pinned or held back the first time an agent lists or calls it)"
                ),
            },
        }
        Ok(if sighting.is_some() {
            output::EXIT_FINDINGS
        } else {
            output::EXIT_OK
        })
    })
}

fn approve(
    store: StoreArgs,
    tool: &str,
    hash: Option<String>,
    by: Option<String>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let inv = match load_inventory(&store.dir, format) {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    let tr = match tool_ref(&inv, tool) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(output::EXIT_UNUSABLE());
        }
    };
    let by = match by {
        Some(h) if !inv.humans.contains_key(&h) => {
            eprintln!(
                "error: --by {h}: no such human in the inventory (humans: {})",
                inv.humans.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            return Ok(output::EXIT_UNUSABLE());
        }
        Some(h) => h,
        None => format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        ),
    };
    runtime()?.block_on(async {
        let st = store.open(true, Durability::Full).await?;
        let before = st.tool_pin(&tr.connector, &tr.tool).await?;
        let outcome = st
            .approve_tool_sighting(&tr.connector, &tr.tool, hash.as_deref(), &by)
            .await?;
        let code = match outcome {
            ApproveOutcome::Approved(pin) => {
                let mut ev = AuditEvent::now("tool_approved");
                ev.tool = Some(tr.qualified());
                ev.outcome = Some("approved".into());
                ev.root_human = Some(by.clone());
                ev.detail.insert("hash".into(), json!(pin.hash));
                ev.detail
                    .insert("previous_hash".into(), json!(before.map(|p| p.hash)));
                ev.detail.insert("approved_by".into(), json!(by));
                st.append_audit(&ev).await?;
                match format {
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({"approved": pin}))?
                    ),
                    Format::Text => println!(
                        "approved {tr} at {} (by {by}); a running gateway serves it at the next list or call",
                        pin.hash
                    ),
                }
                output::EXIT_OK
            }
            ApproveOutcome::NothingToApprove { pinned } => {
                match pinned {
                    Some(p) => eprintln!(
                        "error: nothing to approve: {tr} is pinned at {} and no other definition is held back",
                        p.hash
                    ),
                    None => eprintln!(
                        "error: nothing to approve: the gateway has not seen {tr} yet (it records the definition the first time an agent lists or calls it)"
                    ),
                }
                output::EXIT_UNUSABLE()
            }
            ApproveOutcome::HashMismatch { expected, current } => {
                eprintln!(
                    "error: {tr} now holds back {current}, not {expected}: review it again with `warden tools diff {} {tr}`",
                    store.dir.display()
                );
                output::EXIT_FINDINGS
            }
        };
        st.close().await;
        Ok(code)
    })
}
