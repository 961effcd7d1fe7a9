//! The `veloki` command line: `run`, `parse`, `check`, `gen`. Thin: everything lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use veloki::config::{Config, Overrides};

/// Ships Velero and velero-manager pod logs to Loki with bounded labels and derives Prometheus
/// metrics about backups (which one failed, when, and why).
#[derive(Parser, Debug)]
#[command(name = "veloki", version, about, long_about = None, after_help = "Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.\nEvery flag can also be set with its VELOKI_* variable and in the pipeline file.\nDocs: README.md (configuration, labels, metrics, LogQL cookbook).")]
struct Cli {
    /// Log filter for veloki's own logs (tracing EnvFilter syntax, e.g. info, veloki=debug).
    #[arg(long, global = true, env = "VELOKI_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the pipeline: tail pod logs, push to Loki, serve /metrics (the DaemonSet's command).
    Run(RunArgs),
    /// Parse log lines from files or stdin and print what veloki makes of each (JSON lines).
    Parse(ParseArgs),
    /// Validate a pipeline file; errors name the file, line and field.
    Check(CheckArgs),
    /// Write a realistic kubelet-style pods tree of Velero and velero-manager logs.
    Gen(GenArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Pipeline file (YAML). Without one, built-in defaults are used.
    #[arg(long, short, env = "VELOKI_CONFIG")]
    config: Option<PathBuf>,
    /// The kubelet's pod-log directory (sources.pods_dir).
    #[arg(long, env = "VELOKI_PODS_DIR")]
    pods_dir: Option<PathBuf>,
    /// Loki push URL, e.g. http://loki:3100 (loki.url; the push path is added if missing).
    #[arg(long, env = "VELOKI_LOKI_URL")]
    loki_url: Option<String>,
    /// Positions file: delivered offsets per file (sources.positions).
    #[arg(long, env = "VELOKI_POSITIONS")]
    positions: Option<PathBuf>,
    /// Address for /metrics, /healthz, /ready (metrics.listen), e.g. 0.0.0.0:9080.
    #[arg(long, env = "VELOKI_LISTEN")]
    listen: Option<String>,
    /// Print entries as JSON lines instead of pushing; positions are not saved (run.dry_run).
    /// `--dry-run=false` overrides a pipeline file that sets it.
    #[arg(long, env = "VELOKI_DRY_RUN", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    dry_run: Option<bool>,
    /// Read everything present, deliver it, save positions and exit (run.once).
    /// `--once=false` overrides a pipeline file that sets it.
    #[arg(long, env = "VELOKI_ONCE", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    once: Option<bool>,
    /// After an --once run, print the /metrics exposition to stderr.
    #[arg(long, env = "VELOKI_PRINT_METRICS")]
    print_metrics: bool,
}

#[derive(Args, Debug)]
struct ParseArgs {
    /// Pipeline file (routes and labels are taken from it).
    #[arg(long, short, env = "VELOKI_CONFIG")]
    config: Option<PathBuf>,
    /// Namespace for inputs whose path is not a pod-log path.
    #[arg(long, default_value = "velero")]
    namespace: String,
    /// Container for inputs whose path is not a pod-log path.
    #[arg(long, default_value = "velero")]
    container: String,
    /// Print decided backup/restore outcomes and derived counters at the end.
    #[arg(long)]
    summary: bool,
    /// Files to read (CRI, docker json-file or raw lines; `.gz` is decompressed); `-` is stdin.
    inputs: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// Pipeline file to validate.
    #[arg(long, short, env = "VELOKI_CONFIG")]
    config: PathBuf,
}

#[derive(Args, Debug)]
struct GenArgs {
    /// Root of the pods tree to write.
    #[arg(long)]
    out: PathBuf,
    /// Number of log entries to write.
    #[arg(long, default_value_t = 10_000)]
    lines: u64,
    /// Write at this many lines per second (real time) instead of as fast as possible.
    #[arg(long)]
    rate: Option<u64>,
    /// Seed: the same seed gives the same tree.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Rotate like the kubelet when a file exceeds this many bytes.
    #[arg(long)]
    rotate_bytes: Option<u64>,
    /// Velero minor version whose lifecycle lines to write (11–18); by default picked by seed.
    #[arg(long)]
    velero_minor: Option<u32>,
}

fn load_config(path: Option<&PathBuf>) -> Result<Config, ExitCode> {
    match path {
        Some(p) => Config::load(p).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }),
        None => Ok(Config::default()),
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn cmd_run(a: RunArgs) -> ExitCode {
    let mut cfg = match load_config(a.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let o = Overrides {
        pods_dir: a.pods_dir,
        loki_url: a.loki_url,
        positions: a.positions,
        listen: a.listen,
        dry_run: a.dry_run,
        once: a.once,
    };
    if let Err(e) = cfg.apply(&o) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if !cfg.run.dry_run && cfg.loki.url.is_none() {
        eprintln!("error: no Loki URL: set loki.url in the pipeline file, --loki-url or VELOKI_LOKI_URL (or use --dry-run)");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let metrics = Arc::new(veloki::metrics::Metrics::new());
    let once = cfg.run.once;
    let result = rt.block_on(veloki::pipeline::run(
        cfg,
        metrics.clone(),
        shutdown_signal(),
    ));
    match result {
        Ok(report) => {
            tracing::info!(entries = report.entries, batches = report.batches, "done");
            if a.print_metrics && once {
                eprint!("{}", metrics.encode_text());
            }
            if once && report.undelivered {
                eprintln!(
                    "error: stopped before Loki took every line; run again to deliver the rest"
                );
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// glibc gives every thread its own malloc arena; veloki's threads allocate little, so two arenas
/// keep freed memory reusable across threads and the resident size small.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_tracing(&cli.log);
    match cli.cmd {
        Cmd::Run(a) => cmd_run(a),
        Cmd::Parse(a) => {
            let cfg = match load_config(a.config.as_ref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let opts = veloki::cmd_parse::ParseOptions {
                namespace: a.namespace,
                container: a.container,
                summary: a.summary,
                inputs: a.inputs,
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match veloki::cmd_parse::run(&cfg, &opts, &mut out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Check(a) => match Config::load(&a.config) {
            Ok(c) => {
                println!(
                    "{}: ok ({} namespaces, {} routes, loki: {})",
                    a.config.display(),
                    c.sources.namespaces.len(),
                    c.effective_routes().len(),
                    c.loki
                        .url
                        .as_ref()
                        .map_or("not set".to_string(), |u| u.0.to_string())
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Gen(a) => {
            let mut opts = veloki::gen::GenOptions::new(a.out.clone());
            opts.lines = a.lines;
            opts.seed = a.seed;
            opts.rate = a.rate;
            opts.rotate_bytes = a.rotate_bytes;
            opts.velero_minor = a.velero_minor;
            if a.rate.is_some() {
                // Paced output follows the wall clock so a live veloki sees current times.
                opts.start_unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(opts.start_unix, |d| d.as_secs() as i64);
            }
            match veloki::gen::generate(&opts) {
                Ok(s) => {
                    println!("wrote {} entries under {}", s.lines, a.out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
