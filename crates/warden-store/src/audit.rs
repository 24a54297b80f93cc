//! The append-only, hash-chained audit trail.
//!
//! Every row holds `record` = canonical JSON of `{"seq": n, "event": {...}}`, the previous
//! row's hash and its own hash `sha256(prev_hash || record)` (hex). The first record's
//! `prev_hash` is [`GENESIS`]. Because `seq` is inside the hashed record, renumbering rows
//! is detected as well as editing, deleting, inserting or swapping them. Someone who can
//! rewrite the file *and* recompute every later hash is caught only against a head hash kept
//! elsewhere (`warden audit verify --expect-head`).

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

use crate::canonical::canonical_json;
use crate::{Backend, Store, StoreError};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One thing the gateway (or an administrator) did, as recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AuditEvent {
    /// RFC 3339 UTC time.
    pub time: String,
    /// `auth_failure`, `session`, `list`, `decision`, `outcome`, `rejected`, `rate_limited`,
    /// `token`, `upstream`, …
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Agents between the root human and `agent`, outermost first (empty: called directly).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegation: Vec<String>,
    /// The human on whose behalf the chain runs (the agent's owner for a direct call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_human: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The gateway's id for one request; a `decision` and its `outcome` share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `connector.tool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// sha256 of the canonical JSON of the unredacted arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// `allow`, `deny`, `needs_approval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// `ok`, `tool_error`, `upstream_error`, `denied`, `rejected`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tainted: Option<bool>,
    /// Anything else worth keeping (error text, counts, peer address).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub detail: Map<String, Value>,
}

impl AuditEvent {
    /// An event of `kind` stamped with the current time.
    pub fn now(kind: &str) -> AuditEvent {
        AuditEvent {
            time: crate::time::rfc3339(crate::time::now_ms()),
            kind: kind.to_string(),
            ..Default::default()
        }
    }

    /// Adds one `detail` entry.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> AuditEvent {
        self.detail.insert(key.to_string(), value.into());
        self
    }
}

/// A stored record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub event: Value,
}

/// What an append returns once the record is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub seq: i64,
    pub hash: String,
}

/// How a record differs from an untouched chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Modified,
    Deleted,
    Inserted,
    Reordered,
    /// The chain verifies but does not end at the expected head (truncated or rewritten).
    HeadMismatch,
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The row (by its `seq` column) where the chain first breaks.
    pub seq: i64,
    pub kind: ProblemKind,
    pub message: String,
}

/// The result of [`Store::verify_audit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub records: u64,
    /// Hash of the last record (GENESIS when empty).
    pub head: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// `sha256(prev_hash || record)` as hex.
pub fn chain_hash(prev_hash: &str, record: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(record.as_bytes());
    hex::encode(h.finalize())
}

/// The canonical stored form of an event at `seq`.
pub fn record_text(seq: i64, event: &Value) -> String {
    let mut m = Map::new();
    m.insert("seq".into(), Value::from(seq));
    m.insert("event".into(), event.clone());
    canonical_json(&Value::Object(m))
}

/// sha256 of the canonical JSON of `v` (argument digests).
pub fn digest(v: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(v).as_bytes()))
}

struct Row_ {
    seq: i64,
    record: String,
    prev_hash: String,
    hash: String,
}

/// One row about to be written.
struct NewRow {
    seq: i64,
    record: String,
    prev_hash: String,
    hash: String,
}

/// Chains `events` onto `(seq, hash)`, the current head.
fn chain_rows(head: (i64, &str), events: &[Value]) -> Vec<NewRow> {
    let (mut seq, prev) = head;
    let mut prev = prev.to_string();
    events
        .iter()
        .map(|ev| {
            seq += 1;
            let record = record_text(seq, ev);
            let hash = chain_hash(&prev, &record);
            NewRow {
                seq,
                record,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            }
        })
        .collect()
}

/// Most rows in one INSERT statement (4 bound parameters each).
const ROWS_PER_STATEMENT: usize = 128;

/// Inserts `rows` with as few statements as possible (one per [`ROWS_PER_STATEMENT`]).
async fn insert_rows(conn: &mut AnyConnection, rows: &[NewRow]) -> Result<(), sqlx::Error> {
    use std::fmt::Write;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from("INSERT INTO audit (seq, record, prev_hash, hash) VALUES ");
        for i in 0..chunk.len() {
            let b = i * 4;
            let _ = write!(
                sql,
                "{}(${}, ${}, ${}, ${})",
                if i == 0 { "" } else { ", " },
                b + 1,
                b + 2,
                b + 3,
                b + 4
            );
        }
        // Built from constant text and placeholder numbers only: no value reaches the SQL.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(r.seq)
                .bind(r.record.as_str())
                .bind(r.prev_hash.as_str())
                .bind(r.hash.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

fn receipts(rows: &[NewRow]) -> Vec<Receipt> {
    rows.iter()
        .map(|r| Receipt {
            seq: r.seq,
            hash: r.hash.clone(),
        })
        .collect()
}

/// The fast path of the writer: chains `events` onto the head this writer last wrote and
/// inserts them in one statement, outside an explicit transaction (one round trip to the
/// database). `seq` is the primary key, so if anyone else appended since (the CLI, another
/// replica) the statement fails as a whole on the duplicate `seq` and nothing is written;
/// the caller then takes the locked path, which reads the real head.
async fn append_after_head(
    conn: &mut AnyConnection,
    head: (i64, &str),
    events: &[Value],
) -> Result<Vec<Receipt>, StoreError> {
    let rows = chain_rows(head, events);
    if rows.len() <= ROWS_PER_STATEMENT {
        insert_rows(conn, &rows).await?;
    } else {
        // Several statements must commit together.
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        let inserted = insert_rows(conn, &rows).await.map_err(StoreError::from);
        finish(conn, inserted).await?;
    }
    Ok(receipts(&rows))
}

/// The locked path: takes the write lock, reads the head, appends `events` after it.
async fn append_batch(
    conn: &mut AnyConnection,
    backend: Backend,
    events: &[Value],
) -> Result<Vec<Receipt>, StoreError> {
    // Take the write lock before reading the head, so a second writer (another process,
    // another replica) cannot fork the chain.
    match backend {
        Backend::Sqlite => {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        }
        Backend::Postgres => {
            sqlx::query("BEGIN").execute(&mut *conn).await?;
            if let Err(e) = sqlx::query("LOCK TABLE audit IN EXCLUSIVE MODE")
                .execute(&mut *conn)
                .await
            {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                return Err(e.into());
            }
        }
    }
    let result = async {
        let head = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
        let (seq, prev) = match head {
            Some(r) => (r.try_get::<i64, _>("seq")?, r.try_get::<String, _>("hash")?),
            None => (0, GENESIS.to_string()),
        };
        let rows = chain_rows((seq, &prev), events);
        insert_rows(conn, &rows).await?;
        Ok::<_, StoreError>(receipts(&rows))
    }
    .await;
    finish(conn, result).await
}

/// Ends the open transaction: COMMIT after `result` succeeded, ROLLBACK otherwise or when
/// the COMMIT itself fails, so the writer's connection never stays inside a transaction
/// (its next BEGIN would fail and every later append with it).
async fn finish<T>(
    conn: &mut AnyConnection,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    let committed = match result {
        Ok(r) => sqlx::query("COMMIT")
            .execute(&mut *conn)
            .await
            .map(|_| r)
            .map_err(StoreError::from),
        Err(e) => Err(e),
    };
    if committed.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    committed
}

type ReplyTo = Option<oneshot::Sender<Result<Receipt, String>>>;

enum Cmd {
    Append(Value, ReplyTo),
    Flush(oneshot::Sender<()>),
}

/// Group-commit appender: a task owning one connection. Every queued record is written in
/// one transaction; callers of [`AuditWriter::append`] get their receipt once it committed.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<Cmd>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

/// Most records committed in one transaction.
const MAX_BATCH: usize = 1024;

impl AuditWriter {
    pub(crate) fn start(mut conn: AnyConnection, backend: Backend) -> AuditWriter {
        let (tx, mut rx) = mpsc::channel::<Cmd>(65_536);
        tokio::spawn(async move {
            let mut batch: Vec<(Value, ReplyTo)> = Vec::new();
            let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
            // (seq, hash) of the last record this writer committed.
            let mut head: Option<(i64, String)> = None;
            while let Some(first) = rx.recv().await {
                let mut next = Some(first);
                while let Some(c) = next.take() {
                    match c {
                        Cmd::Append(v, r) => batch.push((v, r)),
                        Cmd::Flush(f) => flushes.push(f),
                    }
                    if batch.len() < MAX_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    let events: Vec<Value> = batch.iter().map(|(v, _)| v.clone()).collect();
                    // Fast path after the head this writer wrote last; the locked path
                    // when that is unknown or someone else appended meanwhile.
                    let mut result = match &head {
                        Some((seq, hash)) => {
                            append_after_head(&mut conn, (*seq, hash), &events).await
                        }
                        None => Err(StoreError::WriterStopped),
                    };
                    if result.is_err() {
                        result = append_batch(&mut conn, backend, &events).await;
                    }
                    if result.is_err() {
                        // One retry after a short pause (a concurrent writer holding the lock
                        // beyond busy_timeout, a transient I/O error).
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        result = append_batch(&mut conn, backend, &events).await;
                    }
                    head = match &result {
                        Ok(r) => r.last().map(|r| (r.seq, r.hash.clone())),
                        Err(_) => None,
                    };
                    match result {
                        Ok(receipts) => {
                            for ((_, reply), receipt) in batch.drain(..).zip(receipts) {
                                if let Some(reply) = reply {
                                    let _ = reply.send(Ok(receipt));
                                }
                            }
                        }
                        Err(e) => {
                            eprintln!("warden: audit append failed: {e}");
                            for (_, reply) in batch.drain(..) {
                                if let Some(reply) = reply {
                                    let _ = reply.send(Err(e.to_string()));
                                }
                            }
                        }
                    }
                }
                for f in flushes.drain(..) {
                    let _ = f.send(());
                }
            }
            let _ = conn.close().await;
        });
        AuditWriter { tx }
    }

    /// Appends `event` and waits until it is durable.
    pub async fn append(&self, event: &AuditEvent) -> Result<Receipt, StoreError> {
        let v = serde_json::to_value(event).map_err(|e| StoreError::Corrupt {
            seq: 0,
            message: e.to_string(),
        })?;
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Append(v, Some(tx)))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        match rx.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(msg)) => Err(StoreError::Corrupt {
                seq: 0,
                message: msg,
            }),
            Err(_) => Err(StoreError::WriterStopped),
        }
    }

    /// Queues `event` without waiting for it to be durable (outcomes, list records).
    /// [`AuditWriter::flush`] waits for everything queued before it.
    pub async fn append_nowait(&self, event: &AuditEvent) {
        if let Ok(v) = serde_json::to_value(event) {
            let _ = self.tx.send(Cmd::Append(v, None)).await;
        }
    }

    /// Waits until every record queued before this call is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

impl Store {
    /// Appends one record in its own transaction (for the CLI's occasional writes).
    pub async fn append_audit(&self, event: &AuditEvent) -> Result<Receipt, StoreError> {
        let v = serde_json::to_value(event).map_err(|e| StoreError::Corrupt {
            seq: 0,
            message: e.to_string(),
        })?;
        let mut conn = self.pool().acquire().await?;
        let mut r = append_batch(&mut conn, self.backend(), std::slice::from_ref(&v)).await?;
        Ok(r.remove(0))
    }

    /// Records with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, record, prev_hash, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(to_record).collect()
    }

    /// The last `n` records, oldest first.
    pub async fn audit_tail(&self, n: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, record, prev_hash, hash FROM audit ORDER BY seq DESC LIMIT $1",
        )
        .bind(n)
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<AuditRecord> = rows.iter().map(to_record).collect::<Result<_, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// Recomputes the whole chain. `expect_head`: a head hash recorded earlier elsewhere;
    /// the chain must contain it (records appended since are fine).
    pub async fn verify_audit(
        &self,
        expect_head: Option<&str>,
    ) -> Result<VerifyReport, StoreError> {
        let rows = sqlx::query("SELECT seq, record, prev_hash, hash FROM audit ORDER BY seq")
            .fetch_all(self.pool())
            .await?;
        let rows: Vec<Row_> = rows
            .iter()
            .map(|r| {
                Ok(Row_ {
                    seq: r.try_get("seq")?,
                    record: r.try_get("record")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(verify_rows(&rows, expect_head))
    }
}

fn to_record(r: &AnyRow) -> Result<AuditRecord, StoreError> {
    let seq: i64 = r.try_get("seq")?;
    let record: String = r.try_get("record")?;
    let v: Value = serde_json::from_str(&record).map_err(|e| StoreError::Corrupt {
        seq,
        message: e.to_string(),
    })?;
    Ok(AuditRecord {
        seq,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        event: v.get("event").cloned().unwrap_or(Value::Null),
    })
}

/// The `seq` written inside a record, if it parses.
fn inner_seq(record: &str) -> Option<i64> {
    serde_json::from_str::<Value>(record)
        .ok()?
        .get("seq")?
        .as_i64()
}

fn verify_rows(rows: &[Row_], expect_head: Option<&str>) -> VerifyReport {
    let by_hash: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.hash.as_str(), i))
        .collect();
    let head = rows
        .last()
        .map(|r| r.hash.clone())
        .unwrap_or(GENESIS.to_string());
    let fail = |p: Problem| VerifyReport {
        ok: false,
        records: rows.len() as u64,
        head: head.clone(),
        problem: Some(p),
    };
    let mut expected_prev = GENESIS.to_string();
    let mut prev_seq = 0i64;
    for (i, row) in rows.iter().enumerate() {
        let self_ok = chain_hash(&row.prev_hash, &row.record) == row.hash;
        let canonical_ok = serde_json::from_str::<Value>(&row.record)
            .map(|v| canonical_json(&v) == row.record)
            .unwrap_or(false);
        if !self_ok || !canonical_ok {
            return fail(Problem {
                seq: row.seq,
                kind: ProblemKind::Modified,
                message: format!(
                    "record {} was modified: its content no longer matches its hash",
                    row.seq
                ),
            });
        }
        let inner = inner_seq(&row.record);
        if row.prev_hash != expected_prev {
            // Where does this record really belong?
            let link = if row.prev_hash == GENESIS {
                Some(None)
            } else {
                by_hash.get(row.prev_hash.as_str()).map(|j| Some(*j))
            };
            let problem = match link {
                // Its predecessor is further back: the rows in between were inserted.
                Some(Some(j)) if j + 1 < i => Problem {
                    seq: rows[j + 1].seq,
                    kind: ProblemKind::Inserted,
                    message: format!(
                        "{} record(s) inserted before record {} (first: row {})",
                        i - j - 1,
                        row.seq,
                        rows[j + 1].seq
                    ),
                },
                Some(None) if i > 0 => Problem {
                    seq: rows[0].seq,
                    kind: ProblemKind::Inserted,
                    message: format!("{i} record(s) inserted before the first record"),
                },
                // Its predecessor comes later: rows were swapped.
                Some(Some(j)) if j >= i => Problem {
                    seq: row.seq,
                    kind: ProblemKind::Reordered,
                    message: format!(
                        "record {} is out of order: it follows record {} in the chain",
                        row.seq, rows[j].seq
                    ),
                },
                // Same position, no gap, but the link is gone: the previous record was
                // edited and its own hash recomputed.
                _ if i > 0 && inner == Some(row.seq) && row.seq == prev_seq + 1 => Problem {
                    seq: prev_seq,
                    kind: ProblemKind::Modified,
                    message: format!(
                        "record {prev_seq} was modified (its hash was recomputed, so record {} no longer links to it)",
                        row.seq
                    ),
                },
                _ => {
                    let missing_from = prev_seq + 1;
                    let missing_to = inner
                        .map(|s| s - 1)
                        .unwrap_or(row.seq - 1)
                        .max(missing_from);
                    Problem {
                        seq: row.seq,
                        kind: ProblemKind::Deleted,
                        message: if missing_to > missing_from {
                            format!(
                                "records {missing_from}..={missing_to} were deleted (chain breaks before record {})",
                                row.seq
                            )
                        } else {
                            format!(
                                "record {missing_from} was deleted (chain breaks before record {})",
                                row.seq
                            )
                        },
                    }
                }
            };
            return fail(problem);
        }
        if inner != Some(row.seq) {
            return fail(Problem {
                seq: row.seq,
                kind: ProblemKind::Reordered,
                message: format!(
                    "row {} holds record {} (renumbered)",
                    row.seq,
                    inner.map(|s| s.to_string()).unwrap_or("?".into())
                ),
            });
        }
        expected_prev = row.hash.clone();
        prev_seq = row.seq;
    }
    if let Some(want) = expect_head
        && want != GENESIS
        && !by_hash.contains_key(want)
    {
        return fail(Problem {
            seq: prev_seq + 1,
            kind: ProblemKind::HeadMismatch,
            message: format!(
                "the expected head {want} is not in the chain: records were deleted from the end or the chain was rewritten"
            ),
        });
    }
    VerifyReport {
        ok: true,
        records: rows.len() as u64,
        head,
        problem: None,
    }
}
