//! `warden audit verify|tail|export`: the hash-chained audit trail.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use warden_store::AuditRecord;

use crate::output::{self, Format};
use crate::up::{StoreArgs, runtime};

#[derive(Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    cmd: AuditCmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Jsonl,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute the hash chain; exit 1 naming the first modified, deleted, inserted or
    /// reordered record.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// A head hash saved earlier (from a previous verify): also catches a truncated tail.
        #[arg(long)]
        expect_head: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show the latest records.
    Tail {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: i64,
        /// Keep printing new records as they are appended.
        #[arg(long)]
        follow: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Write every record (seq, prev_hash, hash, event) as JSON Lines to stdout.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
}

fn text_line(r: &AuditRecord) -> String {
    let e = &r.event;
    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
    let reasons = e
        .get("reasons")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let policies = e
        .get("policies")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    format!(
        "{:>6} {} {:<12} agent={} tool={} decision={} outcome={}{}{}",
        r.seq,
        s("time"),
        s("kind"),
        s("agent"),
        s("tool"),
        s("decision"),
        s("outcome"),
        if policies.is_empty() {
            String::new()
        } else {
            format!(" policies={policies}")
        },
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" reasons=\"{reasons}\"")
        },
    )
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async move {
        match args.cmd {
            AuditCmd::Verify {
                store,
                expect_head,
                format,
            } => {
                let st = match store.open_audit().await {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        return Ok(output::EXIT_UNUSABLE());
                    }
                };
                let report = st.verify_audit(expect_head.as_deref()).await?;
                match format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                    Format::Text => match &report.problem {
                        None => println!(
                            "ok: {} records, chain intact, head {}",
                            report.records, report.head
                        ),
                        Some(p) => println!(
                            "FAILED at record {}: {} ({})",
                            p.seq,
                            serde_json::to_value(p.kind)?.as_str().unwrap_or("?"),
                            p.message
                        ),
                    },
                }
                Ok(if report.ok {
                    output::EXIT_OK
                } else {
                    output::EXIT_FINDINGS
                })
            }
            AuditCmd::Tail {
                store,
                lines,
                follow,
                format,
            } => {
                let st = match store.open_audit().await {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        return Ok(output::EXIT_UNUSABLE());
                    }
                };
                let recs = st.audit_tail(lines).await?;
                let mut last = recs.last().map(|r| r.seq).unwrap_or(0);
                if last == 0 && follow {
                    last = 0;
                }
                match (format, follow) {
                    (Format::Json, false) => println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({"records": recs}))?
                    ),
                    (Format::Json, true) => recs
                        .iter()
                        .for_each(|r| println!("{}", serde_json::to_string(r).unwrap_or_default())),
                    (Format::Text, _) => recs.iter().for_each(|r| println!("{}", text_line(r))),
                }
                if follow {
                    loop {
                        let more = st.audit_after(last, 500).await?;
                        if more.is_empty() {
                            tokio::time::sleep(Duration::from_millis(250)).await;
                            continue;
                        }
                        for r in &more {
                            match format {
                                Format::Json => println!("{}", serde_json::to_string(r)?),
                                Format::Text => println!("{}", text_line(r)),
                            }
                            last = r.seq;
                        }
                    }
                }
                Ok(output::EXIT_OK)
            }
            AuditCmd::Export {
                store,
                format: ExportFormat::Jsonl,
            } => {
                let st = match store.open_audit().await {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        return Ok(output::EXIT_UNUSABLE());
                    }
                };
                use std::io::Write;
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                let mut after = 0;
                loop {
                    let page = st.audit_after(after, 5000).await?;
                    if page.is_empty() {
                        break;
                    }
                    for r in &page {
                        writeln!(out, "{}", serde_json::to_string(r)?)?;
                        after = r.seq;
                    }
                }
                out.flush()?;
                Ok(output::EXIT_OK)
            }
        }
    })
}
