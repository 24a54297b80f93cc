//! MCP client configurations (Claude Desktop, Claude Code `.mcp.json`, Cursor, VS Code,
//! Windsurf): discovery by path, parsing of their servers, and the risk rules
//! `scan.mcp.*`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use warden_core::check::{is_remote_plain_http, looks_like_credential_key, unpinned_package_in};
use warden_core::{Finding, Severity, SourceLocation};

use crate::secrets::SecretScanner;

/// Which MCP client a config file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum McpClient {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    VsCode,
    Windsurf,
}

impl McpClient {
    pub fn as_str(self) -> &'static str {
        match self {
            McpClient::ClaudeDesktop => "claude-desktop",
            McpClient::ClaudeCode => "claude-code",
            McpClient::Cursor => "cursor",
            McpClient::VsCode => "vscode",
            McpClient::Windsurf => "windsurf",
        }
    }
}

/// The client whose config `path` is, by its name and parent directory.
pub fn client_for(path: &Path) -> Option<McpClient> {
    let name = path.file_name()?.to_str()?;
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    match name {
        ".mcp.json" => Some(McpClient::ClaudeCode),
        "claude_desktop_config.json" => Some(McpClient::ClaudeDesktop),
        "mcp.json" if parent == ".cursor" => Some(McpClient::Cursor),
        "mcp.json" if parent == ".vscode" => Some(McpClient::VsCode),
        "mcp_config.json" => Some(McpClient::Windsurf),
        _ => None,
    }
}

/// One server entry of a client config.
#[derive(Debug, Clone, Serialize)]
pub struct McpServer {
    pub name: String,
    pub client: McpClient,
    pub file: PathBuf,
    pub line: u64,
    /// `stdio`, `http` or `sse`.
    pub transport: String,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub url: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// Parses the servers of a config file. `Err` carries a parse message.
pub fn parse_servers(rel: &Path, client: McpClient, text: &str) -> Result<Vec<McpServer>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let servers = v
        .get("mcpServers")
        .or_else(|| v.get("servers"))
        .or_else(|| v.get("mcp").and_then(|m| m.get("servers")))
        .and_then(|s| s.as_object());
    let Some(servers) = servers else {
        return Ok(Vec::new());
    };
    let strs = |x: Option<&serde_json::Value>| -> Vec<String> {
        x.and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .map(|s| match s {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let pairs = |x: Option<&serde_json::Value>| -> Vec<(String, String)> {
        x.and_then(|o| o.as_object())
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for (name, s) in servers {
        let url = s
            .get("url")
            .or_else(|| s.get("serverUrl"))
            .and_then(|u| u.as_str())
            .map(str::to_string);
        let declared = s.get("type").and_then(|t| t.as_str()).unwrap_or("");
        let transport = match (declared, &url) {
            ("sse", _) => "sse",
            (_, Some(_)) => "http",
            _ => "stdio",
        };
        out.push(McpServer {
            name: name.clone(),
            client,
            file: rel.to_path_buf(),
            line: key_line(text, name),
            transport: transport.to_string(),
            command: s
                .get("command")
                .and_then(|c| c.as_str())
                .map(str::to_string),
            args: strs(s.get("args")),
            env: pairs(s.get("env")),
            url,
            headers: pairs(s.get("headers")),
        });
    }
    Ok(out)
}

/// The 1-based line where `"key":` first appears (1 when not found).
fn key_line(text: &str, key: &str) -> u64 {
    let needle = format!("\"{key}\"");
    for (i, l) in text.lines().enumerate() {
        if let Some(p) = l.find(&needle)
            && l[p + needle.len()..].trim_start().starts_with(':')
        {
            return i as u64 + 1;
        }
    }
    1
}

fn is_reference(v: &str) -> bool {
    let v = v.trim();
    v.is_empty()
        || v.starts_with('$')
        || v.contains("${")
        || v.starts_with("{{")
        || v.starts_with('<')
        || (v.starts_with('%') && v.ends_with('%'))
}

const BROAD_ROOTS: &[&str] = &[
    "/", "~", "~/", "$HOME", "${HOME}", "/home", "/Users", "/root", "C:\\", "C:/", "C:",
];

/// The risk findings of one client config file.
pub fn check_config(
    rel: &Path,
    client: McpClient,
    text: &str,
    scanner: &SecretScanner,
) -> Vec<Finding> {
    let servers = match parse_servers(rel, client, text) {
        Ok(s) => s,
        Err(e) => {
            return vec![
                Finding::new(
                    "scan.mcp.unparsable-config",
                    Severity::Low,
                    format!("{} MCP config is not valid JSON: {e}", client.as_str()),
                )
                .at(Some(loc(rel, 1)))
                .fix("fix the JSON so its servers can be reviewed"),
            ];
        }
    };
    let mut out = Vec::new();
    for s in &servers {
        let here = Some(loc(rel, s.line));
        let subject = format!("{}:{}", client.as_str(), s.name);
        // Secrets inline in env, headers or args.
        let mut inline = Vec::new();
        for (k, v) in s.env.iter().chain(s.headers.iter()) {
            if is_reference(v) {
                continue;
            }
            let hits = scanner.find(v);
            if let Some(m) = hits.first() {
                inline.push(format!("{k} = {} ({})", m.redacted, m.description));
            } else if (looks_like_credential_key(k) || k.eq_ignore_ascii_case("authorization"))
                && v.len() >= 8
                && v.chars().any(|c| c.is_ascii_digit())
            {
                inline.push(format!("{k} = {}", crate::secrets::redact(v)));
            }
        }
        for a in &s.args {
            if let Some(m) = scanner.find(a).first() {
                inline.push(format!("argument {} ({})", m.redacted, m.description));
            }
        }
        for e in inline {
            out.push(
                Finding::new(
                    "scan.mcp.inline-secret",
                    Severity::Critical,
                    format!("MCP server `{}` has a secret written inline in its config", s.name),
                )
                .at(here.clone())
                .subject(&subject)
                .evidence(e)
                .fix("reference the secret from the environment (`${VAR}`) or a secret manager instead of writing it in the config; rotate the exposed value")
                .owasp(&["ASI03", "LLM02"]),
            );
        }
        if let Some(cmd) = &s.command {
            let base = cmd.rsplit(['/', '\\']).next().unwrap_or(cmd);
            let base = base.trim_end_matches(".cmd").trim_end_matches(".exe");
            let args: Vec<&str> = s.args.iter().map(String::as_str).collect();
            if let Some(pkg) = unpinned_package_in(base, &args) {
                out.push(
                    Finding::new(
                        "scan.mcp.unpinned-package",
                        Severity::High,
                        format!("MCP server `{}` runs `{pkg}` without a pinned version", s.name),
                    )
                    .at(here.clone())
                    .subject(&subject)
                    .evidence(format!("{} {}", cmd, s.args.join(" ")))
                    .fix("pin an exact version (`pkg@1.2.3`, `pkg==1.2.3`, an image digest) so a new release cannot change the tools your agent runs")
                    .owasp(&["ASI04", "LLM03"]),
                );
            }
            let is_container = matches!(base, "docker" | "podman") && args.first() == Some(&"run");
            for (i, a) in args.iter().enumerate() {
                if BROAD_ROOTS.contains(a) {
                    out.push(
                        Finding::new(
                            "scan.mcp.broad-filesystem-root",
                            Severity::High,
                            format!("MCP server `{}` is given the filesystem root `{a}`", s.name),
                        )
                        .at(here.clone())
                        .subject(&subject)
                        .evidence(format!("{} {}", cmd, s.args.join(" ")))
                        .fix("grant only the project directories the agent needs")
                        .owasp(&["ASI02", "ASI03", "LLM06"]),
                    );
                }
                if is_container {
                    let next = args.get(i + 1).copied().unwrap_or("");
                    let (flag, val) = match a.split_once('=') {
                        Some((f, v)) => (f, v),
                        None => (*a, next),
                    };
                    let bad = match flag {
                        "--privileged" => Some("runs privileged".to_string()),
                        "--cap-add"
                            if val.eq_ignore_ascii_case("ALL")
                                || val.eq_ignore_ascii_case("SYS_ADMIN") =>
                        {
                            Some(format!("adds capability {val}"))
                        }
                        "--pid" | "--network" | "--net" | "--ipc" | "--userns" if val == "host" => {
                            Some(format!("shares the host namespace ({flag}={val})"))
                        }
                        "-v" | "--volume" | "--mount" => {
                            let src = if flag == "--mount" {
                                val.split(',')
                                    .find_map(|kv| {
                                        kv.strip_prefix("source=")
                                            .or_else(|| kv.strip_prefix("src="))
                                    })
                                    .unwrap_or("")
                            } else {
                                val.split(':').next().unwrap_or("")
                            };
                            if src.contains("docker.sock") {
                                Some(format!("mounts the container runtime socket ({src})"))
                            } else if BROAD_ROOTS.contains(&src) || src == "/etc" || src == "/var" {
                                Some(format!("mounts the host path {src}"))
                            } else {
                                None
                            }
                        }
                        _ => None,
                    };
                    if let Some(why) = bad {
                        out.push(
                            Finding::new(
                                "scan.mcp.privileged-container",
                                Severity::Critical,
                                format!("MCP server `{}` container {why}", s.name),
                            )
                            .at(here.clone())
                            .subject(&subject)
                            .evidence(format!("{} {}", cmd, s.args.join(" ")))
                            .fix("drop --privileged/host namespaces and mount only the directories the server needs, read-only where possible")
                            .owasp(&["ASI05", "LLM06"]),
                        );
                    }
                }
            }
        }
        if let Some(url) = &s.url
            && is_remote_plain_http(url)
        {
            out.push(
                Finding::new(
                    "scan.mcp.plain-http",
                    Severity::High,
                    format!("MCP server `{}` is reached over plain HTTP", s.name),
                )
                .at(here.clone())
                .subject(&subject)
                .evidence(url.clone())
                .fix("use https:// for remote MCP servers")
                .owasp(&["ASI04", "ASI07"]),
            );
        }
    }
    out
}

fn loc(rel: &Path, line: u64) -> SourceLocation {
    SourceLocation {
        file: rel.to_path_buf(),
        line,
        column: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<String> {
        check_config(
            Path::new(".mcp.json"),
            McpClient::ClaudeCode,
            text,
            &SecretScanner::new(),
        )
        .into_iter()
        .map(|f| f.rule_id)
        .collect()
    }

    #[test]
    fn flags_each_risk_once_and_not_safe_servers() {
        let text = r#"{"mcpServers": {
  "shell": {"command": "npx", "args": ["-y", "@acme-labs/shell-mcp"]},
  "fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem@2026.8.31", "/"]},
  "box": {"command": "docker", "args": ["run", "-i", "--rm", "--privileged", "ghcr.io/acme/box@sha256:abc"]},
  "remote": {"type": "http", "url": "http://mcp.acme.example/mcp"},
  "gh": {"command": "uvx", "args": ["mcp-github==1.2.0"], "env": {"GITHUB_TOKEN": "ghp_R8x2Lq9Vt4Mn7Kp1Ws5Zc3Hb6Fd0Jg2Ya8Eu"}},
  "safe": {"command": "uvx", "args": ["mcp-github==1.2.0"], "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}}
}}"#;
        let mut r = rules(text);
        r.sort();
        assert_eq!(
            r,
            vec![
                "scan.mcp.broad-filesystem-root",
                "scan.mcp.inline-secret",
                "scan.mcp.plain-http",
                "scan.mcp.privileged-container",
                "scan.mcp.unpinned-package",
            ]
        );
    }

    #[test]
    fn finds_the_server_line() {
        let text = "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"npx\", \"args\": [\"-y\", \"x\"]}\n  }\n}";
        let f = check_config(
            Path::new(".mcp.json"),
            McpClient::ClaudeCode,
            text,
            &SecretScanner::new(),
        );
        assert_eq!(f[0].location.as_ref().unwrap().line, 3);
    }

    #[test]
    fn clients_by_path() {
        assert_eq!(
            client_for(Path::new("x/.cursor/mcp.json")),
            Some(McpClient::Cursor)
        );
        assert_eq!(
            client_for(Path::new("x/.vscode/mcp.json")),
            Some(McpClient::VsCode)
        );
        assert_eq!(client_for(Path::new("x/mcp.json")), None);
    }
}
