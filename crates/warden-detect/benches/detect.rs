//! Detector speed: a 2 KB tool result (target ≤ 50 µs) and a 1 MB result (target ≥ 100 MB/s),
//! one thread. Run: `cargo bench -p warden-detect --bench detect`.

use divan::counter::BytesCount;
use warden_detect::{InjectionDetector, PoisonDetector};

fn main() {
    divan::main();
}

/// Realistic mixed content: an email thread, a JSON API response and a code snippet.
fn corpus(target: usize) -> String {
    let parts = [
        "From: Dana Whitfield <dana@northwind.example>\nSubject: Re: shipment 4471 delayed\n\nHi team,\nThe carrier confirmed the pallet left the warehouse on Tuesday. Tracking shows it in Rotterdam; expected delivery is Friday before noon. Please update the customer and ask whether a partial delivery works for them.\nThanks, Dana\n",
        "{\"id\": 88213, \"status\": \"open\", \"priority\": \"high\", \"customer\": {\"name\": \"Lindqvist AB\", \"tier\": \"gold\"}, \"items\": [{\"sku\": \"KX-220\", \"qty\": 4, \"price\": 129.5}, {\"sku\": \"KX-310\", \"qty\": 1, \"price\": 899.0}], \"notes\": \"Customer asked for invoice in EUR.\"}\n",
        "fn parse_header(line: &str) -> Option<(&str, &str)> {\n    let (k, v) = line.split_once(':')?;\n    Some((k.trim(), v.trim()))\n}\n// Returns None for malformed lines; callers skip them.\n",
        "<div class=\"product\"><h2>Trail runner 3</h2><p>Lightweight shoe with a grippy outsole, 8 mm drop, recycled mesh upper. Ships in 2-3 business days. Free returns within 30 days.</p></div>\n",
    ];
    let mut s = String::new();
    let mut i = 0;
    while s.len() < target {
        s.push_str(parts[i % parts.len()]);
        i += 1;
    }
    s.truncate(target);
    while !s.is_char_boundary(s.len()) {
        s.pop();
    }
    s
}

#[divan::bench]
fn inject_2kb(bencher: divan::Bencher) {
    let d = InjectionDetector::default();
    let text = corpus(2048);
    bencher
        .counter(BytesCount::of_str(&text))
        .bench(|| d.inspect(divan::black_box(&text)));
}

#[divan::bench]
fn inject_1mb(bencher: divan::Bencher) {
    let d = InjectionDetector::default();
    let text = corpus(1 << 20);
    bencher
        .counter(BytesCount::of_str(&text))
        .bench(|| d.inspect(divan::black_box(&text)));
}

#[divan::bench]
fn poison_tool_definition(bencher: divan::Bencher) {
    let d = PoisonDetector::default();
    let tool = serde_json::json!({"name": "read_text_file", "description": "Read the complete contents of a file from the file system as text. Handles various text encodings and provides detailed error messages if the file cannot be read. Use this tool when you need to examine the contents of a single file.",
        "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}, "head": {"type": "number", "description": "If provided, returns only the first N lines of the file"}}, "required": ["path"]}});
    bencher.bench(|| d.inspect_tool(divan::black_box(&tool)));
}

/// The gateway's path for every `tools/call` answer: a small result inspected part by part
/// (the fixed cost per call, paid on the answer's way back to the agent).
#[divan::bench]
fn inject_small_result(bencher: divan::Bencher) {
    let d = InjectionDetector::default();
    let result = serde_json::json!({"content": [{"type": "text", "text": "ok"}]});
    bencher.bench(|| d.inspect_payload(divan::black_box(&result)));
}
