//! Benchmark driver for `bench/gateway/run.sh` (not a test):
//!
//!   mcp_bench upstream --port-file F          a trivial Streamable HTTP MCP server (`bench.noop`)
//!   mcp_bench relay --upstream URL --port-file F
//!                     a bare HTTP relay (axum in, the gateway's upstream client out, no
//!                     policy, no audit): the cost of one extra hop on this machine, the floor
//!                     for any gateway
//!   mcp_bench compare --direct URL --gateway URL --token T [--relay URL] [--rate 1000]
//!                     [--seconds 5] [--block 0.25] [--concurrency 32]
//!                     [--gateway-b URL --token-b T]
//!
//! `compare` drives `tools/call` at a fixed open-loop rate against the upstream directly,
//! through the gateway (and the bare relay, and a second gateway build for an A/B), each
//! path `--seconds` in all, interleaved in `--block`-second blocks so that the host's
//! changing load falls on every path alike (each call is sent at its scheduled time whether
//! or not earlier calls have answered, so a stall is not hidden; latency is measured from
//! the send); then it measures the maximum calls/s of each with a closed loop of
//! `--concurrency` callers, and prints a table.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};
use warden_gateway::http_client::{HttpClient, Outgoing};

async fn upstream_handler(body: axum::body::Bytes) -> axum::response::Response {
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let Some(id) = msg.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    let result = match msg["method"].as_str().unwrap_or("") {
        "initialize" => json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                               "serverInfo": {"name": "bench-upstream", "version": "1"}}),
        "tools/list" => json!({"tools": [{"name": "noop", "description": "does nothing",
                               "inputSchema": {"type": "object", "properties": {"n": {"type": "integer"}}}}]}),
        "tools/call" => json!({"content": [{"type": "text", "text": "ok"}]}),
        _ => json!({}),
    };
    let mut h = HeaderMap::new();
    h.insert("content-type", "application/json".parse().unwrap());
    (
        h,
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "result": result})).unwrap(),
    )
        .into_response()
}

/// The bare relay: forwards the body and the MCP headers with the gateway's own upstream
/// client, returns the upstream's answer.
async fn relay_handler(
    axum::extract::State(client): axum::extract::State<Arc<HttpClient>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let mut out = Outgoing {
        headers: Vec::new(),
        body: body.to_vec(),
    };
    for name in [
        "content-type",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
    ] {
        if let Some(v) = headers.get(name) {
            out.headers
                .push((axum::http::HeaderName::from_static(name), v.clone()));
        }
    }
    match client.post(out).await {
        Ok(r) => {
            let status = r.status;
            let mut h = HeaderMap::new();
            for name in ["content-type", "mcp-session-id"] {
                if let Some(v) = r.headers.get(name) {
                    h.insert(name, v.clone());
                }
            }
            match r.bytes().await {
                Ok(bytes) => (status, h, bytes).into_response(),
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

struct Target {
    url: String,
    headers: Vec<(String, String)>,
}

async fn connect(client: &reqwest::Client, url: &str, token: Option<&str>) -> Target {
    let mut headers = vec![(
        "accept".to_string(),
        "application/json, text/event-stream".to_string(),
    )];
    if let Some(t) = token {
        headers.push(("authorization".into(), format!("Bearer {t}")));
    }
    let mut rb = client.post(url).header("content-type", "application/json");
    for (k, v) in &headers {
        rb = rb.header(k, v);
    }
    let resp = rb
        .body(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}).to_string())
        .send()
        .await
        .expect("initialize");
    assert!(resp.status().is_success(), "initialize: {}", resp.status());
    if let Some(sid) = resp.headers().get("mcp-session-id") {
        headers.push(("mcp-session-id".into(), sid.to_str().unwrap().to_string()));
    }
    let _ = resp.bytes().await;
    Target {
        url: url.to_string(),
        headers,
    }
}

async fn call(client: &reqwest::Client, t: &Target, tool: &str, i: u64) -> bool {
    let mut rb = client
        .post(&t.url)
        .header("content-type", "application/json");
    for (k, v) in &t.headers {
        rb = rb.header(k, v);
    }
    let body = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": tool, "arguments": {"n": i}}});
    match rb.body(body.to_string()).send().await {
        Ok(r) if r.status().is_success() => r
            .bytes()
            .await
            .map(|b| b.windows(4).any(|w| w == b"\"ok\""))
            .unwrap_or(false),
        _ => false,
    }
}

struct Stats {
    achieved: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    errors: u64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Drives `tools/call` on every path at the same fixed open-loop `rate`, interleaved in
/// blocks of `block` seconds (the order rotating from block to block), so that a change in
/// the host's load during the run affects every path alike. Each call is sent at its
/// scheduled time whether or not earlier calls have answered (a stall is not hidden);
/// latency is measured from the send. Returns one [`Stats`] per path.
async fn fixed_rate(
    client: reqwest::Client,
    paths: &[(Arc<Target>, &'static str)],
    rate: f64,
    seconds: f64,
    block: f64,
) -> Vec<Stats> {
    let blocks = (seconds / block).round().max(1.0) as usize;
    let per_block = ((rate * seconds) / blocks as f64).round().max(1.0) as u64;
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut errors = vec![0u64; paths.len()];
    let mut busy = vec![0f64; paths.len()];
    let mut i = 0u64;
    for b in 0..blocks {
        for k in 0..paths.len() {
            let k = (k + b) % paths.len();
            let (t, tool) = &paths[k];
            let start = Instant::now();
            let mut handles = Vec::with_capacity(per_block as usize);
            for j in 0..per_block {
                let due = start + Duration::from_secs_f64(j as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                i += 1;
                let (client, t, tool, i) = (client.clone(), t.clone(), *tool, i);
                handles.push(tokio::spawn(async move {
                    // Latency from the moment the call is sent: tokio's timer wakes the
                    // schedule up to 1 ms late, which would add the same noise to every path.
                    let sent = Instant::now();
                    let ok = call(&client, &t, tool, i).await;
                    (sent.elapsed().as_secs_f64() * 1000.0, ok)
                }));
            }
            for h in handles {
                let (ms, ok) = h.await.unwrap();
                lat[k].push(ms);
                if !ok {
                    errors[k] += 1;
                }
            }
            busy[k] += start.elapsed().as_secs_f64();
        }
    }
    lat.into_iter()
        .zip(errors)
        .zip(busy)
        .map(|((mut l, errors), busy)| {
            l.sort_by(|a, b| a.partial_cmp(b).unwrap());
            Stats {
                achieved: l.len() as f64 / busy,
                p50: pct(&l, 0.5),
                p90: pct(&l, 0.9),
                p99: pct(&l, 0.99),
                max: *l.last().unwrap_or(&f64::NAN),
                errors,
            }
        })
        .collect()
}

async fn max_rate(
    client: reqwest::Client,
    t: Arc<Target>,
    tool: &'static str,
    conc: usize,
    seconds: f64,
) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut hs = Vec::new();
    for w in 0..conc {
        let (client, t, done, errors) = (client.clone(), t.clone(), done.clone(), errors.clone());
        hs.push(tokio::spawn(async move {
            let mut i = (w as u64) << 32;
            while Instant::now() < stop {
                i += 1;
                if call(&client, &t, tool, i).await {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    (
        done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
        errors.load(Ordering::Relaxed),
    )
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("upstream") => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            if let Some(f) = arg(&args, "--port-file") {
                std::fs::write(f, port.to_string()).unwrap();
            }
            println!("{port}");
            let app = Router::new().route("/mcp", post(upstream_handler));
            axum::serve(listener, app).await.unwrap();
        }
        Some("relay") => {
            let upstream = arg(&args, "--upstream").expect("--upstream URL");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            if let Some(f) = arg(&args, "--port-file") {
                std::fs::write(f, port.to_string()).unwrap();
            }
            let client = Arc::new(HttpClient::new(&upstream, Duration::from_secs(10)));
            let app = Router::new()
                .route("/mcp", post(relay_handler))
                .with_state(client);
            axum::serve(listener, app).await.unwrap();
        }
        Some("compare") => {
            let direct = arg(&args, "--direct").expect("--direct URL");
            let gateway = arg(&args, "--gateway").expect("--gateway URL");
            let token = arg(&args, "--token").expect("--token");
            let rate: f64 = arg(&args, "--rate")
                .map(|s| s.parse().unwrap())
                .unwrap_or(1000.0);
            let seconds: f64 = arg(&args, "--seconds")
                .map(|s| s.parse().unwrap())
                .unwrap_or(5.0);
            let conc: usize = arg(&args, "--concurrency")
                .map(|s| s.parse().unwrap())
                .unwrap_or(32);
            let label = arg(&args, "--label").unwrap_or_default();
            warden_gateway::upstream::install_crypto_provider();
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .tcp_nodelay(true)
                .build()
                .unwrap();
            let block: f64 = arg(&args, "--block")
                .map(|s| s.parse().unwrap())
                .unwrap_or(0.25);
            let d = Arc::new(connect(&client, &direct, None).await);
            let g = Arc::new(connect(&client, &gateway, Some(&token)).await);
            let mut paths = vec![(d.clone(), "noop"), (g.clone(), "bench.noop")];
            let mut names = vec!["direct", "through warden"];
            let r = match arg(&args, "--relay") {
                Some(u) => Some(Arc::new(connect(&client, &u, None).await)),
                None => None,
            };
            if let Some(r) = &r {
                paths.push((r.clone(), "noop"));
                names.push("through a bare relay (no policy, no audit)");
            }
            // A second gateway build measured in the same interleaved run (A/B of a change).
            let gb = match (arg(&args, "--gateway-b"), arg(&args, "--token-b")) {
                (Some(u), Some(t)) => Some(Arc::new(connect(&client, &u, Some(&t)).await)),
                _ => None,
            };
            if let Some(gb) = &gb {
                paths.push((gb.clone(), "bench.noop"));
                names.push("through warden B");
            }
            // Warm up every path (connection pools, upstream session).
            let _ = fixed_rate(client.clone(), &paths, rate, 0.5, 0.5).await;
            let stats = fixed_rate(client.clone(), &paths, rate, seconds, block).await;
            // `--max-seconds 0` skips the maximum-rate phase (A/B runs of the fixed rate only).
            let max_seconds: f64 = arg(&args, "--max-seconds")
                .map(|s| s.parse().unwrap())
                .unwrap_or(seconds);
            let (md, ed) = max_rate(client.clone(), d.clone(), "noop", conc, max_seconds).await;
            let (mg, eg) =
                max_rate(client.clone(), g.clone(), "bench.noop", conc, max_seconds).await;
            let mr = match &r {
                Some(r) => {
                    Some(max_rate(client.clone(), r.clone(), "noop", conc, max_seconds).await)
                }
                None => None,
            };
            println!(
                "\n## tools/call at a fixed {rate} calls/s for {seconds} s per path, interleaved in {block} s blocks {label}\n"
            );
            println!("| path | achieved calls/s | p50 ms | p90 ms | p99 ms | max ms | errors |");
            println!("|---|---:|---:|---:|---:|---:|---:|");
            for (name, s) in names.iter().zip(&stats) {
                println!(
                    "| {name} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
                    s.achieved, s.p50, s.p90, s.p99, s.max, s.errors
                );
            }
            let sd = &stats[0];
            for (k, name) in names.iter().enumerate().skip(1) {
                let s = &stats[k];
                let row = match *name {
                    "through warden" => "**added by warden**".to_string(),
                    "through warden B" => "added by warden B".to_string(),
                    _ => "added by the bare relay (one hop, the floor)".to_string(),
                };
                // The gateway's own row carries the targets (p50, p99): in bold.
                let b = if k == 1 { "**" } else { "" };
                println!(
                    "| {row} | | {b}{:.3}{b} | {:.3} | {b}{:.3}{b} | | |",
                    s.p50 - sd.p50,
                    s.p90 - sd.p90,
                    s.p99 - sd.p99
                );
            }
            println!("\n## maximum calls/s ({conc} concurrent callers, {seconds} s)\n");
            println!("| path | calls/s | errors |");
            println!("|---|---:|---:|");
            println!("| direct | {md:.0} | {ed} |");
            println!("| through warden (policy + audit on) | {mg:.0} | {eg} |");
            if let Some((mr, er)) = mr {
                println!("| through a bare relay | {mr:.0} | {er} |");
            }
        }
        _ => {
            eprintln!(
                "usage: mcp_bench upstream [--port-file F] | compare --direct URL --gateway URL --token T [--rate R] [--seconds S] [--concurrency C]"
            );
            std::process::exit(2);
        }
    }
}
