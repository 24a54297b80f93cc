//! Baselines: a file of finding fingerprints accepted at some point, so CI fails only on
//! new findings. Secret fingerprints hash the rule and the secret (not the path or line),
//! so moving a file keeps it baselined; other findings hash rule, file and evidence.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warden_core::Finding;

use crate::ScanError;
use crate::walk::finding_fingerprint;

/// The on-disk baseline (`{"version": 1, "fingerprints": [...]}`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub version: u32,
    pub fingerprints: BTreeSet<String>,
}

/// The fingerprint of any finding.
pub fn fingerprint_of(f: &Finding) -> String {
    if let Some(fp) = finding_fingerprint(f) {
        return fp.to_string();
    }
    let mut h = Sha256::new();
    h.update(f.rule_id.as_bytes());
    h.update([0]);
    if let Some(l) = &f.location {
        h.update(l.file.display().to_string().as_bytes());
    }
    h.update([0]);
    h.update(f.subject.as_deref().unwrap_or("").as_bytes());
    h.update([0]);
    h.update(f.evidence.first().map_or("", |e| e.trim()).as_bytes());
    hex::encode(h.finalize())
}

impl Baseline {
    pub fn from_findings(findings: &[Finding]) -> Self {
        Baseline {
            version: 1,
            fingerprints: findings.iter().map(fingerprint_of).collect(),
        }
    }

    pub fn load(path: &Path) -> Result<Self, ScanError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScanError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let b: Baseline = serde_json::from_str(&text).map_err(|e| ScanError::Parse {
            path: path.to_path_buf(),
            message: format!("not a warden baseline: {e}"),
        })?;
        if b.version != 1 {
            return Err(ScanError::Parse {
                path: path.to_path_buf(),
                message: format!("unsupported baseline version {}", b.version),
            });
        }
        Ok(b)
    }

    pub fn save(&self, path: &Path) -> Result<(), ScanError> {
        let text = serde_json::to_string_pretty(self).expect("serializable");
        std::fs::write(path, text + "\n").map_err(|e| ScanError::Io {
            path: path.to_path_buf(),
            source: e,
        })
    }

    /// Removes baselined findings; returns how many were removed.
    pub fn filter(&self, findings: &mut Vec<Finding>) -> usize {
        let before = findings.len();
        findings.retain(|f| !self.fingerprints.contains(&fingerprint_of(f)));
        before - findings.len()
    }
}
