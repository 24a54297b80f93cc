//! The audit journal: where a gateway's audit record becomes durable before the store has it.
//!
//! A `tools/call` may reach its upstream only once its decision record is durable. Waiting
//! for a database commit (a round trip to SQLite's worker thread, or to PostgreSQL) for every
//! call costs more than the whole gateway's latency budget, so a gateway process writes each
//! record first to its own append-only journal file, in the request task, under one mutex:
//!
//! ```text
//! {"journal":"<id>","version":1}        header: the journal's id
//! {"n":1,"event":{...}}                  one line per record, n counting up from 1
//! {"n":2,"event":{...}}
//! ```
//!
//! - **Durability.** `normal`: the record is durable once `write(2)` returned (it survives
//!   `kill -9` of the gateway; the kernel has it). `full`: the append also waits for an
//!   `fdatasync` of the journal; one sync thread covers every record written before it
//!   started (group commit), so concurrent calls share syncs.
//! - **Copy into the store.** The writer task copies records into the hash-chained `audit`
//!   table in journal order, in batches, and in the same transaction advances the journal's
//!   row in `audit_journal` (`copied_through`). A record is therefore in the chain exactly
//!   once, whatever crashes when. Once everything written is copied and the file passed
//!   [`START_OVER_AT`] bytes, it starts over: the writer prepares `<id>.next.jsonl` (locked,
//!   header written) outside the journal's lock, renames it over `<id>.jsonl` and swaps the
//!   file under the lock, and closes the old one after. (Truncating in place under the lock
//!   held every call up for 6–18 ms on the development machine when a journal that had grown
//!   to 60–70 MB under a burst drained: ext4 freeing its blocks.) A crash in between leaves a
//!   `.next.jsonl` with a header and no records, which recovery deletes. Under a load the
//!   copy cannot keep up with, the journal is never drained and keeps growing until it is.
//! - **Recovery.** Every process holds an exclusive lock (`flock`) on its own journal. A
//!   journal in the directory whose lock is free belongs to a process that stopped without
//!   copying everything: [`Store::recover_audit_journals`] appends its records after
//!   `copied_through` to the chain (in order, with their original times), adds one
//!   `journal`/`recovered` record saying so, and deletes the file. `warden up`, `warden
//!   gateway stdio` and the `warden audit` commands run it before anything else.
//! - **Bad input loses nothing.** A last line cut short (the process died inside `write`, or
//!   the disk filled) was never acknowledged and is ignored; an unreadable line anywhere else
//!   stops recovery with the file and line named, and the file is left in place. A failed
//!   write (full disk) is cut back off the file and the append fails, so the call is refused.
//!
//! The journal directory deserves the same protection as the database: records in it are
//! not yet chained.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;

use crate::{Durability, Store, StoreError};

/// A drained journal larger than this starts over with an empty file.
pub const START_OVER_AT: u64 = 8 * 1024 * 1024;

/// A journal write (lock wait included) or start-over slower than this holds calls up: it
/// is reported on stderr, at most once per [`SLOW_REPORT_EVERY`].
const SLOW: Duration = Duration::from_millis(5);
const SLOW_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Table keeping, per journal, the last record copied into the chain (migration 6).
pub(crate) const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS audit_journal (
        journal TEXT PRIMARY KEY,
        copied_through BIGINT NOT NULL
    )"];

/// What [`Store::recover_audit_journals`] copied from one orphaned journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredJournal {
    pub path: PathBuf,
    pub journal: String,
    /// Records appended to the chain (those after `copied_through`).
    pub records: u64,
}

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

struct FileState {
    file: File,
    /// The number the next record gets.
    next_n: u64,
    len: u64,
    header_len: u64,
    /// The writer stopped: no more records may be written here.
    retired: bool,
}

/// Group fsync (durability `full`): appenders raise `want`, the sync thread syncs and
/// publishes how far the file is synced.
struct Syncer {
    /// (highest record number someone waits for, stop).
    want: Mutex<(u64, bool)>,
    wake: Condvar,
    done: watch::Sender<Result<u64, String>>,
    /// The file records are written to now (replaced when the journal starts over; the
    /// records of the old file are all in the store then, committed with `synchronous=FULL`).
    file: Mutex<Arc<File>>,
}

/// One process's audit journal (see the module documentation).
pub struct Journal {
    id: String,
    path: PathBuf,
    state: Mutex<FileState>,
    syncer: Option<Arc<Syncer>>,
    slow: SlowReports,
    /// The next file, prepared by [`Journal::copied`] outside the lock and kept when records
    /// arrived before it could be swapped in.
    spare: Mutex<Option<File>>,
}

/// Counts slow journal operations and says so on stderr, at most once per
/// [`SLOW_REPORT_EVERY`] (a stalling disk must not also flood the log).
struct SlowReports {
    since: Instant,
    /// Milliseconds after `since` of the last report (0: none yet).
    last_ms: AtomicU64,
    /// Slow operations not reported yet.
    pending: AtomicU64,
}

impl SlowReports {
    fn new() -> Self {
        SlowReports {
            since: Instant::now(),
            last_ms: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        }
    }

    /// Records one slow operation; returns the report to print when one is due.
    fn record(&self, what: impl FnOnce() -> String) -> Option<String> {
        let n = self.pending.fetch_add(1, Ordering::Relaxed) + 1;
        let now = (self.since.elapsed().as_millis() as u64).max(1);
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != 0 && now - last < SLOW_REPORT_EVERY.as_millis() as u64 {
            return None;
        }
        if self
            .last_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        self.pending.fetch_sub(n, Ordering::Relaxed);
        Some(format!(
            "{n} slow audit journal operation(s) (over {} ms) since the last report; the latest: {}",
            SLOW.as_millis(),
            what()
        ))
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(s) = &self.syncer {
            s.want.lock().unwrap().1 = true;
            s.wake.notify_all();
        }
    }
}

impl Journal {
    /// Creates this process's journal in `dir` (created if missing) and its
    /// `audit_journal` row.
    pub(crate) async fn create(
        store: &Store,
        dir: &Path,
        durability: Durability,
    ) -> Result<Journal, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
        let id = hex::encode(bytes);
        sqlx::query("INSERT INTO audit_journal (journal, copied_through) VALUES ($1, 0)")
            .bind(&id)
            .execute(store.pool())
            .await?;
        let path = dir.join(format!("{id}.jsonl"));
        let header = header(&id);
        let file = new_file(&path, &header, durability)?;
        let syncer = match durability {
            Durability::Normal => None,
            Durability::Full => {
                let s = Arc::new(Syncer {
                    want: Mutex::new((0, false)),
                    wake: Condvar::new(),
                    done: watch::channel(Ok(0)).0,
                    file: Mutex::new(Arc::new(file.try_clone().map_err(|e| io_err(&path, e))?)),
                });
                let s2 = s.clone();
                std::thread::Builder::new()
                    .name("warden-journal-sync".into())
                    .spawn(move || sync_loop(s2))
                    .map_err(|e| io_err(&path, e))?;
                Some(s)
            }
        };
        Ok(Journal {
            id,
            path,
            state: Mutex::new(FileState {
                file,
                next_n: 1,
                len: header.len() as u64,
                header_len: header.len() as u64,
                retired: false,
            }),
            syncer,
            slow: SlowReports::new(),
            spare: Mutex::new(None),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `event` (its JSON) as the next line and, still holding the journal's lock,
    /// hands it and its number to `enqueue` (so the copy order is the journal order). The
    /// record is durable against a killed process when this returns Ok; see
    /// [`Journal::synced`].
    pub(crate) fn write<T>(
        &self,
        event: Vec<u8>,
        enqueue: impl FnOnce(u64, Vec<u8>) -> T,
    ) -> Result<(u64, T), StoreError> {
        let asked = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.retired {
            return Err(StoreError::WriterStopped);
        }
        let locked = asked.elapsed();
        let n = st.next_n;
        let mut line = Vec::with_capacity(event.len() + 32);
        // Writing into a Vec cannot fail.
        let _ = write!(line, "{{\"n\":{n},\"event\":");
        line.extend_from_slice(&event);
        line.extend_from_slice(b"}\n");
        if let Err(e) = st.file.write_all(&line) {
            // Cut a partial line off again (a full disk), so the journal stays readable.
            let keep = st.len;
            let _ = st.file.set_len(keep);
            return Err(io_err(&self.path, e));
        }
        st.len += line.len() as u64;
        st.next_n += 1;
        let queued = enqueue(n, event);
        drop(st);
        let took = asked.elapsed();
        if took >= SLOW {
            self.report_slow(|| {
                format!(
                    "record {n} waited {:.1} ms for the journal's lock and {:.1} ms in write(2)",
                    ms(locked),
                    ms(took - locked)
                )
            });
        }
        Ok((n, queued))
    }

    /// Replaces the file records are written to (tests: a full disk is `/dev/full`).
    #[cfg(test)]
    pub(crate) fn swap_file(&self, file: File) -> File {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut st.file, file)
    }

    /// Waits until record `n` is on disk (durability `full`); immediate otherwise.
    pub(crate) async fn synced(&self, n: u64) -> Result<(), StoreError> {
        let Some(s) = &self.syncer else {
            return Ok(());
        };
        let mut rx = s.done.subscribe();
        {
            let mut want = s.want.lock().unwrap_or_else(|p| p.into_inner());
            if want.0 < n {
                want.0 = n;
                s.wake.notify_one();
            }
        }
        let r = rx
            .wait_for(|r| r.as_ref().map(|s| *s >= n).unwrap_or(true))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        match &*r {
            Ok(_) => Ok(()),
            Err(msg) => Err(io_err(
                &self.path,
                std::io::Error::other(format!("fdatasync failed: {msg}")),
            )),
        }
    }

    /// Everything up to `n` is in the chain: a large, drained journal starts over with an
    /// empty file (see the module documentation). Called by the writer only.
    pub(crate) fn copied(&self, n: u64) {
        let drained = |st: &FileState| !st.retired && st.next_n == n + 1;
        {
            let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if !drained(&st) || st.len <= START_OVER_AT {
                return;
            }
        }
        // Creating, locking and writing the next file touch the disk: not under the lock.
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.is_none() {
            match new_file(&self.spare_path(), &header(&self.id), self.durability()) {
                Ok(f) => *spare = Some(f),
                Err(e) => {
                    eprintln!("warden: cannot prepare the next audit journal file: {e}");
                    return;
                }
            }
        }
        let for_sync = match (&self.syncer, spare.as_ref().map(File::try_clone)) {
            (Some(_), Some(Ok(f))) => Some(Arc::new(f)),
            (Some(_), _) => return, // no descriptor for the sync thread: keep this file
            (None, _) => None,
        };
        let started = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !drained(&st) {
            return; // written meanwhile: the next copy tries again, with this spare
        }
        if let Err(e) = std::fs::rename(self.spare_path(), &self.path) {
            drop(st);
            eprintln!("warden: cannot start the audit journal over: {e}");
            return;
        }
        let old = std::mem::replace(&mut st.file, spare.take().expect("prepared above"));
        st.len = st.header_len;
        if let (Some(s), Some(f)) = (&self.syncer, for_sync) {
            *s.file.lock().unwrap_or_else(|p| p.into_inner()) = f;
        }
        drop(st);
        let took = started.elapsed();
        // The old file has no name left: closing it frees its blocks, outside the lock.
        drop(old);
        if took >= SLOW {
            self.report_slow(|| {
                format!(
                    "starting the drained journal over held writes for {:.1} ms",
                    ms(took)
                )
            });
        }
    }

    fn spare_path(&self) -> PathBuf {
        self.path.with_extension("next.jsonl")
    }

    fn durability(&self) -> Durability {
        if self.syncer.is_some() {
            Durability::Full
        } else {
            Durability::Normal
        }
    }

    fn report_slow(&self, what: impl FnOnce() -> String) {
        if let Some(line) = self.slow.record(what) {
            eprintln!("warden: {}: {line}", self.path.display());
        }
    }

    /// When every record written is copied (through `copied`), deletes the journal and
    /// refuses later writes; otherwise leaves it for recovery. True when deleted.
    pub(crate) fn retire(&self, copied: u64) -> bool {
        // The spare's lock first, as in `copied`.
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.retired = true;
        if spare.is_some() {
            drop(spare);
            let _ = std::fs::remove_file(self.spare_path());
        }
        st.next_n == copied + 1 && std::fs::remove_file(&self.path).is_ok()
    }
}

/// A journal file's first line.
fn header(id: &str) -> String {
    format!("{{\"journal\":\"{id}\",\"version\":1}}\n")
}

/// Creates a journal file at `path`, takes its lock and writes its header (synced, with the
/// directory, at durability `full`).
fn new_file(path: &Path, header: &str, durability: Durability) -> Result<File, StoreError> {
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    file.try_lock().map_err(|e| {
        io_err(
            path,
            std::io::Error::other(format!("cannot lock the new journal: {e}")),
        )
    })?;
    file.write_all(header.as_bytes())
        .map_err(|e| io_err(path, e))?;
    if durability == Durability::Full {
        file.sync_all().map_err(|e| io_err(path, e))?;
        if let Some(dir) = path.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
    }
    Ok(file)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn sync_loop(s: Arc<Syncer>) {
    loop {
        let target = {
            let mut want = s.want.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if want.1 {
                    return;
                }
                let synced = match &*s.done.borrow() {
                    Ok(n) => *n,
                    Err(_) => return,
                };
                if want.0 > synced {
                    break want.0;
                }
                want = s.wake.wait(want).unwrap_or_else(|p| p.into_inner());
            }
        };
        // Every record up to `target` was written before it was asked for, so this sync
        // covers it.
        let file = s.file.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let r = file.sync_data().map(|_| target).map_err(|e| e.to_string());
        let failed = r.is_err();
        let _ = s.done.send_replace(r);
        if failed {
            return;
        }
    }
}

#[derive(Deserialize)]
struct Header {
    journal: String,
    version: u32,
}

#[derive(Deserialize)]
struct Line {
    n: u64,
    event: Value,
}

/// A journal file read back: its id and the records in it.
struct ReadJournal {
    id: String,
    records: Vec<(u64, Value)>,
}

/// Reads a journal; a cut-off last line is ignored, any other unreadable line is an error.
fn read_journal(path: &Path, file: &File) -> Result<Option<ReadJournal>, StoreError> {
    let mut reader = BufReader::new(file);
    let mut lines: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut number = 0usize;
    loop {
        let mut buf = Vec::new();
        let got = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_err(path, e))?;
        if got == 0 {
            break;
        }
        number += 1;
        lines.push((number, buf));
    }
    let bad = |line: usize, why: String| StoreError::Journal {
        path: path.to_path_buf(),
        line,
        message: why,
    };
    let last = lines.len();
    let complete = |i: usize, l: &[u8]| l.ends_with(b"\n") || i < last;
    let Some((_, first)) = lines.first() else {
        // Created but the header never written: nothing was ever acknowledged from it.
        return Ok(None);
    };
    if !complete(1, first) {
        return Ok(None);
    }
    let header: Header = serde_json::from_slice(first)
        .map_err(|e| bad(1, format!("not a Warden audit journal header: {e}")))?;
    if header.version != 1 {
        return Err(bad(
            1,
            format!("unsupported journal version {}", header.version),
        ));
    }
    let mut records = Vec::with_capacity(lines.len());
    let mut prev = 0u64;
    for (i, (number, l)) in lines.iter().enumerate().skip(1) {
        let parsed = serde_json::from_slice::<Line>(l);
        match parsed {
            Ok(line) if line.n > prev => {
                prev = line.n;
                records.push((line.n, line.event));
            }
            Ok(line) => {
                return Err(bad(
                    *number,
                    format!("record number {} does not follow {prev}", line.n),
                ));
            }
            // The last line, cut short: never acknowledged.
            Err(_) if i + 1 == last && !l.ends_with(b"\n") => break,
            Err(e) => return Err(bad(*number, format!("unreadable record: {e}"))),
        }
    }
    Ok(Some(ReadJournal {
        id: header.journal,
        records,
    }))
}

/// Most records one recovery transaction appends.
const RECOVERY_BATCH: usize = 1024;

impl Store {
    /// Copies the records of every journal in `dir` whose process has stopped (its lock is
    /// free) into the chain, then deletes those journals. Journals of running processes are
    /// left alone. A missing `dir` has nothing to recover.
    pub async fn recover_audit_journals(
        &self,
        dir: &Path,
    ) -> Result<Vec<RecoveredJournal>, StoreError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(dir, e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        paths.sort();
        let mut out = Vec::new();
        for path in paths {
            let file = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&path, e)),
            };
            if file.try_lock().is_err() {
                continue; // a running process's journal
            }
            let Some(journal) = read_journal(&path, &file)? else {
                std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
                continue;
            };
            let copied: Option<i64> =
                sqlx::query_scalar("SELECT copied_through FROM audit_journal WHERE journal = $1")
                    .bind(&journal.id)
                    .fetch_optional(self.pool())
                    .await?;
            let copied = copied.unwrap_or(0).max(0) as u64;
            let pending: Vec<&(u64, Value)> = journal
                .records
                .iter()
                .filter(|(n, _)| *n > copied)
                .collect();
            let mut conn = self.pool().acquire().await?;
            for chunk in pending.chunks(RECOVERY_BATCH) {
                let events: Vec<&Value> = chunk.iter().map(|(_, v)| v).collect();
                let through = chunk.last().map(|(n, _)| *n).unwrap_or(copied);
                crate::audit::append_locked(
                    &mut conn,
                    self.backend(),
                    &events,
                    Some((&journal.id, through)),
                )
                .await?;
            }
            drop(conn);
            if !pending.is_empty() {
                let mut ev = crate::AuditEvent::now("journal");
                ev.outcome = Some("recovered".into());
                ev.detail
                    .insert("journal".into(), journal.id.clone().into());
                ev.detail
                    .insert("records".into(), (pending.len() as u64).into());
                ev.reasons = vec![format!(
                    "{} record(s) a stopped gateway process had made durable in its journal were copied into the chain",
                    pending.len()
                )];
                self.append_audit(&ev).await?;
            }
            // The file goes first: were the row deleted first and the process killed in
            // between, the records would be copied a second time.
            std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
            sqlx::query("DELETE FROM audit_journal WHERE journal = $1")
                .bind(&journal.id)
                .execute(self.pool())
                .await?;
            out.push(RecoveredJournal {
                path,
                journal: journal.id,
                records: pending.len() as u64,
            });
        }
        Ok(out)
    }

    /// Recovers orphaned journals in `dir`, then starts an audit writer that makes each
    /// record durable in a journal of its own in `dir` and copies it into the store in
    /// batches (see [`crate::journal`]).
    pub async fn journaled_audit_writer(
        &self,
        dir: &Path,
    ) -> Result<(crate::AuditWriter, Vec<RecoveredJournal>), StoreError> {
        let recovered = self.recover_audit_journals(dir).await?;
        let journal = Journal::create(self, dir, self.durability()).await?;
        let writer = self.start_audit_writer(Some(Arc::new(journal))).await?;
        Ok((writer, recovered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_operations_are_reported_at_most_once_per_interval_and_counted() {
        let r = SlowReports {
            since: Instant::now()
                .checked_sub(2 * SLOW_REPORT_EVERY)
                .expect("the clock runs longer than 20 s"),
            last_ms: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        };
        let first = r.record(|| "a".into()).expect("the first one is reported");
        assert!(first.starts_with("1 slow"), "{first}");
        assert!(first.ends_with("the latest: a"), "{first}");
        for _ in 0..3 {
            assert!(r.record(|| "b".into()).is_none());
        }
        // The interval passed (the last report is moved back in time): the three held back
        // and this one are counted in the next report.
        r.last_ms.store(1, Ordering::Relaxed);
        let next = r.record(|| "c".into()).expect("due again");
        assert!(next.starts_with("4 slow"), "{next}");
        assert!(next.ends_with("the latest: c"), "{next}");
        assert!(r.record(|| "d".into()).is_none());
    }
}
