//! Findings: the one result shape every posture check in Warden produces
//! (`warden check`, the security graph, the scanner).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity `{other}` (expected info, low, medium, high or critical)"
            )),
        }
    }
}

/// A place in a file: 1-based line and column (0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceLocation {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        Ok(())
    }
}

/// One posture result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule identifier, namespaced by producer: `check.orphaned-agent`, `graph.…`, `scan.…`.
    pub rule_id: String,
    pub severity: Severity,
    /// One line: what is wrong.
    pub message: String,
    /// Where it was declared or found, when it has a place in a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<SourceLocation>,
    /// The inventory entity (or graph node) the finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Supporting facts, one per line; for graph findings, the path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// What to change to resolve it.
    pub fix: String,
    /// OWASP Top 10 for Agentic Applications (ASI01–ASI10) and LLM Top 10 ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owasp: Vec<String>,
}

impl Finding {
    pub fn new(rule_id: &str, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            rule_id: rule_id.to_string(),
            severity,
            message: message.into(),
            location: None,
            subject: None,
            evidence: Vec::new(),
            fix: String::new(),
            owasp: Vec::new(),
        }
    }

    pub fn at(mut self, location: Option<SourceLocation>) -> Self {
        self.location = location;
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }

    pub fn owasp(mut self, ids: &[&str]) -> Self {
        self.owasp.extend(ids.iter().map(|s| s.to_string()));
        self
    }
}

/// Sorts findings most severe first, then by place, then by rule, for stable output.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.location.cmp(&b.location))
            .then_with(|| a.rule_id.cmp(&b.rule_id))
            .then_with(|| a.subject.cmp(&b.subject))
    });
}

/// Renders findings as human text, one block each.
pub fn render_text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let place = f
            .location
            .as_ref()
            .map(|l| format!("{l}: "))
            .unwrap_or_default();
        out.push_str(&format!(
            "{place}{sev} [{rule}] {msg}\n",
            sev = f.severity,
            rule = f.rule_id,
            msg = f.message
        ));
        for e in &f.evidence {
            out.push_str(&format!("    evidence: {e}\n"));
        }
        if !f.fix.is_empty() {
            out.push_str(&format!("    fix: {}\n", f.fix));
        }
        if !f.owasp.is_empty() {
            out.push_str(&format!("    owasp: {}\n", f.owasp.join(", ")));
        }
    }
    let mut counts = [0usize; 5];
    for f in findings {
        counts[f.severity as usize] += 1;
    }
    out.push_str(&format!(
        "{} finding(s): {} critical, {} high, {} medium, {} low, {} info\n",
        findings.len(),
        counts[4],
        counts[3],
        counts[2],
        counts[1],
        counts[0]
    ));
    out
}
