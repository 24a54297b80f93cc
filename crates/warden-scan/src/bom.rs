//! The AI bill of materials: AI frameworks and SDKs (exact versions from lockfiles, ranges
//! from manifests; Python, JavaScript/TypeScript, Rust), models referenced in code and
//! config (with file:line evidence), datasets, and MCP servers from client configs, grouped
//! into projects (directories with a manifest). Rendered as CycloneDX 1.6 JSON; checked
//! against the inventory's `settings.bom_policy`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;
use serde_json::{Value, json};
use warden_core::model::BomPolicy;
use warden_core::{Finding, Severity, SourceLocation};

use crate::mcp::McpServer;
use crate::walk::FileKind;

/// A package reference from a manifest or lockfile.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct PackageRef {
    /// `pypi`, `npm` or `cargo`.
    pub ecosystem: &'static str,
    pub name: String,
    /// Exact version (lockfile, or `==` pin).
    pub version: Option<String>,
    /// Version requirement when not exact (`>=0.3`, `^1.2`).
    pub spec: Option<String>,
    pub line: u64,
}

/// A model name seen in a file.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRef {
    pub provider: String,
    pub name: String,
    pub line: u64,
}

/// A dataset loaded by name.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetRef {
    pub name: String,
    pub line: u64,
}

/// What one file contributes to the BOM.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileFacts {
    pub file: PathBuf,
    /// The file is a package manifest or lockfile (its directory is a project).
    pub manifest: bool,
    pub packages: Vec<PackageRef>,
    pub models: Vec<ModelRef>,
    pub datasets: Vec<DatasetRef>,
    pub services: Vec<McpServer>,
}

impl FileFacts {
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
            && self.models.is_empty()
            && self.datasets.is_empty()
            && self.services.is_empty()
    }
}

/// Is this package part of the AI stack (framework, SDK, model runtime, vector store, MCP)?
pub fn is_ai_package(ecosystem: &str, name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('_', "-");
    match ecosystem {
        "pypi" => {
            const EXACT: &[&str] = &[
                "openai",
                "anthropic",
                "openai-agents",
                "langgraph",
                "langchain",
                "langsmith",
                "crewai",
                "crewai-tools",
                "autogen",
                "pyautogen",
                "ag2",
                "transformers",
                "torch",
                "tensorflow",
                "huggingface-hub",
                "datasets",
                "sentence-transformers",
                "google-generativeai",
                "google-genai",
                "cohere",
                "mistralai",
                "groq",
                "replicate",
                "pinecone",
                "pinecone-client",
                "chromadb",
                "weaviate-client",
                "qdrant-client",
                "mcp",
                "fastmcp",
                "tiktoken",
                "litellm",
                "dspy",
                "dspy-ai",
                "smolagents",
                "pydantic-ai",
                "semantic-kernel",
                "instructor",
                "haystack-ai",
                "guardrails-ai",
                "accelerate",
                "peft",
                "vllm",
                "ollama",
                "safetensors",
                "llama-index",
                "boto3-bedrock",
                "vertexai",
                "google-cloud-aiplatform",
            ];
            EXACT.contains(&n.as_str())
                || [
                    "langchain-",
                    "langgraph-",
                    "llama-index-",
                    "autogen-",
                    "openai-agents-",
                    "pydantic-ai-",
                ]
                .iter()
                .any(|p| n.starts_with(p))
        }
        "npm" => {
            const EXACT: &[&str] = &[
                "openai",
                "ai",
                "langchain",
                "cohere-ai",
                "groq-sdk",
                "replicate",
                "llamaindex",
                "mastra",
                "@google/generative-ai",
                "@google/genai",
                "@mistralai/mistralai",
                "@pinecone-database/pinecone",
                "@openai/agents",
                "chromadb",
                "ollama",
            ];
            EXACT.contains(&n.as_str())
                || [
                    "@anthropic-ai/",
                    "@ai-sdk/",
                    "@langchain/",
                    "@modelcontextprotocol/",
                    "@huggingface/",
                    "@mastra/",
                    "@openai/",
                ]
                .iter()
                .any(|p| n.starts_with(p))
        }
        "cargo" => matches!(
            n.as_str(),
            "async-openai"
                | "rmcp"
                | "candle-core"
                | "candle-transformers"
                | "tokenizers"
                | "ort"
                | "rig-core"
                | "ollama-rs"
                | "openai-api-rs"
                | "genai"
                | "llm"
                | "mistralrs"
                | "anthropic-sdk"
        ),
        _ => false,
    }
}

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("built-in BOM pattern compiles"))
}

fn model_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r#"(?:^|[^\w.\-])((?:claude-(?:opus|sonnet|haiku|instant|[234])[\w.\-]*)|(?:gpt-(?:3\.5|4|5)[\w.\-]*)|(?:o[134](?:-mini|-pro|-preview)?)|(?:gemini-(?:[\d.]+|pro|flash|ultra)[\w.\-]*)|(?:(?:open-)?mistral-(?:large|medium|small|tiny|nemo)[\w.\-]*|codestral[\w.\-]*|mixtral-[\w.\-]+)|(?:command-(?:r|a)[\w.\-]*)|(?:llama-?[234][\w.\-]*)|(?:text-embedding-[\w.\-]+))(?:[^\w.\-]|$)"#,
    )
}

fn provider_of(model: &str) -> &'static str {
    if model.starts_with("claude") {
        "anthropic"
    } else if model.starts_with("gpt")
        || model.starts_with('o')
        || model.starts_with("text-embedding")
    {
        "openai"
    } else if model.starts_with("gemini") {
        "google"
    } else if model.starts_with("command") {
        "cohere"
    } else if model.starts_with("llama") {
        "meta"
    } else {
        "mistral"
    }
}

/// Extracts BOM facts from one file.
pub fn file_facts(
    rel: &Path,
    file_name: &str,
    kind: FileKind,
    text: &str,
    services: Vec<McpServer>,
) -> FileFacts {
    let mut f = FileFacts {
        file: rel.to_path_buf(),
        services,
        ..FileFacts::default()
    };
    let lower = file_name.to_ascii_lowercase();
    let is_manifest = match lower.as_str() {
        "package-lock.json" | "npm-shrinkwrap.json" => {
            npm_lock(text, &mut f.packages);
            true
        }
        "package.json" => {
            package_json(text, &mut f.packages);
            true
        }
        "poetry.lock" | "uv.lock" | "pdm.lock" => {
            toml_lock(text, "pypi", &mut f.packages);
            true
        }
        "cargo.lock" => {
            toml_lock(text, "cargo", &mut f.packages);
            true
        }
        "cargo.toml" => {
            cargo_toml(text, &mut f.packages);
            true
        }
        "pyproject.toml" => {
            pyproject(text, &mut f.packages);
            true
        }
        "pipfile.lock" => {
            pipfile_lock(text, &mut f.packages);
            true
        }
        n if n.starts_with("requirements") && n.ends_with(".txt") => {
            requirements(text, &mut f.packages);
            true
        }
        _ => false,
    };
    f.manifest = is_manifest;
    f.packages.retain(|p| is_ai_package(p.ecosystem, &p.name));
    let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or("");
    let model_file = !is_manifest
        && (kind != FileKind::Other
            || matches!(
                ext,
                "yaml" | "yml" | "json" | "toml" | "env" | "cfg" | "ini"
            )
            || file_name.starts_with(".env"));
    if model_file && text.len() <= 4 * 1024 * 1024 {
        for (i, line) in text.lines().enumerate() {
            for caps in model_re().captures_iter(line) {
                let m = caps.get(1).expect("group");
                let name = m.as_str().trim_end_matches(['.', '-']);
                if name.starts_with('o') {
                    // Bare o1/o3/o4 only as a quoted string value.
                    let before = line[..m.start()].chars().last();
                    if !matches!(before, Some('"' | '\'' | '/')) {
                        continue;
                    }
                }
                // One occurrence per model per file (its first line) keeps the BOM's
                // size proportional to files, not to lines.
                if f.models.iter().any(|m| m.name == name) {
                    continue;
                }
                f.models.push(ModelRef {
                    provider: provider_of(name).to_string(),
                    name: name.to_string(),
                    line: i as u64 + 1,
                });
            }
            if line.contains("load_dataset") {
                static D: OnceLock<Regex> = OnceLock::new();
                for c in re(&D, r#"load_dataset\(\s*["']([^"']+)["']"#).captures_iter(line) {
                    f.datasets.push(DatasetRef {
                        name: c[1].to_string(),
                        line: i as u64 + 1,
                    });
                }
            }
        }
    }
    f
}

fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i as u64 + 1)
}

fn requirements(text: &str, out: &mut Vec<PackageRef>) {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &R,
        r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)(?:\[[^\]]*\])?\s*(===|==|>=|~=|<=|>|<|!=)?\s*([^;#\s,]*)",
    );
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with('-') {
            continue;
        }
        if let Some(c) = r.captures(line) {
            push_pep440(
                out,
                &c[1],
                c.get(2).map(|m| m.as_str()),
                c.get(3).map_or("", |m| m.as_str()),
                i as u64 + 1,
            );
        }
    }
}

fn push_pep440(out: &mut Vec<PackageRef>, name: &str, op: Option<&str>, ver: &str, line: u64) {
    let (version, spec) = match op {
        Some("==" | "===") if !ver.contains('*') => (Some(ver.to_string()), None),
        Some(op) => (None, Some(format!("{op}{ver}"))),
        None => (None, None),
    };
    out.push(PackageRef {
        ecosystem: "pypi",
        name: name.to_ascii_lowercase().replace('_', "-"),
        version,
        spec,
        line,
    });
}

fn pyproject(text: &str, out: &mut Vec<PackageRef>) {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &R,
        r#"["']([A-Za-z0-9][A-Za-z0-9._\-]*)(?:\[[^\]]*\])?\s*(===|==|>=|~=|<=|>|<|!=)\s*([^"';,\s]+)[^"']*["']"#,
    );
    for (i, line) in text.lines().enumerate() {
        for c in r.captures_iter(line) {
            push_pep440(out, &c[1], Some(&c[2]), &c[3], i as u64 + 1);
        }
    }
}

fn toml_lock(text: &str, eco: &'static str, out: &mut Vec<PackageRef>) {
    let mut name: Option<(String, u64)> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t == "[[package]]" {
            name = None;
        } else if let Some(v) = t.strip_prefix("name = ") {
            name = Some((v.trim_matches('"').to_string(), i as u64 + 1));
        } else if let Some(v) = t.strip_prefix("version = ")
            && let Some((n, l)) = name.take()
        {
            out.push(PackageRef {
                ecosystem: eco,
                name: if eco == "pypi" {
                    n.to_ascii_lowercase().replace('_', "-")
                } else {
                    n
                },
                version: Some(v.trim_matches('"').to_string()),
                spec: None,
                line: l,
            });
        }
    }
}

fn cargo_toml(text: &str, out: &mut Vec<PackageRef>) {
    let mut in_deps = false;
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &R,
        r#"^([A-Za-z0-9_\-]+)\s*=\s*(?:"([^"]+)"|\{[^}]*version\s*=\s*"([^"]+)")"#,
    );
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_deps = t.ends_with("dependencies]");
            continue;
        }
        if in_deps && let Some(c) = r.captures(t) {
            let v = c.get(2).or(c.get(3)).map(|m| m.as_str().to_string());
            out.push(PackageRef {
                ecosystem: "cargo",
                name: c[1].to_string(),
                version: v
                    .as_ref()
                    .filter(|v| v.starts_with('='))
                    .map(|v| v.trim_start_matches('=').to_string()),
                spec: v.filter(|v| !v.starts_with('=')),
                line: i as u64 + 1,
            });
        }
    }
}

fn package_json(text: &str, out: &mut Vec<PackageRef>) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    for section in [
        "dependencies",
        "devDependencies",
        "peerDependencies",
        "optionalDependencies",
    ] {
        if let Some(deps) = v.get(section).and_then(|d| d.as_object()) {
            for (name, spec) in deps {
                let spec = spec.as_str().unwrap_or("").to_string();
                let exact = spec.chars().next().is_some_and(|c| c.is_ascii_digit());
                out.push(PackageRef {
                    ecosystem: "npm",
                    name: name.clone(),
                    version: exact.then(|| spec.clone()),
                    spec: (!exact).then_some(spec),
                    line: line_of(text, &format!("\"{name}\"")),
                });
            }
        }
    }
}

fn npm_lock(text: &str, out: &mut Vec<PackageRef>) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if let Some(pkgs) = v.get("packages").and_then(|p| p.as_object()) {
        for (path, info) in pkgs {
            let Some(idx) = path.rfind("node_modules/") else {
                continue;
            };
            let name = &path[idx + "node_modules/".len()..];
            if !is_ai_package("npm", name) {
                continue;
            }
            out.push(PackageRef {
                ecosystem: "npm",
                name: name.to_string(),
                version: info
                    .get("version")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                spec: None,
                line: line_of(text, &format!("\"{path}\"")),
            });
        }
    }
}

fn pipfile_lock(text: &str, out: &mut Vec<PackageRef>) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    for section in ["default", "develop"] {
        if let Some(deps) = v.get(section).and_then(|d| d.as_object()) {
            for (name, info) in deps {
                let ver = info.get("version").and_then(|v| v.as_str()).unwrap_or("");
                push_pep440(
                    out,
                    name,
                    Some("=="),
                    ver.trim_start_matches("=="),
                    line_of(text, &format!("\"{name}\"")),
                );
            }
        }
    }
}

/// One package in the BOM (merged over files).
#[derive(Debug, Clone, Serialize)]
pub struct BomPackage {
    pub ecosystem: &'static str,
    pub name: String,
    pub version: Option<String>,
    pub spec: Option<String>,
    pub occurrences: Vec<(PathBuf, u64)>,
}

impl BomPackage {
    pub fn purl(&self) -> String {
        let name = if self.ecosystem == "npm" {
            self.name.replace('@', "%40")
        } else {
            self.name.clone()
        };
        match &self.version {
            Some(v) => format!("pkg:{}/{}@{}", self.ecosystem, name, v),
            None => format!("pkg:{}/{}", self.ecosystem, name),
        }
    }
}

/// One model in the BOM.
#[derive(Debug, Clone, Serialize)]
pub struct BomModel {
    pub provider: String,
    pub name: String,
    pub occurrences: Vec<(PathBuf, u64)>,
}

/// A project: a directory holding a manifest, and what it depends on.
#[derive(Debug, Clone, Serialize)]
pub struct BomProject {
    pub dir: PathBuf,
    pub packages: BTreeSet<String>,
    pub models: BTreeSet<String>,
    pub datasets: BTreeSet<String>,
    pub services: BTreeSet<String>,
}

/// The AI bill of materials of a tree.
#[derive(Debug, Clone, Serialize)]
pub struct AiBom {
    pub name: String,
    pub packages: Vec<BomPackage>,
    pub models: Vec<BomModel>,
    pub datasets: Vec<(String, Vec<(PathBuf, u64)>)>,
    pub services: Vec<McpServer>,
    pub projects: Vec<BomProject>,
}

fn project_of(dirs: &[PathBuf], file: &Path) -> Option<PathBuf> {
    dirs.iter()
        .filter(|d| file.starts_with(d))
        .max_by_key(|d| d.components().count())
        .cloned()
}

pub fn model_ref(provider: &str, name: &str) -> String {
    format!("model:{provider}/{name}")
}

pub fn service_ref(s: &McpServer) -> String {
    format!("mcp:{}:{}:{}", s.client.as_str(), s.file.display(), s.name)
}

/// Merges per-file facts into a BOM.
pub fn build(name: &str, facts: &[FileFacts]) -> AiBom {
    let mut dirs: Vec<PathBuf> = facts
        .iter()
        .filter(|f| f.manifest && !f.packages.is_empty() || !f.services.is_empty())
        .map(|f| f.file.parent().map(Path::to_path_buf).unwrap_or_default())
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut projects: BTreeMap<PathBuf, BomProject> = dirs
        .iter()
        .map(|d| {
            (
                d.clone(),
                BomProject {
                    dir: d.clone(),
                    packages: BTreeSet::new(),
                    models: BTreeSet::new(),
                    datasets: BTreeSet::new(),
                    services: BTreeSet::new(),
                },
            )
        })
        .collect();
    // Packages: key (ecosystem, name, project); a lockfile's exact version wins over a range.
    let mut pkgs: BTreeMap<(&'static str, String, String), BomPackage> = BTreeMap::new();
    let mut pkg_project: BTreeMap<(&'static str, String, String), PathBuf> = BTreeMap::new();
    let mut models: BTreeMap<(String, String), BomModel> = BTreeMap::new();
    let mut datasets: BTreeMap<String, Vec<(PathBuf, u64)>> = BTreeMap::new();
    let mut services = Vec::new();
    for f in facts {
        let proj = project_of(&dirs, &f.file);
        for p in &f.packages {
            let pdir = proj.clone().unwrap_or_default();
            let key = (p.ecosystem, p.name.clone(), pdir.display().to_string());
            let e = pkgs.entry(key.clone()).or_insert_with(|| BomPackage {
                ecosystem: p.ecosystem,
                name: p.name.clone(),
                version: None,
                spec: None,
                occurrences: Vec::new(),
            });
            if p.version.is_some() {
                e.version = p.version.clone();
            }
            if p.spec.is_some() && e.spec.is_none() {
                e.spec = p.spec.clone();
            }
            e.occurrences.push((f.file.clone(), p.line));
            pkg_project.insert(key, pdir);
        }
        for m in &f.models {
            let e = models
                .entry((m.provider.clone(), m.name.clone()))
                .or_insert_with(|| BomModel {
                    provider: m.provider.clone(),
                    name: m.name.clone(),
                    occurrences: Vec::new(),
                });
            e.occurrences.push((f.file.clone(), m.line));
            if let Some(p) = proj.as_ref().and_then(|p| projects.get_mut(p)) {
                p.models.insert(model_ref(&m.provider, &m.name));
            }
        }
        for d in &f.datasets {
            datasets
                .entry(d.name.clone())
                .or_default()
                .push((f.file.clone(), d.line));
            if let Some(p) = proj.as_ref().and_then(|p| projects.get_mut(p)) {
                p.datasets.insert(format!("data:{}", d.name));
            }
        }
        for s in &f.services {
            if let Some(p) = proj.as_ref().and_then(|p| projects.get_mut(p)) {
                p.services.insert(service_ref(s));
            }
            services.push(s.clone());
        }
    }
    let mut packages = Vec::new();
    for (key, p) in pkgs {
        if let Some(proj) = pkg_project.get(&key).and_then(|d| projects.get_mut(d)) {
            proj.packages.insert(p.purl());
        }
        packages.push(p);
    }
    AiBom {
        name: name.to_string(),
        packages,
        models: models.into_values().collect(),
        datasets: datasets.into_iter().collect(),
        services,
        projects: projects.into_values().collect(),
    }
}

fn occurrences(o: &[(PathBuf, u64)]) -> Value {
    let mut seen = BTreeSet::new();
    let items: Vec<Value> = o
        .iter()
        .filter(|x| seen.insert((*x).clone()))
        .map(|(f, l)| {
            let mut v = json!({ "location": f.display().to_string().replace('\\', "/") });
            if *l > 0 {
                v["line"] = json!(*l);
            }
            v
        })
        .collect();
    json!({ "occurrences": items })
}

fn project_ref(dir: &Path) -> String {
    let d = dir.display().to_string();
    if d.is_empty() {
        "project:.".to_string()
    } else {
        format!("project:{d}")
    }
}

/// Renders the BOM as CycloneDX 1.6 JSON.
pub fn to_cyclonedx(bom: &AiBom) -> Value {
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    let mut seen_refs = BTreeSet::new();
    for proj in &bom.projects {
        components.push(json!({
            "type": "application",
            "bom-ref": project_ref(&proj.dir),
            "name": if proj.dir.as_os_str().is_empty() { bom.name.clone() } else { proj.dir.display().to_string() },
            "properties": [{ "name": "warden:role", "value": "agent-project" }],
        }));
    }
    for p in &bom.packages {
        let r = p.purl();
        if !seen_refs.insert(r.clone()) {
            continue;
        }
        let mut c = json!({
            "type": "library",
            "bom-ref": r,
            "name": p.name,
            "purl": r,
            "evidence": occurrences(&p.occurrences),
        });
        if let Some(v) = &p.version {
            c["version"] = json!(v);
        }
        if let Some(s) = &p.spec {
            c["properties"] = json!([{ "name": "warden:version-requirement", "value": s }]);
        }
        components.push(c);
    }
    for m in &bom.models {
        components.push(json!({
            "type": "machine-learning-model",
            "bom-ref": model_ref(&m.provider, &m.name),
            "name": m.name,
            "publisher": m.provider,
            "properties": [
                { "name": "warden:provider", "value": m.provider },
                { "name": "warden:hosting", "value": "provider-api" },
            ],
            "evidence": occurrences(&m.occurrences),
        }));
    }
    for (name, occ) in &bom.datasets {
        components.push(json!({
            "type": "data",
            "bom-ref": format!("data:{name}"),
            "name": name,
            "data": [{ "type": "dataset", "name": name }],
            "evidence": occurrences(occ),
        }));
    }
    let mut services = Vec::new();
    for s in &bom.services {
        let remote = s.url.is_some();
        let mut v = json!({
            "bom-ref": service_ref(s),
            "name": s.name,
            "trustZone": if remote { "remote" } else { "local-process" },
            "x-trust-boundary": remote,
            "properties": [
                { "name": "warden:mcp-client", "value": s.client.as_str() },
                { "name": "warden:transport", "value": s.transport },
                { "name": "warden:config", "value": format!("{}:{}", s.file.display(), s.line) },
            ],
        });
        if let Some(u) = &s.url {
            v["endpoints"] = json!([u]);
        }
        if let Some(c) = &s.command {
            v["properties"]
                .as_array_mut()
                .expect("array")
                .push(json!({ "name": "warden:command", "value": format!("{} {}", c, s.args.join(" ")).trim() }));
        }
        services.push(v);
    }
    let root_ref = "root".to_string();
    dependencies.push(json!({
        "ref": root_ref,
        "dependsOn": bom.projects.iter().map(|p| project_ref(&p.dir)).collect::<Vec<_>>(),
    }));
    for p in &bom.projects {
        let mut deps: Vec<String> = Vec::new();
        deps.extend(p.packages.iter().cloned());
        deps.extend(p.models.iter().cloned());
        deps.extend(p.datasets.iter().cloned());
        deps.extend(p.services.iter().cloned());
        dependencies.push(json!({ "ref": project_ref(&p.dir), "dependsOn": deps }));
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "tools": { "components": [{ "type": "application", "name": "warden", "version": env!("CARGO_PKG_VERSION") }] },
            "component": { "type": "application", "bom-ref": root_ref, "name": bom.name },
        },
        "components": components,
        "services": services,
        "dependencies": dependencies,
    })
}

/// Deviations from the inventory's BOM policy.
pub fn check_policy(bom: &AiBom, policy: &BomPolicy) -> Vec<Finding> {
    let mut out = Vec::new();
    let first = |o: &[(PathBuf, u64)]| {
        o.first().map(|(f, l)| SourceLocation {
            file: f.clone(),
            line: *l,
            column: 0,
        })
    };
    for m in &bom.models {
        let full = format!("{}/{}", m.provider, m.name);
        if !policy.allowed_providers.is_empty()
            && !policy
                .allowed_providers
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&m.provider))
        {
            out.push(
                Finding::new(
                    "scan.bom.model-provider-not-allowed",
                    Severity::High,
                    format!("model `{full}` is from a provider the BOM policy does not allow"),
                )
                .at(first(&m.occurrences))
                .subject(&full)
                .evidence(format!("allowed providers: {}", policy.allowed_providers.join(", ")))
                .fix("use a model from an allowed provider or extend settings.bom_policy.allowed_providers after review")
                .owasp(&["ASI04", "LLM03"]),
            );
        } else if !policy.allowed_models.is_empty()
            && !policy
                .allowed_models
                .iter()
                .any(|a| a == &m.name || a == &full)
        {
            out.push(
                Finding::new(
                    "scan.bom.model-not-allowed",
                    Severity::Medium,
                    format!("model `{full}` is not in the BOM policy's allowed models"),
                )
                .at(first(&m.occurrences))
                .subject(&full)
                .evidence(format!("allowed models: {}", policy.allowed_models.join(", ")))
                .fix("use an allowed model or extend settings.bom_policy.allowed_models after review")
                .owasp(&["ASI04", "LLM03"]),
            );
        }
    }
    for d in &policy.denied_packages {
        let (dname, range) = split_denied(d);
        for p in &bom.packages {
            if !p.name.eq_ignore_ascii_case(dname) {
                continue;
            }
            let hit = match (range, &p.version) {
                (None, _) => Some(true),
                (Some(r), Some(v)) => version_matches(r, v),
                (Some(_), None) => None,
            };
            let (sev, why) = match hit {
                Some(true) => (Severity::High, "is denied by the BOM policy"),
                Some(false) => continue,
                None => (
                    Severity::Low,
                    "has no locked version, so the BOM policy's denied range cannot be ruled out",
                ),
            };
            out.push(
                Finding::new(
                    "scan.bom.denied-package",
                    sev,
                    format!(
                        "package `{}{}` {why}",
                        p.name,
                        p.version
                            .as_deref()
                            .map(|v| format!("@{v}"))
                            .unwrap_or_default()
                    ),
                )
                .at(first(&p.occurrences))
                .subject(p.purl())
                .evidence(format!("denied: {d}"))
                .fix("upgrade or replace the package, and lock an exact version")
                .owasp(&["ASI04", "LLM03"]),
            );
        }
    }
    out
}

/// An inventory agent whose code lives under `dir` (relative to the scanned root).
#[derive(Debug, Clone)]
pub struct DeclaredAgent {
    pub id: String,
    pub dir: PathBuf,
    /// The inventory's `model`, `provider/name` or `name`.
    pub model: Option<String>,
}

/// Models used in an agent's code that its inventory entry does not declare
/// (`scan.bom.undeclared-model`): the inventory, the gateway's policies and the graph all
/// reason about the declared model, so a different one in code is drift.
pub fn check_declared_models(bom: &AiBom, agents: &[DeclaredAgent]) -> Vec<Finding> {
    let mut out = Vec::new();
    for a in agents {
        let Some(declared) = a.model.as_deref() else {
            continue;
        };
        let declared_name = declared.rsplit('/').next().unwrap_or(declared);
        for m in &bom.models {
            let here: Vec<&(PathBuf, u64)> = m
                .occurrences
                .iter()
                .filter(|(f, _)| f.starts_with(&a.dir))
                .collect();
            let Some((file, line)) = here.first().map(|x| (*x).clone()) else {
                continue;
            };
            if m.name == declared_name || m.name.starts_with(&format!("{declared_name}-20")) {
                continue;
            }
            out.push(
                Finding::new(
                    "scan.bom.undeclared-model",
                    Severity::Medium,
                    format!(
                        "agent `{}` code uses model `{}/{}` but the inventory declares `{declared}`",
                        a.id, m.provider, m.name
                    ),
                )
                .at(Some(SourceLocation { file, line, column: 0 }))
                .subject(&a.id)
                .evidence(format!("{} occurrence(s) under {}", here.len(), a.dir.display()))
                .fix("declare the model the agent really uses in the inventory (or change the code), so policies and the graph see it")
                .owasp(&["ASI04", "ASI10"]),
            );
        }
    }
    out
}

/// `name@<range>` → (name, range); scoped npm names keep their leading `@`.
fn split_denied(d: &str) -> (&str, Option<&str>) {
    let (scope, rest) = if let Some(r) = d.strip_prefix('@') {
        ("@", r)
    } else {
        ("", d)
    };
    match rest.split_once('@') {
        Some((n, r)) => (&d[..scope.len() + n.len()], Some(r)),
        None => (d, None),
    }
}

/// Whether `version` satisfies a semver requirement; lenient with short versions
/// (`0.2` → `0.2.0`). `None` when either cannot be parsed.
fn version_matches(req: &str, version: &str) -> Option<bool> {
    let req = semver::VersionReq::parse(req).ok()?;
    let mut parts: Vec<&str> = version.split('.').collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    let v = semver::Version::parse(&parts[..3].join(".")).ok()?;
    Some(req.matches(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requirements_and_locks() {
        let f = file_facts(
            Path::new("a/requirements.txt"),
            "requirements.txt",
            FileKind::Other,
            "langgraph==0.4.8\nanthropic>=0.50\nrequests==2.32.3\n# comment\n",
            vec![],
        );
        assert!(f.manifest);
        assert_eq!(f.packages.len(), 2);
        assert_eq!(f.packages[0].version.as_deref(), Some("0.4.8"));
        assert_eq!(f.packages[1].spec.as_deref(), Some(">=0.50"));
    }

    #[test]
    fn finds_models_with_lines() {
        let f = file_facts(
            Path::new("a/agent.py"),
            "agent.py",
            FileKind::Python,
            "x = 1\nllm = ChatAnthropic(model=\"claude-sonnet-4-5\")\nm = 'o3'\nfoo = o3 + 1\n",
            vec![],
        );
        let names: Vec<_> = f.models.iter().map(|m| (m.name.as_str(), m.line)).collect();
        assert_eq!(names, vec![("claude-sonnet-4-5", 2), ("o3", 3)]);
    }

    #[test]
    fn declared_model_drift() {
        let f = file_facts(
            Path::new("agents/a/main.py"),
            "main.py",
            FileKind::Python,
            "m = \"claude-sonnet-4-5-20250929\"\nn = \"gpt-4o\"\n",
            vec![],
        );
        let g = file_facts(
            Path::new("agents/b/main.py"),
            "main.py",
            FileKind::Python,
            "m = \"gpt-4o\"\n",
            vec![],
        );
        let b = build("t", &[f, g]);
        let agents = vec![DeclaredAgent {
            id: "a".into(),
            dir: PathBuf::from("agents/a"),
            model: Some("anthropic/claude-sonnet-4-5".into()),
        }];
        let found = check_declared_models(&b, &agents);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].message.contains("openai/gpt-4o"));
        assert_eq!(found[0].location.as_ref().unwrap().line, 2);
    }

    #[test]
    fn denied_ranges() {
        assert_eq!(
            split_denied("langchain@<0.2.0"),
            ("langchain", Some("<0.2.0"))
        );
        assert_eq!(split_denied("@scope/x@^1"), ("@scope/x", Some("^1")));
        assert_eq!(version_matches("<0.2.0", "0.1.20"), Some(true));
        assert_eq!(version_matches("<0.2.0", "0.3"), Some(false));
    }
}
