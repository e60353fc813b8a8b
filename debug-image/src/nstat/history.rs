//! nstat's history file: the counters as the previous run saw them, so the
//! next run can print increments.
//!
//! Same file, format and checks as iproute2's nstat, so the two tools can
//! share it: `$NSTAT_HISTORY`, else `/tmp/.nstat.u<uid>` (real uid); a
//! `#kernel` line, then `NAME VALUE RATE` lines in nstat's column layout;
//! opened with `O_NOFOLLOW`, created mode 0600, and trusted only when it is
//! a single-link file owned by us (a file in /tmp could be planted by
//! someone else). A history older than the last boot is discarded ("aged
//! out"), and one written by nstat's daemon (`#<pid>.<n> sampling_...`
//! instead of `#kernel`) is ignored as stale, both with nstat's messages.
//!
//! Unlike nstat, a history file that cannot be opened or trusted is not
//! fatal: a scratch container may have no /tmp at all, or one its non-root
//! user cannot write. The caller then shows absolute values and says so.
//! nstat also holds an `flock` while it reads and rewrites the file; the
//! agent does not (no safe lock API at our minimum Rust version), so two
//! runs at the same instant on one history may each see the other's
//! half-written file: at worst one run's increments are wrong.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The source name nstat writes for counters read from the kernel.
pub const KERNEL_SOURCE: &str = "kernel";

/// One recorded counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub value: u64,
}

/// A parsed history file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The last `#...` line without its `#`: `kernel` when a one-shot nstat
    /// (or the agent) wrote it.
    pub source: Option<String>,
    pub entries: Vec<Entry>,
}

/// A history line that is not `NAME VALUE [RATE]` (nstat stops there too).
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
}

/// Parses history text (nstat's `load_good_table`).
pub fn parse(text: &str) -> Result<History, ParseError> {
    let mut history = History::default();
    for (index, line) in text.lines().enumerate() {
        if let Some(source) = line.strip_prefix('#') {
            history.source = Some(source.to_owned());
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(name), Some(Ok(value))) = (fields.next(), fields.next().map(str::parse::<u64>))
        else {
            return Err(ParseError { line: index + 1 });
        };
        history.entries.push(Entry {
            name: name.to_owned(),
            value,
        });
    }
    Ok(history)
}

/// The file's text for `entries`: nstat's `#kernel` header and line layout
/// (its rate column is always 0.0 without its daemon), except that a name
/// of 32 characters or more keeps one space before its value. nstat's
/// `%-32s` would glue them together and its reader would then take the
/// rate for the value; no counter name is that long yet (31 at most).
pub fn format(entries: &[Entry]) -> String {
    let mut text = format!("#{KERNEL_SOURCE}\n");
    for e in entries {
        text.push_str(&format!("{:<31} {:<16}{:>6.1}\n", e.name, e.value, 0.0));
    }
    text
}

/// Where the history lives: `$NSTAT_HISTORY`, else `/tmp/.nstat.u<uid>`.
pub fn path(uid: Option<u32>) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("NSTAT_HISTORY") {
        return Ok(PathBuf::from(p));
    }
    uid.map(|uid| PathBuf::from(format!("/tmp/.nstat.u{uid}")))
        .ok_or_else(|| "cannot learn our user id from /proc/self/status".to_owned())
}

/// Our real user id, read from /proc/self/status (`Uid:` real, effective,
/// saved, filesystem) because std has no getuid and libc's is unsafe.
pub fn real_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_real_uid(&status)
}

fn parse_real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// nstat's "aged out" test: the file was last written before the machine
/// booted (`now >= mtime + uptime`), so its counters belong to a kernel
/// that no longer runs.
pub fn aged_out(modified_unix: i64, now_unix: i64, uptime_secs: i64) -> bool {
    now_unix >= modified_unix.saturating_add(uptime_secs)
}

/// Seconds since boot, whole (nstat reads `%ld` from /proc/uptime).
pub fn uptime_secs() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let first = text.split_whitespace().next()?;
    first.split('.').next()?.parse().ok()
}

/// The open history file.
pub struct HistoryFile {
    path: PathBuf,
    file: File,
    /// Last modification, seconds since the epoch.
    pub modified_unix: i64,
}

impl HistoryFile {
    /// Opens (creating if needed) and vets the file as nstat does. The
    /// error says why it cannot be used, for the one-line notice.
    pub fn open(path: &Path, uid: Option<u32>) -> Result<HistoryFile, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => "it is a symbolic link".to_owned(),
                _ => system_words(&e),
            })?;
        let meta = file.metadata().map_err(|e| system_words(&e))?;
        if meta.nlink() != 1 {
            return Err(format!("it has {} hard links", meta.nlink()));
        }
        if Some(meta.uid()) != uid {
            return Err(format!("it belongs to uid {}, not to us", meta.uid()));
        }
        Ok(HistoryFile {
            path: path.to_owned(),
            file,
            modified_unix: meta.mtime(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn read_text(&mut self) -> io::Result<String> {
        let mut text = String::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_string(&mut text)?;
        Ok(text)
    }

    /// Replaces the contents with `text`.
    pub fn replace(&mut self, text: &str) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(text.as_bytes())?;
        self.file.flush()
    }
}

/// The system's words for an error without std's " (os error N)" tail:
/// "Read-only file system".
fn system_words(e: &io::Error) -> String {
    let full = e.to_string();
    match full.rfind(" (os error ") {
        Some(tail) => full[..tail].to_owned(),
        None => full,
    }
}

/// Seconds since the epoch now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_formats() {
        let entries = vec![
            Entry {
                name: "IpInReceives".into(),
                value: 3213,
            },
            Entry {
                name: "TcpExtTCPDeliveredCEWithAVeryLongName".into(),
                value: u64::MAX,
            },
        ];
        let text = format(&entries);
        assert_eq!(
            text,
            "#kernel\n\
             IpInReceives                    3213               0.0\n\
             TcpExtTCPDeliveredCEWithAVeryLongName 18446744073709551615   0.0\n"
        );
        let back = parse(&text).unwrap();
        assert_eq!(back.source.as_deref(), Some("kernel"));
        assert_eq!(back.entries, entries);
    }

    #[test]
    fn parse_accepts_nstat_variants_and_rejects_garbage() {
        // Rate column optional; the last '#' line names the source.
        let h = parse("#123.4 sampling_interval=1 time_const=60\nIpInReceives 5\n").unwrap();
        assert_eq!(
            h.source.as_deref(),
            Some("123.4 sampling_interval=1 time_const=60")
        );
        assert_eq!(h.entries[0].value, 5);
        assert_eq!(parse("").unwrap(), History::default());
        assert_eq!(parse("#kernel\ngarbage\n"), Err(ParseError { line: 2 }));
        assert_eq!(
            parse("#kernel\nIpInReceives x 0.0\n"),
            Err(ParseError { line: 2 })
        );
        assert_eq!(parse("\n"), Err(ParseError { line: 1 }));
    }

    #[test]
    fn system_words_drop_the_errno_tail() {
        let e = io::Error::from_raw_os_error(libc::EROFS);
        assert_eq!(system_words(&e), "Read-only file system");
        assert_eq!(system_words(&io::Error::other("plain")), "plain");
    }

    #[test]
    fn real_uid_is_the_first_uid_field() {
        let status = "Name:\tnetdiag-agent\nUid:\t65532\t0\t0\t0\nGid:\t1\t1\t1\t1\n";
        assert_eq!(parse_real_uid(status), Some(65532));
        assert_eq!(parse_real_uid("Name: x\n"), None);
    }

    #[test]
    fn history_from_before_boot_is_aged_out() {
        // Booted 100 s ago at t=1000: a file written at 899 predates boot.
        assert!(aged_out(899, 1000, 100));
        assert!(aged_out(900, 1000, 100), "nstat's test is >=");
        assert!(!aged_out(901, 1000, 100));
    }

    #[test]
    fn default_path_uses_the_uid() {
        // Only meaningful when the variable is unset in the test's env.
        if std::env::var_os("NSTAT_HISTORY").is_none() {
            assert_eq!(
                path(Some(65532)).unwrap(),
                PathBuf::from("/tmp/.nstat.u65532")
            );
            assert!(path(None).is_err());
        }
    }

    #[test]
    fn open_refuses_symlinks_and_creates_private_files() {
        let dir = std::env::temp_dir().join(format!("nstat-hist-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let uid = real_uid();
        let target = dir.join("target");
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = HistoryFile::open(&link, uid).err().unwrap();
        assert_eq!(err, "it is a symbolic link");
        assert!(!target.exists(), "the link must not be followed");

        let fresh = dir.join("fresh");
        let mut h = HistoryFile::open(&fresh, uid).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o600);
        h.replace("#kernel\nIpInReceives 1 0.0\n").unwrap();
        h.replace("#kernel\n").unwrap();
        assert_eq!(h.read_text().unwrap(), "#kernel\n", "replace truncates");

        let other = HistoryFile::open(&fresh, uid.map(|u| u + 1)).err().unwrap();
        assert!(other.contains("not to us"), "{other}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
