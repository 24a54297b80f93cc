//! Shared by the store's integration tests: the same test body runs against a real SQLite
//! file and a real PostgreSQL database.
//!
//! PostgreSQL comes from `scripts/deps.d/40-gateway.sh`; `WARDEN_TEST_POSTGRES_URL` names a
//! database on a server where the user may create databases (default
//! `postgres://warden:warden@127.0.0.1:5432/postgres`). Each store gets its own database.

use warden_store::{Durability, Store};

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A fresh, migrated store on `db`; `durability` applies to SQLite.
pub async fn new_store(db: Db, durability: Durability) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = match db {
        Db::Sqlite => Store::open(&dir.path().join("w.db"), durability)
            .await
            .unwrap(),
        Db::Postgres => {
            let admin_url = std::env::var("WARDEN_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://warden:warden@127.0.0.1:5432/postgres".into());
            sqlx::any::install_default_drivers();
            let admin = sqlx::AnyPool::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!("PostgreSQL is not reachable at {admin_url} ({e}); run `bash scripts/deps.d/40-gateway.sh` (CI does)")
            });
            let mut b = [0u8; 6];
            getrandom::fill(&mut b).unwrap();
            let name = format!("warden_t_{}", hex::encode(b));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let base = admin_url.rsplit_once('/').unwrap().0;
            Store::connect_url(&format!("{base}/{name}"), durability)
                .await
                .unwrap()
        }
    };
    (dir, store)
}
