//! From a snapshot and the previous run's history to the rows to print and
//! the history to keep: iproute2 nstat's `dump_incr_db` and `dump_kern_db`,
//! rule for rule, without any I/O.
//!
//! The rules worth knowing, all nstat's:
//! - A counter's increment is its value minus the history's; a value below
//!   the history's (the counter was reset) prints 0 marked `(overflow)`.
//!   A counter missing from the history shows its whole value.
//! - Zeros are hidden unless `-z`; a filtered-out counter is hidden.
//! - The new history records every counter at its current value, except
//!   those the filter hid, which keep their old history value, so a later
//!   unfiltered run still sees their whole increment. Zeros are recorded
//!   only with `-z`.
//! - The history is looked up with a cursor that only moves forward, as
//!   nstat walks its linked lists: both are in kernel order, so this finds
//!   every counter, and it reproduces nstat exactly on odd histories.
//!
//! The agent adds sources nstat lacks: gauges (sockstat, conntrack's
//! `entries`) are always shown as they are and never recorded; conntrack's
//! counters behave like every other counter.

use super::collect::{Kind, Sample, Snapshot};
use super::drops;
use super::glob::Glob;
use super::history::Entry;

/// Which values the run prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values {
    /// Each counter's current value (`-a`, or no usable history).
    Absolute,
    /// The growth since the history was written.
    Increments,
}

/// Which counters the run is about.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// nstat's PATTERN arguments; none means every counter.
    pub patterns: Vec<Glob>,
    /// `--drops`: only the counters of [`drops`].
    pub drops: bool,
    /// `-x` (or `-o json`): also the agent's extra sources.
    pub extended: bool,
}

impl Filter {
    /// Whether `sample` is shown (and so advances in the history).
    pub fn selects(&self, sample: &Sample) -> bool {
        let visible_source = sample.source.is_nstat()
            || self.extended
            // Conntrack's drop counters belong in the drops view even
            // without -x; the other conntrack values do not pass the
            // drops test below.
            || (self.drops && sample.source == super::collect::Source::Conntrack);
        visible_source
            && (!self.drops || drops::meaning(&sample.name).is_some())
            && (self.patterns.is_empty() || self.patterns.iter().any(|p| p.matches(&sample.name)))
    }
}

/// One line of output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row<'a> {
    pub sample: &'a Sample,
    /// The value to print: absolute or the increment.
    pub value: u64,
    /// The counter went backwards since the history was written.
    pub overflow: bool,
}

/// The rows to print, in snapshot order.
pub fn rows<'a>(
    snapshot: &'a Snapshot,
    history: &[Entry],
    values: Values,
    zeros: bool,
    filter: &Filter,
) -> Vec<Row<'a>> {
    let mut cursor = HistoryCursor::new(history);
    let mut out = Vec::new();
    for sample in &snapshot.samples {
        let mut value = sample.value;
        let mut overflow = false;
        if values == Values::Increments
            && sample.kind == Kind::Counter
            && let Some(old) = cursor.find(&sample.name)
        {
            if value < old {
                overflow = true;
                value = old;
            }
            value -= old;
        }
        if (!zeros && value == 0) || !filter.selects(sample) {
            continue;
        }
        out.push(Row {
            sample,
            value,
            overflow,
        });
    }
    out
}

/// The history to write after this run (nstat's `dump_kern_db(hist, 1)`).
pub fn next_history(
    snapshot: &Snapshot,
    history: &[Entry],
    zeros: bool,
    filter: &Filter,
) -> Vec<Entry> {
    let mut cursor = HistoryCursor::new(history);
    let mut out = Vec::new();
    for sample in snapshot.samples.iter().filter(|s| s.kind == Kind::Counter) {
        let mut value = sample.value;
        if !zeros && value == 0 {
            continue;
        }
        if !filter.selects(sample)
            && let Some(old) = cursor.find(&sample.name)
        {
            value = old;
        }
        out.push(Entry {
            name: sample.name.clone(),
            value,
        });
    }
    out
}

/// nstat's forward-only walk over the history list.
struct HistoryCursor<'h> {
    entries: &'h [Entry],
    next: usize,
}

impl<'h> HistoryCursor<'h> {
    fn new(entries: &'h [Entry]) -> Self {
        HistoryCursor { entries, next: 0 }
    }

    /// The value of `name` at or after the cursor; on a hit the cursor
    /// moves past it, on a miss it stays.
    fn find(&mut self, name: &str) -> Option<u64> {
        let offset = self.entries[self.next..]
            .iter()
            .position(|e| e.name == name)?;
        let entry = &self.entries[self.next + offset];
        self.next += offset + 1;
        Some(entry.value)
    }
}

#[cfg(test)]
mod tests {
    use super::super::collect::Source;
    use super::*;

    fn counter(name: &str, value: u64, source: Source) -> Sample {
        Sample {
            name: name.into(),
            value,
            source,
            kind: Kind::Counter,
        }
    }

    fn snap() -> Snapshot {
        Snapshot {
            samples: vec![
                counter("IpInReceives", 100, Source::Snmp),
                counter("IpInDiscards", 0, Source::Snmp),
                counter("TcpRetransSegs", 9, Source::Snmp),
                counter("TcpExtListenOverflows", 5, Source::Netstat),
                counter("TcpExtTCPHPHits", 3, Source::Netstat),
                counter("ConntrackDrop", 2, Source::Conntrack),
                counter("ConntrackFound", 40, Source::Conntrack),
                Sample {
                    name: "ConntrackEntries".into(),
                    value: 6,
                    source: Source::Conntrack,
                    kind: Kind::Gauge,
                },
                Sample {
                    name: "SockstatTcpInuse".into(),
                    value: 3,
                    source: Source::Sockstat,
                    kind: Kind::Gauge,
                },
            ],
        }
    }

    fn entry(name: &str, value: u64) -> Entry {
        Entry {
            name: name.into(),
            value,
        }
    }

    fn shown(rows: &[Row]) -> Vec<(String, u64, bool)> {
        rows.iter()
            .map(|r| (r.sample.name.clone(), r.value, r.overflow))
            .collect()
    }

    fn patterns(p: &[&str]) -> Filter {
        Filter {
            patterns: p.iter().map(|p| Glob::new(p).unwrap()).collect(),
            ..Filter::default()
        }
    }

    #[test]
    fn absolute_hides_zeros_and_extras_by_default() {
        let s = snap();
        let r = rows(&s, &[], Values::Absolute, false, &Filter::default());
        assert_eq!(
            shown(&r),
            [
                ("IpInReceives".into(), 100, false),
                ("TcpRetransSegs".into(), 9, false),
                ("TcpExtListenOverflows".into(), 5, false),
                ("TcpExtTCPHPHits".into(), 3, false),
            ]
        );
        let z = rows(&s, &[], Values::Absolute, true, &Filter::default());
        assert_eq!(z.len(), 5, "-z adds IpInDiscards");
    }

    #[test]
    fn increments_subtract_history_and_flag_counters_that_went_back() {
        let s = snap();
        let history = [
            entry("IpInReceives", 90),
            entry("TcpRetransSegs", 9),
            entry("TcpExtListenOverflows", 7),
            entry("ConntrackDrop", 1),
        ];
        let f = Filter {
            extended: true,
            ..Filter::default()
        };
        let r = rows(&s, &history, Values::Increments, true, &f);
        assert_eq!(
            shown(&r),
            [
                ("IpInReceives".into(), 10, false),
                ("IpInDiscards".into(), 0, false),
                ("TcpRetransSegs".into(), 0, false),
                // 5 < 7: the counter was reset; nstat prints 0 (overflow).
                ("TcpExtListenOverflows".into(), 0, true),
                // Not in the history: the whole value.
                ("TcpExtTCPHPHits".into(), 3, false),
                ("ConntrackDrop".into(), 1, false),
                ("ConntrackFound".into(), 40, false),
                // Gauges are never differenced.
                ("ConntrackEntries".into(), 6, false),
                ("SockstatTcpInuse".into(), 3, false),
            ]
        );
        // Without -z the zero increments go, the overflow's 0 included
        // (nstat tests the value, not the flag).
        let r = rows(&s, &history, Values::Increments, false, &f);
        assert!(!shown(&r).iter().any(|(_, v, _)| *v == 0));
        assert_eq!(r.len(), 6);
    }

    #[test]
    fn history_cursor_only_moves_forward_like_nstat() {
        // A history out of kernel order: matching IpInReceives moves the
        // cursor past TcpRetransSegs, which then reads as new.
        let s = snap();
        let history = [entry("TcpRetransSegs", 1), entry("IpInReceives", 99)];
        let r = rows(
            &s,
            &history,
            Values::Increments,
            false,
            &patterns(&["TcpRetrans*", "IpIn*"]),
        );
        assert_eq!(
            shown(&r),
            [
                ("IpInReceives".into(), 1, false),
                ("TcpRetransSegs".into(), 9, false),
            ]
        );
    }

    #[test]
    fn patterns_select_by_glob() {
        let s = snap();
        let r = rows(
            &s,
            &[],
            Values::Absolute,
            true,
            &patterns(&["Ip*", "*Overflows"]),
        );
        let names: Vec<String> = shown(&r).into_iter().map(|x| x.0).collect();
        assert_eq!(
            names,
            ["IpInReceives", "IpInDiscards", "TcpExtListenOverflows"]
        );
    }

    #[test]
    fn drops_view_keeps_only_loss_counters_including_conntrack() {
        let s = snap();
        let f = Filter {
            drops: true,
            ..Filter::default()
        };
        let r = rows(&s, &[], Values::Absolute, true, &f);
        let names: Vec<String> = shown(&r).into_iter().map(|x| x.0).collect();
        assert_eq!(
            names,
            [
                "IpInDiscards",
                "TcpRetransSegs",
                "TcpExtListenOverflows",
                "ConntrackDrop"
            ]
        );
        // Patterns narrow the drops view further.
        let f = Filter {
            drops: true,
            ..patterns(&["Tcp*"])
        };
        let names: Vec<String> = shown(&rows(&s, &[], Values::Absolute, true, &f))
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(names, ["TcpRetransSegs", "TcpExtListenOverflows"]);
    }

    #[test]
    fn next_history_advances_only_shown_counters() {
        let s = snap();
        let history = [
            entry("IpInReceives", 90),
            entry("TcpRetransSegs", 4),
            entry("ConntrackDrop", 1),
        ];
        let next = next_history(&s, &history, false, &patterns(&["Tcp*"]));
        assert_eq!(
            next,
            [
                // Hidden by the pattern: keeps its history value.
                entry("IpInReceives", 90),
                entry("TcpRetransSegs", 9),
                entry("TcpExtListenOverflows", 5),
                // Hidden, not in history: recorded at its current value.
                entry("TcpExtTCPHPHits", 3),
                // Hidden (no -x): keeps its history value.
                entry("ConntrackDrop", 1),
                entry("ConntrackFound", 40),
            ]
        );
        // Zeros only with -z; gauges never.
        let with_zeros = next_history(&s, &[], true, &Filter::default());
        assert!(with_zeros.iter().any(|e| e.name == "IpInDiscards"));
        assert!(!with_zeros.iter().any(|e| e.name.starts_with("Sockstat")));
        assert!(!with_zeros.iter().any(|e| e.name == "ConntrackEntries"));
    }
}
