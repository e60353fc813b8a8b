//! The start-up spinner: on stderr, and only when stderr is a terminal,
//! so pipes and logs stay clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new() -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress { bar: Some(bar) }
    }

    pub fn phase(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_owned());
        }
    }

    /// Removes the spinner before the tool's output starts.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `NETDIAG_TRACE=1`: one stderr line per phase with the time since start,
/// for benchmarks and for users asking where the seconds went.
pub fn trace(phase: &str) {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    static ENABLED: OnceLock<bool> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    if *ENABLED.get_or_init(|| std::env::var_os("NETDIAG_TRACE").is_some()) {
        eprintln!(
            "netdiag-trace: {phase} {:.1} ms",
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
}
