//! Shared helpers of the gateway tests: the real MCP peers installed by
//! `scripts/deps.d/40-gateway.sh`, a fixture inventory wiring them, `warden up` as a child
//! process, and a minimal HTTP/1.1 client for the raw protocol cases.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn deps_dir() -> PathBuf {
    repo_root().join("target/deps/gateway")
}

/// Panics with instructions when the real peers are not installed.
pub fn require_deps() {
    let d = deps_dir();
    let missing: Vec<&str> = [
        "node_modules/@modelcontextprotocol/server-everything/dist/index.js",
        "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js",
        "node_modules/@modelcontextprotocol/inspector-cli/build/index.js",
        "venv/bin/python",
    ]
    .into_iter()
    .filter(|p| !d.join(p).exists())
    .collect();
    assert!(
        missing.is_empty(),
        "gateway test prerequisites missing under {}: {missing:?}. Run `bash scripts/deps.d/40-gateway.sh` (CI does).",
        d.display()
    );
}

pub fn venv_bin() -> PathBuf {
    deps_dir().join("venv/bin")
}

pub fn python() -> PathBuf {
    venv_bin().join("python")
}

/// PATH with the venv first, so inventories' `python3` is the one with the `mcp` SDK.
pub fn path_env() -> String {
    format!(
        "{}:{}",
        venv_bin().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

pub fn node_module(rel: &str) -> String {
    deps_dir()
        .join("node_modules")
        .join(rel)
        .display()
        .to_string()
}

pub fn acme_server() -> String {
    repo_root()
        .join("examples/acme/servers/acme_mcp.py")
        .display()
        .to_string()
}

pub fn fixture(name: &str) -> String {
    repo_root()
        .join("crates/warden-cli/tests/fixtures/gateway")
        .join(name)
        .display()
        .to_string()
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port` (bounded).
pub fn wait_for_port(port: u16, limit: Duration) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < limit,
            "nothing listens on port {port} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `acme_mcp.py ROLE --http PORT` and waits for it.
pub fn start_http_upstream(role: &str) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new(python())
        .args([
            acme_server(),
            role.to_string(),
            "--http".into(),
            port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = Proc(child);
    wait_for_port(port, Duration::from_secs(30));
    (p, port)
}

/// Writes the fixture inventory into `dir`: the real npm servers over stdio, the Python
/// testkit over stdio, and (when given) the Python warehouse over Streamable HTTP.
pub fn write_inventory(dir: &Path, warehouse_port: Option<u16>, extra_agent_yaml: &str) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello.txt"), "hello from the filesystem server\n").unwrap();
    std::fs::write(data.join("secret.txt"), "not for beta\n").unwrap();
    let warehouse = match warehouse_port {
        Some(p) => format!(
            r#"
  - id: warehouse
    mcp: {{ url: "http://127.0.0.1:{p}/mcp" }}
    pin_on_first_sight: true
    tools:
      run_query: {{ effects: [read], args: {{ sql: {{ type: string, required: true }} }} }}
"#
        ),
        None => String::new(),
    };
    let yaml = format!(
        r#"
humans:
  - {{ id: olivia@example.com, groups: [ops] }}
groups:
  - {{ id: ops }}
agents:
  - id: alpha
    owner: olivia@example.com
    uses: [everything.echo, everything.get-sum, everything.trigger-long-running-operation,
           files.read_text_file, files.list_directory, testkit.echo, testkit.slow, testkit.crash,
           testkit.env, warehouse.run_query]
  - id: beta
    owner: olivia@example.com
    uses: [everything.echo]
    limits: {{ calls_per_minute: 3 }}
{extra_agent_yaml}
connectors:
  - id: everything
    mcp: {{ command: node, args: ["{everything}", "stdio"] }}
    pin_on_first_sight: true
    tools:
      echo: {{ effects: [read] }}
      get-sum: {{ effects: [read] }}
      trigger-long-running-operation: {{ effects: [read] }}
      get-env: {{ effects: [read] }}
  - id: files
    mcp: {{ command: node, args: ["{filesystem}", "{data}"] }}
    pin_on_first_sight: true
    tools:
      read_text_file: {{ effects: [read] }}
      list_directory: {{ effects: [read] }}
      write_file: {{ effects: [write] }}
  - id: testkit
    mcp:
      command: python3
      args: ["{acme}", testkit]
      env: {{ ACME_BANNER: "1", TESTKIT_SECRET: "${{env:WARDEN_TEST_UPSTREAM_SECRET}}" }}
    pin_on_first_sight: true
    tools:
      echo: {{ effects: [read] }}
      slow: {{ effects: [read] }}
      crash: {{ effects: [read] }}
      env: {{ effects: [read] }}
{warehouse}
"#,
        everything = node_module("@modelcontextprotocol/server-everything/dist/index.js"),
        filesystem = node_module("@modelcontextprotocol/server-filesystem/dist/index.js"),
        data = data.display(),
        acme = acme_server(),
    );
    std::fs::write(dir.join("inventory.yaml"), yaml).unwrap();
}

/// Runs `warden ARGS` to completion.
pub fn warden(args: &[&str]) -> Output {
    Command::new(WARDEN)
        .args(args)
        .env("PATH", path_env())
        .output()
        .unwrap()
}

pub fn issue_token(dir: &Path, db: &Path, agent: &str, ttl: &str) -> String {
    let out = warden(&[
        "token",
        "issue",
        "--agent",
        agent,
        "--ttl",
        ttl,
        dir.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "token issue failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A running `warden up`.
pub struct Warden {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub db: PathBuf,
    pub stderr_log: PathBuf,
}

impl Warden {
    pub fn start(dir: &Path, extra: &[&str]) -> Warden {
        // `--db` in `extra` (a postgres:// URL) replaces the default SQLite file.
        let db = match extra.iter().position(|a| *a == "--db") {
            Some(i) => PathBuf::from(extra[i + 1]),
            None => dir.join("warden.db"),
        };
        let stderr_log = dir.join("warden.stderr");
        let mut args = vec![
            "up".to_string(),
            dir.display().to_string(),
            "--db".into(),
            db.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        let mut rest = extra.iter();
        while let Some(a) = rest.next() {
            if *a == "--db" {
                rest.next();
            } else {
                args.push(a.to_string());
            }
        }
        let mut child = Command::new(WARDEN)
            .args(&args)
            .env("PATH", path_env())
            .env("WARDEN_TEST_UPSTREAM_SECRET", "s3cr3t-upstream-credential")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .unwrap_or_else(|| Ok(String::new()))
            .unwrap_or_default();
        let url = first
            .strip_prefix("MCP endpoint: http://")
            .unwrap_or_else(|| {
                panic!(
                    "warden up did not start: {first:?}; stderr: {}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                )
            });
        let addr: SocketAddr = url.trim_end_matches("/mcp").parse().unwrap();
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Warden {
            proc: Proc(child),
            addr,
            dir: dir.to_path_buf(),
            db,
            stderr_log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn token(&self, agent: &str) -> String {
        issue_token(&self.dir, &self.db, agent, "1h")
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.proc.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let start = Instant::now();
        loop {
            if let Some(s) = self.proc.0.try_wait().unwrap() {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "warden did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(mut self) {
        let pid = self.proc.0.id().to_string();
        Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        let _ = self.proc.0.wait();
    }

    pub fn audit(&self) -> Vec<Value> {
        audit_export(&self.dir, &self.db)
    }
}

pub fn audit_export(dir: &Path, db: &Path) -> Vec<Value> {
    let out = warden(&[
        "audit",
        "export",
        dir.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect()
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    /// The JSON-RPC messages of an SSE body.
    pub fn sse_messages(&self) -> Vec<Value> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// A raw MCP session over HTTP.
pub struct Mcp {
    pub addr: SocketAddr,
    pub token: String,
    pub session: String,
    pub next: u64,
}

impl Mcp {
    pub fn post(&self, body: &Value, session: bool) -> Resp {
        let auth = format!("Bearer {}", self.token);
        let mut h = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        if session {
            h.push(("Mcp-Session-Id", self.session.as_str()));
        }
        http(self.addr, "POST", "/mcp", &h, body.to_string().as_bytes())
    }

    pub fn connect(addr: SocketAddr, token: &str) -> Mcp {
        let mut m = Mcp {
            addr,
            token: token.to_string(),
            session: String::new(),
            next: 1,
        };
        let r = m.post(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "1"}}}),
            false,
        );
        assert_eq!(r.status, 200, "initialize: {r:?}");
        m.session = r.header("mcp-session-id").expect("session id").to_string();
        let r = m.post(
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            true,
        );
        assert_eq!(r.status, 202);
        m
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let r = self.post(
            &json!({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params}),
            true,
        );
        assert_eq!(r.status, 200, "{method}: {r:?}");
        let v = r.json();
        assert_eq!(v["id"], json!(self.next), "response id restored: {v}");
        v
    }

    pub fn call(&mut self, tool: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
    }
}

/// Runs the Python SDK client script against the gateway over HTTP.
pub fn python_client_http(url: &str, token: &str, steps: &Value) -> Value {
    let out = Command::new(python())
        .args([
            fixture("mcp_client.py"),
            "http".into(),
            url.to_string(),
            token.to_string(),
            steps.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The text of a tools/call result.
pub fn result_text(v: &Value) -> String {
    v["result"]["content"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}
