//! `warden gateway stdio --agent A [DIR]`, and the wiring of the policy stage.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use warden_core::Inventory;
use warden_gateway::{CedarDecider, Decider, Gateway, GatewayOptions, Principal};
use warden_store::Durability;

use crate::output::{self, Format};
use crate::up::{StoreArgs, load_inventory, runtime};

#[derive(Args)]
pub struct GatewayArgs {
    #[command(subcommand)]
    cmd: GatewayCmd,
}

#[derive(Subcommand)]
enum GatewayCmd {
    /// Speak MCP on stdin/stdout as agent A (for desktop clients' configs).
    Stdio {
        #[arg(long)]
        agent: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// The policy stage for an inventory: its Cedar policies (an invalid policy set stops the
/// gateway from starting rather than denying everything silently).
pub fn decider(inv: Arc<Inventory>) -> anyhow::Result<Arc<dyn Decider>> {
    let d = CedarDecider::load(&inv)
        .map_err(|e| anyhow::anyhow!("policies of {}: {e}", inv.root.display()))?;
    Ok(Arc::new(d))
}

pub fn run(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    let GatewayCmd::Stdio { agent, store } = args.cmd;
    let inv = match load_inventory(&store.dir, Format::Text) {
        Ok(i) => Arc::new(i),
        Err(code) => return Ok(code),
    };
    if !inv.agents.contains_key(&agent) {
        eprintln!("error: no agent `{agent}` in {}", store.dir.display());
        return Ok(output::EXIT_UNUSABLE());
    }
    let decider = match decider(inv.clone()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(output::EXIT_UNUSABLE());
        }
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let st = store.open(false, Durability::Full).await?;
        let (writer, recovered) = st.journaled_audit_writer(&store.journal_dir()).await?;
        crate::up::report_recovered(&recovered);
        let gate = crate::approvals::gate(&inv, &st, &store)?;
        let gw = Arc::new(
            Gateway::new(inv.clone(), decider, writer, GatewayOptions::default())
                .with_approvals(gate)
                .with_pins(st.clone())
                .with_handoffs(warden_gateway::handoff::Handoffs::start(st.clone()).await?),
        );
        let who = Principal::direct(&inv, &agent, None);
        let mut ev = gw.event("session", Some(&who), None);
        ev.outcome = Some("stdio".into());
        gw.audit().append(&ev).await?;
        warden_gateway::stdio::serve(gw.clone(), who, tokio::io::stdin(), tokio::io::stdout())
            .await?;
        gw.shutdown().await;
        gw.audit().close().await;
        st.close().await;
        Ok(output::EXIT_OK)
    })
}
