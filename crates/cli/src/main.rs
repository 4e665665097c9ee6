//! `mcp-forensics`: join what agents asked their MCP tools to do with what
//! the mail system really delivered.
//!
//! Exit codes: 0 ok, 1 findings at or above `--fail-on` (or `verify` found
//! changed sources), 2 usage or input error, 3 `ingest` committed but some
//! sources could not be read (listed in the summary and `_ingest_log`).

mod account;
mod progress;
mod record;
mod stats;
mod style;
mod verify;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcpf_detect::output::{self, OutputFormat};
use mcpf_detect::config::RuleSetup;
use mcpf_detect::{explain, fixtures, load_rules, ops, DetectConfig, DetectOptions, Rule, Severity};
use mcpf_formats::time::Zone;
use mcpf_formats::Format;
use mcpf_lake::{IngestOptions, IngestSummary, Lake};

#[derive(Parser)]
#[command(name = "mcp-forensics", version, about = "Join MCP traces (what agents asked) with mail logs (what left) and detect the difference.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Write results to FILE instead of standard output (progress, summaries and errors stay on stderr).
    #[arg(short, long, global = true, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Color terminal output: auto (a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_enum, default_value_t = style::ColorChoice::Auto, value_name = "WHEN")]
    color: style::ColorChoice,
    /// Threads for reading and querying (default: 2 for I/O, one query partition per core).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// No progress display and no ingest summary (errors are still printed).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Run the queries of detect, sql, timeline, stats and tables on a Ballista cluster: ballista://HOST:PORT of its scheduler (`mcp-forensics cluster scheduler`). Ingest and the _findings record still run here.
    #[arg(long, global = true, value_name = "URL", env = "MCPF_ENGINE")]
    engine: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Parse log files/directories (also .gz, .zst) into the lake.
    Ingest {
        /// Lake directory (created if missing).
        #[arg(long)]
        lake: PathBuf,
        /// Force a parser by its name (default: detected per file).
        #[arg(long, value_parser = format_parser(), value_name = "FORMAT")]
        format: Option<Format>,
        /// Year of the first line of year-less syslog timestamps (default: from the file's time).
        #[arg(long)]
        year: Option<i32>,
        /// Zone of timestamps written without offset, such as syslog's
        /// `Jan  5 10:00:00`: an IANA name (Europe/Berlin, with its DST
        /// rules), UTC, or an offset (+02:00). Default: read as UTC. Stamps
        /// with an offset are never changed. Recorded per source in
        /// `_ingest_log.stamp_zone`.
        #[arg(long, value_name = "ZONE")]
        tz: Option<Zone>,
        /// Print one line per source.
        #[arg(short, long)]
        verbose: bool,
        /// Read the given sources again although they were ingested (after a wrong --year, --tz or --format): the rows of their earlier ingest are removed in the same run, recorded in _ingest_log.
        #[arg(long)]
        force: bool,
        /// Progress as JSON lines on stderr (one a second), and the summary as one JSON object on stdout: for scheduled jobs.
        #[arg(long)]
        progress_json: bool,
        /// Files or directories (recursive); `-` reads standard input (kept
        /// in the lake as `_lake/spool/stdin-HASH`, gzip/zstd/bzip2 too).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run detection rules over the lake.
    Detect {
        #[arg(long)]
        lake: PathBuf,
        /// Only evidence at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Only evidence before this time (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long)]
        until: Option<String>,
        /// Run only these rules (repeatable).
        #[arg(long = "rule")]
        rules: Vec<String>,
        #[command(flatten)]
        setup: SetupArgs,
        /// table, json, jsonl, csv (formula-safe) or ocsf (OCSF 1.5 Detection Finding, one JSON per line).
        #[arg(long, default_value = "table")]
        format: OutputFormat,
        /// Exit 1 when a finding has this severity or higher.
        #[arg(long)]
        fail_on: Option<Severity>,
        /// Print (and fail on) only findings of this severity or higher.
        #[arg(long)]
        min_severity: Option<Severity>,
        /// Print only findings no earlier recorded run reported, and record this run (for scheduled jobs).
        #[arg(long)]
        new_only: bool,
        /// Record new or changed findings in the lake's _findings table.
        #[arg(long)]
        record: bool,
        /// Print each rule's SQL, bound parameters and every finding's evidence with its raw log line.
        #[arg(long)]
        explain: bool,
        /// Folder that relative evidence paths are read from with --explain (default: the current one).
        #[arg(long)]
        base: Option<PathBuf>,
    },
    /// Everything about one address, server, session or message id, in time order.
    Timeline {
        #[arg(long)]
        lake: PathBuf,
        /// An e-mail address, MCP server name or package, session id, call id, or message id.
        #[arg(long)]
        entity: String,
        #[command(flatten)]
        setup: SetupArgs,
        /// table, json, jsonl, csv, timesketch (JSONL for Timesketch import)
        /// or ocsf (the entity's mail deliveries as OCSF 1.5 Email Activity,
        /// one JSON per line).
        #[arg(long, default_value = "table")]
        format: OutputFormat,
        /// Leave findings out (no detection run).
        #[arg(long)]
        no_findings: bool,
        /// Show at most N events (default for --format table: 40, the earliest; other formats print every event unless given).
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Show every event in --format table too.
        #[arg(long, conflicts_with = "limit")]
        all: bool,
    },
    /// Check evidence: re-fingerprint every ingested raw log (--lake: files rewritten, truncated or missing since ingest) and follow the hash chains of traces `record` wrote (given as paths, and those the lake ingested): an edited, removed, reordered or cut record is named by file, line and record number.
    Verify {
        /// The lake whose sources to check.
        #[arg(long, required_unless_present = "traces")]
        lake: Option<PathBuf>,
        /// Folder that relative source paths are resolved from (default: the current one).
        #[arg(long)]
        base: Option<PathBuf>,
        /// A file holding the heads `record --checkpoint-cmd` anchored (lines with `mcpf-checkpoint chain=… seq=… head=…`, e.g. a syslog file): each must be in its chain, unchanged.
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
        /// table, json or jsonl.
        #[arg(long, default_value = "table")]
        format: OutputFormat,
        /// Recorded traces: files or folders (their .jsonl files).
        traces: Vec<PathBuf>,
    },
    /// Record MCP traffic: a stdio proxy a client launches in place of its server (`record --out DIR -- npx -y postmark-mcp@1.0.15`), or a Streamable HTTP reverse proxy (`--listen 127.0.0.1:8931 --upstream https://…`). Bytes pass through unchanged; every message goes to a hash-chained JSONL wire log in DIR (see docs/recording.md).
    Record(record::RecordArgs),
    /// Compact the small Parquet files scheduled ingests leave (delta-rs OPTIMIZE); rows are unchanged.
    Optimize {
        #[arg(long)]
        lake: PathBuf,
        /// Also rewrite every file ordered by ts (Z-order on ts), so narrow time predicates skip row groups.
        #[arg(long)]
        sort_by_time: bool,
        /// Target file size in MiB.
        #[arg(long, default_value_t = 128)]
        target_mib: u64,
        /// table or json.
        #[arg(long, default_value = "table")]
        format: OutputFormat,
    },
    /// Delete data files no kept table version needs (delta-rs VACUUM): the published versions and those recorded findings were computed at always stay.
    Vacuum {
        #[arg(long)]
        lake: PathBuf,
        /// Keep files a table stopped referencing less than this many hours ago.
        #[arg(long, default_value_t = 168)]
        retain_hours: u64,
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// table or json.
        #[arg(long, default_value = "table")]
        format: OutputFormat,
    },
    /// Run SQL over the lake's tables.
    Sql {
        #[arg(long)]
        lake: PathBuf,
        /// table, json, jsonl, csv (formula-safe), or ocsf: rows of
        /// mail_deliveries (SELECT * FROM mail_deliveries …) as OCSF 1.5 Email
        /// Activity, one JSON per line.
        #[arg(long, default_value = "table")]
        format: OutputFormat,
        /// Bind a named parameter: NAME=VALUE binds text (a queue id or phone number stays text); NAME:int=, NAME:float=, NAME:bool= bind typed values. Use $NAME in the query.
        #[arg(long = "param")]
        params: Vec<String>,
        /// Folder of lists (NAME.txt becomes table list_NAME); the rules' lists exist empty without it.
        #[arg(long)]
        lists: Option<PathBuf>,
        /// Show at most N rows (default for --format table: 40; other formats print every row unless given).
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Show every row in --format table too.
        #[arg(long, conflicts_with = "limit")]
        all: bool,
        query: String,
    },
    /// Drop every row read from a source (a wrong --year, a file that needed --format), recorded in _ingest_log; the next ingest reads it again.
    Forget {
        #[arg(long)]
        lake: PathBuf,
        /// The source: its path as ingest recorded it (_ingest_log.source_file) or its sha256 (12+ hex digits). Repeatable.
        #[arg(long = "source", required = true, value_name = "PATH|SHA")]
        sources: Vec<String>,
        /// table or json.
        #[arg(long, default_value = "table")]
        format: OutputFormat,
    },
    /// Counts per day, host, MCP server and envelope sender: what the lake holds, at a glance.
    Stats {
        #[arg(long)]
        lake: PathBuf,
        /// Only these views (repeatable; default: all).
        #[arg(long = "by", value_enum)]
        views: Vec<stats::View>,
        /// Rows per view.
        #[arg(long, default_value_t = 20)]
        top: u64,
        /// table, json, jsonl or csv.
        #[arg(long, default_value = "table")]
        format: OutputFormat,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; e.g. mcp-forensics man > mcp-forensics.1).
    Man,
    /// Run a Ballista scheduler or executor, for --engine ballista://HOST:PORT (see docs/scale-out.md).
    Cluster {
        #[command(subcommand)]
        role: ClusterRole,
    },
    /// List the lake's tables with row counts (and columns with -v).
    Tables {
        #[arg(long)]
        lake: PathBuf,
        #[arg(short, long)]
        verbose: bool,
    },
    /// List, show or test rules (built-in and from --rules folders).
    Rules {
        #[command(subcommand)]
        action: Option<RulesAction>,
        /// User rule folders (repeatable); a user rule replaces a built-in one with the same id.
        #[arg(long = "rules", global = true)]
        rule_dirs: Vec<PathBuf>,
    },
    /// Ingest the bundled sample incident into a temporary lake and run every rule.
    Demo {
        #[arg(long, default_value = "table")]
        format: OutputFormat,
        /// Use this lake directory instead of a temporary one.
        #[arg(long)]
        lake: Option<PathBuf>,
        /// The sample-logs directory (default: the one bundled with the source).
        #[arg(long)]
        samples: Option<PathBuf>,
    },
}

/// Where rules, lists and parameters come from (shared by the commands that run rules).
#[derive(clap::Args, Clone, Default)]
struct SetupArgs {
    /// Config file (TOML: rules = [DIRS], lists = DIR, [params."RULE_ID"] NAME = VALUE).
    #[arg(long)]
    config: Option<PathBuf>,
    /// User rule folder (repeatable); a user rule replaces a built-in one with the same id.
    #[arg(long = "rules")]
    rule_dirs: Vec<PathBuf>,
    /// Folder of lists: NAME.txt becomes table list_NAME (e.g. recipient_allowlist.txt).
    #[arg(long)]
    lists: Option<PathBuf>,
    /// Set a rule parameter: RULE_ID.NAME=VALUE (repeatable; overrides the config file).
    #[arg(long = "param")]
    params: Vec<String>,
}

impl SetupArgs {
    fn setup(&self) -> Result<RuleSetup, UserError> {
        let mut cfg = match &self.config {
            Some(p) => DetectConfig::load(p)?,
            None => DetectConfig::default(),
        };
        cfg.rule_dirs.extend(self.rule_dirs.iter().cloned());
        if let Some(l) = &self.lists {
            cfg.lists_dir = Some(l.clone());
        }
        cfg.add_param_texts(&self.params)?;
        Ok(cfg.setup()?)
    }
}

#[derive(Subcommand)]
enum ClusterRole {
    /// The scheduler: takes the plans of clients (--engine) and runs their stages on the executors.
    Scheduler {
        /// Address to listen on (clients and executors connect here).
        #[arg(long, default_value = "127.0.0.1:50050", value_name = "HOST:PORT")]
        bind: std::net::SocketAddr,
    },
    /// An executor: registers with the scheduler and runs tasks, reading the lake's files (S3 credentials from its own AWS environment).
    Executor {
        /// The scheduler, as ballista://HOST:PORT.
        #[arg(long, default_value = "ballista://127.0.0.1:50050", value_name = "URL")]
        scheduler: String,
        /// Address to bind and advertise to the scheduler and clients.
        #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
        bind: String,
        /// Arrow Flight port (shuffle data and results).
        #[arg(long, default_value_t = 50051)]
        flight_port: u16,
        /// gRPC port (tasks from the scheduler).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks run at once (default: one per core).
        #[arg(long, value_name = "N")]
        concurrent_tasks: Option<usize>,
        /// Folder for shuffle files (default: a temporary folder).
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RulesAction {
    /// One line per rule: id, severity, title, origin.
    List,
    /// A rule in full: metadata, parameters, lists, SQL and fixtures.
    Show { id: String },
    /// Run rules' fixtures; with DIR, the rules of that folder (built-in rules too without it).
    Test { dir: Option<PathBuf> },
}

/// An error for the user: message already says what to do; exit code 2.
struct UserError(String);

/// A closed output pipe (`| head`) ends the program quietly, as in ripgrep.
const BROKEN_PIPE: &str = "\0broken pipe";

impl<E: std::fmt::Display + 'static> From<E> for UserError {
    fn from(e: E) -> Self {
        if let Some(io) = (&e as &dyn std::any::Any).downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::BrokenPipe {
                return UserError(BROKEN_PIPE.into());
            }
        }
        UserError(e.to_string())
    }
}

/// `--format` of ingest: the names of the parser registry ([`Format::ALL`]),
/// so help, completions and the error for a wrong name never go stale.
fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Format::ALL.map(|f| f.name())).try_map(|s| s.parse::<Format>())
}

fn parse_time(s: &str, what: &str) -> Result<i64, UserError> {
    mcpf_formats::time::parse_time_bound(s).ok_or_else(|| UserError(format!("{what} {s:?}: expected an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31)")))
}

fn print_summary(s: &IngestSummary, verbose: bool, color: bool) {
    let text = output::terminal_safe_block(&s.report(verbose));
    let mut err = io::stderr().lock();
    for line in text.lines() {
        let painted = if line.starts_with("error:") {
            style::paint(color, "31", line)
        } else if line.starts_with("warning:") {
            style::paint(color, "33", line)
        } else {
            line.to_string()
        };
        let _ = writeln!(err, "{painted}");
    }
}

/// Color the `[SEVERITY]` head line of each finding in the table output
/// (text already made terminal-safe, so the only escapes are these).
fn paint_findings(text: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let sev = line.strip_prefix('[').and_then(|r| r.split_once(']')).map(|(s, _)| s.to_ascii_lowercase());
        match sev.filter(|s| Severity::ALL.iter().any(|x| x.name() == s)) {
            Some(s) => {
                let (body, nl) = line.strip_suffix('\n').map(|b| (b, "\n")).unwrap_or((line, ""));
                out.push_str(&style::paint(true, style::severity_code(&s), body));
                out.push_str(nl);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// A rule in full, as `rules show` prints it.
fn describe_rule(r: &Rule) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "id:          {}\ntitle:       {}\nseverity:    {}\norigin:      {}", r.id, r.title, r.severity.name(), r.origin);
    let _ = writeln!(s, "references:  {}\n\n{}\n", r.references.join("; "), r.description);
    for (name, p) in &r.parameters {
        let _ = writeln!(s, "parameter {name} ({:?}, default {}): {}", p.kind, p.default, p.description);
    }
    for (name, doc) in &r.lists {
        let _ = writeln!(s, "list {name} (table list_{name}, file {name}.txt in --lists DIR): {doc}");
    }
    match &r.since {
        Some(p) => {
            let whole = if p.read_whole.is_empty() { String::new() } else { format!("; read whole: {}", p.read_whole.join(", ")) };
            let _ = writeln!(s, "with --since: reads from {} day(s) before it{whole}", p.lookback_days);
        }
        None => {
            let _ = writeln!(s, "with --since: reads every table whole (findings can depend on any earlier row)");
        }
    }
    let _ = writeln!(s, "\n{}\n", r.sql.trim());
    for t in &r.tests {
        let _ = writeln!(s, "fixture [{:?}] {}", t.expect, t.name);
    }
    s
}

/// The engine of `--engine`, set once before any command runs.
static ENGINE: std::sync::OnceLock<std::sync::Arc<mcpf_cluster::BallistaEngine>> = std::sync::OnceLock::new();

/// A lake that must exist: reading anything else would print a false
/// all-clear. Its queries run on the `--engine`, if one was given.
fn require_lake(path: &Path) -> Result<Lake, UserError> {
    let mut lake = Lake::open(path)?;
    lake.require_lake()?;
    if let Some(engine) = ENGINE.get() {
        lake.set_engine(engine.clone());
    }
    Ok(lake)
}

fn cluster_command(role: ClusterRole) -> Result<ExitCode, UserError> {
    match role {
        ClusterRole::Scheduler { bind } => {
            eprintln!("mcp-forensics cluster scheduler on {bind} (clients: --engine ballista://{bind})");
            mcpf_cluster::process::run_scheduler(bind).map_err(UserError)?;
        }
        ClusterRole::Executor { scheduler, bind, flight_port, grpc_port, concurrent_tasks, work_dir } => {
            let engine = mcpf_cluster::BallistaEngine::parse(&scheduler).map_err(|e| UserError(format!("--scheduler {e}")))?;
            let (scheduler_host, scheduler_port) = engine.address();
            let opts = mcpf_cluster::process::ExecutorOptions {
                scheduler_host,
                scheduler_port,
                bind_host: bind,
                flight_port,
                grpc_port,
                concurrent_tasks: concurrent_tasks.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
                work_dir: work_dir.map(|d| d.display().to_string()),
            };
            mcpf_cluster::process::run_executor(opts).map_err(UserError)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where results go: standard output, or `--output FILE`, written to a
/// temporary file beside it that replaces FILE only when the command
/// succeeds (a failed run never empties an earlier report).
fn open_output(path: Option<&Path>) -> Result<(Box<dyn Write>, bool, Option<tempfile::NamedTempFile>), UserError> {
    use std::io::IsTerminal;
    match path {
        Some(p) => {
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| UserError(format!("--output {}: cannot write in {}: {e}", p.display(), dir.display())))?;
            let f = tmp.reopen().map_err(|e| UserError(format!("--output {}: {e}", p.display())))?;
            Ok((Box::new(io::BufWriter::new(f)), false, Some(tmp)))
        }
        None => Ok((Box::new(io::BufWriter::new(io::stdout().lock())), io::stdout().is_terminal(), None)),
    }
}

fn run(cli: Cli) -> Result<ExitCode, UserError> {
    if let Some(n) = cli.threads {
        mcpf_lake::set_threads(usize::from(n));
    }
    if let Some(url) = cli.engine.as_deref() {
        let engine = mcpf_cluster::BallistaEngine::parse(url).map_err(|e| UserError(format!("--engine {e}")))?;
        let _ = ENGINE.set(std::sync::Arc::new(engine));
    }
    let (mut out, out_is_terminal, pending) = open_output(cli.output.as_deref())?;
    let color_out = cli.color.enabled(out_is_terminal);
    let color_err = cli.color.stderr();
    let code = run_command(cli.command, &mut out, Flags { quiet: cli.quiet, color_out, color_err })?;
    out.flush()?;
    drop(out);
    if let (Some(tmp), Some(path)) = (pending, cli.output.as_deref()) {
        tmp.persist(path).map_err(|e| UserError(format!("--output {}: cannot replace it: {}", path.display(), e.error)))?;
    }
    Ok(code)
}

/// The global flags a command needs.
#[derive(Clone, Copy)]
struct Flags {
    quiet: bool,
    color_out: bool,
    color_err: bool,
}

#[allow(clippy::too_many_arguments)]
fn ingest_command(out: &mut dyn Write, flags: Flags, lake: &Path, format: Option<Format>, year: Option<i32>, tz: Option<Zone>, verbose: bool, force: bool, progress_json: bool, paths: Vec<PathBuf>) -> Result<ExitCode, UserError> {
    let lake = Lake::open(lake)?;
    let mut on_wait = |holder: &str| eprintln!("waiting for the lake's writers' lock (held by {}) ...", output::terminal_safe(holder));
    let mut paths = paths;
    if let Some(i) = paths.iter().position(|p| p.as_os_str() == "-") {
        let spooled = lake.spool(&mut std::io::stdin().lock())?;
        paths.retain(|p| p.as_os_str() != "-");
        paths.insert(i.min(paths.len()), spooled);
    }
    let counters = std::sync::Arc::new(mcpf_lake::IngestProgress::default());
    let mode = progress::Mode::choose(flags.quiet, progress_json);
    let display = progress::Display::start(mode, counters.clone(), flags.color_err);
    // Nothing shown, nothing counted: a pipe or cron job pays no counting.
    let progress = (mode != progress::Mode::Off).then_some(counters);
    let opts = IngestOptions { format, year, zone: tz, force, progress, ..Default::default() };
    let result = lake.ingest_with(&paths, &opts, &mut on_wait);
    display.finish();
    let s = result?;
    if progress_json {
        serde_json::to_writer(&mut *out, &s.to_json())?;
        writeln!(out)?;
    } else if !flags.quiet {
        print_summary(&s, verbose, flags.color_err);
    }
    Ok(if s.failed_sources() > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
}

/// `sql`: a table shows the first `limit` rows and counts the rest while
/// streaming, so `SELECT * FROM mail_deliveries` on months of mail prints a
/// screenful and the total, not the lake.
#[allow(clippy::too_many_arguments)]
fn sql_command(out: &mut dyn Write, lake: &Path, format: OutputFormat, params: &[String], lists: Option<&Path>, limit: Option<u64>, all: bool, query: &str) -> Result<ExitCode, UserError> {
    let lists = match lists {
        Some(d) => mcpf_detect::Lists::load_dir(d)?,
        None => mcpf_detect::Lists::default(),
    };
    let lake = require_lake(lake)?;
    let mut bound = Vec::new();
    for p in params {
        let (k, v) = p.split_once('=').ok_or_else(|| UserError(format!("--param {p:?}: expected NAME=VALUE or NAME:TYPE=VALUE (TYPE int, float, bool, text)")))?;
        bound.push(sql_param(k, v)?);
    }
    let setup = RuleSetup { rules: mcpf_detect::embedded_rules(), lists, params: Default::default() };
    let shown = match (limit, all, format) {
        (Some(n), _, _) => Some(n),
        (None, false, OutputFormat::Table) => Some(SQL_TABLE_ROWS),
        _ => None,
    };
    let (mut kept, mut kept_rows, mut total) = (Vec::new(), 0u64, 0u64);
    let schema = ops::sql_each(&lake, &setup, query, bound, None, &mut |b| {
        let n = b.num_rows() as u64;
        total += n;
        let room = shown.map(|s| s.saturating_sub(kept_rows)).unwrap_or(u64::MAX);
        if room > 0 && n > 0 {
            let take = room.min(n);
            kept.push(b.slice(0, take as usize));
            kept_rows += take;
        }
        // Only a table prints the total: other formats stop at the limit.
        Ok(format == OutputFormat::Table || room > n)
    })?;
    if kept.is_empty() {
        kept.push(arrow::record_batch::RecordBatch::new_empty(schema));
    }
    if format == OutputFormat::Table {
        if total == 0 {
            writeln!(out, "(0 rows)")?;
        } else {
            output::write_table_rows(out, &kept)?;
            if kept_rows < total {
                writeln!(out, "({total} rows, {kept_rows} shown; --limit N or --all for more, --format csv|jsonl for every row)")?;
            } else {
                writeln!(out, "({total} rows)")?;
            }
        }
    } else {
        output::write_batches(out, &kept, format)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Rows `sql` shows in a table by default (as the DuckDB CLI does).
const SQL_TABLE_ROWS: u64 = 40;

fn forget_command(out: &mut dyn Write, lake: &Path, sources: &[String], format: OutputFormat) -> Result<ExitCode, UserError> {
    let lake = require_lake(lake)?;
    let mut on_wait = |holder: &str| eprintln!("waiting for the lake's writers' lock (held by {}) ...", output::terminal_safe(holder));
    let report = lake.forget(sources, &mut on_wait)?;
    if matches!(format, OutputFormat::Json | OutputFormat::Jsonl) {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for s in &report.sources {
        let per_table: Vec<String> = s.rows_removed.iter().map(|(t, n)| format!("{t} {n}")).collect();
        writeln!(out, "forgot {}: {} row(s) removed ({})", output::terminal_safe(&s.source_file), s.total(), if per_table.is_empty() { "it held none".to_string() } else { per_table.join(", ") })?;
    }
    writeln!(out, "forget {}: done; recorded in _ingest_log (status forgotten); the next ingest of these paths reads them again", report.run_id)?;
    Ok(ExitCode::SUCCESS)
}

fn stats_command(out: &mut dyn Write, lake: &Path, views: &[stats::View], top: u64, format: OutputFormat) -> Result<ExitCode, UserError> {
    let lake = require_lake(lake)?;
    let setup = RuleSetup { rules: vec![], lists: Default::default(), params: Default::default() };
    let views: Vec<stats::View> = if views.is_empty() { stats::View::ALL.to_vec() } else { views.to_vec() };
    if format != OutputFormat::Table && views.len() > 1 {
        return Err(UserError(format!("stats --format {format:?} prints one view at a time (their columns differ): add --by day, host, server or sender").to_lowercase()));
    }
    for (i, v) in views.iter().enumerate() {
        let mut kept = Vec::new();
        let mut rows = 0u64;
        let schema = ops::sql_each(&lake, &setup, v.sql(), vec![], None, &mut |b| {
            let take = (top - rows).min(b.num_rows() as u64);
            if take > 0 {
                kept.push(b.slice(0, take as usize));
                rows += take;
            }
            Ok(rows < top)
        })?;
        if kept.is_empty() {
            kept.push(arrow::record_batch::RecordBatch::new_empty(schema));
        }
        if format == OutputFormat::Table {
            if i > 0 {
                writeln!(out)?;
            }
            writeln!(out, "== {} (top {top})", v.title())?;
            if rows == 0 {
                writeln!(out, "(none)")?;
            } else {
                output::write_table_rows(out, &kept)?;
            }
        } else {
            output::write_batches(out, &kept, format)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_command(command: Command, out: &mut dyn Write, flags: Flags) -> Result<ExitCode, UserError> {
    let mut out = out;
    match command {
        Command::Ingest { lake, format, year, tz, verbose, force, progress_json, paths } => {
            return ingest_command(out, flags, &lake, format, year, tz, verbose, force, progress_json, paths);
        }
        Command::Forget { lake, sources, format } => return forget_command(out, &lake, &sources, format),
        Command::Stats { lake, views, top, format } => return stats_command(out, &lake, &views, top, format),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "mcp-forensics", &mut out);
        }
        Command::Cluster { role } => return cluster_command(role),
        Command::Man => {
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut out)?;
        }
        Command::Detect { lake, since, until, rules, setup, format, fail_on, min_severity, new_only, record, explain, base } => {
            let lake = require_lake(&lake)?;
            let rs = setup.setup()?;
            let opts = DetectOptions {
                rules,
                params: rs.params.clone(),
                since_us: since.as_deref().map(|s| parse_time(s, "--since")).transpose()?,
                until_us: until.as_deref().map(|s| parse_time(s, "--until")).transpose()?,
                progress: None,
            };
            let counters = std::sync::Arc::new(mcpf_detect::DetectProgress::default());
            let req = ops::DetectRequest { options: DetectOptions { progress: Some(counters.clone()), ..opts.clone() }, record, new_only };
            let display = progress::Display::start_detect(progress::Mode::choose(flags.quiet, false), counters);
            let outcome = ops::detect(&lake, &rs, &req, None);
            display.finish();
            let outcome = outcome?;
            if new_only || record {
                eprintln!("recorded {} new or changed finding(s) in _findings ({} known before this run)", outcome.recorded, outcome.known_before);
            }
            let mut findings = outcome.findings;
            if let Some(min) = min_severity {
                findings.retain(|f| f.severity >= min);
            }
            if explain {
                write!(out, "{}", explain::explain_run(&rs.rules, &opts, &findings, base.as_deref(), 50)?)?;
            } else if format == OutputFormat::Table {
                let mut text = Vec::new();
                output::write_findings(&mut text, &findings, format)?;
                write!(out, "{}", paint_findings(&String::from_utf8_lossy(&text), flags.color_out))?;
            } else {
                output::write_findings(&mut out, &findings, format)?;
            }
            if let Some(min) = fail_on {
                if findings.iter().any(|f| f.severity >= min) {
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Command::Timeline { lake, entity, setup, format, no_findings, limit, all } => {
            let lake = require_lake(&lake)?;
            let rs = setup.setup()?;
            if format == OutputFormat::Ocsf {
                let batches = ops::timeline_deliveries(&lake, &entity, None)?;
                if batches.iter().all(|b| b.num_rows() == 0) {
                    eprintln!("no mail delivery in the lake mentions {:?} (OCSF Email Activity covers deliveries; --format jsonl shows every event)", output::terminal_safe(&entity));
                }
                output::write_batches(&mut out, &batches, format)?;
                return Ok(ExitCode::SUCCESS);
            }
            let batch = ops::timeline(&lake, &rs, &entity, !no_findings, None)?;
            if batch.num_rows() == 0 {
                eprintln!("nothing in the lake mentions {:?} (addresses, server names, session, call and message ids are matched exactly, ignoring case)", output::terminal_safe(&entity));
            }
            let total = batch.num_rows() as u64;
            let shown = match (limit, all, format) {
                (Some(n), _, _) => n.min(total),
                (None, false, OutputFormat::Table) => SQL_TABLE_ROWS.min(total),
                _ => total,
            };
            let batch = batch.slice(0, shown as usize);
            if format == OutputFormat::Table && total > 0 {
                output::write_table_rows(&mut out, &[batch])?;
                if shown < total {
                    writeln!(out, "({total} events, the first {shown} shown; --limit N or --all for more, --format csv|jsonl for every event)")?;
                } else {
                    writeln!(out, "({total} events)")?;
                }
            } else {
                output::write_batches(&mut out, &[batch], format)?;
            }
        }
        Command::Verify { lake, base, checkpoints, format, traces } => {
            let lake = lake.as_deref().map(require_lake).transpose()?;
            return verify::command(out, lake.as_ref(), base.as_deref(), checkpoints.as_deref(), format, &traces);
        }
        Command::Record(_) => return Err(UserError("record runs before the output is opened".into())),
        Command::Sql { lake, format, params, lists, limit, all, query } => return sql_command(out, &lake, format, &params, lists.as_deref(), limit, all, &query),
        Command::Optimize { lake, sort_by_time, target_mib, format } => {
            let lake = require_lake(&lake)?;
            let opts = mcpf_lake::OptimizeOptions { sort_by_time, target_file_bytes: target_mib.saturating_mul(1024 * 1024) };
            let report = lake.optimize(&opts, None)?;
            if matches!(format, OutputFormat::Json | OutputFormat::Jsonl) {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
                return Ok(ExitCode::SUCCESS);
            }
            for t in &report.tables {
                writeln!(out, "{:<20} {:>6} file(s) before: {} rewritten into {} across {} partition(s)", t.table, t.files_before, t.files_removed, t.files_added, t.partitions)?;
            }
            writeln!(out, "optimize {}: done", report.run_id)?;
        }
        Command::Vacuum { lake, retain_hours, dry_run, format } => {
            let lake = require_lake(&lake)?;
            let hours = i64::try_from(retain_hours).ok().filter(|h| *h <= 24 * 365 * 100).ok_or_else(|| UserError("--retain-hours: at most 876000 (100 years)".into()))?;
            let opts = mcpf_lake::VacuumOptions { retention: chrono::Duration::hours(hours), dry_run };
            let report = lake.vacuum(&opts, None)?;
            if matches!(format, OutputFormat::Json | OutputFormat::Jsonl) {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
                return Ok(ExitCode::SUCCESS);
            }
            let verb = if dry_run { "would delete" } else { "deleted" };
            for t in &report.tables {
                let kept = if t.kept_versions.is_empty() { String::new() } else { format!(" (versions kept for recorded findings: {})", t.kept_versions.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")) };
                writeln!(out, "{:<20} {:>6} file(s) in use, {verb} {} unreferenced file(s){kept}", t.table, t.files_before, t.files_removed)?;
            }
            writeln!(out, "vacuum {}: done{}", report.run_id, if dry_run { " (dry run: nothing deleted)" } else { "" })?;
        }
        Command::Tables { lake, verbose } => {
            let lake = require_lake(&lake)?;
            let counts = ops::table_counts(&lake, None)?;
            for (t, n) in counts {
                writeln!(out, "{:<20} {:>10} rows  {}", t.name(), n, t.doc())?;
                if verbose {
                    for c in t.columns() {
                        writeln!(out, "    {:<22} {:<10} {}{}", c.name, format!("{:?}", c.kind).to_lowercase(), if c.nullable { "" } else { "(not null) " }, c.doc)?;
                    }
                }
            }
        }
        Command::Rules { action, rule_dirs } => {
            let rules = load_rules(&rule_dirs)?;
            match action.unwrap_or(RulesAction::List) {
                RulesAction::List => {
                    for r in &rules {
                        let origin = if r.origin.starts_with("embedded:") { String::new() } else { format!("  ({})", output::terminal_safe(&r.origin)) };
                        writeln!(out, "{:<34} {:<8} {}{origin}", r.id, r.severity.name(), r.title)?;
                    }
                }
                RulesAction::Show { id } => {
                    let r = rules.iter().find(|r| r.id == id).ok_or_else(|| UserError(format!("no rule {id:?}; see: mcp-forensics rules list")))?;
                    write!(out, "{}", output::terminal_safe_block(&describe_rule(r)))?;
                }
                RulesAction::Test { dir } => {
                    let to_test: Vec<Rule> = match &dir {
                        Some(d) => {
                            let own: Vec<Rule> = load_rules(std::slice::from_ref(d))?.into_iter().filter(|r| !r.origin.starts_with("embedded:")).collect();
                            if own.is_empty() {
                                return Err(UserError(format!("{}: no rule files (*.toml) in this folder", d.display())));
                            }
                            own
                        }
                        None => rules,
                    };
                    let (mut passed, mut failed) = (0, 0);
                    for r in &to_test {
                        if let Some(p) = fixtures::coverage_problems(r) {
                            writeln!(out, "WARN {}", output::terminal_safe(&p))?;
                        }
                        for t in fixtures::run_rule_tests(r) {
                            let tag = if t.passed { "ok  " } else { "FAIL" };
                            writeln!(out, "{tag} {} :: {} [{:?}] {}", t.rule_id, output::terminal_safe(&t.test), t.expect, output::terminal_safe(&t.message))?;
                            if t.passed {
                                passed += 1;
                            } else {
                                failed += 1;
                            }
                        }
                    }
                    writeln!(out, "{passed} passed, {failed} failed ({} rules)", to_test.len())?;
                    if failed > 0 {
                        return Ok(ExitCode::from(1));
                    }
                }
            }
        }
        Command::Demo { format, lake, samples } => {
            // ./sample-logs first (a checkout's root), then the checkout this binary was built from.
            let samples = samples.unwrap_or_else(|| {
                let here = PathBuf::from("sample-logs");
                if here.is_dir() { here } else { PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sample-logs")) }
            });
            if !samples.is_dir() {
                return Err(UserError(format!("{}: sample-logs directory not found; pass --samples DIR", samples.display())));
            }
            // Evidence paths read best relative to where the user stands.
            let samples = samples.canonicalize()?;
            let samples = std::env::current_dir()
                .ok()
                .and_then(|cwd| samples.strip_prefix(cwd.canonicalize().ok()?).ok().map(Path::to_path_buf))
                .unwrap_or(samples);
            let year = std::fs::read_to_string(samples.join("manifest.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v.get("year").and_then(|y| y.as_i64()))
                .map(|y| y as i32);
            let tmp;
            let lake_dir = match lake {
                Some(l) => l,
                None => {
                    tmp = tempfile::tempdir()?;
                    tmp.path().join("lake")
                }
            };
            let lake = Lake::open(&lake_dir)?;
            // The wire log records the same traffic as the Desktop log: not ingested twice.
            let inputs: Vec<PathBuf> = ["mcp", "postfix", "postmark"].iter().map(|d| samples.join(d)).filter(|p| p.exists()).collect();
            let s = lake.ingest(&inputs, &IngestOptions { format: None, year, ..Default::default() })?;
            if !flags.quiet {
                print_summary(&s, false, flags.color_err);
            }
            let rs = SetupArgs::default().setup()?;
            let findings = ops::detect(&lake, &rs, &ops::DetectRequest::default(), None)?.findings;
            if format == OutputFormat::Table {
                let mut text = Vec::new();
                output::write_findings(&mut text, &findings, format)?;
                write!(out, "{}", paint_findings(&String::from_utf8_lossy(&text), flags.color_out))?;
            } else {
                output::write_findings(&mut out, &findings, format)?;
            }
            let story = account::account(&findings);
            if format == OutputFormat::Table {
                writeln!(out, "{story}")?;
            } else {
                eprintln!("{story}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--param NAME=VALUE` (text) or `NAME:TYPE=VALUE`: what the user typed
/// is bound as text unless a type is named, so `8713254` (a queue id, an
/// account number) is never silently compared as a number.
fn sql_param(key: &str, v: &str) -> Result<(String, datafusion::scalar::ScalarValue), UserError> {
    use datafusion::scalar::ScalarValue;
    let (name, kind) = key.split_once(':').unwrap_or((key, "text"));
    let bad = |what: &str| UserError(format!("--param {key}={v:?}: expected {what}"));
    let value = match kind {
        "text" | "str" | "string" => ScalarValue::Utf8(Some(v.to_string())),
        "int" => ScalarValue::Int64(Some(v.parse().map_err(|_| bad("an integer"))?)),
        "float" => ScalarValue::Float64(Some(v.parse().map_err(|_| bad("a number"))?)),
        "bool" => ScalarValue::Boolean(Some(v.parse().map_err(|_| bad("true or false"))?)),
        other => return Err(UserError(format!("--param {key}: unknown type {other:?}; use int, float, bool or text"))),
    };
    Ok((name.to_string(), value))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = cli.color.stderr();
    // The recorder owns stdin and stdout (they are the MCP connection), so
    // it runs before anything takes the output.
    if let Command::Record(args) = cli.command {
        return record::run(args, color);
    }
    match run(cli) {
        Ok(code) => code,
        Err(UserError(msg)) if msg == BROKEN_PIPE => ExitCode::SUCCESS,
        Err(UserError(msg)) => {
            eprintln!("{} {}", style::paint(color, "1;31", "error:"), output::terminal_safe_block(&msg));
            ExitCode::from(2)
        }
    }
}
