//! `warden gateway stdio`: the gateway speaking MCP on stdin/stdout for one agent, so a
//! desktop client's configuration can launch Warden in place of the server it wraps.
//! One line per message; invalid lines are answered with a parse error and skipped.

use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::gateway::{Gateway, Principal, codes, error};

/// Serves until `input` ends, then waits for in-flight calls and flushes the audit trail.
pub async fn serve<R, W>(
    gw: Arc<Gateway>,
    who: Principal,
    input: R,
    mut output: W,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let session = gw.create_session(&who);
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    // Forwarded notifications go out on stdout like every other message.
    session.set_listener(tx.clone());
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let mut line = serde_json::to_vec(&msg).unwrap_or_default();
            line.push(b'\n');
            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(input).lines();
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let msg: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                let ev = gw
                    .event("rejected", Some(&who), Some(&session))
                    .with_detail("error", format!("parse error: {e}"));
                gw.audit().append_nowait(&ev).await;
                let _ = tx.send(error(
                    &Value::Null,
                    codes::PARSE_ERROR,
                    &format!("Parse error: {e}"),
                    None,
                ));
                continue;
            }
        };
        let gw = gw.clone();
        let who = who.clone();
        let session = session.clone();
        let tx = tx.clone();
        tasks.spawn(async move {
            if let Some(resp) = gw.handle(&who, Some(&session), msg, Some(tx.clone())).await {
                let _ = tx.send(resp);
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    session.clear_listener();
    drop(tx);
    let _ = writer.await;
    gw.audit().flush().await;
    Ok(())
}
