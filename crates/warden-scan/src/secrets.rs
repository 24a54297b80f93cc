//! In-memory secret detection: the rules `warden scan` applies to files and the runtime
//! inspector (warden-detect) applies to tool results.
//!
//! [`SecretScanner::new`] compiles every rule once (the scanner is `Send + Sync`, share it
//! behind an `Arc` or a `static`). [`SecretScanner::find`] takes any text and returns the
//! [`SecretMatch`]es in it, ordered by position, never overlapping. Matching is in three
//! steps: an Aho-Corasick keyword prefilter selects the rules that could match at all, the
//! selected rules' regexes run, and each candidate passes the rule's entropy threshold and
//! the placeholder/stop-word suppression (`sk-xxxx`, `your-api-key`, `${VAR}`,
//! `os.environ[...]`, `<token>` …). Lines containing `warden:allow` are skipped.

use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warden_core::Severity;

/// One secret found in a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretMatch {
    /// `scan.secret.<provider>`, e.g. `scan.secret.anthropic`.
    pub rule_id: String,
    /// Human name of the credential type, e.g. `Anthropic API key`.
    pub description: String,
    pub severity: Severity,
    /// Byte offset of the secret value in the scanned text (inclusive).
    pub start: usize,
    /// Byte offset just past the secret value.
    pub end: usize,
    /// A printable form that never contains the whole secret (`sk-ant****`).
    pub redacted: String,
    /// `sha256(rule_id \0 secret)` in hex: stable across files and line moves (baselines).
    pub fingerprint: String,
    /// Shannon entropy of the value in bits per character.
    pub entropy: f64,
}

/// One detection rule (public so docs and evaluation can list them).
pub struct RuleSpec {
    /// Suffix of the rule id: `scan.secret.<id>`.
    pub id: &'static str,
    pub description: &'static str,
    /// Literal keywords; the rule only runs when one occurs in the text.
    pub keywords: &'static [&'static str],
    /// Whether the keywords are matched case-insensitively.
    pub keywords_ci: bool,
    /// The regex; capture group 1, when present, is the secret value, otherwise the whole match.
    pub pattern: &'static str,
    /// Minimum Shannon entropy (bits/char) of the value.
    pub min_entropy: f64,
    pub severity: Severity,
}

/// Every rule, highest priority first (when two matches overlap, the earlier rule wins).
pub static RULES: &[RuleSpec] = &[
    RuleSpec {
        id: "gcp-service-account",
        description: "GCP service-account key (JSON)",
        keywords: &["private_key_id"],
        keywords_ci: false,
        pattern: r#""private_key_id"\s*:\s*"([a-f0-9]{40})"\s*,\s*"private_key"\s*:\s*"-----BEGIN PRIVATE KEY-----[^"]{64,}"#,
        min_entropy: 3.0,
        severity: Severity::Critical,
    },
    RuleSpec {
        id: "private-key",
        description: "Private key (PEM)",
        keywords: &["PRIVATE KEY"],
        keywords_ci: false,
        pattern: r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s\\:,\-]{64,}?-----END (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----",
        min_entropy: 3.0,
        severity: Severity::Critical,
    },
    RuleSpec {
        id: "anthropic",
        description: "Anthropic API key",
        keywords: &["sk-ant-"],
        keywords_ci: false,
        pattern: r"\b(sk-ant-(?:api03|admin01)-[A-Za-z0-9_\-]{80,120}AA)(?:[^A-Za-z0-9_\-]|$)",
        min_entropy: 4.0,
        severity: Severity::Critical,
    },
    RuleSpec {
        id: "openai",
        description: "OpenAI API key",
        keywords: &["T3BlbkFJ", "sk-proj-", "sk-svcacct-", "sk-admin-"],
        keywords_ci: false,
        pattern: r"\b(sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_\-]{16,}T3BlbkFJ[A-Za-z0-9_\-]{16,}|sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{80,})(?:[^A-Za-z0-9_\-]|$)",
        min_entropy: 4.0,
        severity: Severity::Critical,
    },
    RuleSpec {
        id: "huggingface",
        description: "Hugging Face access token",
        keywords: &["hf_"],
        keywords_ci: false,
        pattern: r"\b(hf_[A-Za-z0-9]{34})\b",
        min_entropy: 3.5,
        severity: Severity::High,
    },
    RuleSpec {
        id: "google-ai",
        description: "Google API key (Gemini / AI Studio)",
        keywords: &["AIza"],
        keywords_ci: false,
        pattern: r"\b(AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)",
        min_entropy: 3.5,
        severity: Severity::High,
    },
    RuleSpec {
        id: "groq",
        description: "Groq API key",
        keywords: &["gsk_"],
        keywords_ci: false,
        pattern: r"\b(gsk_[A-Za-z0-9]{52})\b",
        min_entropy: 4.0,
        severity: Severity::High,
    },
    RuleSpec {
        id: "replicate",
        description: "Replicate API token",
        keywords: &["r8_"],
        keywords_ci: false,
        pattern: r"\b(r8_[A-Za-z0-9]{37})\b",
        min_entropy: 3.5,
        severity: Severity::High,
    },
    RuleSpec {
        id: "pinecone",
        description: "Pinecone API key",
        keywords: &["pcsk_"],
        keywords_ci: false,
        pattern: r"\b(pcsk_[A-Za-z0-9]{4,8}_[A-Za-z0-9]{50,80})\b",
        min_entropy: 4.0,
        severity: Severity::High,
    },
    RuleSpec {
        id: "pinecone",
        description: "Pinecone API key (legacy UUID)",
        keywords: &["pinecone"],
        keywords_ci: true,
        pattern: r#"(?i)pinecone[\w.\-]{0,20}(?:key|token|secret)["']?\s*(?:=|:=|=>|:)\s*["'`]?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"#,
        min_entropy: 3.0,
        severity: Severity::High,
    },
    RuleSpec {
        id: "langsmith",
        description: "LangSmith API key",
        keywords: &["lsv2_"],
        keywords_ci: false,
        pattern: r"\b(lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10})\b",
        min_entropy: 3.0,
        severity: Severity::High,
    },
    RuleSpec {
        id: "azure-openai",
        description: "Azure OpenAI API key",
        keywords: &["azure", "api-key", "api_key"],
        keywords_ci: true,
        pattern: r#"(?i)(?:azure[\w.\-]{0,30}(?:key|secret)|\bapi[_\-]key)[\w.\-]{0,10}["']?\s*(?:=|:=|=>|:)\s*["'`]?([a-f0-9]{32}|[A-Za-z0-9]{84})\b"#,
        min_entropy: 3.0,
        severity: Severity::High,
    },
    RuleSpec {
        id: "cohere",
        description: "Cohere API key",
        keywords: &["cohere", "co_api_key"],
        keywords_ci: true,
        pattern: r#"(?i)(?:cohere|co_api)[\w.\-]{0,20}(?:key|token|secret)["']?\s*(?:=|:=|=>|:)\s*["'`]?([A-Za-z0-9]{40})\b"#,
        min_entropy: 3.5,
        severity: Severity::High,
    },
    RuleSpec {
        id: "mistral",
        description: "Mistral API key",
        keywords: &["mistral"],
        keywords_ci: true,
        pattern: r#"(?i)mistral[\w.\-]{0,20}(?:key|token|secret)["']?\s*(?:=|:=|=>|:)\s*["'`]?([A-Za-z0-9]{32})\b"#,
        min_entropy: 3.5,
        severity: Severity::High,
    },
    RuleSpec {
        id: "aws",
        description: "AWS access key id",
        keywords: &["AKIA", "ASIA"],
        keywords_ci: false,
        pattern: r"\b((?:AKIA|ASIA)[A-Z2-7]{16})\b",
        min_entropy: 3.0,
        severity: Severity::High,
    },
    RuleSpec {
        id: "aws",
        description: "AWS secret access key",
        keywords: &["aws"],
        keywords_ci: true,
        pattern: r#"(?i)aws[\w.\-]{0,20}secret[\w.\-]{0,20}["']?\s*(?:=|:=|=>|:)\s*["'`]?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        min_entropy: 4.0,
        severity: Severity::Critical,
    },
    RuleSpec {
        id: "github",
        description: "GitHub token",
        keywords: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        keywords_ci: false,
        pattern: r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b",
        min_entropy: 3.5,
        severity: Severity::Critical,
    },
    RuleSpec {
        id: "gitlab",
        description: "GitLab personal access token",
        keywords: &["glpat-"],
        keywords_ci: false,
        pattern: r"\b(glpat-[A-Za-z0-9_\-]{20})(?:[^A-Za-z0-9_\-]|$)",
        min_entropy: 3.5,
        severity: Severity::Critical,
    },
    RuleSpec {
        id: "slack",
        description: "Slack token",
        keywords: &["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xapp-"],
        keywords_ci: false,
        pattern: r"\b(xox[baprs]-[0-9]{8,13}-[0-9A-Za-z\-]{8,}[0-9A-Za-z]|xapp-[0-9]-[A-Z0-9]{8,}-[0-9]{8,}-[a-f0-9]{32,})\b",
        min_entropy: 3.5,
        severity: Severity::High,
    },
    RuleSpec {
        id: "slack",
        description: "Slack incoming webhook",
        keywords: &["hooks.slack.com"],
        keywords_ci: false,
        pattern: r"(https://hooks\.slack\.com/services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{24})",
        min_entropy: 3.5,
        severity: Severity::High,
    },
    RuleSpec {
        id: "stripe",
        description: "Stripe secret or restricted key",
        keywords: &["sk_live_", "rk_live_", "sk_test_", "rk_test_"],
        keywords_ci: false,
        pattern: r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,99})\b",
        min_entropy: 3.5,
        severity: Severity::Critical,
    },
    RuleSpec {
        id: "twilio",
        description: "Twilio API key",
        keywords: &["SK"],
        keywords_ci: false,
        pattern: r"\b(SK[0-9a-f]{32})\b",
        min_entropy: 3.2,
        severity: Severity::High,
    },
    RuleSpec {
        id: "sendgrid",
        description: "SendGrid API key",
        keywords: &["SG."],
        keywords_ci: false,
        pattern: r"\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})(?:[^A-Za-z0-9_\-]|$)",
        min_entropy: 4.0,
        severity: Severity::High,
    },
    RuleSpec {
        id: "database-url",
        description: "Database URL with a password",
        keywords: &[
            "postgres", "mysql", "mariadb", "mongodb", "redis", "amqp", "mssql",
        ],
        keywords_ci: true,
        pattern: r#"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver)(?:\+[a-z0-9]+)?://[^\s:@/'"`]*:([^\s@/'"`]{3,})@[^\s'"`/]+"#,
        min_entropy: 0.0,
        severity: Severity::High,
    },
    RuleSpec {
        id: "jwt",
        description: "JSON Web Token",
        keywords: &["eyJ"],
        keywords_ci: false,
        pattern: r"\b(eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{16,})(?:[^A-Za-z0-9_\-.]|$)",
        min_entropy: 3.5,
        severity: Severity::Medium,
    },
    RuleSpec {
        id: "generic",
        description: "High-entropy secret assigned to a credential-like name",
        keywords: &[
            "key",
            "secret",
            "token",
            "passw",
            "pwd",
            "credential",
            "auth",
        ],
        keywords_ci: true,
        pattern: r#"(?i)[\w.\-]*(?:api[_\-]?key|secret|token|passwd|password|pwd|credential|auth[_\-]?key)[\w.\-]{0,20}["']?\s*(?:=|:=|=>|:)\s*["'`]([A-Za-z0-9_\-+/=.~!@#$%^&*]{16,128})["'`]"#,
        min_entropy: 3.7,
        severity: Severity::Medium,
    },
    RuleSpec {
        id: "generic",
        description: "High-entropy secret assigned to a credential-like name",
        keywords: &["key", "secret", "token", "passw", "pwd", "credential"],
        keywords_ci: true,
        pattern: r#"(?im)^\s*(?:export\s+)?[A-Z0-9_]*(?:API_KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL)[A-Z0-9_]*\s*=\s*([A-Za-z0-9_\-+/=.~!@#$%^&*]{16,128})\s*$"#,
        min_entropy: 3.7,
        severity: Severity::Medium,
    },
];

struct Compiled {
    spec: &'static RuleSpec,
    rule_id: String,
    regex: Regex,
    /// Multi-line formats run over the whole text, the rest over keyword lines only.
    whole_text: bool,
}

/// Compiled secret rules. Build once; `find` is `&self` and thread-safe.
pub struct SecretScanner {
    rules: Vec<Compiled>,
    /// Case-sensitive keywords → rule indexes.
    ac_cs: AhoCorasick,
    cs_rules: Vec<Vec<usize>>,
    /// Case-insensitive keywords → rule indexes.
    ac_ci: AhoCorasick,
    ci_rules: Vec<Vec<usize>>,
}

impl Default for SecretScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl SecretScanner {
    /// Compiles the built-in rules.
    pub fn new() -> Self {
        let mut rules = Vec::new();
        let (mut cs_words, mut cs_rules): (Vec<&str>, Vec<Vec<usize>>) = (vec![], vec![]);
        let (mut ci_words, mut ci_rules): (Vec<String>, Vec<Vec<usize>>) = (vec![], vec![]);
        for (i, spec) in RULES.iter().enumerate() {
            rules.push(Compiled {
                spec,
                rule_id: format!("scan.secret.{}", spec.id),
                regex: Regex::new(spec.pattern).expect("built-in secret rule compiles"),
                whole_text: matches!(spec.id, "private-key" | "gcp-service-account"),
            });
            for kw in spec.keywords {
                if spec.keywords_ci {
                    let kw = kw.to_ascii_lowercase();
                    match ci_words.iter().position(|w| *w == kw) {
                        Some(p) => ci_rules[p].push(i),
                        None => {
                            ci_words.push(kw);
                            ci_rules.push(vec![i]);
                        }
                    }
                } else {
                    match cs_words.iter().position(|w| w == kw) {
                        Some(p) => cs_rules[p].push(i),
                        None => {
                            cs_words.push(kw);
                            cs_rules.push(vec![i]);
                        }
                    }
                }
            }
        }
        let ac_cs = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&cs_words)
            .expect("keyword automaton");
        let ac_ci = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&ci_words)
            .expect("keyword automaton");
        SecretScanner {
            rules,
            ac_cs,
            cs_rules,
            ac_ci,
            ci_rules,
        }
    }

    /// Every keyword of every rule (the prefilter's vocabulary; the benchmark gives the same
    /// set to `rg`).
    pub fn keywords() -> Vec<&'static str> {
        let mut set = BTreeSet::new();
        for r in RULES {
            set.extend(r.keywords.iter().copied());
        }
        set.into_iter().collect()
    }

    /// True when any keyword occurs (cheap; lets callers skip `find` on most texts).
    pub fn may_contain(&self, text: &str) -> bool {
        self.ac_cs.is_match(text) || self.ac_ci.is_match(text)
    }

    /// The secrets in `text`, by position, non-overlapping.
    pub fn find(&self, text: &str) -> Vec<SecretMatch> {
        // Per selected rule, the byte ranges to run its regex on: the lines holding one of
        // its keywords (or the whole text for multi-line formats).
        let mut ranges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.rules.len()];
        let mut any = false;
        let bytes = text.as_bytes();
        let mut line = (usize::MAX, 0usize);
        let mut visit =
            |start: usize, end: usize, rules: &[usize], ranges: &mut Vec<Vec<(usize, usize)>>| {
                if !(line.0 <= start && end <= line.1) {
                    let s = memchr::memrchr(b'\n', &bytes[..start]).map_or(0, |i| i + 1);
                    let e = memchr::memchr(b'\n', &bytes[end..]).map_or(bytes.len(), |i| end + i);
                    line = (s, e);
                }
                for &r in rules {
                    let v = &mut ranges[r];
                    match v.last_mut() {
                        Some(last) if last.0 <= line.0 && line.0 <= last.1 => {
                            last.1 = last.1.max(line.1)
                        }
                        _ => v.push(line),
                    }
                }
            };
        for m in self.ac_cs.find_overlapping_iter(text) {
            visit(
                m.start(),
                m.end(),
                &self.cs_rules[m.pattern().as_usize()],
                &mut ranges,
            );
            any = true;
        }
        for m in self.ac_ci.find_overlapping_iter(text) {
            visit(
                m.start(),
                m.end(),
                &self.ci_rules[m.pattern().as_usize()],
                &mut ranges,
            );
            any = true;
        }
        if !any {
            return Vec::new();
        }
        for (i, v) in ranges.iter_mut().enumerate() {
            if v.is_empty() {
                continue;
            }
            if self.rules[i].whole_text {
                *v = vec![(0, text.len())];
                continue;
            }
            v.sort_unstable();
            let mut merged: Vec<(usize, usize)> = Vec::with_capacity(v.len());
            for &(s, e) in v.iter() {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            *v = merged;
        }
        // (priority, whole-match span, match)
        let mut found: Vec<(usize, usize, usize, SecretMatch)> = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            for &(base, stop) in &ranges[i] {
                for caps in rule.regex.captures_iter(&text[base..stop]) {
                    let whole = caps.get(0).expect("group 0");
                    let value = caps.get(1).unwrap_or(whole);
                    let secret = value.as_str();
                    if line_allows(text, base + whole.start()) {
                        continue;
                    }
                    if is_placeholder(secret, rule.spec.id) {
                        continue;
                    }
                    let entropy = shannon_entropy(secret_body(secret, rule.spec.id));
                    if entropy < rule.spec.min_entropy {
                        continue;
                    }
                    if rule.spec.id == "generic" && !generic_value_ok(secret) {
                        continue;
                    }
                    if rule.spec.id == "database-url"
                        && url_password_is_user(whole.as_str(), secret)
                    {
                        continue;
                    }
                    found.push((
                        i,
                        base + whole.start(),
                        base + whole.end(),
                        SecretMatch {
                            rule_id: rule.rule_id.clone(),
                            description: rule.spec.description.to_string(),
                            severity: rule.spec.severity,
                            start: base + value.start(),
                            end: base + value.end(),
                            redacted: redact(secret),
                            fingerprint: fingerprint(&rule.rule_id, secret),
                            entropy: (entropy * 100.0).round() / 100.0,
                        },
                    ));
                }
            }
        }
        // Keep the highest-priority match among overlapping ones.
        found.sort_by_key(|(prio, s, _, _)| (*prio, *s));
        let mut kept: Vec<(usize, usize, SecretMatch)> = Vec::new();
        for (_, s, e, m) in found {
            if kept
                .iter()
                .any(|(ks, ke, km)| (s < *ke && *ks < e) || (m.start < km.end && km.start < m.end))
            {
                continue;
            }
            kept.push((s, e, m));
        }
        let mut out: Vec<SecretMatch> = kept.into_iter().map(|(_, _, m)| m).collect();
        out.sort_by_key(|m| m.start);
        out
    }

    /// `text` with every secret replaced by `[REDACTED:<rule>]`.
    pub fn redact_text(&self, text: &str) -> String {
        let matches = self.find(text);
        if matches.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for m in matches {
            out.push_str(&text[at..m.start]);
            out.push_str("[REDACTED:");
            out.push_str(m.rule_id.trim_start_matches("scan.secret."));
            out.push(']');
            at = m.end;
        }
        out.push_str(&text[at..]);
        out
    }
}

/// `sha256(rule_id \0 secret)`, hex.
pub fn fingerprint(rule_id: &str, secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    h.update([0u8]);
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

/// A printable form of a secret: a short prefix and `****`, never more than a quarter of it.
pub fn redact(secret: &str) -> String {
    let n = secret.chars().count();
    let keep = (n / 4).min(8);
    let prefix: String = secret.chars().take(keep).collect();
    format!("{prefix}****")
}

/// Shannon entropy in bits per character.
pub fn shannon_entropy(s: &str) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// The part of a secret whose randomness matters (the fixed prefix removed).
fn secret_body<'a>(secret: &'a str, rule: &str) -> &'a str {
    let prefixes: &[&str] = match rule {
        "anthropic" => &["sk-ant-api03-", "sk-ant-admin01-"],
        "openai" => &["sk-proj-", "sk-svcacct-", "sk-admin-", "sk-"],
        "huggingface" => &["hf_"],
        "groq" => &["gsk_"],
        "replicate" => &["r8_"],
        "github" => &["github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        "gitlab" => &["glpat-"],
        "stripe" => &["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
        "langsmith" => &["lsv2_pt_", "lsv2_sk_"],
        _ => &[],
    };
    for p in prefixes {
        if let Some(rest) = secret.strip_prefix(p) {
            return rest;
        }
    }
    secret
}

const PLACEHOLDER_WORDS: &[&str] = &[
    "xxxx",
    "your",
    "example",
    "placeholder",
    "dummy",
    "redacted",
    "replace",
    "insert",
    "changeme",
    "change_me",
    "change-me",
    "sample",
    "fake",
    "notreal",
    "not_a_real",
    "not-a-real",
    "test_key",
    "testkey",
    "secretkey",
    "mysecret",
    "password",
    "passw0rd",
    "12345678",
    "abcdefgh",
    "0000000",
    "aaaaaaa",
    "*****",
    "....",
    "${",
    "{{",
    "$(",
    "%(",
    "<",
    ">",
    "environ",
    "getenv",
    "process.env",
    "env:",
    "file:",
    "secrets.",
    "vault:",
];

/// Placeholder and stop-word suppression.
fn is_placeholder(secret: &str, rule: &str) -> bool {
    if rule == "private-key" || rule == "gcp-service-account" {
        // The key material is long base64: only obvious placeholders count.
        let l = secret.to_ascii_lowercase();
        return l.contains("...") || l.contains("xxxx") || l.contains("<");
    }
    let lower = secret.to_ascii_lowercase();
    if PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    // Environment-variable references: `$VAR`, `%VAR%`.
    if secret.starts_with('$') || (secret.starts_with('%') && secret.ends_with('%')) {
        return true;
    }
    false
}

/// Extra checks for the generic rule: the value must look random, not like code.
fn generic_value_ok(v: &str) -> bool {
    // English credential words inside the value mark a made-up test value
    // (`secret_valid_token_123456`), not a generated key.
    let lower = v.to_ascii_lowercase();
    if ["secret", "token", "passw", "valid", "test", "key_"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return false;
    }
    let has_digit = v.bytes().any(|b| b.is_ascii_digit());
    let has_alpha = v.bytes().any(|b| b.is_ascii_alphabetic());
    if !(has_digit && has_alpha) {
        return false;
    }
    // Dotted identifiers / module paths / file names.
    let ident_path = v
        .split(['.', '/'])
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        && (v.contains('.') || v.contains('/'))
        && v.bytes().filter(|b| b.is_ascii_digit()).count() <= 2;
    if ident_path {
        return false;
    }
    // SCREAMING_SNAKE or snake_case identifiers.
    if v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && v.contains('_') {
        let digits = v.bytes().filter(|b| b.is_ascii_digit()).count();
        if digits <= 2 {
            return false;
        }
    }
    // Hex digests next to checksum-like names are common but are not credentials when
    // they are exactly a hash length and the name says so; the caller cannot see the name
    // here, so only reject uuids (identifiers, not secrets).
    let uuid = v.len() == 36
        && v.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        });
    !uuid
}

/// `scheme://name:name@…`: a password equal to the user name is a local demo credential.
fn url_password_is_user(url: &str, password: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once(':'))
        .is_some_and(|(user, _)| user == password)
}

/// True when the line holding `pos` carries an inline `warden:allow`.
fn line_allows(text: &str, pos: usize) -> bool {
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    text[start..end].contains("warden:allow")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<String> {
        SecretScanner::new()
            .find(text)
            .into_iter()
            .map(|m| m.rule_id)
            .collect()
    }

    const ANTHROPIC: &str = "sk-ant-api03-Xq7LmN2pR9sT4vW8yZ1bC3dF5gH6jK0lM2nP4qR6sT8uV0wX2yZ4aB6cD8eF0gH2iJ4kL6mN8oP0qR2sT4uV6wX8yZ0aB2cD4eF6-gH8iJ0kLAA";

    #[test]
    fn finds_provider_keys_with_offsets_and_redaction() {
        let text = format!("client = Anthropic(api_key=\"{ANTHROPIC}\")\n");
        let m = SecretScanner::new().find(&text);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].rule_id, "scan.secret.anthropic");
        assert_eq!(&text[m[0].start..m[0].end], ANTHROPIC);
        assert!(!m[0].redacted.contains(&ANTHROPIC[10..]));
        assert!(m[0].redacted.starts_with("sk-ant"));
    }

    #[test]
    fn placeholders_and_env_references_do_not_fire() {
        for t in [
            "OPENAI_API_KEY=sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "api_key = \"your-api-key-goes-here-123\"",
            "token = os.environ[\"GITHUB_TOKEN\"]",
            "password: ${DB_PASSWORD}",
            "secret: ${env:SLACK_SIGNING_SECRET}",
            "url = \"postgres://app:${PGPASSWORD}@db:5432/app\"",
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        ] {
            assert!(ids(t).is_empty(), "fired on {t}: {:?}", ids(t));
        }
    }

    #[test]
    fn offsets_are_right_deep_in_a_text_with_many_keyword_lines() {
        let mut text = "api_key = load(token)\n".repeat(500);
        let at = text.len() + "anthropic: ".len();
        text.push_str(&format!("anthropic: {ANTHROPIC}\nsecret = 1\n"));
        let m = SecretScanner::new().find(&text);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].start, m[0].end), (at, at + ANTHROPIC.len()));
    }

    #[test]
    fn inline_allow_suppresses() {
        let t = format!("k = \"{ANTHROPIC}\"  # warden:allow test fixture\n");
        assert!(ids(&t).is_empty());
    }

    #[test]
    fn generic_rule_needs_entropy_and_a_credential_name() {
        assert_eq!(
            ids("SIGNING_SECRET = \"q8Zr4Lx2Vn7Pw1Ks9Tb3Hd6Fm\""),
            vec!["scan.secret.generic"]
        );
        assert!(ids("title = \"q8Zr4Lx2Vn7Pw1Ks9Tb3Hd6Fm\"").is_empty());
        assert!(ids("token_type = \"authorization_code_grant\"").is_empty());
        assert!(ids("_GRADIENT_SECRET = \"secret_valid_token_123456\"").is_empty());
        assert!(ids("url = \"postgresql://langchain:langchain@localhost:6023/db\"").is_empty());
        assert_eq!(
            ids("url = \"postgresql://app:Zq81LmX4pW@db:6023/db\""),
            vec!["scan.secret.database-url"]
        );
    }

    #[test]
    fn redact_text_replaces_every_secret() {
        let t = format!("a {ANTHROPIC} b ghp_R8x2Lq9Vt4Mn7Kp1Ws5Zc3Hb6Fd0Jg2Ya8Eu c");
        let r = SecretScanner::new().redact_text(&t);
        assert_eq!(r, "a [REDACTED:anthropic] b [REDACTED:github] c");
    }

    #[test]
    fn scanner_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SecretScanner>();
    }
}
