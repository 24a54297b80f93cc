//! End-to-end over the example organisation and fixture trees: what `warden scan` must find,
//! what it must not, and SARIF 2.1.0 / CycloneDX 1.6 output validated against the official
//! JSON schemas vendored under `tests/fixtures/schemas/` (SARIF: npm `@microsoft/jest-sarif`
//! 1.0.0-beta.0 `sarif-2.1.0-rtm.5.json`; CycloneDX: npm `@cyclonedx/cyclonedx-library` 10.3.0).

use std::path::{Path, PathBuf};

use serde_json::Value;
use warden_core::Finding;
use warden_scan::baseline::Baseline;
use warden_scan::{ScanOptions, ScanOutput, SecretScanner, bom, sarif, scan_path};

fn acme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme")
}

fn scan(root: &Path, opts: &ScanOptions) -> ScanOutput {
    scan_path(root, opts, &SecretScanner::new(), None).expect("scan")
}

/// 1-based line of the first line containing `needle` (computed from the file, not by the scanner).
fn line_of(file: &Path, needle: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in file") as u64
        + 1
}

fn find<'a>(findings: &'a [Finding], rule: &str, file: &str) -> Vec<&'a Finding> {
    findings
        .iter()
        .filter(|f| {
            f.rule_id == rule
                && f.location
                    .as_ref()
                    .is_some_and(|l| l.file == Path::new(file))
        })
        .collect()
}

#[test]
fn acme_planted_key_unpinned_server_and_shell_tool() {
    let out = scan(&acme(), &ScanOptions::default());
    let f = &out.findings;
    let key = find(f, "scan.secret.anthropic", "agents/support-triage/agent.py");
    assert_eq!(key.len(), 1, "{f:#?}");
    let expected_line = line_of(
        &acme().join("agents/support-triage/agent.py"),
        "sk-ant-api03-",
    );
    assert_eq!(key[0].location.as_ref().unwrap().line, expected_line);
    // Printed secrets are redacted.
    let raw = std::fs::read_to_string(acme().join("agents/support-triage/agent.py")).unwrap();
    let secret = raw
        .split('"')
        .find(|s| s.starts_with("sk-ant-api03-"))
        .unwrap();
    let printed = serde_json::to_string(f).unwrap();
    assert!(!printed.contains(secret), "secret printed unredacted");
    assert!(!printed.contains(&secret[20..40]));

    let unpinned = find(f, "scan.mcp.unpinned-package", ".mcp.json");
    assert_eq!(unpinned.len(), 1);
    assert!(unpinned[0].message.contains("@acme-labs/shell-mcp"));
    assert_eq!(find(f, "scan.mcp.inline-secret", ".mcp.json").len(), 1);

    let shell = find(
        f,
        "scan.code.shell-on-model-output",
        "agents/coding-agent/src/agent.ts",
    );
    assert!(!shell.is_empty());
    let exec_line = line_of(
        &acme().join("agents/coding-agent/src/agent.ts"),
        "execSync(input.command",
    );
    assert!(
        shell
            .iter()
            .any(|s| s.location.as_ref().unwrap().line == exec_line)
    );

    // The inventory's `${env:…}` references and the crm header reference are not secrets.
    assert!(
        f.iter().all(|x| {
            let file = x
                .location
                .as_ref()
                .map(|l| l.file.display().to_string())
                .unwrap_or_default();
            !(file.ends_with(".yaml") && x.rule_id.starts_with("scan.secret."))
        }),
        "{f:#?}"
    );
    assert!(
        f.iter()
            .all(|x| !x.rule_id.is_empty() && !x.fix.is_empty() && !x.owasp.is_empty())
    );
}

#[test]
fn acme_bom_lists_frameworks_models_and_servers() {
    let out = scan(&acme(), &ScanOptions::default());
    let b = bom::build("acme", &out.facts);
    let pkg = |name: &str| {
        b.packages
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.version.clone())
    };
    assert_eq!(pkg("langgraph"), Some(Some("0.4.8".into())));
    assert_eq!(pkg("openai-agents"), Some(Some("0.1.0".into())));
    assert_eq!(
        pkg("@anthropic-ai/claude-agent-sdk"),
        Some(Some("0.1.30".into()))
    );
    assert_eq!(
        pkg("requests"),
        None,
        "non-AI packages stay out of the AI-BOM"
    );
    let models: Vec<String> = b
        .models
        .iter()
        .map(|m| format!("{}/{}", m.provider, m.name))
        .collect();
    for m in [
        "anthropic/claude-sonnet-4-5",
        "openai/gpt-4.1",
        "anthropic/claude-opus-4-1",
    ] {
        assert!(
            models.contains(&m.to_string()),
            "{m} missing from {models:?}"
        );
    }
    let sonnet = b
        .models
        .iter()
        .find(|m| m.name == "claude-sonnet-4-5")
        .unwrap();
    let code_line = line_of(
        &acme().join("agents/support-triage/agent.py"),
        "model=\"claude-sonnet-4-5\"",
    );
    assert!(
        sonnet
            .occurrences
            .contains(&(PathBuf::from("agents/support-triage/agent.py"), code_line))
    );
    let servers: Vec<&str> = b.services.iter().map(|s| s.name.as_str()).collect();
    for s in ["shell", "github", "filesystem", "crm"] {
        assert!(servers.contains(&s), "{servers:?}");
    }
    // Projects depend on their own packages and models.
    let triage = b
        .projects
        .iter()
        .find(|p| p.dir == Path::new("agents/support-triage"))
        .unwrap();
    assert!(
        triage
            .packages
            .iter()
            .any(|p| p.starts_with("pkg:pypi/langgraph@"))
    );
    assert!(triage.models.contains("model:anthropic/claude-sonnet-4-5"));
    assert!(!triage.models.contains("model:openai/gpt-4.1"));
}

struct FixtureRetriever;

impl jsonschema::Retrieve for FixtureRetriever {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.as_str().rsplit('/').next().unwrap_or("").to_string();
        let path = schemas().join(&name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }
}

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schemas")
}

fn fix_language_patterns(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("pattern").and_then(|p| p.as_str())
                == Some("^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$")
            {
                m.insert(
                    "pattern".into(),
                    Value::from("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$"),
                );
            }
            m.values_mut().for_each(fix_language_patterns);
        }
        Value::Array(a) => a.iter_mut().for_each(fix_language_patterns),
        _ => {}
    }
}

fn validate(schema_file: &str, instance: &Value) -> Vec<String> {
    let mut schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schemas().join(schema_file)).unwrap())
            .unwrap();
    // The published SARIF schema's `run.language` pattern has a stray `]` that strict regex
    // engines reject while compiling the schema; substitute the evident intent (a
    // language tag like `en` or `en-US`). Our logs do not set `language` at all.
    fix_language_patterns(&mut schema);
    let v = jsonschema::options()
        .with_retriever(FixtureRetriever)
        .build(&schema)
        .expect("schema compiles");
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn sarif_validates_against_the_2_1_0_schema() {
    let out = scan(&acme(), &ScanOptions::default());
    let doc = sarif::to_sarif(&out.findings);
    let errors = validate("sarif-schema-2.1.0.json", &doc);
    assert!(errors.is_empty(), "{errors:#?}");
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), out.findings.len());
    assert!(results.iter().all(|r| {
        r["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .unwrap()
            >= 1
    }));
    // The validator is not vacuous: a broken log fails.
    let mut broken = doc.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(!validate("sarif-schema-2.1.0.json", &broken).is_empty());
}

#[test]
fn cyclonedx_validates_against_the_1_6_schema() {
    let out = scan(&acme(), &ScanOptions::default());
    let doc = bom::to_cyclonedx(&bom::build("acme", &out.facts));
    let errors = validate("bom-1.6.SNAPSHOT.schema.json", &doc);
    assert!(errors.is_empty(), "{errors:#?}");
    // Every dependency ref resolves to a component, service or the root.
    let mut refs: Vec<&str> = vec!["root"];
    for c in doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .chain(doc["services"].as_array().unwrap())
    {
        refs.push(c["bom-ref"].as_str().unwrap());
    }
    for d in doc["dependencies"].as_array().unwrap() {
        assert!(refs.contains(&d["ref"].as_str().unwrap()));
        for x in d["dependsOn"].as_array().unwrap() {
            assert!(refs.contains(&x.as_str().unwrap()), "dangling {x}");
        }
    }
    let mut broken = doc.clone();
    broken["components"][0]["type"] = Value::from("agent");
    assert!(!validate("bom-1.6.SNAPSHOT.schema.json", &broken).is_empty());
}

const GH: &str = "ghp_R8x2Lq9Vt4Mn7Kp1Ws5Zc3Hb6Fd0Jg2Ya8Eu";

#[test]
fn gitignore_wardenignore_binary_and_large_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join(".gitignore"), "ignored.env\n").unwrap();
    std::fs::write(d.join(".wardenignore"), "fixtures/\n").unwrap();
    std::fs::write(d.join("ignored.env"), format!("GITHUB_TOKEN={GH}\n")).unwrap();
    std::fs::create_dir(d.join("fixtures")).unwrap();
    std::fs::write(d.join("fixtures/k.py"), format!("t = \"{GH}\"\n")).unwrap();
    std::fs::write(d.join("app.py"), format!("t = \"{GH}\"\n")).unwrap();
    let mut bin = b"\x00\x01\x02".to_vec();
    bin.extend_from_slice(GH.as_bytes());
    std::fs::write(d.join("blob.bin"), bin).unwrap();
    std::fs::write(d.join("big.txt"), format!("{}\n{GH}\n", "a".repeat(4096))).unwrap();
    let opts = ScanOptions {
        max_file_bytes: 2048,
        ..ScanOptions::default()
    };
    let out = scan(d, &opts);
    let files: Vec<String> = out
        .findings
        .iter()
        .map(|f| f.location.as_ref().unwrap().file.display().to_string())
        .collect();
    assert_eq!(files, vec!["app.py"]);
    assert_eq!(out.stats.skipped_binary, 1);
    assert_eq!(out.stats.skipped_too_large, 1);

    let no_ignore = scan(
        d,
        &ScanOptions {
            respect_gitignore: false,
            ..opts
        },
    );
    let mut files: Vec<String> = no_ignore
        .findings
        .iter()
        .map(|f| f.location.as_ref().unwrap().file.display().to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec!["app.py", "ignored.env"],
        ".wardenignore still applies"
    );
}

#[test]
fn notebook_cells_and_outputs_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let nb = serde_json::json!({
        "cells": [
            {"cell_type": "markdown", "source": ["# Demo\n"]},
            {"cell_type": "code", "source": ["import os\n", "exec(response.text)\n"], "outputs": [
                {"output_type": "stream", "text": [format!("token is {GH}\n")]}
            ]}
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5
    });
    std::fs::write(
        dir.path().join("demo.ipynb"),
        serde_json::to_string_pretty(&nb).unwrap(),
    )
    .unwrap();
    let out = scan(dir.path(), &ScanOptions::default());
    let rules: Vec<&str> = out.findings.iter().map(|f| f.rule_id.as_str()).collect();
    assert!(rules.contains(&"scan.secret.github"), "{rules:?}");
    assert!(rules.contains(&"scan.code.eval-model-output"), "{rules:?}");
    let secret = out
        .findings
        .iter()
        .find(|f| f.rule_id == "scan.secret.github")
        .unwrap();
    assert!(secret.evidence.iter().any(|e| e.contains("cell 2 output")));
}

#[test]
fn baseline_hides_known_findings_and_keeps_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.py"), format!("t = \"{GH}\"\n")).unwrap();
    let first = scan(dir.path(), &ScanOptions::default());
    let base = Baseline::from_findings(&first.findings);
    let path = dir.path().join("baseline.json");
    base.save(&path).unwrap();
    // Move the secret to another file and line: still baselined; add a new one: reported.
    std::fs::remove_file(dir.path().join("a.py")).unwrap();
    std::fs::write(
        dir.path().join("b.py"),
        format!("\n\nt = \"{GH}\"\ns = \"sk_live_4eC39HqLyjWDarjtT1zdp7dcQ\"\n"),
    )
    .unwrap();
    let mut second = scan(dir.path(), &ScanOptions::default()).findings;
    let removed = Baseline::load(&path).unwrap().filter(&mut second);
    assert_eq!(removed, 1);
    let rules: Vec<&str> = second.iter().map(|f| f.rule_id.as_str()).collect();
    assert_eq!(rules, vec!["scan.secret.stripe"]);
}

#[test]
fn bom_policy_turns_deviations_into_findings() {
    use warden_core::model::BomPolicy;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("requirements.txt"),
        "langchain==0.1.20\ncohere==5.0.0\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "m = \"command-r-plus\"\nn = \"claude-haiku-4-5\"\n",
    )
    .unwrap();
    let out = scan(dir.path(), &ScanOptions::default());
    let b = bom::build("t", &out.facts);
    let policy = BomPolicy {
        allowed_providers: vec!["anthropic".into(), "openai".into()],
        allowed_models: vec![],
        denied_packages: vec!["langchain@<0.2.0".into(), "cohere@>=6".into()],
    };
    let mut rules: Vec<(String, String)> = bom::check_policy(&b, &policy)
        .into_iter()
        .map(|f| (f.rule_id, f.subject.unwrap_or_default()))
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        vec![
            (
                "scan.bom.denied-package".into(),
                "pkg:pypi/langchain@0.1.20".into()
            ),
            (
                "scan.bom.model-provider-not-allowed".into(),
                "cohere/command-r-plus".into()
            ),
        ]
    );
}
