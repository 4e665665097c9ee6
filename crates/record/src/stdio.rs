//! The stdio proxy: the client launches `mcp-forensics record … -- SERVER
//! ARGS`; the recorder launches the server and copies bytes between them
//! unchanged (stdin, stdout, stderr), recording each complete message
//! before the newline that completes it is passed on. The server's exit
//! status is the recorder's; signals the client sends are passed to it.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::{json, Map};

use crate::journal::Record;
use crate::message::{message_record, Context, Frame, LineSplitter};
use crate::package;
use crate::recorder::Recorder;

/// Exit status when the recorder itself stops forwarding (`--fail-closed`).
pub const EXIT_FAIL_CLOSED: i32 = 75;
/// Exit status when the server could not be started (as a shell says).
pub const EXIT_NOT_STARTED: i32 = 127;

/// What every record of this run names.
pub struct Launch {
    pub server: String,
    pub session: String,
    pub argv: Vec<String>,
    pub redact: bool,
}

/// How the server ended, for the recorder to end the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Launch {
    /// A lifecycle record of this run: `event`, server, session and, once
    /// the server runs, its pid.
    fn event(&self, event: &str, pid: Option<u32>) -> Record {
        let mut r = Record::now();
        r.set("event", event).set("server", self.server.as_str()).set("session", self.session.as_str());
        if let Some(p) = pid {
            r.set("pid", p);
        }
        r
    }
}

/// Run the proxy to the end; returns how the server ended.
pub fn run(launch: Launch, recorder: Recorder) -> Exit {
    let launch = Arc::new(launch);
    let mut child = match Command::new(&launch.argv[0]).args(&launch.argv[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mcp-forensics record: cannot start {:?}: {e}", launch.argv[0]);
            let mut r = start_record(&launch, None);
            r.set("error", format!("cannot start: {e}"));
            recorder.record(r);
            recorder.close();
            return Exit::Code(EXIT_NOT_STARTED);
        }
    };
    let pid = child.id();
    recorder.record(start_record(&launch, Some(pid)));
    signals::forward_to(pid);
    let (stdin, stdout, stderr) = (child.stdin.take().expect("piped"), child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let to_server = pump(std::io::stdin(), stdin, "client_to_server", launch.clone(), pid, recorder.clone());
    let to_client = pump(stdout, std::io::stdout(), "server_to_client", launch.clone(), pid, recorder.clone());
    let errors = stderr_pump(stderr, launch.clone(), pid, recorder.clone());
    resolve_package_later(&launch, pid, &recorder);
    let status = wait(&mut child, &recorder);
    // The server's output ends with it; the client's input may never end
    // (its reader stays blocked): the run ends with the server.
    let _ = to_client.join();
    let _ = errors.join();
    drop(to_server);
    let mut r = launch.event("exit", Some(pid));
    let code = exit_code(&status, &mut r);
    recorder.record(r);
    recorder.close();
    code
}

fn start_record(launch: &Launch, pid: Option<u32>) -> Record {
    let mut r = launch.event("start", pid);
    if let Some(h) = crate::hostname() {
        r.set("host", h);
    }
    r.set("command", launch.argv.clone()).set("recorder_pid", std::process::id()).set("recorder", json!({"version": env!("CARGO_PKG_VERSION"), "host": crate::hostname(), "cwd": std::env::current_dir().ok().map(|d| d.display().to_string())}));
    if let Some(p) = package::requested(&launch.argv) {
        r.set("package", package::requested_json(&p));
    }
    r
}

/// Read the package's metadata once the server has had a moment to start
/// (npx installs before it runs the server).
fn resolve_package_later(launch: &Arc<Launch>, pid: u32, recorder: &Recorder) {
    let Some(pkg) = package::requested(&launch.argv) else { return };
    let (launch, recorder) = (launch.clone(), recorder.clone());
    let _ = thread::Builder::new().name("record-package".into()).spawn(move || {
        for wait_ms in [300u64, 1000, 3000, 10_000] {
            thread::sleep(Duration::from_millis(wait_ms));
            if let Some(found) = package::resolve(pid, &pkg) {
                let mut r = launch.event("package", Some(pid));
                r.set("package", json!({"name": found.name, "version": found.version, "from": found.from.display().to_string(), "requested_version": pkg.version}));
                recorder.record(r);
                return;
            }
        }
    });
}

/// Copy `from` to `to` chunk by chunk; each message completed by a chunk
/// is recorded before the chunk is written on.
fn pump(mut from: impl Read + Send + 'static, mut to: impl Write + Send + 'static, direction: &'static str, launch: Arc<Launch>, pid: u32, recorder: Recorder) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut lines = LineSplitter::default();
        let mut record = |f: Frame| {
            if f.bytes.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            let ctx = Context { direction, server: &launch.server, session: Some(&launch.session), pid: Some(pid), redact: launch.redact && direction == "client_to_server", extra: Map::new() };
            recorder.record(message_record(&f, ctx));
        };
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            lines.feed(&buf[..n], &mut record);
            if !recorder.may_forward() {
                eprintln!("mcp-forensics record: a record could not be written; not forwarding (--fail-closed)");
                std::process::exit(EXIT_FAIL_CLOSED);
            }
            if to.write_all(&buf[..n]).and_then(|_| to.flush()).is_err() {
                break;
            }
        }
        if let Some(rest) = lines.finish() {
            record(rest);
        }
        // Dropping `to` closes the server's stdin: it sees the client's EOF.
    })
}

/// The server's stderr goes to ours unchanged, and into `stderr` records.
fn stderr_pump(mut from: impl Read + Send + 'static, launch: Arc<Launch>, pid: u32, recorder: Recorder) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        let mut lines = LineSplitter::default();
        let mut err = std::io::stderr();
        let mut record = |f: Frame| {
            let text = String::from_utf8_lossy(&f.bytes[..f.bytes.len().min(16 * 1024)]).trim_end_matches(['\r', '\n']).to_string();
            let mut r = launch.event("stderr", Some(pid));
            r.set("text", text);
            if f.size > 16 * 1024 {
                r.set("size", f.size);
            }
            recorder.record(r);
        };
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let _ = err.write_all(&buf[..n]);
            lines.feed(&buf[..n], &mut record);
        }
        if let Some(rest) = lines.finish() {
            record(rest);
        }
    })
}

fn wait(child: &mut Child, recorder: &Recorder) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => {}
            Err(_) => return None,
        }
        if !recorder.may_forward() {
            let _ = child.kill();
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// How the server ended, noted in the `exit` record.
fn exit_code(status: &Option<ExitStatus>, r: &mut Record) -> Exit {
    let Some(status) = status else {
        r.set("code", serde_json::Value::Null);
        return Exit::Code(1);
    };
    if let Some(c) = status.code() {
        r.set("code", c);
        return Exit::Code(c);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            r.set("signal", sig);
            return Exit::Signal(sig);
        }
    }
    Exit::Code(1)
}

/// Signals the client sends the recorder (it stops its server with them)
/// are passed to the server; the recorder then ends with the server.
#[cfg(unix)]
mod signals {
    use std::sync::atomic::{AtomicI32, Ordering};

    static CHILD: AtomicI32 = AtomicI32::new(0);

    extern "C" fn forward(sig: libc::c_int) {
        let pid = CHILD.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) is async-signal-safe.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    pub fn forward_to(pid: u32) {
        CHILD.store(pid as i32, Ordering::SeqCst);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2] {
            // SAFETY: the handler only reads an atomic and calls kill(2).
            unsafe {
                libc::signal(sig, forward as *const () as libc::sighandler_t);
            }
        }
    }

    /// End the recorder the way its server ended: by the same signal.
    pub fn reraise(sig: i32) {
        // SAFETY: restoring the default action and raising a signal.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

#[cfg(not(unix))]
mod signals {
    pub fn forward_to(_pid: u32) {}
    pub fn reraise(_sig: i32) {}
}

/// Exit like the server did: with its code, or by its signal (128 + the
/// signal where it cannot be raised).
pub fn exit_like(exit: Exit) -> ! {
    match exit {
        Exit::Code(c) => std::process::exit(c),
        Exit::Signal(sig) => {
            signals::reraise(sig);
            std::process::exit(128 + sig)
        }
    }
}
