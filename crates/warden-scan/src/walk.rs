//! The file walker: one parallel pass over a tree that runs every per-file analysis
//! (secrets, MCP client configs, agent code, BOM facts) and keeps only the results, so
//! memory does not grow with the tree.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ignore::{WalkBuilder, WalkState};
use serde::Serialize;
use warden_core::{Finding, SourceLocation};

use crate::bom::{self, FileFacts};
use crate::secrets::SecretScanner;
use crate::{code, mcp};

/// How to walk.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Respect `.gitignore`, `.git/info/exclude` and global git ignores (default true).
    pub respect_gitignore: bool,
    /// Files larger than this are skipped and counted (default 8 MiB).
    pub max_file_bytes: u64,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Run the secret rules.
    pub secrets: bool,
    /// Run the MCP config and agent code rules.
    pub config_and_code: bool,
    /// Collect AI-BOM facts.
    pub bom: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            respect_gitignore: true,
            max_file_bytes: 8 * 1024 * 1024,
            threads: 0,
            secrets: true,
            config_and_code: true,
            bom: true,
        }
    }
}

/// Live counters a caller may poll to draw progress.
#[derive(Debug, Default)]
pub struct Progress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
}

/// What a walk saw, besides findings.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ScanStats {
    pub files_scanned: u64,
    pub bytes_scanned: u64,
    pub skipped_binary: u64,
    pub skipped_too_large: u64,
    pub unreadable: u64,
}

/// The result of [`scan_path`].
#[derive(Debug, Default)]
pub struct ScanOutput {
    pub findings: Vec<Finding>,
    pub stats: ScanStats,
    pub facts: Vec<FileFacts>,
}

/// Name of the ignore file read in every directory (gitignore syntax).
pub const WARDENIGNORE: &str = ".wardenignore";

/// Walks `root` (a directory or one file) and analyses every file.
pub fn scan_path(
    root: &Path,
    opts: &ScanOptions,
    scanner: &SecretScanner,
    progress: Option<Arc<Progress>>,
) -> Result<ScanOutput, crate::ScanError> {
    std::fs::metadata(root).map_err(|e| crate::ScanError::Io {
        path: root.to_path_buf(),
        source: e,
    })?;
    let base: PathBuf = if root.is_file() {
        root.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        root.to_path_buf()
    };
    let mut wb = WalkBuilder::new(root);
    wb.hidden(false)
        .git_ignore(opts.respect_gitignore)
        .git_global(opts.respect_gitignore)
        .git_exclude(opts.respect_gitignore)
        .ignore(false)
        .parents(opts.respect_gitignore)
        .require_git(false)
        .follow_links(false)
        .add_custom_ignore_filename(WARDENIGNORE)
        .threads(opts.threads)
        .filter_entry(|e| e.file_name() != ".git");
    let results: Mutex<ScanOutput> = Mutex::new(ScanOutput::default());
    let mut builder = VisitorBuilder {
        base: &base,
        opts,
        scanner,
        progress,
        results: &results,
    };
    wb.build_parallel().visit(&mut builder);
    let mut out = results.into_inner().expect("results lock");
    warden_core::finding::sort_findings(&mut out.findings);
    out.facts.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

struct VisitorBuilder<'s> {
    base: &'s Path,
    opts: &'s ScanOptions,
    scanner: &'s SecretScanner,
    progress: Option<Arc<Progress>>,
    results: &'s Mutex<ScanOutput>,
}

impl<'s> ignore::ParallelVisitorBuilder<'s> for VisitorBuilder<'s> {
    fn build(&mut self) -> Box<dyn ignore::ParallelVisitor + 's> {
        Box::new(Visitor {
            base: self.base,
            opts: self.opts,
            scanner: self.scanner,
            progress: self.progress.clone(),
            results: self.results,
            buf: Vec::new(),
            local: ScanOutput::default(),
        })
    }
}

/// One worker thread's visitor; hands its results over when the walker drops it.
struct Visitor<'s> {
    base: &'s Path,
    opts: &'s ScanOptions,
    scanner: &'s SecretScanner,
    progress: Option<Arc<Progress>>,
    results: &'s Mutex<ScanOutput>,
    buf: Vec<u8>,
    local: ScanOutput,
}

impl ignore::ParallelVisitor for Visitor<'_> {
    fn visit(&mut self, entry: Result<ignore::DirEntry, ignore::Error>) -> WalkState {
        let Ok(entry) = entry else {
            self.local.stats.unreadable += 1;
            return WalkState::Continue;
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            return WalkState::Continue;
        }
        scan_one(
            entry.path(),
            self.base,
            self.opts,
            self.scanner,
            &mut self.buf,
            &mut self.local,
            self.progress.as_deref(),
        );
        WalkState::Continue
    }
}

impl Drop for Visitor<'_> {
    fn drop(&mut self) {
        let local = std::mem::take(&mut self.local);
        let mut r = match self.results.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        r.findings.extend(local.findings);
        r.facts.extend(local.facts);
        let s = &mut r.stats;
        s.files_scanned += local.stats.files_scanned;
        s.bytes_scanned += local.stats.bytes_scanned;
        s.skipped_binary += local.stats.skipped_binary;
        s.skipped_too_large += local.stats.skipped_too_large;
        s.unreadable += local.stats.unreadable;
    }
}

/// How a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Notebook,
    Python,
    Script,
    Other,
}

pub fn file_kind(path: &Path) -> FileKind {
    match path.extension().and_then(|e| e.to_str()) {
        Some("ipynb") => FileKind::Notebook,
        Some("py") => FileKind::Python,
        Some("ts" | "tsx" | "js" | "jsx" | "mjs" | "cjs" | "mts" | "cts") => FileKind::Script,
        _ => FileKind::Other,
    }
}

/// Reads and analyses one file into `out`.
fn scan_one(
    path: &Path,
    base: &Path,
    opts: &ScanOptions,
    scanner: &SecretScanner,
    buf: &mut Vec<u8>,
    out: &mut ScanOutput,
    progress: Option<&Progress>,
) {
    use std::io::Read;
    let rel = path.strip_prefix(base).unwrap_or(path).to_path_buf();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => {
            out.stats.unreadable += 1;
            return;
        }
    };
    if meta.len() > opts.max_file_bytes {
        out.stats.skipped_too_large += 1;
        return;
    }
    buf.clear();
    let read = std::fs::File::open(path).and_then(|mut f| f.read_to_end(buf));
    if read.is_err() {
        out.stats.unreadable += 1;
        return;
    }
    let probe = &buf[..buf.len().min(8192)];
    if memchr_nul(probe) {
        out.stats.skipped_binary += 1;
        return;
    }
    let text: std::borrow::Cow<'_, str> = String::from_utf8_lossy(buf);
    out.stats.files_scanned += 1;
    out.stats.bytes_scanned += buf.len() as u64;
    if let Some(p) = progress {
        p.files.fetch_add(1, Ordering::Relaxed);
        p.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
    }
    let kind = file_kind(path);
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");

    // Segments: (text, first line of the segment in the file, label).
    let segments: Vec<(String, u64, Option<String>)> = if kind == FileKind::Notebook {
        notebook_segments(&text).unwrap_or_else(|| vec![(text.to_string(), 1, None)])
    } else {
        Vec::new()
    };

    if opts.secrets {
        if kind == FileKind::Notebook {
            for (seg, first_line, label) in &segments {
                secret_findings(scanner, seg, &rel, *first_line, label.as_deref(), out);
            }
        } else {
            secret_findings(scanner, &text, &rel, 1, None, out);
        }
    }
    if opts.config_and_code {
        if let Some(client) = mcp::client_for(path) {
            out.findings
                .extend(mcp::check_config(&rel, client, &text, scanner));
        }
        match kind {
            FileKind::Python | FileKind::Script => {
                out.findings.extend(code::check_code(&rel, kind, &text, 1));
            }
            FileKind::Notebook => {
                for (seg, first_line, _) in &segments {
                    out.findings
                        .extend(code::check_code(&rel, FileKind::Python, seg, *first_line));
                }
            }
            FileKind::Other => {}
        }
    }
    if opts.bom {
        let facts = bom::file_facts(
            &rel,
            file_name,
            kind,
            &text,
            scanner_free_mcp(path, &text, &rel),
        );
        if !facts.is_empty() {
            out.facts.push(facts);
        }
    }
}

fn scanner_free_mcp(path: &Path, text: &str, rel: &Path) -> Vec<mcp::McpServer> {
    match mcp::client_for(path) {
        Some(client) => mcp::parse_servers(rel, client, text).unwrap_or_default(),
        None => Vec::new(),
    }
}

fn memchr_nul(b: &[u8]) -> bool {
    b.contains(&0)
}

/// The cells of a Jupyter notebook (sources and text outputs), each with the line in the
/// `.ipynb` file where the cell's `source` starts (approximate: the line of the key).
fn notebook_segments(text: &str) -> Option<Vec<(String, u64, Option<String>)>> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let cells = v.get("cells")?.as_array()?;
    let join = |x: &serde_json::Value| -> String {
        match x {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a.iter().filter_map(|l| l.as_str()).collect(),
            _ => String::new(),
        }
    };
    // Lines of each `"source"` key in order, to place cells in the file.
    let source_lines: Vec<u64> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("\"source\""))
        .map(|(i, _)| i as u64 + 1)
        .collect();
    let mut out = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let line = source_lines.get(i).copied().unwrap_or(1);
        if let Some(src) = cell.get("source") {
            out.push((join(src), line, Some(format!("cell {} source", i + 1))));
        }
        if let Some(outputs) = cell.get("outputs").and_then(|o| o.as_array()) {
            for o in outputs {
                let mut s = String::new();
                if let Some(t) = o.get("text") {
                    s.push_str(&join(t));
                }
                if let Some(d) = o.get("data").and_then(|d| d.as_object()) {
                    for (mime, val) in d {
                        if mime.starts_with("text/") || mime.ends_with("json") {
                            s.push_str(&join(val));
                            s.push('\n');
                        }
                    }
                }
                if !s.is_empty() {
                    out.push((s, line, Some(format!("cell {} output", i + 1))));
                }
            }
        }
    }
    Some(out)
}

/// Byte offset → (1-based line, 1-based column), walking forward from a cursor.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    pos: usize,
    line: u64,
    line_start: usize,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        LineIndex {
            text,
            pos: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// Offsets must be given in ascending order.
    pub(crate) fn at(&mut self, offset: usize) -> (u64, u64) {
        if offset < self.pos {
            *self = LineIndex::new(self.text);
        }
        let bytes = self.text.as_bytes();
        for (i, &b) in bytes[self.pos..offset].iter().enumerate() {
            if b == b'\n' {
                self.line += 1;
                self.line_start = self.pos + i + 1;
            }
        }
        self.pos = offset;
        let col = self.text[self.line_start..offset].chars().count() as u64 + 1;
        (self.line, col)
    }
}

fn secret_findings(
    scanner: &SecretScanner,
    text: &str,
    rel: &Path,
    first_line: u64,
    label: Option<&str>,
    out: &mut ScanOutput,
) {
    let matches = scanner.find(text);
    if matches.is_empty() {
        return;
    }
    let mut idx = LineIndex::new(text);
    for m in matches {
        let (line, col) = idx.at(m.start);
        let mut f = Finding::new(
            &m.rule_id,
            m.severity,
            format!("{} hardcoded", m.description),
        )
        .at(Some(SourceLocation {
            file: rel.to_path_buf(),
            line: line + first_line - 1,
            column: if first_line == 1 { col } else { 0 },
        }))
        .evidence(format!("secret: {}", m.redacted));
        if let Some(l) = label {
            f = f.evidence(format!("in notebook {l}"));
        }
        f = f
            .evidence(format!("fingerprint: {}", m.fingerprint))
            .fix("remove the secret from the file, rotate it at the provider, and load it from the environment or a secret manager at run time")
            .owasp(&["ASI03", "LLM02"]);
        out.findings.push(f);
    }
}

/// The fingerprint a finding carries (`fingerprint: …` evidence line).
pub fn finding_fingerprint(f: &Finding) -> Option<&str> {
    f.evidence
        .iter()
        .find_map(|e| e.strip_prefix("fingerprint: "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_counts_lines_and_columns() {
        let t = "ab\ncd\nef";
        let mut i = LineIndex::new(t);
        assert_eq!(i.at(0), (1, 1));
        assert_eq!(i.at(4), (2, 2));
        assert_eq!(i.at(7), (3, 2));
        assert_eq!(i.at(1), (1, 2));
    }
}
