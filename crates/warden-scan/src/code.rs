//! Agent code rules (`scan.code.*`) for Python and TypeScript/JavaScript: code-execution
//! tools and flags, `trust_remote_code`, unsafe model loading, and `eval`/`exec`/shell on
//! model output. Line-based patterns with a cheap keyword gate per file.

use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use warden_core::{Finding, Severity, SourceLocation};

use crate::walk::FileKind;

struct CodeRule {
    id: &'static str,
    severity: Severity,
    /// Applies to Python (`true`) or scripts (`false`).
    python: bool,
    /// Literal that must occur on the line before the regex runs.
    keyword: &'static str,
    pattern: &'static str,
    /// When the line also matches this, the rule does not fire.
    unless: Option<&'static str>,
    message: &'static str,
    fix: &'static str,
    owasp: &'static [&'static str],
}

/// Identifiers that usually hold model output (LLM responses, tool arguments).
const MODEL_OUTPUT: &str = r"(?i)(response|completion|output|result|content|message|llm|model|generated|tool_input|tool_call|arguments|args|answer|reply|text|command|cmd|code)";

static CODE_RULES: &[CodeRule] = &[
    CodeRule {
        id: "scan.code.dangerous-code-flag",
        severity: Severity::High,
        python: true,
        keyword: "allow_dangerous",
        pattern: r"allow_dangerous_(?:code|requests|deserialization)\s*=\s*True",
        unless: None,
        message: "dangerous LangChain capability switched on",
        fix: "leave allow_dangerous_* off, or run the tool in a sandbox with no credentials and gate it behind human approval",
        owasp: &["ASI05", "LLM05"],
    },
    CodeRule {
        id: "scan.code.python-repl-tool",
        severity: Severity::High,
        python: true,
        keyword: "",
        pattern: r"\b(?:PythonREPLTool|PythonAstREPLTool|PythonREPL|ShellTool|BashProcess|TerminalTool|create_python_agent|create_pandas_dataframe_agent)\s*\(",
        unless: None,
        message: "agent is given a Python REPL or shell tool",
        fix: "run code tools in an isolated sandbox (container/VM without credentials or network), restrict them to an allow-list, and require approval",
        owasp: &["ASI05", "LLM06"],
    },
    CodeRule {
        id: "scan.code.crewai-code-execution",
        severity: Severity::High,
        python: true,
        keyword: "allow_code_execution",
        pattern: r"allow_code_execution\s*=\s*True",
        unless: Some(r#"code_execution_mode\s*=\s*["']safe["']"#),
        message: "CrewAI agent may execute code",
        fix: "use code_execution_mode=\"safe\" (Docker) or drop allow_code_execution",
        owasp: &["ASI05", "LLM06"],
    },
    CodeRule {
        id: "scan.code.autogen-local-executor",
        severity: Severity::High,
        python: true,
        keyword: "",
        pattern: r#"\bLocalCommandLineCodeExecutor\s*\(|["']use_docker["']\s*:\s*False|\buse_docker\s*=\s*False"#,
        unless: None,
        message: "AutoGen runs generated code on the host",
        fix: "use DockerCommandLineCodeExecutor (or another sandbox) for generated code",
        owasp: &["ASI05", "LLM05"],
    },
    CodeRule {
        id: "scan.code.trust-remote-code",
        severity: Severity::High,
        python: true,
        keyword: "trust_remote_code",
        pattern: r"trust_remote_code\s*=\s*True",
        unless: None,
        message: "model loading executes code shipped with the model repository",
        fix: "pin the model revision to a reviewed commit or drop trust_remote_code",
        owasp: &["ASI04", "LLM03"],
    },
    CodeRule {
        id: "scan.code.unsafe-deserialization",
        severity: Severity::High,
        python: true,
        keyword: "load",
        pattern: r"\b(?:pickle|cPickle|dill|cloudpickle|joblib)\.loads?\s*\(|\btorch\.load\s*\(",
        unless: Some(r"weights_only\s*=\s*True"),
        message: "model or data loaded with pickle (arbitrary code execution on load)",
        fix: "load weights with safetensors or torch.load(..., weights_only=True); never unpickle untrusted files",
        owasp: &["ASI04", "LLM03", "LLM04"],
    },
    CodeRule {
        id: "scan.code.eval-model-output",
        severity: Severity::Critical,
        python: true,
        keyword: "",
        pattern: r"(?:^|[^\w.])(?:eval|exec)\s*\(\s*([^)]*)",
        unless: None,
        message: "eval/exec on what looks like model output",
        fix: "parse model output as data (json.loads, a schema) instead of executing it",
        owasp: &["ASI05", "LLM05"],
    },
    CodeRule {
        id: "scan.code.shell-on-model-output",
        severity: Severity::Critical,
        python: true,
        keyword: "",
        pattern: r"\bsubprocess\.(?:run|call|Popen|check_output|check_call)\s*\(.*shell\s*=\s*True|\bos\.(?:system|popen)\s*\(\s*[^\s'\x22)]",
        unless: None,
        message: "shell command built from a variable (shell=True / os.system)",
        fix: "pass an argument list without shell=True, allow-list the commands, and sandbox and gate the tool",
        owasp: &["ASI05", "LLM05"],
    },
    CodeRule {
        id: "scan.code.shell-on-model-output",
        severity: Severity::Critical,
        python: false,
        keyword: "child_process",
        pattern: r"(?:^|[^\w.$]|child_process\.|cp\.)(?:exec|execSync)\s*\(\s*(?:`[^`]*\$\{|[A-Za-z_$][\w$.]*\s*[,)]|[A-Za-z_$][\w$.\[\]]*\s*\+)",
        unless: None,
        message: "child_process exec on a non-literal command (shell tool on model output)",
        fix: "use execFile/spawn with an argument array, allow-list the commands, run in a sandbox and require approval",
        owasp: &["ASI05", "LLM05"],
    },
    CodeRule {
        id: "scan.code.eval-model-output",
        severity: Severity::Critical,
        python: false,
        keyword: "",
        pattern: r"(?:^|[^\w.$])(?:eval|new Function)\s*\(\s*([^)]*)",
        unless: None,
        message: "eval / new Function on what looks like model output",
        fix: "parse model output as data (JSON.parse, a schema) instead of executing it",
        owasp: &["ASI05", "LLM05"],
    },
];

struct Compiled {
    rule: &'static CodeRule,
    re: Regex,
    unless: Option<Regex>,
}

fn compiled() -> &'static [Compiled] {
    static C: OnceLock<Vec<Compiled>> = OnceLock::new();
    C.get_or_init(|| {
        CODE_RULES
            .iter()
            .map(|r| Compiled {
                rule: r,
                re: Regex::new(r.pattern).expect("built-in code rule compiles"),
                unless: r
                    .unless
                    .map(|u| Regex::new(u).expect("built-in code rule compiles")),
            })
            .collect()
    })
}

fn model_output_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(MODEL_OUTPUT).expect("compiles"))
}

/// The code findings of one Python or script file (or notebook cell starting at `first_line`).
pub fn check_code(rel: &Path, kind: FileKind, text: &str, first_line: u64) -> Vec<Finding> {
    let python = kind == FileKind::Python;
    let mut out = Vec::new();
    let rules: Vec<&Compiled> = compiled()
        .iter()
        .filter(|c| c.rule.python == python)
        .filter(|c| c.rule.keyword.is_empty() || text.contains(c.rule.keyword))
        .collect();
    if rules.is_empty() {
        return out;
    }
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with("//") || line.contains("warden:allow") {
            continue;
        }
        for c in &rules {
            let Some(caps) = c.re.captures(line) else {
                continue;
            };
            if c.unless.as_ref().is_some_and(|u| u.is_match(line)) {
                continue;
            }
            if c.rule.id == "scan.code.shell-on-model-output" && python {
                // `os.system(f"...")` without a placeholder is a literal command.
                let literal_f_string = line
                    .split_once("system(")
                    .map(|(_, a)| a.trim_start())
                    .is_some_and(|arg| {
                        (arg.starts_with("f\"") || arg.starts_with("f'"))
                            && !arg.split([')', '\n']).next().unwrap_or("").contains('{')
                    });
                if literal_f_string {
                    continue;
                }
            }
            if c.rule.id == "scan.code.eval-model-output" {
                // Only when the argument is not a literal and names model output.
                let arg = caps.get(1).map_or("", |m| m.as_str()).trim();
                if arg.is_empty()
                    || arg.starts_with(['"', '\'', '`'])
                    || !model_output_re().is_match(arg)
                {
                    continue;
                }
            }
            out.push(
                Finding::new(c.rule.id, c.rule.severity, c.rule.message)
                    .at(Some(SourceLocation {
                        file: rel.to_path_buf(),
                        line: first_line + i as u64,
                        column: caps
                            .get(0)
                            .map_or(0, |m| line[..m.start()].chars().count() as u64 + 1),
                    }))
                    .evidence(truncate(trimmed, 160))
                    .fix(c.rule.fix)
                    .owasp(c.rule.owasp),
            );
        }
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n).collect();
        format!("{t}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(kind: FileKind, text: &str) -> Vec<&'static str> {
        check_code(Path::new("a"), kind, text, 1)
            .iter()
            .map(|f| match f.rule_id.as_str() {
                "scan.code.dangerous-code-flag" => "flag",
                "scan.code.python-repl-tool" => "repl",
                "scan.code.crewai-code-execution" => "crewai",
                "scan.code.autogen-local-executor" => "autogen",
                "scan.code.trust-remote-code" => "trc",
                "scan.code.unsafe-deserialization" => "pickle",
                "scan.code.eval-model-output" => "eval",
                "scan.code.shell-on-model-output" => "shell",
                _ => "?",
            })
            .collect()
    }

    #[test]
    fn python_rules_fire_and_safe_forms_do_not() {
        let py = FileKind::Python;
        assert_eq!(
            ids(
                py,
                "agent = create_pandas_dataframe_agent(llm, df, allow_dangerous_code=True)"
            ),
            vec!["flag", "repl"]
        );
        assert_eq!(
            ids(
                py,
                "m = AutoModel.from_pretrained(name, trust_remote_code=True)"
            ),
            vec!["trc"]
        );
        assert_eq!(ids(py, "sd = torch.load(path)"), vec!["pickle"]);
        assert!(ids(py, "sd = torch.load(path, weights_only=True)").is_empty());
        assert_eq!(ids(py, "exec(response.content)"), vec!["eval"]);
        assert!(ids(py, "exec(\"print(1)\")").is_empty());
        assert!(ids(py, "x = model.eval()").is_empty());
        assert_eq!(ids(py, "subprocess.run(cmd, shell=True)"), vec!["shell"]);
        assert!(ids(py, "subprocess.run([\"ls\", path])").is_empty());
        assert!(ids(py, "os.system(f\"python convert.py . tokenizer.model\")").is_empty());
        assert_eq!(ids(py, "os.system(f\"git {args}\")"), vec!["shell"]);
        assert_eq!(
            ids(py, "Agent(role='x', allow_code_execution=True)"),
            vec!["crewai"]
        );
        assert!(
            ids(
                py,
                "Agent(allow_code_execution=True, code_execution_mode=\"safe\")"
            )
            .is_empty()
        );
        assert_eq!(
            ids(py, "ex = LocalCommandLineCodeExecutor(work_dir='w')"),
            vec!["autogen"]
        );
        assert!(ids(py, "# exec(response)").is_empty());
    }

    #[test]
    fn script_rules() {
        let ts = FileKind::Script;
        let ids = |k, t: &str| {
            ids(
                k,
                &format!("import {{ exec, execSync }} from 'node:child_process';\n{t}"),
            )
        };
        assert_eq!(
            ids(
                ts,
                "const out = execSync(input.command, { encoding: 'utf8' });"
            ),
            vec!["shell"]
        );
        assert_eq!(ids(ts, "exec(`git ${args}`, cb)"), vec!["shell"]);
        assert!(ids(ts, "exec('ls -la', cb)").is_empty());
        assert!(ids(ts, "const m = re.exec(line)").is_empty());
        assert_eq!(ids(ts, "const v = eval(completion.text)"), vec!["eval"]);
    }
}
