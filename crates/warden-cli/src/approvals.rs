//! `warden approvals list|show|approve|deny|approver-token|approver-tokens|revoke-approver-token` and `warden console login-token`:
//! answering approval requests from a terminal, against the same store as `warden up`.
//!
//! Exit codes: 0 done; 1 the answer was refused (not an eligible approver, separation of
//! duties, no longer pending, already answered); 2 unusable input (unknown id or human,
//! no store, empty reason).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use warden_approval::{
    ApprovalError, ApprovalRequest, ApprovalStore, ListFilter, Status, Via, Vote, VoteKind,
    diff_args, eligible_approvers, ops,
};
use warden_core::Inventory;
use warden_store::time::{now_ms, rfc3339};
use warden_store::{Durability, Store};

use crate::output::{self, Format};
use crate::up::{StoreArgs, load_inventory, runtime};

#[derive(Args)]
pub struct ApprovalsArgs {
    #[command(subcommand)]
    cmd: ApprovalsCmd,
}

#[derive(Subcommand)]
enum ApprovalsCmd {
    /// List approval requests (pending by default), newest first.
    List {
        /// pending, approved, denied, expired, consumed or all.
        #[arg(long, default_value = "pending")]
        status: String,
        /// Only requests of this agent.
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show one request in full: arguments (secrets redacted), changes since the last
    /// approved call of the same agent and tool, session history, votes, who may answer.
    Show {
        id: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Approve a request as an approver (a human of the inventory).
    Approve(AnswerArgs),
    /// Deny a request as an approver.
    Deny(AnswerArgs),
    /// Issue an admin API token for an approver (answers coming back from webhooks).
    ApproverToken {
        #[arg(long = "as", value_name = "HUMAN")]
        human: String,
        /// Lifetime, e.g. 30d; default: until revoked.
        #[arg(long)]
        ttl: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// List approver tokens (id, human, expiry, revocation; never the secret).
    ApproverTokens {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Revoke an approver token by id: the admin API refuses it from then on.
    RevokeApproverToken {
        id: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

#[derive(Args)]
struct AnswerArgs {
    id: String,
    /// The approver answering (a human id of the inventory).
    #[arg(long = "as", value_name = "HUMAN")]
    human: String,
    /// Why; recorded in the request and the audit trail.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Args)]
pub struct ConsoleArgs {
    #[command(subcommand)]
    cmd: ConsoleCmd,
}

#[derive(Subcommand)]
enum ConsoleCmd {
    /// Issue a one-time login token for the web console (only its hash is stored).
    LoginToken {
        #[arg(long = "as", value_name = "HUMAN")]
        human: String,
        /// How long the token can be used to log in.
        #[arg(long, default_value = "15m")]
        ttl: String,
        /// Where `warden up` serves, for the printed login link.
        #[arg(long, default_value = "http://127.0.0.1:7400")]
        url: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

fn parse_status(s: &str) -> Result<Vec<Status>, String> {
    if s == "all" {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|p| {
            Status::parse(p.trim()).ok_or_else(|| {
                format!("unknown status `{p}` (pending, approved, denied, expired, consumed, all)")
            })
        })
        .collect()
}

fn unusable(msg: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {msg}");
    Ok(output::EXIT_UNUSABLE())
}

fn line(r: &ApprovalRequest) -> String {
    format!(
        "{:<24} {:<9} {:<18} {:<28} {}/{}  expires {}",
        r.id,
        r.status.as_str(),
        r.agent,
        r.tool,
        r.approvals().len(),
        r.approvals_required,
        rfc3339(r.expires_ms)
    )
}

async fn detail(
    st: &Store,
    inv: &Inventory,
    r: &ApprovalRequest,
) -> anyhow::Result<serde_json::Value> {
    let previous = st
        .last_approved(&r.agent, &r.tool, r.created_ms)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut v = serde_json::to_value(r)?;
    v["eligible_approvers"] = json!(eligible_approvers(inv, r));
    v["created_at"] = json!(rfc3339(r.created_ms));
    v["expires_at"] = json!(rfc3339(r.expires_ms));
    v["previous_approved"] = match &previous {
        Some(p) => {
            json!({"id": p.id, "created_at": rfc3339(p.created_ms), "changes": diff_args(&p.display_args, &r.display_args)})
        }
        None => serde_json::Value::Null,
    };
    Ok(v)
}

fn print_detail(v: &serde_json::Value, r: &ApprovalRequest) {
    println!("approval   {}", r.id);
    println!("status     {} ({})", r.status, r.answer_summary());
    println!(
        "agent      {} (owner {})",
        r.agent,
        r.owner.as_deref().unwrap_or("none")
    );
    if !r.delegation.is_empty() {
        println!("delegation {} → {}", r.delegation.join(" → "), r.agent);
    }
    println!(
        "tool       {}  effects [{}]{}",
        r.tool,
        r.effects.join(", "),
        if r.irreversible { " irreversible" } else { "" }
    );
    println!("policies   {}", r.policies.join(", "));
    println!("reasons    {}", r.reasons.join("; "));
    println!(
        "approvers  {} ({} required{})",
        r.approvers.join(", "),
        r.approvals_required,
        if r.separation_of_duties {
            ", separation of duties"
        } else {
            ""
        }
    );
    println!(
        "eligible   {}",
        v["eligible_approvers"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    println!(
        "created    {}   expires {}",
        rfc3339(r.created_ms),
        rfc3339(r.expires_ms)
    );
    if r.tainted {
        println!(
            "TAINTED    the session read untrusted content ({})",
            r.taint_sources.join(", ")
        );
    }
    println!("digest     {}", r.args_digest);
    println!(
        "arguments (secrets redacted):\n{}",
        serde_json::to_string_pretty(&r.display_args).unwrap_or_default()
    );
    match v.get("previous_approved") {
        Some(p) if !p.is_null() => {
            let changes = p["changes"].as_array().cloned().unwrap_or_default();
            println!(
                "changes since the last approved call {}:",
                p["id"].as_str().unwrap_or("")
            );
            if changes.is_empty() {
                println!("  none");
            }
            for c in changes {
                println!(
                    "  {} {}: {} → {}",
                    c["change"].as_str().unwrap_or(""),
                    c["path"].as_str().unwrap_or(""),
                    c.get("before").map(|x| x.to_string()).unwrap_or_default(),
                    c.get("after").map(|x| x.to_string()).unwrap_or_default()
                );
            }
        }
        _ => println!("changes: no earlier approved call of this agent and tool"),
    }
    if !r.history.is_empty() {
        println!("session history:");
        for h in &r.history {
            let f = |k: &str| h.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            println!(
                "  {} {} {} {} {}",
                f("time"),
                f("kind"),
                f("tool"),
                f("decision"),
                f("outcome")
            );
        }
    }
    for vote in &r.votes {
        println!(
            "vote       {} {} via {} at {}: {}",
            vote.human,
            vote.kind.as_str(),
            vote.via.as_str(),
            rfc3339(vote.at_ms),
            vote.reason
        );
    }
}

pub fn run(args: ApprovalsArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match args.cmd {
        ApprovalsCmd::List {
            status,
            agent,
            store,
            format,
        } => {
            let statuses = match parse_status(&status) {
                Ok(s) => s,
                Err(e) => return unusable(e),
            };
            rt.block_on(async {
                let st = store.open(true, Durability::Full).await?;
                let filter = ListFilter { statuses, agent, limit: 0 };
                let list = ops::list(&st, &filter, now_ms()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                match format {
                    Format::Json => {
                        let count = |s: Status| list.iter().filter(|r| r.status == s).count();
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&json!({
                                "approvals": list,
                                "summary": {"total": list.len(), "pending": count(Status::Pending), "approved": count(Status::Approved), "denied": count(Status::Denied), "expired": count(Status::Expired), "consumed": count(Status::Consumed)}
                            }))?
                        );
                    }
                    Format::Text => {
                        println!("{:<24} {:<9} {:<18} {:<28} appr expires", "id", "status", "agent", "tool");
                        for r in &list {
                            println!("{}", line(r));
                        }
                        if list.is_empty() {
                            eprintln!("no approval requests with status {status}");
                        }
                    }
                }
                Ok(output::EXIT_OK)
            })
        }
        ApprovalsCmd::Show { id, store, format } => {
            let inv = match load_inventory(&store.dir, format) {
                Ok(i) => i,
                Err(code) => return Ok(code),
            };
            rt.block_on(async {
                let st = store.open(true, Durability::Full).await?;
                let r = match ops::get(&st, &id, now_ms()).await {
                    Ok(r) => r,
                    Err(ApprovalError::NotFound(_)) => {
                        return unusable(format!("no approval request `{id}`"));
                    }
                    Err(e) => return Err(anyhow::anyhow!("{e}")),
                };
                let v = detail(&st, &inv, &r).await?;
                match format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
                    Format::Text => print_detail(&v, &r),
                }
                Ok(output::EXIT_OK)
            })
        }
        ApprovalsCmd::Approve(a) => answer(&rt, a, VoteKind::Approve),
        ApprovalsCmd::Deny(a) => answer(&rt, a, VoteKind::Deny),
        ApprovalsCmd::ApproverToken {
            human,
            ttl,
            store,
            format,
        } => {
            let inv = match load_inventory(&store.dir, format) {
                Ok(i) => i,
                Err(code) => return Ok(code),
            };
            if !inv.humans.contains_key(&human) {
                return unusable(format!("no human `{human}` in {}", store.dir.display()));
            }
            let ttl_ms = match ttl.as_deref().map(warden_core::parse_duration).transpose() {
                Ok(d) => d.map(|d| d.as_millis() as i64),
                Err(e) => return unusable(format!("--ttl: {e}")),
            };
            rt.block_on(async {
                let st = store.open(false, Durability::Full).await?;
                let t = st.issue_approver_token(&human, ttl_ms).await?;
                let mut ev = warden_store::AuditEvent::now("token");
                ev.outcome = Some("issued".into());
                ev.detail.insert("approver".into(), json!(human));
                ev.detail.insert("token_id".into(), json!(t.id));
                st.append_audit(&ev).await?;
                match format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&t)?),
                    Format::Text => {
                        println!("{}", t.token);
                        eprintln!("approver token {} for {human}; shown once, only its hash is stored.\nUse it as: Authorization: Bearer <token> on POST /api/approvals/ID/approve|deny", t.id);
                    }
                }
                Ok(output::EXIT_OK)
            })
        }
        ApprovalsCmd::ApproverTokens { store, format } => rt.block_on(async {
            let st = store.open(true, Durability::Full).await?;
            let tokens = st.list_approver_tokens().await?;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "approver_tokens": tokens }))?
                ),
                Format::Text => {
                    if tokens.is_empty() {
                        println!("no approver tokens");
                    }
                    for t in &tokens {
                        let status = if t.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        println!(
                            "{:<14} {:<28} {:<8} expires {}",
                            t.id,
                            t.human,
                            status,
                            t.expires_at.as_deref().unwrap_or("never")
                        );
                    }
                }
            }
            Ok(output::EXIT_OK)
        }),
        ApprovalsCmd::RevokeApproverToken { id, store, format } => rt.block_on(async {
            let st = store.open(true, Durability::Full).await?;
            let human = match st.revoke_approver_token(&id).await {
                Ok(h) => h,
                Err(e) => return unusable(e),
            };
            let mut ev = warden_store::AuditEvent::now("token");
            ev.outcome = Some("revoked".into());
            ev.detail.insert("approver".into(), json!(human));
            ev.detail.insert("token_id".into(), json!(id));
            st.append_audit(&ev).await?;
            match format {
                Format::Json => println!("{}", json!({"revoked": id, "approver": human})),
                Format::Text => println!("revoked approver token {id} of {human}"),
            }
            Ok(output::EXIT_OK)
        }),
    }
}

fn answer(rt: &tokio::runtime::Runtime, a: AnswerArgs, kind: VoteKind) -> anyhow::Result<ExitCode> {
    let inv = match load_inventory(&a.store.dir, a.format) {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    if !inv.humans.contains_key(&a.human) {
        return unusable(format!(
            "no human `{}` in {}",
            a.human,
            a.store.dir.display()
        ));
    }
    if a.reason.trim().is_empty() {
        return unusable("--reason must not be empty: it is recorded with your answer");
    }
    rt.block_on(async {
        let st = a.store.open(true, Durability::Full).await?;
        let result = ops::vote(
            &st,
            &inv,
            &a.id,
            &a.human,
            kind,
            &a.reason,
            Via::Cli,
            now_ms(),
        )
        .await;
        match result {
            Ok(r) => {
                let outcome = if r.status == Status::Pending {
                    "pending"
                } else {
                    r.status.as_str()
                };
                st.audit_approval(&r, outcome, r.votes.last(), None).await?;
                match a.format {
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({"approval": r, "outcome": outcome}))?
                    ),
                    Format::Text => println!(
                        "{}: {} ({}/{} approvals)",
                        r.id,
                        r.answer_summary(),
                        r.approvals().len(),
                        r.approvals_required
                    ),
                }
                Ok(output::EXIT_OK)
            }
            Err(ApprovalError::NotFound(_)) => unusable(format!("no approval request `{}`", a.id)),
            Err(ApprovalError::EmptyReason) => unusable("--reason must not be empty"),
            Err(
                e @ (ApprovalError::Store(_)
                | ApprovalError::Conflict(_)
                | ApprovalError::Random(_)),
            ) => Err(anyhow::anyhow!("{e}")),
            Err(e) => {
                // Refused: audited with who tried and why.
                if let Ok(Some(r)) = st.get(&a.id).await {
                    let vote = Vote {
                        human: a.human.clone(),
                        kind,
                        reason: a.reason.trim().to_string(),
                        at_ms: now_ms(),
                        via: Via::Cli,
                    };
                    st.audit_approval(
                        &r,
                        "refused",
                        Some(&vote),
                        Some(("error", json!(e.to_string()))),
                    )
                    .await?;
                }
                match a.format {
                    Format::Json => println!("{}", json!({"refused": e.to_string(), "id": a.id})),
                    Format::Text => eprintln!("refused: {e}"),
                }
                Ok(output::EXIT_FINDINGS)
            }
        }
    })
}

pub fn run_console(args: ConsoleArgs) -> anyhow::Result<ExitCode> {
    let ConsoleCmd::LoginToken {
        human,
        ttl,
        url,
        store,
        format,
    } = args.cmd;
    let inv = match load_inventory(&store.dir, format) {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    if !inv.humans.contains_key(&human) {
        return unusable(format!(
            "no human `{human}` in {} (console users are the inventory's humans)",
            store.dir.display()
        ));
    }
    let ttl = match warden_core::parse_duration(&ttl) {
        Ok(d) => d,
        Err(e) => return unusable(format!("--ttl: {e}")),
    };
    let rt = runtime()?;
    rt.block_on(async {
        let st = store.open(false, Durability::Full).await?;
        let t = st.issue_console_login(&human, ttl.as_millis() as i64).await?;
        let mut ev = warden_store::AuditEvent::now("console");
        ev.outcome = Some("login_token_issued".into());
        ev.detail.insert("human".into(), json!(human));
        st.append_audit(&ev).await?;
        let link = format!("{}/console/login?token={}", url.trim_end_matches('/'), t.token);
        match format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&json!({"human": human, "token": t.token, "expires_at": t.expires_at, "login_url": link}))?),
            Format::Text => {
                println!("{link}");
                eprintln!("one-time console login for {human}, valid until {}; only its hash is stored.", t.expires_at);
            }
        }
        Ok(output::EXIT_OK)
    })
}

/// The approval hold for `warden up` and `warden gateway stdio`: hold time from
/// `settings.approval_hold` (default 60 s), webhooks signed with `WARDEN_WEBHOOK_SECRET`
/// or a key kept next to the store (`webhook.key`, created once, mode 0600).
pub fn gate(
    inv: &Inventory,
    st: &Store,
    store: &StoreArgs,
) -> anyhow::Result<std::sync::Arc<warden_gateway::approval::ApprovalGate>> {
    let hold = match inv.settings.approval_hold.as_deref() {
        Some(h) => warden_core::parse_duration(h)
            .map_err(|e| anyhow::anyhow!("settings.approval_hold: {e}"))?,
        None => std::time::Duration::from_secs(60),
    };
    let secret = match std::env::var("WARDEN_WEBHOOK_SECRET") {
        Ok(s) if !s.is_empty() => s.into_bytes(),
        _ => webhook_key(store)?,
    };
    let webhooks = warden_gateway::approval::WebhookConfig {
        secret,
        console_url: Default::default(),
        schedule: warden_approval::webhook::RetrySchedule::default(),
        timeout: std::time::Duration::from_secs(10),
    };
    Ok(std::sync::Arc::new(
        warden_gateway::approval::ApprovalGate::new(
            st.clone(),
            hold,
            std::sync::Arc::new(tokio::sync::Notify::new()),
            webhooks,
        ),
    ))
}

fn webhook_key(store: &StoreArgs) -> anyhow::Result<Vec<u8>> {
    let is_url = store
        .db
        .as_ref()
        .and_then(|p| p.to_str())
        .is_some_and(|u| u.contains("://"));
    let dir = if is_url {
        store.dir.join(".warden")
    } else {
        store
            .db_path()
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| store.dir.join(".warden"))
    };
    let path = dir.join("webhook.key");
    if let Ok(k) = std::fs::read_to_string(&path) {
        return Ok(k.trim().as_bytes().to_vec());
    }
    std::fs::create_dir_all(&dir)?;
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    let key = hex::encode(b);
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    match opts.open(&path) {
        Ok(mut f) => f.write_all(key.as_bytes())?,
        // Created concurrently by another process: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Ok(std::fs::read_to_string(&path)?.trim().as_bytes().to_vec());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(key.into_bytes())
}

/// The console and the approval admin API for the server at `addr`.
pub fn routes(
    inv: std::sync::Arc<Inventory>,
    st: &Store,
    gate: &warden_gateway::approval::ApprovalGate,
    addr: std::net::SocketAddr,
) -> warden_console::Router {
    let _ = gate.webhooks.console_url.set(format!("http://{addr}"));
    let state = warden_console::ConsoleState::new(
        inv,
        st.clone(),
        warden_console::ConsoleOptions {
            secure_cookies: !addr.ip().is_loopback(),
            ..Default::default()
        },
        gate.decided.clone(),
    );
    warden_console::mount(state)
}
