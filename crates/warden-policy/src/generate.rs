//! A generated organisation for benchmarks and property tests: `agents` agents, `connectors`
//! × `tools_per_connector` tools with typed arguments, and `policies` Cedar policies of the
//! shapes real policy sets contain (per-tool argument limits, per-agent approvals, connector-wide
//! taint rules, effect-group approvals, time windows, delegation limits). Deterministic for a
//! given seed.

use std::fmt::Write as _;

use warden_core::{Inventory, PolicyFile};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct OrgSpec {
    pub agents: usize,
    pub connectors: usize,
    pub tools_per_connector: usize,
    pub policies: usize,
    /// Tools each agent is entitled to.
    pub uses_per_agent: usize,
    pub seed: u64,
}

impl OrgSpec {
    /// 1,000 agents, 5,000 tools (100 connectors × 50), 2,000 policies.
    pub fn large() -> OrgSpec {
        OrgSpec {
            agents: 1_000,
            connectors: 100,
            tools_per_connector: 50,
            policies: 2_000,
            uses_per_agent: 20,
            seed: 7,
        }
    }
}

/// A small deterministic PRNG (xorshift64*), so generated organisations need no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

const EFFECTS: [&str; 5] = ["read", "write", "external_send", "code_exec", "privileged"];

/// Name of tool `t` of connector `c`.
pub fn tool_name(c: usize, t: usize) -> String {
    format!("c{c}.t{t}")
}

/// Generates the organisation's manifest and policy texts.
pub fn generate_texts(spec: &OrgSpec) -> (String, String) {
    let mut rng = Rng::new(spec.seed);
    let mut y = String::new();
    y.push_str("humans:\n");
    for g in 0..10 {
        let _ = writeln!(y, "  - {{ id: h{g}@gen.example, groups: [approvers-{g}] }}");
    }
    y.push_str("groups:\n");
    for g in 0..10 {
        let _ = writeln!(y, "  - {{ id: approvers-{g} }}");
    }
    y.push_str("connectors:\n");
    for c in 0..spec.connectors {
        let _ = writeln!(
            y,
            "  - id: c{c}\n    mcp: {{ url: \"https://c{c}.gen.example/mcp\" }}\n    tools:"
        );
        for t in 0..spec.tools_per_connector {
            let e = EFFECTS[rng.below(EFFECTS.len())];
            let irr = rng.chance(10);
            let _ = writeln!(
                y,
                "      t{t}:\n        effects: [{e}]\n        irreversible: {irr}\n        args:\n          \
                 amount: {{ type: integer, required: true, min: 0, max: 100000 }}\n          \
                 target: {{ type: string }}\n          dry_run: {{ type: boolean }}"
            );
        }
    }
    y.push_str("agents:\n");
    let ntools = spec.connectors * spec.tools_per_connector;
    for a in 0..spec.agents {
        let _ = writeln!(
            y,
            "  - id: a{a}\n    owner: h{}@gen.example\n    model: gen/model\n    uses:",
            a % 10
        );
        for _ in 0..spec.uses_per_agent {
            let t = rng.below(ntools);
            let _ = writeln!(
                y,
                "      - {}",
                tool_name(t / spec.tools_per_connector, t % spec.tools_per_connector)
            );
        }
    }
    y.push_str("approvals:\n  - id: gen-privileged\n    when: { effects: [privileged], irreversible: true }\n    approvers: [group:approvers-0]\n    expires: 30m\n");

    let mut p = String::new();
    for i in 0..spec.policies {
        let t = rng.below(ntools);
        let tool = tool_name(t / spec.tools_per_connector, t % spec.tools_per_connector);
        let agent = rng.below(spec.agents);
        let n = rng.below(100_000);
        let g = rng.below(10);
        let _ = match i % 10 {
            0..=3 => writeln!(
                p,
                "@id(\"p{i}\")\n@reason(\"cap {n} on {tool}\")\nforbid (principal, action == Action::\"{tool}\", resource)\nwhen {{ context.args.amount > {n} }};\n"
            ),
            4..=5 => writeln!(
                p,
                "@id(\"p{i}\")\n@approval(\"approvers-{g}\")\n@approval_ttl(\"15m\")\npermit (principal == Agent::\"a{agent}\", action == Action::\"{tool}\", resource)\nwhen {{ context.args.amount >= {n} }};\n"
            ),
            6 => writeln!(
                p,
                "@id(\"p{i}\")\nforbid (principal, action, resource in Connector::\"c{}\")\nwhen {{ context.session.tainted && context.args has dry_run && !context.args.dry_run }};\n",
                rng.below(spec.connectors)
            ),
            7 => writeln!(
                p,
                "@id(\"p{i}\")\nforbid (principal == Agent::\"a{agent}\", action == Action::\"{tool}\", resource)\nunless {{ context.time.weekday <= 5 && context.time.hour >= 8 && context.time.hour < 18 }};\n"
            ),
            8 => writeln!(
                p,
                "@id(\"p{i}\")\nforbid (principal, action == Action::\"{tool}\", resource)\nwhen {{ context.delegation.depth > {} }};\n",
                1 + g % 3
            ),
            _ => writeln!(
                p,
                "@id(\"p{i}\")\n@approval(\"approvers-{g}\")\npermit (principal, action == Action::\"{tool}\", resource)\nwhen {{ context.args has target && context.args.target like \"ext-*\" }};\n"
            ),
        };
    }
    (y, p)
}

/// Generates the organisation as a loaded inventory (policies in `generated.cedar`).
pub fn generate_org(spec: &OrgSpec) -> Inventory {
    let (manifest, policies) = generate_texts(spec);
    let mut inv = Inventory::from_manifests([("generated.yaml", manifest.as_str())])
        .unwrap_or_else(|e| panic!("generated manifest is invalid: {e}"));
    inv.policies.push(PolicyFile {
        path: "generated.cedar".into(),
        text: policies,
    });
    inv
}
