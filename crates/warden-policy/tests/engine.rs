//! Decisions, validation errors and reachability through the public API, on a small
//! organisation written here (so the expectations do not come from the code under test).

use serde_json::json;
use warden_core::{Inventory, PolicyFile, ToolRef};
use warden_policy::{
    HandoffRequest, Outcome, PolicyEngine, PolicyError, Reachability, Request, SessionState,
    UtcTime,
};

const ORG: &str = r#"
humans:
  - { id: alice@x.example, groups: [support-leads] }
  - { id: bob@x.example, groups: [finance-leads] }
agents:
  - id: refunder
    owner: alice@x.example
    uses: [pay.refund, pay.get, mail.send]
    handoffs:
      - { to: mailer, context: [ticket_id], ttl: 5m }
  - id: mailer
    owner: alice@x.example
    uses: [mail.*]
  - id: idle
    owner: bob@x.example
connectors:
  - id: pay
    mcp: { url: "https://pay.x.example/mcp" }
    tools:
      refund:
        effects: [write, privileged]
        irreversible: true
        args:
          charge_id: { type: string, required: true }
          amount: { type: integer, required: true, min: 1, max: 10000 }
          currency: { type: string, enum: [EUR, USD] }
          ratio: { type: number }
      get: { effects: [read], args: { charge_id: { type: string, required: true } } }
  - id: mail
    mcp: { url: "https://mail.x.example/mcp" }
    tools:
      send: { effects: [external_send], args: { to: { type: string, required: true } } }
      read: { effects: [read], untrusted_output: true }
approvals:
  - id: outbound
    when: { tools: [mail.send] }
    approvers: [group:support-leads]
    expires: 30m
"#;

const POLICIES: &str = r#"// refunds
@id("big-refunds")
@approval("finance-leads")
@approval_ttl("10m")
@reason("big refunds need finance")
permit (principal == Agent::"refunder", action == Action::"pay.refund", resource)
when { context.args.amount > 500 };

@id("refund-cap")
@reason("never above 5000")
forbid (principal, action == Action::"pay.refund", resource)
when { context.args.amount > 5000 };

@id("tainted-send")
@approval("support-leads")
@approvals_required("2")
@approval_ttl("1h")
permit (principal, action in Action::"external_send", resource)
when { context.session.tainted };
"#;

fn load(policies: &str) -> Result<PolicyEngine, PolicyError> {
    let mut inv = Inventory::from_manifests([("org.yaml", ORG)]).unwrap();
    inv.policies.push(PolicyFile {
        path: "policies/p.cedar".into(),
        text: policies.to_string(),
    });
    PolicyEngine::load(&inv)
}

fn engine() -> PolicyEngine {
    load(POLICIES).unwrap_or_else(|e| panic!("{e}"))
}

fn req(agent: &str, tool: &str, args: serde_json::Value) -> Request {
    Request {
        agent: agent.into(),
        delegation_chain: vec![],
        root_human: None,
        tool: ToolRef::parse(tool).unwrap(),
        args,
        session: SessionState::default(),
        time: UtcTime::from_unix(1_767_614_400),
    }
}

fn single_error(e: PolicyError) -> (String, u64, String) {
    let errs = e.flatten();
    assert_eq!(errs.len(), 1, "{e}");
    match errs[0] {
        PolicyError::Policy {
            file,
            line,
            message,
            ..
        } => (file.display().to_string(), *line, message.clone()),
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn small_refund_is_allowed_by_the_entitlement() {
    let d = engine().decide(&req(
        "refunder",
        "pay.refund",
        json!({"charge_id": "c", "amount": 100}),
    ));
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.policy_ids(), vec!["inventory.entitlement"]);
    // The generated entitlement points at the agent's declaration.
    assert_eq!(d.policies[0].file.to_str(), Some("org.yaml"));
    assert_eq!(d.policies[0].line, 6);
}

#[test]
fn big_refund_needs_the_group_named_by_the_annotation() {
    let d = engine().decide(&req(
        "refunder",
        "pay.refund",
        json!({"charge_id": "c", "amount": 900}),
    ));
    let Outcome::NeedsApproval(a) = &d.outcome else {
        panic!("{d:?}")
    };
    assert_eq!(a.approvers, vec!["group:finance-leads"]);
    assert_eq!(a.ttl_seconds, Some(600));
    assert_eq!(a.approvals_required, 1);
    assert!(a.separation_of_duties);
    assert_eq!(a.policies, vec!["big-refunds"]);
    let big = d.policies.iter().find(|p| p.id == "big-refunds").unwrap();
    assert_eq!((big.file.to_str(), big.line), (Some("policies/p.cedar"), 2));
    assert!(d.reasons.iter().any(|r| r == "big refunds need finance"));
}

#[test]
fn forbid_wins_and_is_named_with_its_line_and_reason() {
    let d = engine().decide(&req(
        "refunder",
        "pay.refund",
        json!({"charge_id": "c", "amount": 6000}),
    ));
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.policy_ids(), vec!["refund-cap"]);
    assert_eq!(d.policies[0].line, 9);
    assert_eq!(d.reasons, vec!["never above 5000"]);
}

#[test]
fn not_entitled_and_unknown_are_denied_with_reasons() {
    let e = engine();
    let d = e.decide(&req("idle", "pay.get", json!({"charge_id": "c"})));
    assert!(d.is_deny());
    assert_eq!(d.policy_ids(), vec!["inventory.not-entitled"]);
    let d = e.decide(&req("ghost", "pay.get", json!({"charge_id": "c"})));
    assert!(d.is_deny() && d.reasons[0].contains("unknown agent"));
    let d = e.decide(&req("refunder", "pay.nope", json!({})));
    assert!(d.is_deny() && d.reasons[0].contains("unknown tool"));
}

#[test]
fn argument_checks_deny_with_a_reason() {
    let e = engine();
    let cases = [
        (
            json!({"amount": 10}),
            "missing required argument `charge_id`",
        ),
        (
            json!({"charge_id": "c", "amount": "10"}),
            "must be a number",
        ),
        (
            json!({"charge_id": "c", "amount": 20000}),
            "above the declared maximum",
        ),
        (
            json!({"charge_id": "c", "amount": 0}),
            "below the declared minimum",
        ),
        (
            json!({"charge_id": "c", "amount": 5, "currency": "GBP"}),
            "not one of the declared values",
        ),
        (
            json!({"charge_id": "c", "amount": 5, "ratio": 0.5}),
            "fractional",
        ),
        (json!(["c"]), "must be a JSON object"),
    ];
    for (args, why) in cases {
        let d = e.decide(&req("refunder", "pay.refund", args.clone()));
        assert!(d.is_deny(), "{args}");
        assert!(d.reasons[0].contains(why), "{args}: {:?}", d.reasons);
    }
    // A whole-valued float is a whole number.
    let d = e.decide(&req(
        "refunder",
        "pay.refund",
        json!({"charge_id": "c", "amount": 5, "ratio": 2.0}),
    ));
    assert!(d.is_allow(), "{d:?}");
}

#[test]
fn undeclared_arguments_are_ignored_not_fatal() {
    let d = engine().decide(&req(
        "refunder",
        "pay.refund",
        json!({"charge_id": "c", "amount": 10, "zzz": {"nested": true}, "aaa": 1}),
    ));
    assert!(d.is_allow(), "{d:?}");
    assert_eq!(d.ignored_args, vec!["aaa", "zzz"]);
}

#[test]
fn repeated_calls_get_their_own_argument_checks_and_context() {
    let e = engine();
    // `pay.get`: no policy that applies reads the context, so its decision is reused; the
    // argument checks and the ignored arguments still belong to each call.
    let first = e.decide(&req(
        "refunder",
        "pay.get",
        json!({"charge_id": "c", "x": 1}),
    ));
    assert!(first.is_allow(), "{first:?}");
    assert_eq!(first.ignored_args, vec!["x"]);
    let second = e.decide(&req("refunder", "pay.get", json!({"charge_id": "c"})));
    assert!(second.is_allow(), "{second:?}");
    assert!(second.ignored_args.is_empty(), "{second:?}");
    let missing = e.decide(&req("refunder", "pay.get", json!({})));
    assert!(missing.is_deny(), "{missing:?}");
    assert!(
        missing.reasons[0].contains("missing required argument `charge_id`"),
        "{missing:?}"
    );
    // `pay.refund` reads `context.args`: every call is decided on its own arguments.
    let small = json!({"charge_id": "c", "amount": 10});
    let big = json!({"charge_id": "c", "amount": 6000});
    for _ in 0..2 {
        assert!(
            e.decide(&req("refunder", "pay.refund", small.clone()))
                .is_allow()
        );
        let d = e.decide(&req("refunder", "pay.refund", big.clone()));
        assert!(d.is_deny(), "{d:?}");
        assert_eq!(d.policies[0].id, "refund-cap");
    }
    // Another agent on a tool already decided for refunder is decided for itself.
    let mailer = e.decide(&req("mailer", "pay.get", json!({"charge_id": "c"})));
    assert!(mailer.is_deny(), "{mailer:?}");
}

#[test]
fn reused_decisions_are_the_evaluated_ones_and_still_check_arguments() {
    let e = engine();
    let get = ToolRef::parse("pay.get").unwrap();
    let ok = json!({"charge_id": "c"});
    // Nothing is reused before the pair was decided once.
    assert!(e.decide_reused("refunder", &get, &ok).is_none());
    let evaluated = e.decide_unsliced(&req("refunder", "pay.get", ok.clone()));
    assert!(evaluated.is_allow(), "{evaluated:?}");
    e.decide(&req("refunder", "pay.get", ok.clone()));
    let reused = e
        .decide_reused("refunder", &get, &ok)
        .expect("pay.get reads no context: its decision is reused");
    assert_eq!(*reused, evaluated);
    // The arguments are checked on every call: anything `decide` would deny or annotate is
    // left to it.
    for bad in [
        json!({}),
        json!({"charge_id": 5}),
        json!({"charge_id": "c", "x": 1}),
        json!([1]),
    ] {
        assert!(e.decide_reused("refunder", &get, &bad).is_none(), "{bad}");
    }
    assert!(
        e.decide(&req("refunder", "pay.get", json!({"charge_id": 5})))
            .is_deny()
    );
    // A pair whose policies read the context is never reused.
    let refund = ToolRef::parse("pay.refund").unwrap();
    let small = json!({"charge_id": "c", "amount": 10});
    e.decide(&req("refunder", "pay.refund", small.clone()));
    assert!(e.decide_reused("refunder", &refund, &small).is_none());
    // Per agent: another agent's decision for the same tool is its own.
    assert!(e.decide_reused("mailer", &get, &ok).is_none());
    let mailer = e.decide(&req("mailer", "pay.get", ok.clone()));
    assert!(mailer.is_deny(), "{mailer:?}");
    if let Some(d) = e.decide_reused("mailer", &get, &ok) {
        assert_eq!(*d, mailer);
    }
    assert!(e.decide_reused("nobody", &get, &ok).is_none());
}

#[test]
fn approval_rule_and_tainted_permit_combine() {
    let e = engine();
    let clean = e.decide(&req("refunder", "mail.send", json!({"to": "a@b"})));
    let Outcome::NeedsApproval(a) = &clean.outcome else {
        panic!("{clean:?}")
    };
    assert_eq!(a.approvers, vec!["group:support-leads"]);
    assert_eq!(a.ttl_seconds, Some(1800));
    assert_eq!(a.rules, vec!["outbound"]);
    let mut r = req("refunder", "mail.send", json!({"to": "a@b"}));
    r.session.tainted = true;
    let d = e.decide(&r);
    let Outcome::NeedsApproval(a) = &d.outcome else {
        panic!("{d:?}")
    };
    // min TTL (30m rule vs 1h annotation), max count (1 vs 2).
    assert_eq!(a.ttl_seconds, Some(1800));
    assert_eq!(a.approvals_required, 2);
    assert_eq!(
        a.policies,
        vec!["inventory.approval.outbound", "tainted-send"]
    );
}

#[test]
fn handoffs_follow_the_inventory() {
    let e = engine();
    let h = |from: &str, to: &str| HandoffRequest {
        from: from.into(),
        to: to.into(),
        context_keys: vec!["ticket_id".into()],
        delegation_chain: vec![],
        root_human: None,
        session: SessionState::default(),
        time: UtcTime::from_unix(0),
    };
    assert!(e.decide_handoff(&h("refunder", "mailer")).is_allow());
    let d = e.decide_handoff(&h("mailer", "refunder"));
    assert!(d.is_deny());
    assert_eq!(d.policy_ids(), vec!["inventory.handoff-undeclared"]);
}

#[test]
fn could_allow_is_sound_and_useful() {
    let e = engine();
    let t = |s: &str| ToolRef::parse(s).unwrap();
    assert_eq!(e.could_allow("idle", &t("pay.refund")), Reachability::Never);
    assert_eq!(
        e.could_allow("ghost", &t("pay.refund")),
        Reachability::Never
    );
    assert_eq!(
        e.could_allow("refunder", &t("pay.get")),
        Reachability::Always
    );
    assert!(matches!(
        e.could_allow("refunder", &t("pay.refund")),
        Reachability::Conditional {
            may_need_approval: true
        }
    ));
    assert_eq!(
        e.could_allow("mailer", &t("mail.send")),
        Reachability::NeedsApproval {
            approvers: vec!["group:support-leads".into()]
        }
    );
    let gated = e.approval_gated_tools();
    assert!(gated.contains("pay.refund") && gated.contains("mail.send"));
    assert!(!gated.contains("pay.get"));
}

#[test]
fn unknown_attribute_is_a_validation_error_with_file_and_line() {
    let broken = format!(
        "{POLICIES}\n@id(\"typo\")\nforbid (principal, action == Action::\"pay.refund\", resource)\nwhen {{ principal.ownr == \"\" }};\n"
    );
    let (file, line, msg) = single_error(load(&broken).unwrap_err());
    assert_eq!(file, "policies/p.cedar");
    // POLICIES has 19 lines; a blank line, then `@id`, `forbid`, and the `when` on line 23.
    assert_eq!(line, 23, "{msg}");
    assert!(msg.contains("ownr"), "{msg}");
}

#[test]
fn unknown_argument_is_a_validation_error() {
    let broken = "@id(\"bad-arg\")\nforbid (principal, action == Action::\"pay.refund\", resource)\n\nwhen { context.args.amout > 5 };\n";
    let (_, line, msg) = single_error(load(broken).unwrap_err());
    assert_eq!(line, 4);
    assert!(msg.contains("amout"), "{msg}");
}

#[test]
fn optional_argument_needs_has() {
    let broken = "@id(\"opt\")\nforbid (principal, action == Action::\"pay.refund\", resource)\nwhen { context.args.currency == \"USD\" };\n";
    assert!(load(broken).is_err());
    let ok = "@id(\"opt\")\nforbid (principal, action == Action::\"pay.refund\", resource)\nwhen { context.args has currency && context.args.currency == \"USD\" };\n";
    let e = load(ok).unwrap_or_else(|e| panic!("{e}"));
    let d = e.decide(&req(
        "refunder",
        "pay.refund",
        json!({"charge_id": "c", "amount": 5, "currency": "USD"}),
    ));
    assert_eq!(d.policy_ids(), vec!["opt"]);
}

#[test]
fn malformed_policies_are_errors() {
    for (text, needle) in [
        ("permit (principal, action, resource);", "no `@id"),
        (
            "@id(\"x\") permit (principal, action, resource) when { ",
            "unexpected",
        ),
        (
            "@id(\"x\") @approval(\"nobody\") permit (principal, action, resource);",
            "neither an approval rule",
        ),
        (
            "@id(\"x\") @approval(\"finance-leads\") forbid (principal, action, resource);",
            "only makes sense on a permit",
        ),
        (
            "@id(\"x\") @approval(\"finance-leads\") @approval_ttl(\"soon\") permit (principal, action, resource);",
            "not a duration",
        ),
        (
            "@id(\"x\") permit (principal, action, resource);\n@id(\"x\") permit (principal, action, resource);",
            "duplicate policy id",
        ),
        (
            "@id(\"x\") permit (principal == ?principal, action, resource);",
            "templates",
        ),
    ] {
        let e = load(text).expect_err(text);
        assert!(
            e.to_string()
                .to_lowercase()
                .contains(&needle.to_lowercase()),
            "{text}: {e}"
        );
    }
}

#[test]
fn schema_text_types_arguments() {
    let inv = Inventory::from_manifests([("org.yaml", ORG)]).unwrap();
    let s = warden_policy::schema::schema_text(&inv).unwrap();
    assert!(
        s.contains(r#"action "pay.refund" in ["write", "privileged", "irreversible"]"#),
        "{s}"
    );
    assert!(
        s.contains(r#""amount": Long"#) && s.contains(r#""currency"?: String"#),
        "{s}"
    );
}

#[test]
fn utc_time_fields() {
    let t = UtcTime::parse_rfc3339("2026-11-23T15:30:00+01:00").unwrap();
    assert_eq!((t.hour(), t.weekday()), (14, 1));
    assert_eq!(
        UtcTime::parse_rfc3339("2026-11-22T23:59:59Z")
            .unwrap()
            .weekday(),
        7
    );
    assert!(UtcTime::parse_rfc3339("yesterday").is_err());
}

#[test]
fn diff_reports_threshold_moves_and_removed_rules() {
    let mut inv = Inventory::from_manifests([("org.yaml", ORG)]).unwrap();
    inv.policies.push(PolicyFile {
        path: "p.cedar".into(),
        text: POLICIES.into(),
    });
    let before = PolicyEngine::load(&inv).unwrap();
    // Threshold 500 → 1000, and no approval for tainted external sends.
    let changed = POLICIES
        .replace("amount > 500", "amount > 1000")
        .replace("when { context.session.tainted }", "when { false }");
    let after = PolicyEngine::load_with_policies(
        &inv,
        &[PolicyFile {
            path: "q.cedar".into(),
            text: changed,
        }],
    )
    .unwrap();
    let report = warden_policy::diff::diff(&inv, &before, &after);
    let find = |a: &str, t: &str| {
        report
            .changes
            .iter()
            .find(|c| c.agent == a && c.tool == t)
            .unwrap_or_else(|| panic!("no change for {a} {t}: {report:#?}"))
    };
    let refund = find("refunder", "pay.refund");
    assert_eq!(refund.before.outcome, "depends");
    let fd = refund.first_difference.as_ref().unwrap();
    let amount = fd["probe"]["args"]["amount"].as_i64().unwrap();
    assert!((501..=1000).contains(&amount), "{fd}");
    assert_eq!(
        (fd["before"].as_str(), fd["after"].as_str()),
        (Some("needs_approval"), Some("allow"))
    );
    // mail.send keeps needing approval but only from the rule now: approvals required differ
    // not approvers, so no change there; nothing else changes.
    assert!(
        report.changes.iter().all(|c| c.tool == "pay.refund"),
        "{report:#?}"
    );
    // Identical policy sets: no change at all.
    let same = warden_policy::diff::diff(&inv, &before, &before);
    assert!(same.changes.is_empty());
    assert!(same.probed_pairs > 0);
}

#[test]
fn decision_json_has_one_policies_key() {
    let d = engine().decide(&req(
        "refunder",
        "pay.refund",
        json!({"charge_id": "c", "amount": 900}),
    ));
    let text = serde_json::to_string(&d).unwrap();
    assert_eq!(text.matches("\"policies\"").count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["outcome"], "needs_approval");
    assert_eq!(v["approval_policies"], json!(["big-refunds"]));
    assert_eq!(v["policies"][0]["id"], "big-refunds");
}

#[test]
fn validation_per_connector_keeps_errors_and_allows_connector_wide_arguments() {
    // A typo in a tool action is still an unknown action.
    let e = load("@id(\"typo\")\nforbid (principal, action == Action::\"pay.refnd\", resource);\n")
        .unwrap_err();
    assert!(e.to_string().contains("pay.refnd"), "{e}");
    // The same typo scoped to the connector's resources.
    let e = load("@id(\"typo\")\nforbid (principal, action == Action::\"pay.refnd\", resource in Connector::\"pay\");\n")
        .unwrap_err();
    assert!(e.to_string().contains("pay.refnd"), "{e}");
    // An argument every tool of `pay` declares... `charge_id` is declared by both pay tools,
    // so a connector-wide rule may read it; on `mail` it does not exist.
    let ok = "@id(\"pay-wide\")\nforbid (principal, action, resource in Connector::\"pay\")\nwhen { context.args.charge_id == \"blocked\" };\n";
    let e = load(ok).unwrap_or_else(|e| panic!("{e}"));
    let d = e.decide(&req("refunder", "pay.get", json!({"charge_id": "blocked"})));
    assert_eq!(d.policy_ids(), vec!["pay-wide"]);
    let bad = "@id(\"mail-wide\")\nforbid (principal, action, resource in Connector::\"mail\")\nwhen { context.args.charge_id == \"blocked\" };\n";
    assert!(load(bad).is_err());
}
