//! `warden inspect text|tools|redact`: run the detectors on content without a gateway.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use warden_core::{Finding, Severity, finding};
use warden_detect::poison::{shadowing_findings, tool_findings};
use warden_detect::{
    InjectionConfig, InjectionDetector, InjectionReport, PoisonDetector, Redactor, ToolReport,
    ToolVerdict, Verdict, find_shadowing,
};

use crate::output::{self, Format};

#[derive(Args)]
pub struct InspectArgs {
    #[command(subcommand)]
    command: InspectCommand,
}

#[derive(Subcommand)]
enum InspectCommand {
    /// Prompt-injection verdict, score and evidence spans for text (a file or stdin).
    Text(TextArgs),
    /// Tool-poisoning verdicts for a `tools/list` result or an MCP client config.
    Tools(ToolsArgs),
    /// Print text (or an MCP result, with --mcp) with secrets and PII redacted.
    Redact(RedactArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Suspicious,
    Injection,
    Never,
}

#[derive(Args)]
struct TextArgs {
    /// File to read, `-` for stdin.
    #[arg(default_value = "-")]
    input: PathBuf,
    /// Batch mode: one JSON object per line with a `text` field; one verdict per line out.
    #[arg(long, conflicts_with = "mcp")]
    jsonl: bool,
    /// The input is an MCP `tools/call` result or `resources/read` result (JSON): inspect
    /// the text parts that reach the model, including text inside JSON.
    #[arg(long)]
    mcp: bool,
    /// Score at or above which the verdict is `injection` (0..1).
    #[arg(long, default_value_t = warden_detect::inject::DEFAULT_THRESHOLD, value_parser = parse_unit)]
    threshold: f64,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Exit 1 when a verdict is at or above this.
    #[arg(long, value_enum, default_value = "injection")]
    fail_on: FailOn,
}

#[derive(Args)]
struct ToolsArgs {
    /// A `tools/list` result (or a JSON-RPC response carrying one, or a bare array of tools),
    /// or an MCP client config (`mcpServers`, `servers`, `mcp.servers`).
    file: PathBuf,
    /// Connector name used in subjects for a plain `tools/list` result.
    #[arg(long)]
    connector: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, default_value = "high", value_parser = output::parse_severity)]
    fail_on: Severity,
}

#[derive(Args)]
struct RedactArgs {
    /// File to read, `-` for stdin.
    #[arg(default_value = "-")]
    input: PathBuf,
    /// The input is JSON (e.g. an MCP result): redact every string in it.
    #[arg(long)]
    mcp: bool,
    /// Extra PII pattern `NAME=REGEX` (repeatable), like the inventory's `settings.pii_patterns`.
    #[arg(long = "pattern", value_name = "NAME=REGEX")]
    patterns: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

fn parse_unit(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..1"))
    }
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        InspectCommand::Text(a) => run_text(a),
        InspectCommand::Tools(a) => run_tools(a),
        InspectCommand::Redact(a) => run_redact(a),
    }
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading stdin")?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

fn fails(verdict: Verdict, fail_on: FailOn) -> bool {
    match fail_on {
        FailOn::Never => false,
        FailOn::Suspicious => verdict >= Verdict::Suspicious,
        FailOn::Injection => verdict >= Verdict::Injection,
    }
}

/// The JSON object for one inspected text; with `pointers`, evidence carries the JSON pointer
/// of the text part it was found in.
fn report_json(r: &InjectionReport, bytes: usize, pointers: Option<&[String]>) -> Value {
    let evidence: Vec<Value> = r
        .evidence
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut v = serde_json::to_value(e).expect("evidence serialises");
            if let Some(p) = pointers {
                v["pointer"] = json!(p[i]);
            }
            v
        })
        .collect();
    json!({
        "verdict": r.verdict,
        "score": round(r.score),
        "threshold": r.threshold,
        "bytes": bytes,
        "evidence": evidence,
    })
}

fn round(x: f64) -> f64 {
    (x * 10000.0).round() / 10000.0
}

fn print_report_text(r: &InjectionReport, pointers: Option<&[String]>) {
    println!(
        "{} (score {:.3}, threshold {:.2})",
        r.verdict.as_str(),
        r.score,
        r.threshold
    );
    for (i, e) in r.evidence.iter().enumerate() {
        let place = pointers.map(|p| format!("{} ", p[i])).unwrap_or_default();
        println!(
            "  {place}[{}..{}] {} ({:.2}): {} \u{2014} \"{}\"",
            e.start, e.end, e.rule, e.score, e.message, e.snippet
        );
        if let Some(d) = &e.decoded {
            println!("      decodes to: \"{d}\"");
        }
    }
}

fn run_text(a: TextArgs) -> anyhow::Result<ExitCode> {
    let detector = InjectionDetector::new(InjectionConfig {
        threshold: a.threshold,
        suspicious_threshold: a.threshold.min(0.3),
        ..InjectionConfig::default()
    });
    if a.jsonl {
        return run_jsonl(&a, &detector);
    }
    let input = read_input(&a.input)?;
    let (report, pointers) = if a.mcp {
        let v: Value = serde_json::from_str(&input)
            .with_context(|| format!("{}: not JSON (expected an MCP result)", a.input.display()))?;
        let v = v.get("result").cloned().unwrap_or(v);
        let (r, ptrs) = detector.inspect_payload(&v);
        (r, Some(ptrs))
    } else {
        (detector.inspect(&input), None)
    };
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report_json(&report, input.len(), pointers.as_deref()))?
        ),
        Format::Text => print_report_text(&report, pointers.as_deref()),
    }
    Ok(if fails(report.verdict, a.fail_on) {
        output::EXIT_FINDINGS
    } else {
        output::EXIT_OK
    })
}

fn run_jsonl(a: &TextArgs, detector: &InjectionDetector) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn BufRead> = if a.input == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(&a.input)
            .with_context(|| format!("reading {}", a.input.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut worst = Verdict::Clean;
    let mut bad_lines = 0usize;
    for (i, line) in reader.split(b'\n').enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("reading {}", a.input.display()))?;
        let parsed = std::str::from_utf8(&line)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|s| serde_json::from_str::<Value>(s).map_err(|e| format!("not JSON: {e}")))
            .and_then(|v| match v.get("text").and_then(Value::as_str) {
                Some(t) => Ok((t.to_string(), v.get("id").cloned())),
                None => Err("no string field `text`".to_string()),
            });
        let obj = match parsed {
            Ok((text, id)) => {
                let r = detector.inspect(&text);
                worst = worst.max(r.verdict);
                let mut o = report_json(&r, text.len(), None);
                o["line"] = json!(n);
                if let Some(id) = id {
                    o["id"] = id;
                }
                match a.format {
                    Format::Json => o,
                    Format::Text => {
                        json!({"line": n, "verdict": r.verdict, "score": round(r.score)})
                    }
                }
            }
            Err(msg) => {
                bad_lines += 1;
                eprintln!("error: {}:{n}: {msg}", a.input.display());
                json!({"line": n, "error": msg})
            }
        };
        serde_json::to_writer(&mut out, &obj)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(if bad_lines > 0 {
        output::EXIT_UNUSABLE()
    } else if fails(worst, a.fail_on) {
        output::EXIT_FINDINGS
    } else {
        output::EXIT_OK
    })
}

/// Tool lists found in a file, by connector name.
fn tool_lists(
    v: &Value,
    connector: Option<&str>,
) -> anyhow::Result<Vec<(String, Vec<Value>, Value)>> {
    let default = connector.unwrap_or("tools").to_string();
    if let Some(a) = v.as_array() {
        return Ok(vec![(default, a.clone(), Value::Null)]);
    }
    if let Some(a) = v.get("tools").and_then(Value::as_array) {
        return Ok(vec![(default, a.clone(), Value::Null)]);
    }
    if let Some(a) = v.pointer("/result/tools").and_then(Value::as_array) {
        return Ok(vec![(default, a.clone(), Value::Null)]);
    }
    let servers = v
        .get("mcpServers")
        .or_else(|| v.get("servers"))
        .or_else(|| v.pointer("/mcp/servers"))
        .and_then(Value::as_object);
    if let Some(servers) = servers {
        return Ok(servers
            .iter()
            .map(|(name, entry)| {
                let tools = entry
                    .get("tools")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                (name.clone(), tools, entry.clone())
            })
            .collect());
    }
    bail!(
        "unrecognised format: expected a tools/list result ({{\"tools\": [...]}}), a JSON-RPC response carrying one, an array of tools, or an MCP client config (mcpServers, servers, mcp.servers)"
    )
}

/// Config fields (command, args, env, url, description) checked for hidden text and
/// model-addressed instructions.
fn config_findings(detector: &PoisonDetector, name: &str, entry: &Value) -> Vec<Finding> {
    let mut fields = Vec::new();
    collect_config_strings(entry, String::new(), &mut fields);
    let mut ev = Vec::new();
    for (ptr, text) in fields {
        for e in detector.inspect_text(&ptr, &text) {
            let keep = matches!(e.kind, "hidden" | "encoded")
                || e.rule.starts_with("inject.")
                || matches!(
                    e.rule.as_str(),
                    "poison.model-tag" | "poison.secrecy" | "poison.instruction-override"
                );
            if keep && e.score >= 0.5 {
                ev.push(e);
            }
        }
    }
    if ev.is_empty() {
        return Vec::new();
    }
    let mut f = Finding::new(
        "detect.config-poisoning",
        Severity::High,
        format!("MCP server entry `{name}` carries hidden or model-addressed text"),
    )
    .subject(name.to_string())
    .fix("Remove the hidden or instruction text from the configuration entry and review who changed it.")
    .owasp(&["ASI04", "LLM01"]);
    for e in ev {
        let mut line = format!(
            "{} [{}..{}] {}: {} \u{2014} \"{}\"",
            e.pointer, e.start, e.end, e.rule, e.message, e.snippet
        );
        if let Some(d) = e.decoded {
            line.push_str(&format!(" decodes to \"{d}\""));
        }
        f = f.evidence(line);
    }
    vec![f]
}

fn collect_config_strings(v: &Value, ptr: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((ptr, s.clone())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                collect_config_strings(x, format!("{ptr}/{i}"), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                if k != "tools" {
                    collect_config_strings(x, format!("{ptr}/{k}"), out);
                }
            }
        }
        _ => {}
    }
}

fn run_tools(a: ToolsArgs) -> anyhow::Result<ExitCode> {
    let input = read_input(&a.file)?;
    let v: Value =
        serde_json::from_str(&input).with_context(|| format!("{}: not JSON", a.file.display()))?;
    let lists =
        tool_lists(&v, a.connector.as_deref()).with_context(|| a.file.display().to_string())?;
    let detector = PoisonDetector::default();
    let mut findings = Vec::new();
    let mut tools_json = Vec::new();
    let mut rows: Vec<(String, ToolReport)> = Vec::new();
    let named = lists.len() > 1 || a.connector.is_some() || !lists[0].2.is_null();
    for (conn, tools, entry) in &lists {
        if !entry.is_null() {
            findings.extend(config_findings(&detector, conn, entry));
        }
        let reports: Vec<ToolReport> = tools.iter().map(|t| detector.inspect_tool(t)).collect();
        findings.extend(tool_findings(named.then_some(conn.as_str()), &reports));
        for r in reports {
            rows.push((conn.clone(), r));
        }
    }
    let shadows = find_shadowing(lists.iter().map(|(c, t, _)| (c.as_str(), t.as_slice())));
    findings.extend(shadowing_findings(&shadows));
    finding::sort_findings(&mut findings);
    for (conn, r) in &rows {
        tools_json.push(json!({
            "connector": conn,
            "name": r.name,
            "verdict": r.verdict,
            "score": round(r.score),
            "hash": r.hash,
            "evidence": r.evidence,
        }));
    }
    match a.format {
        Format::Json => {
            let doc = json!({
                "file": a.file,
                "tools": tools_json,
                "findings": findings,
                "summary": output::summary_json(&findings),
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Text => {
            for (conn, r) in &rows {
                let mark = match r.verdict {
                    ToolVerdict::Clean => "clean     ",
                    ToolVerdict::Suspicious => "SUSPICIOUS",
                    ToolVerdict::Poisoned => "POISONED  ",
                };
                println!("{mark} {:.2}  {conn}.{}  {}", r.score, r.name, r.hash);
            }
            print!("{}", finding::render_text(&findings));
        }
    }
    Ok(output::findings_exit(&findings, a.fail_on))
}

fn run_redact(a: RedactArgs) -> anyhow::Result<ExitCode> {
    let mut custom = BTreeMap::new();
    for p in &a.patterns {
        let (name, re) = p
            .split_once('=')
            .with_context(|| format!("--pattern `{p}`: expected NAME=REGEX"))?;
        custom.insert(name.to_string(), re.to_string());
    }
    let redactor = Redactor::new(&custom)?;
    let input = read_input(&a.input)?;
    if a.mcp {
        let mut v: Value = serde_json::from_str(&input)
            .with_context(|| format!("{}: not JSON", a.input.display()))?;
        let red = redactor.redact_json(&mut v);
        match a.format {
            Format::Json => {
                let list: Vec<Value> = red
                    .iter()
                    .map(|(p, r)| json!({"pointer": p, "class": r.class, "rule": r.rule, "start": r.start, "end": r.end}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"redacted": v, "redactions": list}))?
                );
            }
            Format::Text => println!("{}", serde_json::to_string_pretty(&v)?),
        }
    } else {
        let r = redactor.redact(&input);
        match a.format {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"redacted": r.text, "redactions": r.redactions})
                )?
            ),
            Format::Text => print!("{}", r.text),
        }
    }
    Ok(output::EXIT_OK)
}
