//! Persistence behind a trait, so that the approval logic is testable in memory and the
//! real store (`warden-store`, SQLite/PostgreSQL) is one implementation.
//!
//! Updates use optimistic concurrency: [`ApprovalStore::update`] writes only when the
//! stored `version` still equals the caller's, then bumps it. Two approvers (or a CLI and
//! a gateway in different processes) can never both win a transition, so an approval is
//! consumed exactly once.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use crate::ApprovalError;
use crate::model::{ApprovalRequest, Status};

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only requests in these states (empty: all).
    pub statuses: Vec<Status>,
    pub agent: Option<String>,
    /// Most requests returned, newest first (0: no limit).
    pub limit: usize,
}

impl ListFilter {
    pub fn pending() -> ListFilter {
        ListFilter {
            statuses: vec![Status::Pending],
            ..Default::default()
        }
    }

    pub fn matches(&self, r: &ApprovalRequest) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&r.status))
            && self.agent.as_ref().is_none_or(|a| *a == r.agent)
    }
}

/// Durable approval requests.
pub trait ApprovalStore: Send + Sync {
    /// Stores a new request (its `version` as given, normally 0).
    fn insert(
        &self,
        req: &ApprovalRequest,
    ) -> impl Future<Output = Result<(), ApprovalError>> + Send;

    /// A request by id.
    fn get(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ApprovalRequest>, ApprovalError>> + Send;

    /// Replaces the stored request when its stored version equals `req.version`, storing it
    /// with `version + 1`. `Err(Conflict)` when someone else changed it first.
    fn update(
        &self,
        req: &ApprovalRequest,
    ) -> impl Future<Output = Result<(), ApprovalError>> + Send;

    /// Requests matching `filter`, newest first.
    fn list(
        &self,
        filter: &ListFilter,
    ) -> impl Future<Output = Result<Vec<ApprovalRequest>, ApprovalError>> + Send;

    /// The newest request of `agent` for `tool` with this argument digest in `status`.
    fn find_by_digest(
        &self,
        agent: &str,
        tool: &str,
        digest: &str,
        status: Status,
    ) -> impl Future<Output = Result<Option<ApprovalRequest>, ApprovalError>> + Send;

    /// The newest approved (or consumed) request of `agent` for `tool` created before
    /// `before_ms`: what an approver compares a new request with.
    fn last_approved(
        &self,
        agent: &str,
        tool: &str,
        before_ms: i64,
    ) -> impl Future<Output = Result<Option<ApprovalRequest>, ApprovalError>> + Send;
}

/// An in-memory store for tests and single-process tools.
#[derive(Debug, Default)]
pub struct MemoryStore {
    rows: Mutex<BTreeMap<String, ApprovalRequest>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn newest_first(&self, pred: impl Fn(&ApprovalRequest) -> bool) -> Vec<ApprovalRequest> {
        let rows = self.rows.lock().unwrap();
        let mut v: Vec<ApprovalRequest> = rows.values().filter(|r| pred(r)).cloned().collect();
        v.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)));
        v
    }
}

impl ApprovalStore for MemoryStore {
    async fn insert(&self, req: &ApprovalRequest) -> Result<(), ApprovalError> {
        let mut rows = self.rows.lock().unwrap();
        if rows.contains_key(&req.id) {
            return Err(ApprovalError::Store(format!("duplicate id {}", req.id)));
        }
        rows.insert(req.id.clone(), req.clone());
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<ApprovalRequest>, ApprovalError> {
        Ok(self.rows.lock().unwrap().get(id).cloned())
    }

    async fn update(&self, req: &ApprovalRequest) -> Result<(), ApprovalError> {
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(&req.id) {
            None => Err(ApprovalError::NotFound(req.id.clone())),
            Some(cur) if cur.version != req.version => Err(ApprovalError::Conflict(req.id.clone())),
            Some(cur) => {
                *cur = req.clone();
                cur.version += 1;
                Ok(())
            }
        }
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        let mut v = self.newest_first(|r| filter.matches(r));
        if filter.limit > 0 {
            v.truncate(filter.limit);
        }
        Ok(v)
    }

    async fn find_by_digest(
        &self,
        agent: &str,
        tool: &str,
        digest: &str,
        status: Status,
    ) -> Result<Option<ApprovalRequest>, ApprovalError> {
        Ok(self
            .newest_first(|r| {
                r.agent == agent && r.tool == tool && r.args_digest == digest && r.status == status
            })
            .into_iter()
            .next())
    }

    async fn last_approved(
        &self,
        agent: &str,
        tool: &str,
        before_ms: i64,
    ) -> Result<Option<ApprovalRequest>, ApprovalError> {
        Ok(self
            .newest_first(|r| {
                r.agent == agent
                    && r.tool == tool
                    && r.created_ms < before_ms
                    && matches!(r.status, Status::Approved | Status::Consumed)
            })
            .into_iter()
            .next())
    }
}
