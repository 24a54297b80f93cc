//! SARIF 2.1.0 output (GitHub code scanning accepts it): one run, one rule per rule id,
//! results with physical locations relative to the scanned root and
//! `partialFingerprints` so code scanning tracks a secret across line moves.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use warden_core::{Finding, Severity};

use crate::walk::finding_fingerprint;

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` (0.0–10.0).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// Renders findings as a SARIF 2.1.0 log.
pub fn to_sarif(findings: &[Finding]) -> Value {
    let mut rules: BTreeMap<&str, &Finding> = BTreeMap::new();
    for f in findings {
        let e = rules.entry(f.rule_id.as_str()).or_insert(f);
        if f.severity > e.severity {
            *e = f;
        }
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, k)| (*k, i)).collect();
    let rule_objs: Vec<Value> = rules
        .values()
        .map(|f| {
            let mut tags = vec!["security".to_string()];
            tags.extend(f.owasp.iter().cloned());
            json!({
                "id": f.rule_id,
                "name": f.rule_id.replace(['.', '-'], "_"),
                "shortDescription": { "text": f.message },
                "help": { "text": f.fix },
                "defaultConfiguration": { "level": level(f.severity) },
                "properties": {
                    "tags": tags,
                    "security-severity": security_severity(f.severity),
                },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut text = f.message.clone();
            for e in f
                .evidence
                .iter()
                .filter(|e| !e.starts_with("fingerprint: "))
            {
                text.push_str(&format!("\n{e}"));
            }
            let mut r = json!({
                "ruleId": f.rule_id,
                "ruleIndex": index[f.rule_id.as_str()],
                "level": level(f.severity),
                "message": { "text": text },
            });
            if let Some(loc) = &f.location {
                let mut region = json!({ "startLine": loc.line.max(1) });
                if loc.column > 0 {
                    region["startColumn"] = json!(loc.column);
                }
                r["locations"] = json!([{
                    "physicalLocation": {
                        "artifactLocation": {
                            "uri": loc.file.display().to_string().replace('\\', "/"),
                            "uriBaseId": "%SRCROOT%",
                        },
                        "region": region,
                    }
                }]);
            }
            if let Some(fp) = finding_fingerprint(f) {
                r["partialFingerprints"] = json!({ "wardenFingerprint/v1": fp });
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "warden",
                    "informationUri": "https://example.invalid/warden",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rule_objs,
                }
            },
            "results": results,
        }]
    })
}
