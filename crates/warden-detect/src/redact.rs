//! Redaction of secrets and PII in text and JSON before content reaches an agent or an
//! audit record.
//!
//! Secrets: the scanner's rules (`warden_scan::SecretScanner`, the same rules as
//! `warden scan`; redactions are named by its rule id without the `scan.secret.` prefix),
//! then a small built-in set for shapes that matter in tool results and that the scanner
//! leaves to code scanning (bearer tokens, credentials in URLs, unquoted `password=` values).
//! PII: email addresses, phone numbers, payment card numbers (Luhn-checked), IBANs
//! (mod-97-checked), plus the inventory's `settings.pii_patterns`.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Serialize;
use serde_json::Value;

use crate::DetectError;

/// One redacted span (byte offsets into the original text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redaction {
    /// `secret` or `pii`.
    pub class: &'static str,
    /// The rule: `aws-access-key-id`, `email`, `card-number`, a custom pattern's name, …
    pub rule: String,
    pub start: usize,
    pub end: usize,
}

/// Text with its redactions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redacted {
    pub text: String,
    pub redactions: Vec<Redaction>,
}

type Validator = fn(&str) -> bool;

struct Rule {
    class: &'static str,
    name: String,
    re: Regex,
    /// Capture group holding the secret (0: the whole match).
    group: usize,
    validate: Option<Validator>,
}

/// Redacts secrets and PII. Build once, share.
pub struct Redactor {
    scanner: warden_scan::SecretScanner,
    rules: Vec<Rule>,
}

const SECRET_RULES: &[(&str, &str, usize)] = &[
    (
        "aws-access-key-id",
        r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})\b",
        1,
    ),
    (
        "aws-secret-access-key",
        r"(?i)aws.{0,20}?secret.{0,20}?[=:]\s*['\x22]?([A-Za-z0-9/+]{40})\b",
        1,
    ),
    (
        "github-token",
        r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        1,
    ),
    ("gitlab-token", r"\b(glpat-[A-Za-z0-9_-]{20,})\b", 1),
    ("slack-token", r"\b(xox[baprs]-[A-Za-z0-9-]{10,})\b", 1),
    (
        "stripe-key",
        r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,})\b",
        1,
    ),
    ("openai-key", r"\b(sk-(?:proj-)?[A-Za-z0-9_-]{20,})\b", 1),
    ("anthropic-key", r"\b(sk-ant-[A-Za-z0-9_-]{20,})\b", 1),
    ("google-api-key", r"\b(AIza[0-9A-Za-z_-]{35})\b", 1),
    (
        "jwt",
        r"\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})\b",
        1,
    ),
    (
        "private-key",
        r"(-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----)",
        1,
    ),
    (
        "bearer-token",
        r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{20,}=*)",
        1,
    ),
    (
        "url-credentials",
        r"\b[a-z][a-z0-9+.-]*://[^\s:/@]+:([^\s/@]{3,})@",
        1,
    ),
    (
        "credential-assignment",
        r#"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret)\b\s*["']?\s*[:=]\s*["']?([^\s"',;]{8,})"#,
        1,
    ),
];

const PII_RULES: &[(&str, &str, Option<Validator>)] = &[
    (
        "email",
        r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
        None,
    ),
    ("card-number", r"\b(?:\d[ -]?){12,18}\d\b", Some(luhn)),
    (
        "iban",
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
        Some(iban_ok),
    ),
    (
        "phone",
        r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\b\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}\b",
        Some(phone_ok),
    ),
];

/// Luhn checksum over the digits of `s`.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// IBAN mod-97 check.
pub fn iban_ok(s: &str) -> bool {
    let c: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&c.len()) {
        return false;
    }
    let rearranged = format!("{}{}", &c[4..], &c[..4]);
    let mut rem: u64 = 0;
    for ch in rearranged.chars() {
        let v = match ch.to_digit(36) {
            Some(v) => v as u64,
            None => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn phone_ok(s: &str) -> bool {
    let n = s.chars().filter(|c| c.is_ascii_digit()).count();
    (9..=15).contains(&n)
}

impl Redactor {
    /// The built-in secret and PII rules plus `custom` (name → regex, as in the
    /// inventory's `settings.pii_patterns`).
    pub fn new(custom: &BTreeMap<String, String>) -> Result<Redactor, DetectError> {
        let (redactor, mut errors) = Redactor::with_custom(custom);
        if errors.is_empty() {
            Ok(redactor)
        } else {
            Err(errors.remove(0))
        }
    }

    /// Like [`Redactor::new`], but a custom pattern that does not compile is left out (and
    /// returned as an error) instead of failing the whole redactor: for a running gateway,
    /// redacting with the built-in rules beats not redacting at all.
    pub fn with_custom(custom: &BTreeMap<String, String>) -> (Redactor, Vec<DetectError>) {
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        for (name, pat, group) in SECRET_RULES {
            rules.push(Rule {
                class: "secret",
                name: name.to_string(),
                re: Regex::new(pat).expect("built-in secret rule"),
                group: *group,
                validate: None,
            });
        }
        for (name, pat, validate) in PII_RULES {
            rules.push(Rule {
                class: "pii",
                name: name.to_string(),
                re: Regex::new(pat).expect("built-in PII rule"),
                group: 0,
                validate: *validate,
            });
        }
        for (name, pat) in custom {
            let re = match Regex::new(pat) {
                Ok(re) => re,
                Err(e) => {
                    errors.push(DetectError::Pattern {
                        name: name.clone(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            rules.push(Rule {
                class: "pii",
                name: name.clone(),
                re,
                group: 0,
                validate: None,
            });
        }
        let redactor = Redactor {
            scanner: warden_scan::SecretScanner::new(),
            rules,
        };
        (redactor, errors)
    }

    /// Spans to redact in `text`, non-overlapping, in order (earlier rules win overlaps).
    pub fn find(&self, text: &str) -> Vec<Redaction> {
        let mut found: Vec<Redaction> = Vec::new();
        if self.scanner.may_contain(text) {
            for m in self.scanner.find(text) {
                found.push(Redaction {
                    class: "secret",
                    rule: m
                        .rule_id
                        .strip_prefix("scan.secret.")
                        .unwrap_or(&m.rule_id)
                        .to_string(),
                    start: m.start,
                    end: m.end,
                });
            }
        }
        for r in &self.rules {
            for caps in r.re.captures_iter(text) {
                let Some(m) = caps.get(r.group) else { continue };
                if let Some(v) = r.validate {
                    // Numbers glued to more digits or dashes are part of something longer
                    // (an order number, a date range), not a phone or card number.
                    let before = text[..m.start()].chars().next_back();
                    let after = text[m.end()..].chars().next();
                    let glued =
                        |c: Option<char>| matches!(c, Some(c) if c.is_ascii_digit() || c == '-');
                    if !v(m.as_str()) || glued(before) || glued(after) {
                        continue;
                    }
                }
                if found.iter().any(|f| m.start() < f.end && f.start < m.end()) {
                    continue;
                }
                found.push(Redaction {
                    class: r.class,
                    rule: r.name.clone(),
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
        found.sort_by_key(|f| f.start);
        found
    }

    /// `text` with every secret and PII span replaced by `[REDACTED:<rule>]`.
    pub fn redact(&self, text: &str) -> Redacted {
        let redactions = self.find(text);
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for r in &redactions {
            out.push_str(&text[last..r.start]);
            out.push_str(&format!("[REDACTED:{}]", r.rule));
            last = r.end;
        }
        out.push_str(&text[last..]);
        Redacted {
            text: out,
            redactions,
        }
    }

    /// Redacts every string (and object key holding a secret-looking value is left, values
    /// are changed) in a JSON value in place; returns the redactions with their JSON pointer.
    pub fn redact_json(&self, v: &mut Value) -> Vec<(String, Redaction)> {
        let mut out = Vec::new();
        self.walk(v, String::new(), &mut out);
        out
    }

    fn walk(&self, v: &mut Value, ptr: String, out: &mut Vec<(String, Redaction)>) {
        match v {
            Value::String(s) => {
                let r = self.redact(s);
                if !r.redactions.is_empty() {
                    *s = r.text;
                    out.extend(r.redactions.into_iter().map(|x| (ptr.clone(), x)));
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter_mut().enumerate() {
                    self.walk(x, format!("{ptr}/{i}"), out);
                }
            }
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    self.walk(
                        x,
                        format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r() -> Redactor {
        Redactor::new(&BTreeMap::new()).unwrap()
    }

    #[test]
    fn checksums() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(iban_ok("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban_ok("GB82 WEST 1234 5698 7654 33"));
    }

    #[test]
    fn redacts_secrets_and_pii_keeping_the_rest() {
        let text = "key AKIAIOSFODNN7EXAMPLE, mail ana@example.com, card 4111-1111-1111-1111, order 1234-5678-9012-3456.";
        let out = r().redact(text);
        // The scanner ignores AWS's documented example key; the built-in rule still redacts it.
        assert_eq!(
            out.text,
            "key [REDACTED:aws-access-key-id], mail [REDACTED:email], card [REDACTED:card-number], order 1234-5678-9012-3456."
        );
        assert_eq!(
            &text[out.redactions[0].start..out.redactions[0].end],
            "AKIAIOSFODNN7EXAMPLE"
        );
    }

    #[test]
    fn scanner_rules_are_used() {
        // An Anthropic key shape: found by warden-scan's rule and named after it.
        let key = format!(
            "sk-ant-api03-{}",
            "Zx9Qw7Er5Ty3Ui1Op8As6Df4Gh2Jk0LmNbVcXz1234567890abcdEFGHijkl"
        );
        let out = r().redact(&format!("ANTHROPIC_API_KEY={key}\n"));
        assert!(!out.text.contains(&key), "{}", out.text);
        assert_eq!(out.redactions[0].class, "secret");
    }

    #[test]
    fn custom_patterns_and_bad_pattern_error() {
        let mut c = BTreeMap::new();
        c.insert("customer-id".to_string(), r"\bCUST-\d{6}\b".to_string());
        let out = Redactor::new(&c).unwrap().redact("ticket for CUST-123456");
        assert_eq!(out.text, "ticket for [REDACTED:customer-id]");
        c.insert("bad".to_string(), "(".to_string());
        assert!(matches!(
            Redactor::new(&c),
            Err(DetectError::Pattern { .. })
        ));
    }

    #[test]
    fn json_strings_are_redacted_in_place() {
        let mut v =
            json!({"content": [{"type": "text", "text": "password = hunter2hunter2"}], "n": 5});
        let red = r().redact_json(&mut v);
        assert_eq!(
            v["content"][0]["text"],
            "password = [REDACTED:credential-assignment]"
        );
        assert_eq!(red[0].0, "/content/0/text");
        assert_eq!(v["n"], 5);
    }
}
