//! `nstat`: the kernel's protocol counters as seen from inside the pod's
//! network namespace, like iproute2's nstat 6.1, plus a `--drops` view.
//!
//! parse ([`args`]) → run (read the history file, [`history`]; read /proc,
//! [`collect`]; compute rows and the next history, [`report`]) → render
//! ([`render`]). The pieces that decide what is printed do no I/O and are
//! tested on fixtures.
//!
//! # Compatibility with iproute2 nstat
//!
//! Same sources and order (/proc/net/sctp/snmp, snmp, snmp6, netstat), same
//! names (`TcpExtListenOverflows`), same PATTERN globs, same text columns
//! and `#kernel` header, same `-j`/`-p` JSON, and the same history file and
//! rules (`$NSTAT_HISTORY` or `/tmp/.nstat.u<uid>`; increments by default,
//! `-a` absolute, `-s` no update, `-n` update only, `-r` reset), so
//! `nstat -az` prints byte for byte what the real tool prints. The rate
//! column is always `0.0`: nstat computes rates only in its daemon
//! (`-d`), which the agent does not run. Differences: when the history file
//! cannot be used (no /tmp in a scratch image, not writable by uid 65532,
//! a symlink, someone else's file) the agent prints absolute values and says
//! so once on stderr instead of failing; a malformed PATTERN is an error
//! instead of matching nothing; errors exit 1, not 255.
//!
//! # Additions
//!
//! - `--drops`: only the counters that mean loss, overflow or
//!   retransmission ([`drops`]), each followed by two spaces and a one-line
//!   meaning. It filters like a pattern: combines with patterns, `-a`,
//!   `-z`, and the history (a counter it hides keeps its history value).
//! - `-x/--extended`: also the agent's extra sources, after nstat's:
//!   - conntrack statistics from /proc/net/stat/nf_conntrack, present when
//!     the nf_conntrack module is loaded. The file has one row per CPU with
//!     every column in hex; each column becomes `Conntrack` + the column in
//!     CamelCase (`insert_failed` → `ConntrackInsertFailed`, `drop` →
//!     `ConntrackDrop`, `early_drop` → `ConntrackEarlyDrop`), the sum over
//!     all CPUs. `entries` (`ConntrackEntries`) is the namespace's current
//!     number of tracked connections, repeated on every row: it is taken
//!     once, not summed. The drops among them (`Invalid`, `InsertFailed`,
//!     `Drop`, `EarlyDrop`, `Chainlength`) are in `--drops` without `-x`.
//!   - socket counts from /proc/net/sockstat and sockstat6, as
//!     `Sockstat` + protocol + field (`SockstatTcpInuse`, `SockstatTcpTw`,
//!     `SockstatTcpMem` (pages), `SockstatUdpLiteInuse`,
//!     `SockstatTcp6Inuse`, `SockstatSocketsUsed`).
//!
//!   `ConntrackEntries` and the sockstat values are gauges: always printed
//!   as they are (never as increments) and never written to the history.
//!   Conntrack's counters are counters like nstat's, history included.
//! - `-o json`: one JSON document on one line, every counter including
//!   zeros and the extra sources (so `-o json` implies `-z -x` for the
//!   output; only a typed `-z` records zeros in the history), filtered by
//!   patterns and `--drops`:
//!
//! ```text
//! {
//!   "values": "increments",          // or "absolute" (-a, or no usable history)
//!   "history_file": "/tmp/.nstat.u0", // null when none was usable
//!   "interval_seconds": 12,           // since the history was written; null for absolute
//!   "counters": [
//!     {"name": "TcpExtListenOverflows", "value": 3,
//!      "source": "netstat",   // sctp_snmp|snmp|snmp6|netstat|conntrack|sockstat|sockstat6
//!      "kind": "counter",     // or "gauge"
//!      "overflow": true,      // only when the counter went backwards
//!      "meaning": "..."}      // only with --drops
//!   ]
//! }
//! ```
//!
//! Environment: `NSTAT_HISTORY`; `PROC_ROOT` and nstat's per-file
//! overrides (see [`collect`]), which also let tests run on fixtures.

mod args;
mod collect;
mod drops;
mod glob;
mod history;
mod render;
mod report;

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use crate::cli::{self, Failure};
use args::{Format, Options};
use history::{Entry, HistoryFile};
use report::Values;

const TOOL: &str = "nstat";

pub fn main(args: Vec<OsString>) -> ExitCode {
    cli::finish(TOOL, run(args))
}

fn run(args: Vec<OsString>) -> Result<u8, Failure> {
    let options = args::parse(args)?;
    let mut history = open_history(&options)?;

    let texts = collect::SourcePaths::from_env().read()?;
    let (snapshot, warning) = collect::snapshot(&texts);
    if let Some(w) = warning {
        eprintln!("{TOOL}: {w}");
    }

    let previous: &[Entry] = history.as_ref().map_or(&[], |h| &h.previous);
    if options.print {
        // nstat prints increments only when a non-empty history was read.
        let values = if options.ignore_history || previous.is_empty() {
            Values::Absolute
        } else {
            Values::Increments
        };
        let rows = report::rows(
            &snapshot,
            previous,
            values,
            options.show_zeros,
            &options.filter,
        );
        let mut out = BufWriter::new(io::stdout().lock());
        match options.format {
            Format::Text => render::text(&mut out, &rows, options.filter.drops)?,
            Format::NstatJson { pretty } => render::nstat_json(&mut out, &rows, pretty)?,
            Format::Json => {
                let file = history
                    .as_ref()
                    .map(|h| h.file.path().display().to_string());
                let interval = history
                    .as_ref()
                    .map(|h| history::now_unix() - h.file.modified_unix);
                let doc =
                    render::Document::new(&rows, values, file, interval, options.filter.drops);
                render::json(&mut out, &doc)?;
            }
        }
        out.flush()?;
    }

    if options.update_history
        && let Some(h) = history.as_mut()
    {
        let next = report::next_history(
            &snapshot,
            &h.previous,
            options.record_zeros,
            &options.filter,
        );
        if let Err(e) = h.file.replace(&history::format(&next)) {
            let path = h.file.path().display();
            if options.print {
                eprintln!("{TOOL}: cannot update history file {path}: {e}");
            } else {
                return Err(Failure::msg(format!(
                    "cannot update history file {path}: {e}; set NSTAT_HISTORY to a writable file"
                )));
            }
        }
    }
    Ok(0)
}

/// The history file, open, with what it held.
struct OpenHistory {
    file: HistoryFile,
    /// The counters of the previous run; empty when there was none or it
    /// was discarded (aged out, stale).
    previous: Vec<Entry>,
}

/// Resets, opens and reads the history as nstat does, printing nstat's own
/// notices. `None` when the run does without one: `-a -s`, or a file that
/// cannot be used (noticed once on stderr; fatal only for `-n`, whose whole
/// job is the history).
fn open_history(options: &Options) -> Result<Option<OpenHistory>, Failure> {
    let uid = history::real_uid();
    let path = history::path(uid);
    if options.reset_history
        && let Ok(p) = &path
    {
        // As nstat: a missing file is already reset.
        let _ = std::fs::remove_file(p);
    }
    if !options.uses_history() {
        return Ok(None);
    }
    let opened = path.and_then(|p| {
        HistoryFile::open(&p, uid).map_err(|why| format!("history file {} ({why})", p.display()))
    });
    let mut file = match opened {
        Ok(file) => file,
        Err(why) if options.print => {
            let shown = if options.ignore_history {
                "values are absolute as asked"
            } else {
                "showing absolute values, as with -a"
            };
            eprintln!("{TOOL}: cannot use {why}; {shown}, and no history is kept");
            return Ok(None);
        }
        Err(why) => {
            return Err(Failure::msg(format!(
                "cannot use {why}; set NSTAT_HISTORY to a file this user may write"
            )));
        }
    };

    let mut aged_out = false;
    if !options.ignore_history
        && let Some(uptime) = history::uptime_secs()
        && history::aged_out(file.modified_unix, history::now_unix(), uptime)
    {
        eprintln!("{TOOL}: history is aged out, resetting");
        aged_out = true;
    }
    let text = if aged_out {
        // nstat truncates it there and then, even with -s.
        if let Err(e) = file.replace("") {
            eprintln!(
                "{TOOL}: cannot reset history file {}: {e}",
                file.path().display()
            );
        }
        String::new()
    } else {
        file.read_text().map_err(|e| {
            Failure::msg(format!(
                "cannot read history file {}: {e}",
                file.path().display()
            ))
        })?
    };
    let parsed = history::parse(&text).map_err(|e| {
        Failure::msg(format!(
            "history file {} line {} is not 'NAME VALUE [RATE]'; remove it or run 'nstat -r'",
            file.path().display(),
            e.line
        ))
    })?;
    let stale = !parsed.entries.is_empty()
        && parsed
            .source
            .as_deref()
            .is_some_and(|s| !s.is_empty() && s != history::KERNEL_SOURCE);
    let previous = if stale {
        eprintln!("{TOOL}: history is stale, ignoring it.");
        Vec::new()
    } else {
        parsed.entries
    };
    Ok(Some(OpenHistory { file, previous }))
}
