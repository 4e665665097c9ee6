//! Live progress of an ingest on stderr: a bar in a terminal, JSON lines for
//! scheduled jobs (`--progress-json`), nothing in a pipe or with `--quiet`.
//!
//! The ingest updates atomic counters ([`IngestProgress`]); a thread here
//! reads them ten times a second, so drawing never slows parsing and a
//! progress display can never change what is written.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mcpf_detect::output::terminal_safe;
use mcpf_detect::DetectProgress;
use mcpf_lake::IngestProgress;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    Bar,
    Json,
}

impl Mode {
    /// A bar only when stderr is a terminal and the user did not ask for quiet.
    pub fn choose(quiet: bool, json: bool) -> Mode {
        if json {
            Mode::Json
        } else if quiet || !std::io::stderr().is_terminal() {
            Mode::Off
        } else {
            Mode::Bar
        }
    }
}

/// The display thread of one ingest; [`Display::finish`] stops it.
pub struct Display {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Display {
    /// Start showing `p` (nothing happens in [`Mode::Off`]).
    pub fn start(mode: Mode, p: Arc<IngestProgress>, color: bool) -> Display {
        let done = Arc::new(AtomicBool::new(false));
        let thread = match mode {
            Mode::Off => None,
            Mode::Bar => {
                let d = done.clone();
                std::thread::Builder::new().name("mcpf-progress".into()).spawn(move || draw_bar(&p, &d, color)).ok()
            }
            Mode::Json => {
                let d = done.clone();
                std::thread::Builder::new().name("mcpf-progress".into()).spawn(move || write_json(&p, &d)).ok()
            }
        };
        Display { done, thread }
    }

    /// Show a detection run's rules as they run (a spinner; detections have
    /// no JSON progress).
    pub fn start_detect(mode: Mode, p: Arc<DetectProgress>) -> Display {
        let done = Arc::new(AtomicBool::new(false));
        let thread = (mode == Mode::Bar).then(|| {
            let d = done.clone();
            std::thread::Builder::new().name("mcpf-progress".into()).spawn(move || draw_rules(&p, &d)).ok()
        });
        Display { done, thread: thread.flatten() }
    }

    /// Stop and clear the display before the summary is printed.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop();
    }
}

fn draw_bar(p: &IngestProgress, done: &AtomicBool, color: bool) {
    let template = if color {
        "{spinner:.green} {elapsed_precise} [{bar:25.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}"
    } else {
        "{spinner} {elapsed_precise} [{bar:25}] {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}"
    };
    let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10)).with_style(style);
    let start = Instant::now();
    while !done.load(Ordering::Relaxed) {
        let total_bytes = p.bytes_total.load(Ordering::Relaxed);
        if total_bytes == 0 {
            // Inputs not expanded yet: nothing to draw a bar of.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        bar.set_length(total_bytes);
        bar.set_position(p.bytes_done.load(Ordering::Relaxed));
        let lines = p.lines.load(Ordering::Relaxed);
        let rate = lines as f64 / start.elapsed().as_secs_f64().max(1e-3);
        let current = p.current();
        // The file name matters most; the bar is cut to the terminal's width.
        let name = std::path::Path::new(&current).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(current);
        let total = p.sources_total.load(Ordering::Relaxed);
        bar.set_message(format!(
            "{} lines ({}/s) file {}/{total} {}",
            HumanCount(lines),
            HumanCount(rate as u64),
            (p.sources_done.load(Ordering::Relaxed) + 1).min(total.max(1)),
            short(&terminal_safe(&name), 40)
        ));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

fn draw_rules(p: &DetectProgress, done: &AtomicBool) {
    let style = ProgressStyle::with_template("{spinner} {elapsed_precise} rule {pos}/{len} {wide_msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10)).with_style(style);
    while !done.load(Ordering::Relaxed) {
        bar.set_length(p.rules_total.load(Ordering::Relaxed) as u64);
        bar.set_position(p.rules_done.load(Ordering::Relaxed) as u64);
        bar.set_message(terminal_safe(&p.current.lock().unwrap_or_else(|e| e.into_inner())));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

/// The last `max` characters of a path (its file name matters most).
fn short(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        s.to_string()
    } else {
        format!("…{}", s.chars().skip(n - max + 1).collect::<String>())
    }
}

/// One JSON object per second on stderr, and a last one when the run ends.
fn write_json(p: &IngestProgress, done: &AtomicBool) {
    let start = Instant::now();
    let mut last = Instant::now() - Duration::from_secs(1);
    loop {
        let finished = done.load(Ordering::Relaxed);
        if finished || last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            let record = serde_json::json!({
                "event": "progress",
                "elapsed_s": (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
                "bytes_done": p.bytes_done.load(Ordering::Relaxed),
                "bytes_total": p.bytes_total.load(Ordering::Relaxed),
                "lines": p.lines.load(Ordering::Relaxed),
                "sources_done": p.sources_done.load(Ordering::Relaxed),
                "sources_total": p.sources_total.load(Ordering::Relaxed),
                "current": p.current(),
            });
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{record}");
        }
        if finished {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
