//! `warden up [DIR]`: the gateway, the MCP endpoint and the admin API in one process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use warden_core::Inventory;
use warden_gateway::{Gateway, GatewayOptions};
use warden_server::{AppState, ServerOptions};
use warden_store::{Durability, RecoveredJournal, Store};

use crate::output::{self, Format};

/// The inventory directory and the store every store-touching command shares.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Inventory directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// SQLite database (default: DIR/.warden/warden.db), or a `postgres://` URL shared by
    /// several gateway replicas.
    #[arg(long)]
    pub db: Option<PathBuf>,
}

impl StoreArgs {
    pub fn db_path(&self) -> PathBuf {
        self.db
            .clone()
            .unwrap_or_else(|| self.dir.join(".warden").join("warden.db"))
    }

    /// Where gateway processes on this store keep their audit journals: beside the SQLite
    /// file, or under `DIR/.warden/` for PostgreSQL (each replica's host has its own).
    pub fn journal_dir(&self) -> PathBuf {
        if self.postgres_url().is_some() {
            return self.dir.join(".warden").join("audit-journal");
        }
        let mut p = self.db_path().into_os_string();
        p.push(".audit-journal");
        p.into()
    }

    fn postgres_url(&self) -> Option<&str> {
        self.db
            .as_ref()
            .and_then(|p| p.to_str())
            .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    }

    /// Opens the store for reading the audit trail: first copies into the chain what
    /// stopped gateway processes left in their journals.
    pub async fn open_audit(&self) -> anyhow::Result<Store> {
        let st = self.open(true, Durability::Full).await?;
        let recovered = st.recover_audit_journals(&self.journal_dir()).await?;
        report_recovered(&recovered);
        Ok(st)
    }

    /// Opens the store; `must_exist` refuses to create a new, empty one.
    pub async fn open(&self, must_exist: bool, durability: Durability) -> anyhow::Result<Store> {
        if let Some(url) = self.postgres_url() {
            return Ok(Store::connect_url(url, durability).await?);
        }
        let path = self.db_path();
        if must_exist && !path.exists() {
            anyhow::bail!(
                "no store at {} (it is created by `warden up` or `warden token issue`)",
                path.display()
            );
        }
        Ok(Store::open(&path, durability).await?)
    }
}

/// Says on stderr what was recovered from stopped processes' audit journals.
pub fn report_recovered(recovered: &[RecoveredJournal]) {
    for r in recovered.iter().filter(|r| r.records > 0) {
        eprintln!(
            "warden: recovered {} audit record(s) from {} (a gateway process that stopped before copying them into the store)",
            r.records,
            r.path.display()
        );
    }
}

/// Loads the inventory or prints the load error (exit 2).
pub fn load_inventory(dir: &Path, format: Format) -> Result<Inventory, ExitCode> {
    Inventory::load(dir).map_err(|e| crate::check::report_load_error(&e, format))
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The serving runtime of `warden up`: `workers` async worker threads, else
/// `TOKIO_WORKER_THREADS`, else half the cores (at least one). The audit writer, SQLite and
/// the journal's fsync have threads of their own, so on a small host one worker per two
/// cores leaves them room; measured on 2 cores (bench/gateway/RESULTS.md, 2026-12-04): one
/// worker instead of two lowered the added p50 by 0.02–0.04 ms and raised the maximum
/// calls/s (11,053 vs 10,185).
pub fn serving_runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let workers = workers
        .or_else(|| {
            std::env::var("TOKIO_WORKER_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() / 2))
        .max(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on (MCP endpoint at /mcp). Loopback by default.
    #[arg(long, default_value = "127.0.0.1:7400")]
    listen: SocketAddr,
    /// `full` fsyncs every commit; `normal` survives kill -9 but not power loss.
    #[arg(long, default_value = "full")]
    durability: Durability,
    /// Largest accepted MCP request body, bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    max_body: usize,
    /// Async worker threads serving requests (default: TOKIO_WORKER_THREADS, else half the
    /// cores, at least 1; the audit writer and the store run on threads of their own).
    #[arg(long)]
    workers: Option<usize>,
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let inv = match load_inventory(&args.store.dir, Format::Text) {
        Ok(i) => Arc::new(i),
        Err(code) => return Ok(code),
    };
    let decider = match crate::gateway::decider(inv.clone()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(output::EXIT_UNUSABLE());
        }
    };
    let rt = serving_runtime(args.workers)?;
    rt.block_on(async move {
        let store = args.store.open(false, args.durability).await?;
        let (writer, recovered) = store
            .journaled_audit_writer(&args.store.journal_dir())
            .await?;
        report_recovered(&recovered);
        let gate = crate::approvals::gate(&inv, &store, &args.store)?;
        let gw = Arc::new(
            Gateway::new(inv.clone(), decider, writer, GatewayOptions::default())
                .with_approvals(gate.clone())
                .with_pins(store.clone())
                .with_handoffs(warden_gateway::handoff::Handoffs::start(store.clone()).await?),
        );
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.listen);
                return Ok(output::EXIT_UNUSABLE());
            }
        };
        let addr = listener.local_addr()?;
        let dir = args.store.dir.display().to_string();
        let db = args.store.db_path();
        let db_flag = match &args.store.db {
            Some(p) => format!(" --db {}", p.display()),
            None => String::new(),
        };
        println!("MCP endpoint: http://{addr}/mcp");
        println!("admin API:    http://{addr}/healthz");
        println!(
            "console:      http://{addr}/console/ (log in: warden console login-token --as HUMAN)"
        );
        println!(
            "store:        {} (durability {:?})",
            db.display(),
            args.durability
        );
        println!(
            "inventory:    {dir} ({} agents, {} connectors)",
            inv.agents.len(),
            inv.connectors.len()
        );
        println!("agent token:  warden token issue --agent AGENT {dir}{db_flag}");
        let mut ev = gw.event("gateway", None, None);
        ev.outcome = Some("started".into());
        ev.detail.insert("listen".into(), addr.to_string().into());
        gw.audit().append(&ev).await?;
        let state = AppState::new(
            gw.clone(),
            store.clone(),
            ServerOptions {
                max_body: args.max_body,
                ..ServerOptions::default()
            },
        );
        warden_server::serve_with(
            listener,
            state,
            crate::approvals::routes(inv.clone(), &store, &gate, addr),
            shutdown_signal(),
        )
        .await?;
        let mut ev = gw.event("gateway", None, None);
        ev.outcome = Some("stopped".into());
        gw.audit().append(&ev).await?;
        gw.audit().close().await;
        store.close().await;
        eprintln!("warden: stopped; audit trail flushed");
        Ok(output::EXIT_OK)
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    eprintln!("warden: shutting down");
}
