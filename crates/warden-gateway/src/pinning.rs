//! Tool pinning in the gateway (issue 8): rug-pull protection and shadowing.
//!
//! Whenever an upstream's `tools/list` is (re)fetched — first use, after
//! `notifications/tools/list_changed`, after a restart of the upstream, or when the cached
//! list's TTL ends — every tool definition it serves is compared with its pin
//! (`warden_detect::check_pin`):
//!
//! - matches the approved hash → served;
//! - never approved, connector has `pin_on_first_sight: true` and the poisoning detector
//!   finds it clean → pinned automatically (`approved_by: first-sight`, audit `tool_pinned`);
//! - never approved otherwise (no `pin_on_first_sight`, or the detector is not clean) →
//!   **quarantined** until `warden tools approve` (secure by default);
//! - differs from the approved hash → **quarantined**.
//!
//! A quarantined tool is hidden from `tools/list` and `tools/call` is denied with a reason
//! naming the tool, both hashes and the commands to review and approve it. The served
//! definition is kept in the store (`tool_sightings`) for `warden tools diff`; the first time
//! a definition is held back an audit record `tool_quarantined` carries a finding.
//! The same tool name on several connectors is recorded once as `tool_shadowing` (a finding,
//! not a quarantine: the gateway names tools `connector.tool`, so the agent always says which
//! server it means; the finding tells the humans writing entitlements).
//!
//! The hot path stays cheap: a call costs one look-up of the upstream's cached list (the
//! list's `Arc` identity tells whether it was checked) and one in a map of quarantined tools.
//! Only a call to a quarantined tool reads the store again, so an approval made by
//! `warden tools approve` in another process is picked up without a restart.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use warden_core::{Finding, Inventory, Severity, ToolRef};
use warden_detect::pin::pinned_definition;
use warden_detect::poison::{shadowing_findings, tool_findings};
use warden_detect::{PinStatus, PoisonDetector, ToolVerdict, check_pin, find_shadowing};
use warden_store::{AuditEvent, SightingReason, Store, StoreError};

use crate::gateway::{Gateway, META_KEY, ok};
use crate::upstream::Upstream;

/// `approved_by` of automatic pins.
pub const FIRST_SIGHT: &str = "first-sight";

/// Why a tool is held back, with the hashes involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub reason: SightingReason,
    /// The approved hash (None: never approved).
    pub approved: Option<String>,
    /// The hash of the definition the upstream serves.
    pub served: String,
}

#[derive(Default)]
struct State {
    /// The last list checked per connector (compared by `Arc` identity).
    checked: HashMap<String, Arc<Vec<Value>>>,
    /// `connector.tool` → why it is held back.
    quarantined: HashMap<String, Held>,
    /// Shadowed names already reported (lower-cased name → connectors).
    shadowing: BTreeMap<String, Vec<String>>,
    /// Pins when the gateway runs without a store (tests, embedding): lost at exit.
    memory_pins: HashMap<String, String>,
}

/// The pin checks of one gateway.
pub struct Pinning {
    store: Option<Store>,
    poison: PoisonDetector,
    /// connector → `pin_on_first_sight`.
    auto: HashMap<String, bool>,
    /// The inventory directory, for the commands named in denials.
    root: String,
    /// Serialises checks (rare) so that a list is checked and audited once.
    check: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

fn qualified(connector: &str, tool: &str) -> String {
    format!("{connector}.{tool}")
}

/// The finding for a held-back tool (also used by `warden tools list`).
pub fn quarantine_finding(
    connector: &str,
    tool: &str,
    held: &Held,
    inventory_dir: &str,
) -> Finding {
    let subject = qualified(connector, tool);
    let (severity, what) = match held.reason {
        SightingReason::Changed => (
            Severity::High,
            "its definition changed since it was approved",
        ),
        SightingReason::Poisoned => (
            Severity::High,
            "its definition looks poisoned, so it was not pinned on first sight",
        ),
        SightingReason::Unpinned => (
            Severity::Medium,
            "it was never approved and its connector does not pin on first sight",
        ),
    };
    let mut f = Finding::new(
        "gateway.tool-quarantined",
        severity,
        format!("tool `{subject}` is quarantined: {what}"),
    )
    .subject(subject.clone());
    if let Some(a) = &held.approved {
        f = f.evidence(format!("approved: {a}"));
    }
    f.evidence(format!("served:   {}", held.served))
        .fix(format!(
            "Review with `warden tools diff {inventory_dir} {subject}`; if the new definition is acceptable, `warden tools approve {inventory_dir} {subject} --hash {}`.",
            held.served
        ))
        .owasp(&["ASI04", "LLM03"])
}

impl Pinning {
    /// Pin checks for `inv`'s connectors; pins are kept in `store` (None: in memory).
    pub fn new(inv: &Inventory, store: Option<Store>) -> Pinning {
        Pinning {
            store,
            poison: PoisonDetector::default(),
            auto: inv
                .connectors
                .iter()
                .map(|(id, c)| (id.clone(), c.pin_on_first_sight))
                .collect(),
            root: inv.root.display().to_string(),
            check: tokio::sync::Mutex::new(()),
            state: Mutex::new(State::default()),
        }
    }

    fn is_checked(&self, connector: &str, tools: &Arc<Vec<Value>>) -> bool {
        self.state
            .lock()
            .unwrap()
            .checked
            .get(connector)
            .is_some_and(|t| Arc::ptr_eq(t, tools))
    }

    /// Why `connector.tool` is held back, if it is (no I/O).
    pub fn held(&self, connector: &str, tool: &str) -> Option<Held> {
        self.state
            .lock()
            .unwrap()
            .quarantined
            .get(&qualified(connector, tool))
            .cloned()
    }

    /// The approved hashes of a connector's tools.
    async fn approved(&self, connector: &str) -> Result<HashMap<String, String>, StoreError> {
        match &self.store {
            Some(st) => Ok(st
                .tool_pins(Some(connector))
                .await?
                .into_iter()
                .map(|p| (p.tool, p.hash))
                .collect()),
            None => {
                let prefix = format!("{connector}.");
                Ok(self
                    .state
                    .lock()
                    .unwrap()
                    .memory_pins
                    .iter()
                    .filter_map(|(k, h)| {
                        k.strip_prefix(&prefix).map(|t| (t.to_string(), h.clone()))
                    })
                    .collect())
            }
        }
    }

    /// Checks every definition of one connector's list against its pin (caller holds `check`).
    async fn check_list(
        &self,
        gw: &Gateway,
        connector: &str,
        tools: &Arc<Vec<Value>>,
    ) -> Result<(), StoreError> {
        {
            // The same definitions as the list checked last (concurrent re-fetches after a
            // restart or TTL each bring their own copy): nothing to look up again.
            let mut s = self.state.lock().unwrap();
            if s.checked
                .get(connector)
                .is_some_and(|prev| **prev == **tools)
            {
                s.checked.insert(connector.to_string(), tools.clone());
                return Ok(());
            }
        }
        let approved = self.approved(connector).await?;
        let sighted: Vec<String> = match &self.store {
            Some(st) => st
                .tool_sightings(Some(connector))
                .await?
                .into_iter()
                .map(|s| s.tool)
                .collect(),
            None => Vec::new(),
        };
        let auto = self.auto.get(connector).copied().unwrap_or(false);
        let mut pinned = Vec::new();
        let mut held_now: HashMap<String, Held> = HashMap::new();
        let mut events = Vec::new();
        for t in tools.iter() {
            let Some(name) = t.get("name").and_then(Value::as_str) else {
                continue;
            };
            let key = qualified(connector, name);
            let (held, evidence, findings) =
                match check_pin(approved.get(name).map(String::as_str), t) {
                    PinStatus::Match { .. } => {
                        // Served the approved definition again: nothing is held back.
                        if let Some(st) = &self.store
                            && sighted.iter().any(|s| s == name)
                        {
                            st.clear_tool_sighting(connector, name).await?;
                        }
                        continue;
                    }
                    PinStatus::New { hash } => {
                        let report = self.poison.inspect_tool(t);
                        if auto && report.verdict == ToolVerdict::Clean {
                            self.pin(connector, name, t, &hash).await?;
                            pinned.push(json!({"tool": name, "hash": hash}));
                            continue;
                        }
                        let reason = if report.verdict == ToolVerdict::Clean {
                            SightingReason::Unpinned
                        } else {
                            SightingReason::Poisoned
                        };
                        let findings =
                            tool_findings(Some(connector), std::slice::from_ref(&report));
                        let evidence = (reason == SightingReason::Poisoned)
                            .then(|| serde_json::to_value(&report.evidence).unwrap_or(Value::Null));
                        (
                            Held {
                                reason,
                                approved: None,
                                served: hash,
                            },
                            evidence,
                            findings,
                        )
                    }
                    PinStatus::Changed { approved, served } => {
                        // The reviewer sees what the detector thinks of the new text too.
                        let report = self.poison.inspect_tool(t);
                        let evidence = (report.verdict != ToolVerdict::Clean)
                            .then(|| serde_json::to_value(&report.evidence).unwrap_or(Value::Null));
                        (
                            Held {
                                reason: SightingReason::Changed,
                                approved: Some(approved),
                                served,
                            },
                            evidence,
                            tool_findings(Some(connector), std::slice::from_ref(&report)),
                        )
                    }
                };
            if let Some(st) = &self.store {
                st.record_tool_sighting(
                    connector,
                    name,
                    &pinned_definition(t),
                    &held.served,
                    held.reason,
                    evidence.as_ref(),
                )
                .await?;
            }
            let known = self.state.lock().unwrap().quarantined.get(&key) == Some(&held);
            if !known {
                events.push(self.quarantine_event(connector, name, &held, findings));
            }
            held_now.insert(key, held);
        }
        // Shadowing across every connector checked so far.
        let new_shadows = {
            let mut s = self.state.lock().unwrap();
            s.quarantined
                .retain(|k, _| !k.starts_with(&format!("{connector}.")));
            s.quarantined.extend(held_now);
            s.checked.insert(connector.to_string(), tools.clone());
            let lists: Vec<(&str, &[Value])> = s
                .checked
                .iter()
                .map(|(c, t)| (c.as_str(), t.as_slice()))
                .collect();
            let shadows = find_shadowing(lists);
            let fresh: Vec<_> = shadows
                .into_iter()
                .filter(|sh| {
                    let mut conns = sh.connectors.clone();
                    conns.sort();
                    s.shadowing.get(&sh.tool.to_lowercase()) != Some(&conns)
                })
                .collect();
            for sh in &fresh {
                let mut conns = sh.connectors.clone();
                conns.sort();
                s.shadowing.insert(sh.tool.to_lowercase(), conns);
            }
            fresh
        };
        if !pinned.is_empty() {
            let ev = AuditEvent::now("tool_pinned")
                .with_detail("connector", connector)
                .with_detail("approved_by", FIRST_SIGHT)
                .with_detail("tools", Value::Array(pinned));
            gw.audit().append_nowait(&ev).await;
        }
        for ev in events {
            gw.audit().append_nowait(&ev).await;
        }
        for f in shadowing_findings(&new_shadows) {
            let mut ev = AuditEvent::now("tool_shadowing");
            ev.tool = f.subject.clone();
            ev.outcome = Some("flagged".into());
            ev.detail.insert(
                "finding".into(),
                serde_json::to_value(&f).unwrap_or_default(),
            );
            gw.audit().append_nowait(&ev).await;
        }
        Ok(())
    }

    async fn pin(
        &self,
        connector: &str,
        tool: &str,
        def: &Value,
        hash: &str,
    ) -> Result<(), StoreError> {
        match &self.store {
            Some(st) => {
                st.set_tool_pin(connector, tool, &pinned_definition(def), hash, FIRST_SIGHT)
                    .await?;
            }
            None => {
                self.state
                    .lock()
                    .unwrap()
                    .memory_pins
                    .insert(qualified(connector, tool), hash.to_string());
            }
        }
        Ok(())
    }

    fn quarantine_event(
        &self,
        connector: &str,
        tool: &str,
        held: &Held,
        mut findings: Vec<Finding>,
    ) -> AuditEvent {
        findings.insert(0, quarantine_finding(connector, tool, held, &self.root));
        let mut ev = AuditEvent::now("tool_quarantined");
        ev.tool = Some(qualified(connector, tool));
        ev.outcome = Some(held.reason.as_str().into());
        ev.detail.insert("connector".into(), json!(connector));
        ev.detail
            .insert("approved_hash".into(), json!(held.approved));
        ev.detail.insert("served_hash".into(), json!(held.served));
        ev.detail.insert(
            "review".into(),
            json!(format!(
                "warden tools diff {} {}",
                self.root,
                qualified(connector, tool)
            )),
        );
        ev.detail.insert(
            "findings".into(),
            serde_json::to_value(&findings).unwrap_or_default(),
        );
        ev
    }

    /// Re-reads the store for held-back tools of `connector` (an approval made elsewhere);
    /// lifts the quarantine of those whose pin now matches what is served.
    async fn refresh(&self, gw: &Gateway, connector: &str, only: Option<&str>) {
        let Some(st) = &self.store else { return };
        let held: Vec<(String, Held)> = {
            let s = self.state.lock().unwrap();
            s.quarantined
                .iter()
                .filter_map(|(k, h)| {
                    let tool = k.strip_prefix(connector)?.strip_prefix('.')?;
                    (only.is_none() || only == Some(tool)).then(|| (tool.to_string(), h.clone()))
                })
                .collect()
        };
        if held.is_empty() {
            return;
        }
        let pins = match only {
            Some(t) => st
                .tool_pin(connector, t)
                .await
                .map(|p| p.into_iter().collect()),
            None => st.tool_pins(Some(connector)).await,
        };
        let Ok(pins) = pins else { return };
        for (tool, h) in held {
            let Some(pin) = pins.iter().find(|p| p.tool == tool) else {
                continue;
            };
            if pin.hash != h.served {
                continue;
            }
            let key = qualified(connector, &tool);
            let lifted = {
                let mut s = self.state.lock().unwrap();
                s.quarantined.get(&key) == Some(&h) && s.quarantined.remove(&key).is_some()
            };
            if lifted {
                let mut ev = AuditEvent::now("tool_released");
                ev.tool = Some(key);
                ev.outcome = Some("approved".into());
                ev.detail.insert("hash".into(), json!(pin.hash));
                ev.detail
                    .insert("approved_by".into(), json!(pin.approved_by));
                gw.audit().append_nowait(&ev).await;
            }
        }
    }

    /// `tools/list`: checks each fetched list and removes the quarantined tools. Returns the
    /// lists to show and the names held back (`connector.tool`); a connector whose pins cannot
    /// be checked moves to `degraded`.
    pub async fn filter_lists(
        &self,
        gw: &Gateway,
        served: BTreeMap<String, Arc<Vec<Value>>>,
        degraded: &mut Map<String, Value>,
    ) -> (BTreeMap<String, Arc<Vec<Value>>>, Vec<Value>) {
        let mut out = BTreeMap::new();
        let mut held_back = BTreeSet::new();
        for (cid, tools) in served {
            if !self.is_checked(&cid, &tools) {
                let _guard = self.check.lock().await;
                if !self.is_checked(&cid, &tools)
                    && let Err(e) = self.check_list(gw, &cid, &tools).await
                {
                    degraded.insert(cid, json!(format!("cannot check its tool pins: {e}")));
                    continue;
                }
            }
            self.refresh(gw, &cid, None).await;
            let s = self.state.lock().unwrap();
            let kept: Vec<Value> = tools
                .iter()
                .filter(|t| {
                    let name = t.get("name").and_then(Value::as_str).unwrap_or("");
                    let key = qualified(&cid, name);
                    if s.quarantined.contains_key(&key) {
                        held_back.insert(key);
                        false
                    } else {
                        true
                    }
                })
                .cloned()
                .collect();
            out.insert(cid, Arc::new(kept));
        }
        (out, held_back.into_iter().map(Value::String).collect())
    }

    /// `tools/call`: None when `tr` may be forwarded, else the denial text.
    pub async fn admit(
        &self,
        gw: &Gateway,
        up: Option<&Arc<Upstream>>,
        tr: &ToolRef,
    ) -> Option<String> {
        let up = up?;
        let cannot = |e: &dyn std::fmt::Display| {
            Some(format!(
                "Warden denied {tr}: the gateway cannot verify the tool's pinned definition ({e})"
            ))
        };
        let tools = match up.tools().await {
            Ok(t) => t,
            Err(e) => return cannot(&e),
        };
        {
            // Hot path: the cached list was checked and this tool is not held back — one
            // lock, no allocation while nothing is quarantined.
            let s = self.state.lock().unwrap();
            if s.checked
                .get(&up.connector)
                .is_some_and(|t| Arc::ptr_eq(t, &tools))
                && (s.quarantined.is_empty() || !s.quarantined.contains_key(&tr.qualified()))
            {
                return None;
            }
        }
        if !self.is_checked(&up.connector, &tools) {
            let _guard = self.check.lock().await;
            if !self.is_checked(&up.connector, &tools)
                && let Err(e) = self.check_list(gw, &up.connector, &tools).await
            {
                return cannot(&format!("cannot check its tool pins: {e}"));
            }
        }
        self.held(&tr.connector, &tr.tool)?;
        self.refresh(gw, &tr.connector, Some(&tr.tool)).await;
        let held = self.held(&tr.connector, &tr.tool)?;
        Some(self.denial(tr, &held))
    }

    fn denial(&self, tr: &ToolRef, held: &Held) -> String {
        let why = match (&held.reason, &held.approved) {
            (SightingReason::Changed, Some(a)) => format!(
                "its definition changed since it was approved (approved {a}, now served {})",
                held.served
            ),
            (SightingReason::Poisoned, _) => format!(
                "its definition (served {}) looks poisoned and was never approved",
                held.served
            ),
            _ => format!(
                "its definition (served {}) was never approved and connector {} does not pin on first sight",
                held.served, tr.connector
            ),
        };
        format!(
            "Warden denied {tr}: the tool is quarantined: {why}. A human reviews it with `warden tools diff {root} {tr}` and approves it with `warden tools approve {root} {tr} --hash {}`.",
            held.served,
            root = self.root,
        )
    }

    /// The reply to a denied call, after auditing it as a `decision` (outcome `quarantined`).
    pub async fn deny_call(
        &self,
        gw: &Gateway,
        id: &Value,
        request_id: &str,
        ev: &mut AuditEvent,
        text: String,
    ) -> Value {
        ev.decision = Some("deny".into());
        ev.policies = vec!["tool-pinning".into()];
        ev.reasons = vec![text.clone()];
        ev.outcome = Some("quarantined".into());
        if let Err(e) = gw.audit().append(ev).await {
            eprintln!("warden: audit failed: {e}");
        }
        ok(
            id,
            json!({
                "content": [{"type": "text", "text": text}],
                "isError": true,
                "_meta": {META_KEY: {"request": request_id, "decision": "deny",
                    "policies": ["tool-pinning"], "reasons": [text]}}
            }),
        )
    }
}

impl Gateway {
    /// Keeps tool pins in `store` (otherwise they live in memory for the process's life).
    pub fn with_pins(mut self, store: Store) -> Gateway {
        self.pinning = Pinning::new(self.inventory(), Some(store));
        self
    }
}
