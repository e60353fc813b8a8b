//! Timestamps in tcpdump's `-t` formats, in UTC.

use std::fmt::Write as _;
use std::time::Duration;

use super::super::args::TimeFormat;
use super::Out;
use crate::calendar::civil_from_days;

fn hms(secs: u64, out: &mut Out) {
    let s = secs % 86_400;
    let _ = write!(out, "{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60);
}

/// A signed difference of two times: tcpdump prints a sign.
fn delta(now: Duration, then: Duration, out: &mut Out) {
    let (sign, d) = if now >= then {
        (' ', now - then)
    } else {
        ('-', then - now)
    };
    out.push(sign);
    hms(d.as_secs(), out);
    let _ = write!(out, ".{:06} ", d.subsec_micros());
}

/// Appends the timestamp and its separating space (nothing for `-t`).
pub fn format(
    fmt: TimeFormat,
    ts: Duration,
    previous: Option<Duration>,
    first: Option<Duration>,
    out: &mut Out,
) {
    match fmt {
        TimeFormat::None => {}
        TimeFormat::Time => {
            hms(ts.as_secs(), out);
            let _ = write!(out, ".{:06} ", ts.subsec_micros());
        }
        TimeFormat::Epoch => {
            let _ = write!(out, "{}.{:06} ", ts.as_secs(), ts.subsec_micros());
        }
        TimeFormat::DateTime => {
            let secs = ts.as_secs();
            let (y, m, d) = civil_from_days((secs / 86_400) as i64);
            let _ = write!(out, "{y:04}-{m:02}-{d:02} ");
            hms(secs, out);
            let _ = write!(out, ".{:06} ", ts.subsec_micros());
        }
        TimeFormat::Delta => delta(ts, previous.unwrap_or(ts), out),
        TimeFormat::SinceFirst => delta(ts, first.unwrap_or(ts), out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let ts = Duration::new(1_795_464_830, 377_074_000);
        let mut s = String::new();
        format(TimeFormat::Time, ts, None, None, &mut s);
        assert_eq!(s, "20:13:50.377074 ");
        s.clear();
        format(TimeFormat::DateTime, ts, None, None, &mut s);
        assert_eq!(s, "2026-11-23 20:13:50.377074 ");
        s.clear();
        format(TimeFormat::Epoch, ts, None, None, &mut s);
        assert_eq!(s, "1795464830.377074 ");
        s.clear();
        let later = ts + Duration::from_micros(76_048);
        format(TimeFormat::Delta, later, Some(ts), None, &mut s);
        assert_eq!(s, " 00:00:00.076048 ");
    }
}
