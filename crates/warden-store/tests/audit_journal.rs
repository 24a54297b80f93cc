//! The audit journal (see `warden_store::journal`) against a real SQLite file and a real
//! PostgreSQL database: journaled appends reach the chain in order; a journal left behind by
//! a stopped process is copied into the chain exactly once; a cut-off last line is ignored;
//! an unreadable line stops recovery with file and line named and loses nothing; a running
//! process's journal is left alone.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use warden_store::{AuditEvent, Durability, Store, StoreError};

#[path = "support/mod.rs"]
mod support;
use support::{Db, new_store};

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Db::Postgres).await
            }
        }
    };
}

fn journals(dir: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(d) => d
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn events(store: &Store) -> Vec<Value> {
    store
        .audit_after(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect()
}

/// `detail.i` of the events `keep` selects, in chain order.
fn numbers(evs: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<i64> {
    evs.iter()
        .filter(|e| keep(e))
        .map(|e| e["detail"]["i"].as_i64().unwrap())
        .collect()
}

/// The `audit_journal` row a process that stopped left: `copied_through` = `n`.
async fn checkpoint_row(store: &Store, journal: &str, n: i64) {
    sqlx::query("INSERT INTO audit_journal (journal, copied_through) VALUES ($1, $2)")
        .bind(journal)
        .bind(n)
        .execute(store.pool())
        .await
        .unwrap();
}

async fn journal_rows(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_journal")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn journaled_appends_reach_the_chain_in_order_and_close_removes_the_journal(db: Db) {
    for durability in [Durability::Normal, Durability::Full] {
        let (tmp, store) = new_store(db, durability).await;
        let jdir = tmp.path().join("journal");
        let (writer, recovered) = store.journaled_audit_writer(&jdir).await.unwrap();
        assert!(recovered.is_empty());
        let mut tasks = Vec::new();
        for t in 0..4 {
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    let ev = AuditEvent::now("decision")
                        .with_detail("t", t)
                        .with_detail("i", i);
                    if i % 2 == 0 {
                        w.append(&ev).await.unwrap();
                    } else {
                        w.append_nowait(&ev).await;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Durable in the journal before the store has it: every record is a line there.
        let files = journals(&jdir);
        assert_eq!(files.len(), 1, "{files:?}");
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert_eq!(
            text.lines().count(),
            1 + 200,
            "header + one line per record"
        );
        writer.flush().await;
        let evs = events(&store).await;
        assert_eq!(evs.len(), 200);
        for t in 0..4 {
            assert_eq!(
                numbers(&evs, |e| e["detail"]["t"] == t),
                (0..50).collect::<Vec<_>>(),
                "each task's records keep their order"
            );
        }
        assert!(store.verify_audit(None).await.unwrap().ok);
        writer.close().await;
        assert!(journals(&jdir).is_empty(), "a drained journal is deleted");
        assert_eq!(journal_rows(&store).await, 0);
        assert!(
            writer.append(&AuditEvent::now("late")).await.is_err(),
            "a closed writer refuses appends"
        );
    }
}

/// Past `START_OVER_AT` bytes and drained, the journal starts over with an empty file (no
/// record lost, numbering continues, the spare file does not outlive the writer).
async fn big_drained_journal_starts_over_without_losing_records(db: Db) {
    for durability in [Durability::Normal, Durability::Full] {
        let (tmp, store) = new_store(db, durability).await;
        let jdir = tmp.path().join("journal");
        let (writer, _) = store.journaled_audit_writer(&jdir).await.unwrap();
        let pad = "x".repeat(1024);
        let mut written = 0u64;
        let mut i = 0i64;
        while written <= warden_store::journal::START_OVER_AT + 64 * 1024 {
            let ev = AuditEvent::now("decision")
                .with_detail("i", i)
                .with_detail("pad", pad.as_str());
            writer.append_nowait(&ev).await;
            written += 1100;
            i += 1;
        }
        writer.flush().await;
        let files = journals(&jdir);
        assert_eq!(files.len(), 1, "one journal, no spare left over: {files:?}");
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert_eq!(
            text.lines().count(),
            1,
            "only the header is left: {text:.200}"
        );
        assert!(text.starts_with("{\"journal\":"), "{text:.200}");
        // The journal goes on in the new file, numbering where it left off.
        writer
            .append(&AuditEvent::now("decision").with_detail("i", i))
            .await
            .unwrap();
        let text = std::fs::read_to_string(&files[0]).unwrap();
        let last: Value = serde_json::from_str(text.lines().nth(1).expect("one record")).unwrap();
        assert_eq!(last["n"], json!(i + 1), "{last}");
        writer.flush().await;
        let evs = events(&store).await;
        assert_eq!(
            numbers(&evs, |e| e["kind"] == "decision"),
            (0..=i).collect::<Vec<_>>()
        );
        assert!(store.verify_audit(None).await.unwrap().ok);
        writer.close().await;
        assert!(journals(&jdir).is_empty(), "{:?}", journals(&jdir));
    }
}
both!(big_drained_journal_starts_over_without_losing_records);

/// A process that died between preparing its next journal file and swapping it in leaves
/// `<id>.next.jsonl` (a header, no records) beside `<id>.jsonl`: recovery copies the
/// records once and removes both.
async fn leftover_next_file_is_removed_by_recovery(db: Db) {
    let (tmp, store) = new_store(db, Durability::Normal).await;
    let jdir = tmp.path().join("journal");
    let path = orphan(&jdir, "cafe", 2, "");
    let spare = jdir.join("cafe.next.jsonl");
    std::fs::write(
        &spare,
        format!("{}\n", json!({"journal": "cafe", "version": 1})),
    )
    .unwrap();
    checkpoint_row(&store, "cafe", 0).await;
    let recovered = store.recover_audit_journals(&jdir).await.unwrap();
    let records: u64 = recovered.iter().map(|r| r.records).sum();
    assert_eq!(records, 2, "{recovered:?}");
    assert!(!path.exists() && !spare.exists(), "{:?}", journals(&jdir));
    let evs = events(&store).await;
    assert_eq!(numbers(&evs, |e| e["kind"] == "decision"), vec![1, 2]);
    assert!(store.verify_audit(None).await.unwrap().ok);
    assert_eq!(journal_rows(&store).await, 0);
}
both!(leftover_next_file_is_removed_by_recovery);

/// A journal as a process that stopped would leave it: header, records 1..=n.
fn orphan(dir: &Path, id: &str, n: u64, tail: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{id}.jsonl"));
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "{}", json!({"journal": id, "version": 1})).unwrap();
    for i in 1..=n {
        let ev = serde_json::to_value(AuditEvent::now("decision").with_detail("i", i)).unwrap();
        writeln!(f, "{}", json!({"n": i, "event": ev})).unwrap();
    }
    f.write_all(tail.as_bytes()).unwrap();
    path
}

async fn stopped_process_journal_is_recovered_exactly_once(db: Db) {
    let (tmp, store) = new_store(db, Durability::Normal).await;
    let jdir = tmp.path().join("journal");
    store
        .append_audit(&AuditEvent::now("before"))
        .await
        .unwrap();
    // Records 1..=3 were copied before the process died (its checkpoint says so); 4 and 5
    // were not; the sixth line was cut off mid-write and was never acknowledged.
    let path = orphan(&jdir, "deadbeef", 5, r#"{"n":6,"event":{"kind":"dec"#);
    checkpoint_row(&store, "deadbeef", 3).await;
    let recovered = store.recover_audit_journals(&jdir).await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(
        (recovered[0].journal.as_str(), recovered[0].records),
        ("deadbeef", 2)
    );
    let evs = events(&store).await;
    let kinds: Vec<&str> = evs.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["before", "decision", "decision", "journal"]);
    assert_eq!(
        (
            evs[1]["detail"]["i"].as_i64(),
            evs[2]["detail"]["i"].as_i64()
        ),
        (Some(4), Some(5))
    );
    assert_eq!(evs[3]["outcome"], "recovered");
    assert_eq!(evs[3]["detail"]["records"], 2);
    assert!(store.verify_audit(None).await.unwrap().ok);
    assert!(!path.exists());
    assert_eq!(journal_rows(&store).await, 0);
    // Nothing is copied twice.
    assert!(
        store
            .recover_audit_journals(&jdir)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(events(&store).await.len(), 4);
}

async fn killed_writer_leaves_a_journal_the_next_start_recovers(db: Db) {
    let (tmp, store) = new_store(db, Durability::Normal).await;
    let jdir = tmp.path().join("journal");
    // A writer in its own runtime, stopped right after its appends returned: like a killed
    // process, it stops wherever it was and its lock on the journal goes away.
    let (s2, j2) = (store.clone(), jdir.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s2 = s2.reconnect().await.unwrap();
            let (w, _) = s2.journaled_audit_writer(&j2).await.unwrap();
            for i in 0..20 {
                w.append(&AuditEvent::now("decision").with_detail("i", i))
                    .await
                    .unwrap();
            }
            w.abandon().await;
        });
        drop(rt);
    })
    .join()
    .unwrap();
    assert_eq!(
        journals(&jdir).len(),
        1,
        "the killed writer's journal stays"
    );
    let (w, recovered) = store.journaled_audit_writer(&jdir).await.unwrap();
    assert_eq!(recovered.len(), 1);
    w.close().await;
    assert_eq!(
        numbers(&events(&store).await, |e| e["kind"] == "decision"),
        (0..20).collect::<Vec<_>>(),
        "every acknowledged record is in the chain once, in order"
    );
    assert!(store.verify_audit(None).await.unwrap().ok);
    assert!(journals(&jdir).is_empty());
}

async fn unreadable_line_stops_recovery_and_keeps_the_file(db: Db) {
    let (tmp, store) = new_store(db, Durability::Normal).await;
    let jdir = tmp.path().join("journal");
    let path = orphan(
        &jdir,
        "cafe",
        2,
        "this is not json\n{\"n\":4,\"event\":{}}\n",
    );
    let err = store.recover_audit_journals(&jdir).await.unwrap_err();
    match &err {
        StoreError::Journal { path: p, line, .. } => {
            assert_eq!((p, *line), (&path, 4), "{err}");
        }
        other => panic!("expected a journal error, got {other}"),
    }
    assert!(err.to_string().contains(":4:"), "{err}");
    assert!(path.exists(), "the journal is kept for a human to look at");
    assert!(events(&store).await.is_empty(), "nothing half-copied");
}

async fn running_process_journal_is_left_alone(db: Db) {
    let (tmp, store) = new_store(db, Durability::Normal).await;
    let jdir = tmp.path().join("journal");
    let (w, _) = store.journaled_audit_writer(&jdir).await.unwrap();
    w.append(&AuditEvent::now("decision")).await.unwrap();
    let mine = journals(&jdir);
    assert_eq!(mine.len(), 1);
    assert!(
        store
            .recover_audit_journals(&jdir)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(journals(&jdir), mine);
    w.close().await;
    assert_eq!(
        events(&store).await.len(),
        1,
        "copied once, by its own writer"
    );
}

both!(journaled_appends_reach_the_chain_in_order_and_close_removes_the_journal);
both!(stopped_process_journal_is_recovered_exactly_once);
both!(killed_writer_leaves_a_journal_the_next_start_recovers);
both!(unreadable_line_stops_recovery_and_keeps_the_file);
both!(running_process_journal_is_left_alone);
