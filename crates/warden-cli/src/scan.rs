//! `warden scan PATH` (secrets, MCP config and agent code risks, BOM policy) and
//! `warden bom PATH` (CycloneDX 1.6 AI bill of materials).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use warden_core::{Finding, Inventory, Severity, finding};
use warden_scan::baseline::Baseline;
use warden_scan::{Progress, ScanOptions, ScanOutput, SecretScanner, bom, sarif, scan_path};

use crate::output;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Args)]
pub struct ScanArgs {
    /// Directory (or file) to scan.
    #[arg(default_value = ".")]
    path: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: ScanFormat,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, default_value = "high", value_parser = output::parse_severity)]
    fail_on: Severity,
    /// Report only findings whose fingerprint is not in this baseline file.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Write the fingerprints of every current finding to this file (and exit 0).
    #[arg(long)]
    write_baseline: Option<PathBuf>,
    /// Also scan files ignored by .gitignore (.wardenignore still applies).
    #[arg(long)]
    no_ignore: bool,
    /// Also write the CycloneDX 1.6 AI-BOM to this file.
    #[arg(long)]
    bom: Option<PathBuf>,
    /// Inventory directory whose `settings.bom_policy` applies (default: PATH when it
    /// holds a valid inventory).
    #[arg(long)]
    inventory: Option<PathBuf>,
    /// Skip files larger than this many bytes (counted in the stats).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    max_file_size: u64,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Only the secret rules.
    #[arg(long)]
    secrets_only: bool,
    /// Never draw the progress spinner.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args)]
pub struct BomArgs {
    /// Directory to inventory.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Write here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Also scan files ignored by .gitignore.
    #[arg(long)]
    no_ignore: bool,
}

/// Draws a spinner with files/bytes scanned on stderr while a scan runs (TTY only).
struct Spinner {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    fn start(progress: Arc<Progress>, enabled: bool) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        if !enabled || !std::io::stderr().is_terminal() {
            return Spinner { stop, handle: None };
        }
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.enable_steady_tick(Duration::from_millis(120));
            while !s.load(Ordering::Relaxed) {
                let files = progress.files.load(Ordering::Relaxed);
                let bytes = progress.bytes.load(Ordering::Relaxed);
                pb.set_message(format!(
                    "scanned {files} files, {}",
                    indicatif::HumanBytes(bytes)
                ));
                std::thread::park_timeout(Duration::from_millis(100));
            }
            pb.finish_and_clear();
        });
        Spinner {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

fn run_walk(path: &Path, opts: &ScanOptions, progress_enabled: bool) -> anyhow::Result<ScanOutput> {
    let scanner = SecretScanner::new();
    let progress = Arc::new(Progress::default());
    let spinner = Spinner::start(progress.clone(), progress_enabled);
    let out = scan_path(path, opts, &scanner, Some(progress));
    spinner.finish();
    Ok(out?)
}

fn bom_name(path: &Path) -> String {
    std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| path.display().to_string())
}

/// Inventory agents with a `code:` directory inside the scanned tree, relative to it.
fn declared_agents(inv: &Inventory, scanned: &Path) -> Vec<bom::DeclaredAgent> {
    let Ok(root) = std::fs::canonicalize(scanned) else {
        return Vec::new();
    };
    inv.agents
        .values()
        .filter_map(|a| {
            let code = a.code.as_ref()?;
            let abs = std::fs::canonicalize(inv.root.join(code)).ok()?;
            let rel = abs.strip_prefix(&root).ok()?.to_path_buf();
            Some(bom::DeclaredAgent {
                id: a.id.value.clone(),
                dir: rel,
                model: a.model.clone(),
            })
        })
        .collect()
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    if !args.path.exists() {
        eprintln!("error: {}: no such file or directory", args.path.display());
        return Ok(output::EXIT_UNUSABLE());
    }
    let baseline = match &args.baseline {
        Some(p) => match Baseline::load(p) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(output::EXIT_UNUSABLE());
            }
        },
        None => None,
    };
    // The BOM policy: an explicit inventory must load; an implicit one is optional.
    let policy_inventory = match &args.inventory {
        Some(dir) => match Inventory::load(dir) {
            Ok(inv) => Some(inv),
            Err(e) => {
                return Ok(crate::check::report_load_error(
                    &e,
                    if args.format == ScanFormat::Json {
                        output::Format::Json
                    } else {
                        output::Format::Text
                    },
                ));
            }
        },
        None if args.path.is_dir() => Inventory::load(&args.path).ok(),
        None => None,
    };
    let opts = ScanOptions {
        respect_gitignore: !args.no_ignore,
        max_file_bytes: args.max_file_size,
        threads: args.threads,
        secrets: true,
        config_and_code: !args.secrets_only,
        bom: !args.secrets_only || args.bom.is_some(),
    };
    let out = run_walk(
        &args.path,
        &opts,
        !args.no_progress && args.format == ScanFormat::Text,
    )?;
    let mut findings: Vec<Finding> = out.findings;
    let ai_bom = bom::build(&bom_name(&args.path), &out.facts);
    if let Some(policy) = policy_inventory
        .as_ref()
        .and_then(|inv| inv.settings.bom_policy.as_ref())
        .filter(|_| !args.secrets_only)
    {
        findings.extend(bom::check_policy(&ai_bom, policy));
    }
    if let Some(inv) = policy_inventory.as_ref().filter(|_| !args.secrets_only) {
        findings.extend(bom::check_declared_models(
            &ai_bom,
            &declared_agents(inv, &args.path),
        ));
    }
    finding::sort_findings(&mut findings);
    if let Some(p) = &args.bom {
        let doc = bom::to_cyclonedx(&ai_bom);
        std::fs::write(p, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &args.write_baseline {
        Baseline::from_findings(&findings).save(p)?;
        eprintln!("wrote {} fingerprint(s) to {}", findings.len(), p.display());
        return Ok(output::EXIT_OK);
    }
    let baselined = baseline.as_ref().map_or(0, |b| b.filter(&mut findings));
    let stats = &out.stats;
    match args.format {
        ScanFormat::Text => {
            print!("{}", finding::render_text(&findings));
            println!(
                "scanned {} file(s), {} byte(s); skipped {} binary, {} too large, {} unreadable{}",
                stats.files_scanned,
                stats.bytes_scanned,
                stats.skipped_binary,
                stats.skipped_too_large,
                stats.unreadable,
                if baselined > 0 {
                    format!("; {baselined} finding(s) in the baseline not shown")
                } else {
                    String::new()
                }
            );
        }
        ScanFormat::Json => {
            let doc = serde_json::json!({
                "root": args.path,
                "findings": findings,
                "summary": output::summary_json(&findings),
                "stats": stats,
                "baselined": baselined,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        ScanFormat::Sarif => {
            println!(
                "{}",
                serde_json::to_string_pretty(&sarif::to_sarif(&findings))?
            );
        }
    }
    Ok(output::findings_exit(&findings, args.fail_on))
}

pub fn run_bom(args: BomArgs) -> anyhow::Result<ExitCode> {
    if !args.path.is_dir() {
        eprintln!("error: {}: not a directory", args.path.display());
        return Ok(output::EXIT_UNUSABLE());
    }
    let opts = ScanOptions {
        respect_gitignore: !args.no_ignore,
        secrets: false,
        config_and_code: false,
        bom: true,
        ..ScanOptions::default()
    };
    let out = run_walk(&args.path, &opts, false)?;
    let ai_bom = bom::build(&bom_name(&args.path), &out.facts);
    let text = serde_json::to_string_pretty(&bom::to_cyclonedx(&ai_bom))? + "\n";
    match &args.output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(output::EXIT_OK)
}
