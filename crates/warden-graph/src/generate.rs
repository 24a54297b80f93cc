//! Synthetic organisations for the scale benchmark: inventory manifests (YAML text), one per
//! team, so the benchmark measures the same loading and building path as a real inventory.
//!
//! One team has 20 humans, 2 groups, 50 agents (the first ownerless), 50 identities, 10 connectors
//! of 30 tools, 60 resources (2 untrusted sources, 2 external sinks, a memory store and a
//! tier-zero ledger); every fifth agent hands off to the next, one in seven reads untrusted
//! input, and every tenth team's ops role can assume the organisation's admin role.
//! 2,000 teams ≈ 100k agents, 1M nodes, 5M edges.

use std::fmt::Write;

/// Counts of one generated organisation.
#[derive(Debug, Clone, Copy)]
pub struct OrgShape {
    pub teams: usize,
}

impl OrgShape {
    pub const AGENTS_PER_TEAM: usize = 50;
    pub const CONNECTORS_PER_TEAM: usize = 10;
    pub const TOOLS_PER_CONNECTOR: usize = 30;
    pub const RESOURCES_PER_TEAM: usize = 60;
}

/// The manifests of a generated organisation: `(file name, YAML)`.
pub fn manifests(shape: OrgShape) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(shape.teams + 1);
    out.push((
        "org.yaml".to_string(),
        concat!(
            "identities:\n",
            "  - { id: org-admin, kind: role, admin: true, access: [org-ledger] }\n",
            "resources:\n",
            "  - { id: org-ledger, kind: api, sensitivity: restricted, tier_zero: true }\n",
            "approvals:\n",
            "  - id: code-execution\n",
            "    when: { effects: [code_exec] }\n",
            "    approvers: [group:t0-g0]\n",
            "  - id: payments\n",
            "    when: { effects: [privileged] }\n",
            "    approvers: [group:t0-g1]\n",
        )
        .to_string(),
    ));
    for t in 0..shape.teams {
        out.push((format!("team-{t:05}.yaml"), team(t)));
    }
    out
}

fn team(t: usize) -> String {
    let mut s = String::with_capacity(256 * 1024);
    let a_n = OrgShape::AGENTS_PER_TEAM;
    let c_n = OrgShape::CONNECTORS_PER_TEAM;
    let tools = OrgShape::TOOLS_PER_CONNECTOR;
    let r_n = OrgShape::RESOURCES_PER_TEAM;
    s.push_str("groups:\n");
    for g in 0..2 {
        let _ = writeln!(s, "  - {{ id: t{t}-g{g} }}");
    }
    s.push_str("humans:\n");
    for h in 0..20 {
        let _ = writeln!(s, "  - {{ id: t{t}-h{h}, groups: [t{t}-g{}] }}", h % 2);
    }
    s.push_str("resources:\n");
    for r in 0..r_n {
        let (kind, sens, tz) = match r {
            0 | 1 => ("untrusted_source", "public", false),
            2 | 3 => ("external_sink", "public", false),
            4 => ("memory", "confidential", false),
            5 => ("api", "restricted", true),
            r if r.is_multiple_of(3) => ("datastore", "restricted", false),
            _ => ("datastore", "internal", false),
        };
        let _ = writeln!(
            s,
            "  - {{ id: t{t}-r{r}, kind: {kind}, sensitivity: {sens}, tier_zero: {tz} }}"
        );
    }
    s.push_str("identities:\n");
    for i in 0..a_n {
        let acc: Vec<String> = (0..4)
            .map(|k| format!("t{t}-r{}", 6 + (i * 4 + k) % (r_n - 6)))
            .collect();
        let assume = if i == 0 && t.is_multiple_of(10) {
            ", can_assume: [org-admin]".to_string()
        } else if i > 0 && i.is_multiple_of(10) {
            format!(", can_assume: [t{t}-id0]")
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  - {{ id: t{t}-id{i}, kind: service_account, access: [{}]{assume} }}",
            acc.join(", ")
        );
    }
    s.push_str("connectors:\n");
    for c in 0..c_n {
        let _ = writeln!(s, "  - id: t{t}-c{c}");
        let _ = writeln!(s, "    runs_as: t{t}-id{c}");
        let _ = writeln!(
            s,
            "    mcp: {{ command: svc, env: {{ TOKEN: \"${{env:T{t}_C{c}_TOKEN}}\" }} }}"
        );
        s.push_str("    tools:\n");
        for k in 0..tools {
            // Connector 0 reads untrusted input, 1 sends externally, 2 holds the ledger.
            let (effects, extra, res) = match (c, k % 3) {
                (0, _) => (
                    "[read]",
                    ", untrusted_output: true",
                    format!("t{t}-r{}", k % 2),
                ),
                (1, _) => ("[external_send]", "", format!("t{t}-r{}", 2 + k % 2)),
                (2, 0) => (
                    "[write, privileged]",
                    ", irreversible: true",
                    format!("t{t}-r5"),
                ),
                (3, 0) => (
                    "[write]",
                    "",
                    format!("t{t}-r{}", 6 + (c * 7 + k) % (r_n - 6)),
                ),
                _ => (
                    "[read]",
                    "",
                    format!("t{t}-r{}", 6 + (c * 7 + k) % (r_n - 6)),
                ),
            };
            let _ = writeln!(
                s,
                "      t{k}: {{ effects: {effects}{extra}, resources: [{res}] }}"
            );
        }
    }
    s.push_str("agents:\n");
    for a in 0..a_n {
        let _ = writeln!(s, "  - id: t{t}-a{a}");
        if a != 0 {
            let _ = writeln!(s, "    owner: t{t}-h{}", a % 20);
        }
        let _ = writeln!(s, "    runs_as: t{t}-id{a}");
        let _ = writeln!(s, "    model: provider{}/model{}", a % 3, a % 5);
        let main = 2 + a % (c_n - 2);
        let mut uses = vec![format!("t{t}-c{main}.*")];
        if a.is_multiple_of(7) {
            uses.push(format!("t{t}-c0.t{}", a % tools));
        }
        if a.is_multiple_of(11) {
            uses.push(format!("t{t}-c1.t{}", a % tools));
        }
        let _ = writeln!(s, "    uses: [{}]", uses.join(", "));
        if a.is_multiple_of(25) {
            let _ = writeln!(s, "    writes: [t{t}-r4]");
        }
        if a % 25 == 1 {
            let _ = writeln!(s, "    reads: [t{t}-r4]");
        }
        if a.is_multiple_of(5) && a + 1 < a_n {
            let _ = writeln!(
                s,
                "    handoffs:\n      - {{ to: t{t}-a{}, context: [ticket_id], ttl: 15m }}",
                a + 1
            );
        }
    }
    s
}
