//! `warden handoff revoke TASK`: ends a delegation before it expires.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use warden_store::context::RevokeHandoff;
use warden_store::time::now_ms;
use warden_store::{AuditEvent, Durability};

use crate::output::{self, Format};
use crate::up::{StoreArgs, runtime};

#[derive(Args)]
pub struct HandoffArgs {
    #[command(subcommand)]
    cmd: HandoffCmd,
}

#[derive(Subcommand)]
enum HandoffCmd {
    /// Revoke a handoff's delegation: the task's token, and every token handed on from it,
    /// stop working within a second on every gateway sharing the store.
    Revoke {
        /// The task id (`task_…`, from the `warden.handoff` answer or the `handoff` audit record).
        task: String,
        /// Who revokes it (recorded in the audit trail).
        #[arg(long, default_value = "cli")]
        by: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

pub fn run(args: HandoffArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let HandoffCmd::Revoke {
        task,
        by,
        store,
        format,
    } = args.cmd;
    rt.block_on(async {
        let st = store.open(true, Durability::Full).await?;
        let outcome = st.revoke_handoff(&task, &by, now_ms()).await?;
        let (code, text, state) = match &outcome {
            RevokeHandoff::Revoked { .. } => (
                output::EXIT_OK,
                format!(
                    "revoked the delegation of {task}: its token and every token handed on from it stop working within a second"
                ),
                "revoked",
            ),
            RevokeHandoff::AlreadyRevoked => (
                output::EXIT_OK,
                format!("the delegation of {task} was already revoked"),
                "already_revoked",
            ),
            RevokeHandoff::NoSuchTask => (
                output::EXIT_UNUSABLE(),
                format!("no handoff task `{task}` in this store"),
                "no_such_task",
            ),
        };
        if let RevokeHandoff::Revoked { revocation_id } = &outcome {
            let mut ev = AuditEvent::now("handoff");
            ev.outcome = Some("revoked".into());
            ev.detail.insert("task".into(), json!(task));
            ev.detail.insert("by".into(), json!(by));
            ev.detail
                .insert("revocation_id".into(), json!(revocation_id));
            st.append_audit(&ev).await?;
        }
        match format {
            Format::Json => println!("{}", json!({"task": task, "state": state})),
            Format::Text if code == output::EXIT_OK => println!("{text}"),
            Format::Text => eprintln!("error: {text}"),
        }
        Ok(code)
    })
}
