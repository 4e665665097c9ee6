//! `mcp-forensics record`: a recorder between an MCP client and server.
//!
//! - [`stdio`]: launched by the client in place of the server; launches the
//!   server and passes every byte through unchanged.
//! - [`http`]: a Streamable HTTP reverse proxy for remote servers.
//!
//! Both write the JSON-RPC wire log the lake already reads (`jsonrpc_jsonl`),
//! one record per message with its direction, time, server, session and
//! process, plus lifecycle records (`start` with the launch command and
//! requested package, `package` with the version found on disk, `stderr`,
//! `exit`). Every record is hash-chained to the one before ([`journal`],
//! [`mcpf_formats::chain`]); [`verify`] checks the chains.

pub mod http;
pub mod journal;
pub mod message;
pub mod package;
pub mod recorder;
pub mod redact;
pub mod stdio;
pub mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use journal::{Head, Journal, Rotation};
use recorder::{Durability, Recorder};

/// What `record` was asked to do, whichever transport.
#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    pub server_name: String,
    pub sync: bool,
    pub fail_closed: bool,
    pub redact: bool,
    pub queue: usize,
    pub rotation: Rotation,
    /// Run with the head of each finished file (and at the end): `sh -c CMD`
    /// with `mcpf-checkpoint chain=… seq=… head=… file=…` on its stdin.
    pub checkpoint_cmd: Option<String>,
}

/// The machine's name, for the `start` record.
pub fn hostname() -> Option<String> {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
        let ok = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) } == 0;
        let end = buf.iter().position(|b| *b == 0).unwrap_or(0);
        ok.then(|| String::from_utf8_lossy(&buf[..end]).into_owned()).filter(|h| !h.is_empty())
    }
    #[cfg(not(unix))]
    {
        std::env::var("COMPUTERNAME").ok()
    }
}

/// A run id: 16 hex digits from the time, the process and the OS's randomness.
fn run_id() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0).to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let mut noise = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut noise);
    }
    h.update(noise);
    mcpf_formats::digest::hex(&h.finalize()[..8])
}

/// A file-name-safe form of the server name.
fn file_stem(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(64).collect();
    if s.is_empty() {
        "server".into()
    } else {
        s
    }
}

fn checkpoint(cmd: &str, head: &Head) {
    let line = format!("mcpf-checkpoint chain={} seq={} head={} file={}\n", head.chain, head.seq, head.hash, head.file.display());
    let child = std::process::Command::new("sh").arg("-c").arg(cmd).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).spawn();
    match child {
        Ok(mut c) => {
            if let Some(mut stdin) = c.stdin.take() {
                use std::io::Write;
                let _ = stdin.write_all(line.as_bytes());
            }
            match c.wait() {
                Ok(s) if s.success() => {}
                Ok(s) => eprintln!("mcp-forensics record: --checkpoint-cmd exited with {s} for head {}", head.hash),
                Err(e) => eprintln!("mcp-forensics record: --checkpoint-cmd: {e}"),
            }
        }
        Err(e) => eprintln!("mcp-forensics record: cannot run --checkpoint-cmd: {e}"),
    }
}

/// The recorder for one run: its files are `OUT/NAME-YYYYMMDDTHHMMSSZ-RUN.N.jsonl`.
fn recorder(opts: &Options) -> Result<(Recorder, String), String> {
    if let Err(e) = std::fs::create_dir_all(&opts.out) {
        let msg = format!("cannot create the output folder {}: {e}", opts.out.display());
        if opts.fail_closed {
            return Err(format!("{msg}; not starting (--fail-closed)"));
        }
        // Fail open: the agent keeps working; every record is reported lost.
        eprintln!("mcp-forensics record: {msg}; forwarding without recording (--fail-closed stops instead)");
    }
    let id = run_id();
    let stem = format!("{}-{}-{id}", file_stem(&opts.server_name), chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    let mut journal = Journal::new(&opts.out, stem, id.clone(), opts.rotation, opts.sync);
    if let Some(cmd) = opts.checkpoint_cmd.clone() {
        journal.on_file_closed = Some(Box::new(move |h: &Head| checkpoint(&cmd, h)));
    }
    let d = Durability { sync: opts.sync, queue: opts.queue, fail_closed: opts.fail_closed };
    Ok((Recorder::new(journal, d), id))
}

/// Record a stdio server: returns how it ended (exit with
/// [`stdio::exit_like`]).
pub fn run_stdio(opts: &Options, argv: Vec<String>) -> Result<stdio::Exit, String> {
    if argv.is_empty() {
        return Err("give the server's command after --, e.g. mcp-forensics record --out DIR -- npx -y postmark-mcp@1.0.15".into());
    }
    let (rec, id) = recorder(opts)?;
    let launch = stdio::Launch { server: opts.server_name.clone(), session: format!("{}-{id}", file_stem(&opts.server_name)), argv, redact: opts.redact };
    Ok(stdio::run(launch, rec))
}

/// Run the HTTP reverse proxy until SIGINT or SIGTERM.
pub fn run_http(opts: &Options, listen: SocketAddr, upstream: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(upstream).map_err(|e| format!("--upstream {upstream:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("--upstream {upstream:?}: expected an http:// or https:// URL"));
    }
    let (rec, _) = recorder(opts)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let proxy = Arc::new(http::HttpProxy::new(url, opts.server_name.clone(), opts.redact, opts.sync, rec.clone())?);
    let mut r = journal::Record::now();
    r.set("event", "start").set("server", opts.server_name.as_str()).set("upstream", upstream).set("listen", listen.to_string()).set("recorder_pid", std::process::id());
    r.set("recorder", serde_json::json!({"version": env!("CARGO_PKG_VERSION"), "host": hostname(), "cwd": std::env::current_dir().ok().map(|d| d.display().to_string())}));
    rec.record(r);
    let served = rt.block_on(http::serve(listen, proxy, shutdown_signal()));
    // Responses still streaming end with the runtime.
    rt.shutdown_timeout(Duration::from_secs(2));
    rec.close();
    served.map_err(|e| format!("cannot listen on {listen}: {e}"))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
