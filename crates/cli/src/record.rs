//! `record`: the command line of the recorder ([`mcpf_record`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use mcpf_record::journal::Rotation;
use mcpf_record::Options;

/// `mcp-forensics record`.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  mcp-forensics record --out ~/mcp-traces --server-name postmark -- npx -y postmark-mcp@1.0.15\n  mcp-forensics record --out ~/mcp-traces --server-name crm --listen 127.0.0.1:8931 --upstream https://mcp.example.com/mcp\n\nThen: mcp-forensics verify ~/mcp-traces; mcp-forensics ingest --lake L ~/mcp-traces")]
pub struct RecordArgs {
    /// Folder the wire log is written to (created if missing); one file set per run: NAME-TIME-RUN.N.jsonl.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The server's name in the records, as the client configures it (default: the package or command name; the upstream's host for HTTP).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// HTTP: address to listen on, e.g. 127.0.0.1:8931 (point the client at http://ADDR/ + the upstream's path).
    #[arg(long, value_name = "HOST:PORT", requires = "upstream")]
    listen: Option<SocketAddr>,
    /// HTTP: the remote MCP server; requests go to its origin with their own path and query.
    #[arg(long, value_name = "URL", requires = "listen")]
    upstream: Option<String>,
    /// Write and sync (fdatasync) each record before the message is passed on (slower; nothing forwarded is unrecorded).
    #[arg(long)]
    sync: bool,
    /// When a record cannot be written (disk full, folder gone), stop forwarding instead of going on unrecorded.
    #[arg(long)]
    fail_closed: bool,
    /// Mask secrets in tool-call arguments before they are recorded (the detectors of rule mcp.sensitive_data_in_arguments); the record says what kinds were masked. What is forwarded is never changed.
    #[arg(long)]
    redact: bool,
    /// Records the writer may be behind by without --sync; a full queue makes the proxy wait for the disk.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    queue: usize,
    /// Start a new file (chained to the last) once a file reaches this size: bytes, or a whole number with K, M or G (1024-based); at least 1K.
    #[arg(long, default_value = "64M", value_name = "SIZE", value_parser = parse_size)]
    rotate_size: u64,
    /// Start a new file after this many minutes.
    #[arg(long, value_name = "MINUTES")]
    rotate_minutes: Option<u64>,
    /// Shell command run with each finished file's chain head on stdin (`mcpf-checkpoint chain=… seq=… head=… file=…`): sign it, log it elsewhere (`logger -t mcpf`); verify --checkpoints checks those heads.
    #[arg(long, value_name = "CMD")]
    checkpoint_cmd: Option<String>,
    /// The server's command and its arguments (stdio), best after -- (everything from the first word on is the server's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// `4096`, `512K`, `64M`, `1G`.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{s:?}: expected a whole number with an optional unit, such as 4096, 512K, 64M or 1G"))?;
    let mult = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("{s:?}: expected a whole number with an optional unit, such as 4096, 512K, 64M or 1G")),
    };
    let size = n.checked_mul(mult).ok_or_else(|| format!("{s:?}: too large"))?;
    if size < 1024 {
        return Err(format!("{s:?}: give at least 1K"));
    }
    Ok(size)
}

fn default_name(args: &RecordArgs) -> String {
    if let Some(url) = &args.upstream {
        return url.split("://").nth(1).and_then(|r| r.split(['/', ':']).next()).filter(|h| !h.is_empty()).unwrap_or("remote").to_string();
    }
    if let Some(p) = mcpf_record::package::requested(&args.command) {
        return p.name;
    }
    args.command.first().map(|c| c.rsplit(['/', '\\']).next().unwrap_or(c).to_string()).unwrap_or_else(|| "server".into())
}

/// Run the recorder. The stdio form exits as its server did.
pub fn run(args: RecordArgs, color: bool) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("{} {}", crate::style::paint(color, "1;31", "error:"), mcpf_detect::output::terminal_safe_block(&msg));
        ExitCode::from(2)
    };
    let opts = Options {
        out: args.out.clone(),
        server_name: args.server_name.clone().unwrap_or_else(|| default_name(&args)),
        sync: args.sync,
        fail_closed: args.fail_closed,
        redact: args.redact,
        queue: args.queue,
        rotation: Rotation { max_bytes: args.rotate_size, max_age: args.rotate_minutes.filter(|m| *m > 0).map(|m| Duration::from_secs(m * 60)) },
        checkpoint_cmd: args.checkpoint_cmd.clone(),
    };
    match (args.listen, args.upstream.as_deref()) {
        (Some(listen), Some(upstream)) => {
            if !args.command.is_empty() {
                return fail("give either a server command (stdio) or --listen/--upstream (HTTP), not both".into());
            }
            match mcpf_record::run_http(&opts, listen, upstream) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        _ => match mcpf_record::run_stdio(&opts, args.command) {
            Ok(exit) => mcpf_record::stdio::exit_like(exit),
            Err(e) => fail(e),
        },
    }
}
