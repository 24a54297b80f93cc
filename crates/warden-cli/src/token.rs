//! `warden token issue|list|revoke`: agent bearer tokens for the MCP endpoint.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use warden_store::{AuditEvent, Durability};

use crate::output::{self, Format};
use crate::up::{StoreArgs, load_inventory, runtime};

#[derive(Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    cmd: TokenCmd,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Issue a bearer token for an agent; it is printed once and only its hash is kept.
    Issue {
        #[arg(long)]
        agent: String,
        /// Lifetime, e.g. 24h, 30m, 7d.
        #[arg(long, default_value = "24h")]
        ttl: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// List tokens (ids, agents, expiry; never the secrets).
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Revoke a token by id.
    Revoke {
        id: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

pub fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match args.cmd {
        TokenCmd::Issue {
            agent,
            ttl,
            store,
            format,
        } => {
            let inv = match load_inventory(&store.dir, format) {
                Ok(i) => i,
                Err(code) => return Ok(code),
            };
            if !inv.agents.contains_key(&agent) {
                eprintln!(
                    "error: no agent `{agent}` in {} (agents: {})",
                    store.dir.display(),
                    inv.agents.keys().cloned().collect::<Vec<_>>().join(", ")
                );
                return Ok(output::EXIT_UNUSABLE());
            }
            let ttl = match warden_core::parse_duration(&ttl) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: --ttl: {e}");
                    return Ok(output::EXIT_UNUSABLE());
                }
            };
            rt.block_on(async {
                let st = store.open(false, Durability::Full).await?;
                let t = st.issue_token(&agent, Some(ttl.as_millis() as i64), None).await?;
                let mut ev = AuditEvent::now("token");
                ev.agent = Some(agent.clone());
                ev.outcome = Some("issued".into());
                ev.detail.insert("token_id".into(), t.id.clone().into());
                ev.detail.insert("expires_at".into(), json!(t.expires_at));
                st.append_audit(&ev).await?;
                match format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&t)?),
                    Format::Text => {
                        println!("{}", t.token);
                        eprintln!(
                            "token {} for agent {agent}, expires {}. Shown once: only its hash is stored.\nUse it as: Authorization: Bearer <token>",
                            t.id,
                            t.expires_at.clone().unwrap_or_else(|| "never".into())
                        );
                    }
                }
                Ok(output::EXIT_OK)
            })
        }
        TokenCmd::List { store, format } => rt.block_on(async {
            let st = store.open(true, Durability::Full).await?;
            let tokens = st.list_tokens().await?;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"tokens": tokens}))?
                ),
                Format::Text => {
                    println!(
                        "{:<14} {:<22} {:<8} {:<25} created",
                        "id", "agent", "status", "expires"
                    );
                    for t in &tokens {
                        println!(
                            "{:<14} {:<22} {:<8} {:<25} {}",
                            t.id,
                            t.agent,
                            t.status,
                            t.expires_at.clone().unwrap_or_else(|| "never".into()),
                            t.created_at
                        );
                    }
                }
            }
            Ok(output::EXIT_OK)
        }),
        TokenCmd::Revoke { id, store, format } => rt.block_on(async {
            let st = store.open(true, Durability::Full).await?;
            let agent = match st.revoke_token(&id).await {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(output::EXIT_UNUSABLE());
                }
            };
            let mut ev = AuditEvent::now("token");
            ev.agent = Some(agent.clone());
            ev.outcome = Some("revoked".into());
            ev.detail.insert("token_id".into(), id.clone().into());
            st.append_audit(&ev).await?;
            match format {
                Format::Json => println!("{}", json!({"revoked": id, "agent": agent})),
                Format::Text => println!("revoked token {id} of agent {agent}"),
            }
            Ok(output::EXIT_OK)
        }),
    }
}
