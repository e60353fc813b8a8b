//! Timestamps in tcpdump's `-t` formats, in UTC.

use std::fmt::Write as _;
use std::time::Duration;

use super::super::args::TimeFormat;
use super::Out;

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

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
            let (y, m, d) = civil((secs / 86_400) as i64);
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
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
    }
}
