//! Printing the rows: nstat's text layout, nstat's `-j` JSON, and the
//! agent's `-o json` document (its shape is in the [module doc](super)).
//!
//! nstat prints each counter as `%-32s%-16llu%6.1f`: the name padded to 32
//! columns, the value to 16, then the rate with one decimal right-aligned
//! in 6. The rate comes from nstat's daemon only, so a one-shot run (the
//! only kind the agent does) always prints `0.0`. Long names and values
//! are not cut, they push the rest of the line right.

use std::io::{self, Write};

use serde::Serialize;

use super::collect::{Kind, Source};
use super::drops;
use super::history::KERNEL_SOURCE;
use super::report::{Row, Values};

/// One counter in nstat's layout, with `suffix` before the newline.
pub fn counter_line(name: &str, value: u64, suffix: &str) -> String {
    format!("{name:<32}{value:<16}{:>6.1}{suffix}\n", 0.0)
}

/// nstat's text output; with `meanings` (the drops view) each line ends
/// with two spaces and the counter's meaning.
pub fn text(out: &mut impl Write, rows: &[Row], meanings: bool) -> io::Result<()> {
    writeln!(out, "#{KERNEL_SOURCE}")?;
    for row in rows {
        let mut suffix = String::new();
        if row.overflow {
            suffix.push_str(" (overflow)");
        }
        if meanings && let Some(m) = drops::meaning(&row.sample.name) {
            suffix.push_str("  ");
            suffix.push_str(m);
        }
        out.write_all(counter_line(&row.sample.name, row.value, &suffix).as_bytes())?;
    }
    Ok(())
}

/// nstat's `-j`: `{"kernel":{"Name":value,...}}` in kernel order, and with
/// `-p` its json_writer's layout (4-space indent, `"key": value`).
pub fn nstat_json(out: &mut impl Write, rows: &[Row], pretty: bool) -> io::Result<()> {
    /// Serialises the counters as one object, keeping their order (a
    /// serde_json `Map` would sort them).
    struct Counters<'r, 'a>(&'r [Row<'a>]);
    impl Serialize for Counters<'_, '_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for row in self.0 {
                map.serialize_entry(&row.sample.name, &row.value)?;
            }
            map.end()
        }
    }
    struct Document<'r, 'a>(&'r [Row<'a>]);
    impl Serialize for Document<'_, '_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry(KERNEL_SOURCE, &Counters(self.0))?;
            map.end()
        }
    }
    let document = Document(rows);
    if pretty {
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut *out, formatter);
        document
            .serialize(&mut serializer)
            .map_err(io::Error::other)?;
    } else {
        serde_json::to_writer(&mut *out, &document).map_err(io::Error::other)?;
    }
    writeln!(out)
}

/// What `-o json` prints.
#[derive(Serialize)]
pub struct Document<'a> {
    /// `"increments"` or `"absolute"`.
    pub values: &'static str,
    /// The history file read and/or written, `null` when none was usable.
    pub history_file: Option<String>,
    /// For increments: seconds since the history was written.
    pub interval_seconds: Option<i64>,
    pub counters: Vec<JsonCounter<'a>>,
}

#[derive(Serialize)]
pub struct JsonCounter<'a> {
    pub name: &'a str,
    pub value: u64,
    pub source: Source,
    pub kind: Kind,
    /// Only present (and then `true`) when the counter went backwards.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub overflow: bool,
    /// Only in the drops view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meaning: Option<&'static str>,
}

impl<'a> Document<'a> {
    pub fn new(
        rows: &[Row<'a>],
        values: Values,
        history_file: Option<String>,
        interval_seconds: Option<i64>,
        meanings: bool,
    ) -> Document<'a> {
        Document {
            values: match values {
                Values::Absolute => "absolute",
                Values::Increments => "increments",
            },
            history_file,
            interval_seconds: interval_seconds.filter(|_| values == Values::Increments),
            counters: rows
                .iter()
                .map(|row| JsonCounter {
                    name: &row.sample.name,
                    value: row.value,
                    source: row.sample.source,
                    kind: row.sample.kind,
                    overflow: row.overflow,
                    meaning: meanings.then(|| drops::meaning(&row.sample.name)).flatten(),
                })
                .collect(),
        }
    }
}

/// Writes the document compactly on one line.
pub fn json(out: &mut impl Write, document: &Document) -> io::Result<()> {
    serde_json::to_writer(&mut *out, document).map_err(io::Error::other)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::super::collect::Sample;
    use super::*;

    fn sample(name: &str, value: u64) -> Sample {
        Sample {
            name: name.into(),
            value,
            source: Source::Netstat,
            kind: Kind::Counter,
        }
    }

    fn render_text(rows: &[Row], meanings: bool) -> String {
        let mut out = Vec::new();
        text(&mut out, rows, meanings).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_columns_match_nstat() {
        let a = sample("IpInReceives", 3213);
        let b = sample("TcpExtTCPDeliveredCE", 0);
        let long = sample("MPTcpExtMPCapableFallbackSYNACKXX", 12345678901234567890);
        let rows = [
            Row {
                sample: &a,
                value: 3213,
                overflow: false,
            },
            Row {
                sample: &b,
                value: 0,
                overflow: true,
            },
            Row {
                sample: &long,
                value: 12345678901234567890,
                overflow: false,
            },
        ];
        assert_eq!(
            render_text(&rows, false),
            "#kernel\n\
             IpInReceives                    3213               0.0\n\
             TcpExtTCPDeliveredCE            0                  0.0 (overflow)\n\
             MPTcpExtMPCapableFallbackSYNACKXX12345678901234567890   0.0\n"
        );
    }

    #[test]
    fn drops_text_appends_the_meaning() {
        let s = sample("TcpExtListenOverflows", 7);
        let rows = [Row {
            sample: &s,
            value: 7,
            overflow: false,
        }];
        let text = render_text(&rows, true);
        let line = text.lines().nth(1).unwrap();
        assert!(line.starts_with("TcpExtListenOverflows           7                  0.0  connections dropped: a listener's accept queue was full"), "{line}");
    }

    #[test]
    fn nstat_json_compact_and_pretty() {
        let a = sample("IpInReceives", 1);
        let b = sample("Ip6InOctets", 128);
        let rows = [
            Row {
                sample: &a,
                value: 1,
                overflow: false,
            },
            Row {
                sample: &b,
                value: 128,
                overflow: false,
            },
        ];
        let mut out = Vec::new();
        nstat_json(&mut out, &rows, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"kernel\":{\"IpInReceives\":1,\"Ip6InOctets\":128}}\n"
        );
        let mut out = Vec::new();
        nstat_json(&mut out, &rows, true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n    \"kernel\": {\n        \"IpInReceives\": 1,\n        \"Ip6InOctets\": 128\n    }\n}\n"
        );
        let mut out = Vec::new();
        nstat_json(&mut out, &[], true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n    \"kernel\": {}\n}\n"
        );
    }

    #[test]
    fn our_json_document_shape() {
        let s = sample("TcpExtListenOverflows", 3);
        let rows = [Row {
            sample: &s,
            value: 2,
            overflow: false,
        }];
        let doc = Document::new(
            &rows,
            Values::Increments,
            Some("/tmp/h".into()),
            Some(5),
            true,
        );
        let mut out = Vec::new();
        json(&mut out, &doc).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["values"], "increments");
        assert_eq!(v["history_file"], "/tmp/h");
        assert_eq!(v["interval_seconds"], 5);
        let c = &v["counters"][0];
        assert_eq!(c["name"], "TcpExtListenOverflows");
        assert_eq!(c["value"], 2);
        assert_eq!(c["source"], "netstat");
        assert_eq!(c["kind"], "counter");
        assert!(c.get("overflow").is_none());
        assert!(c["meaning"].as_str().unwrap().contains("accept queue"));
        let doc = Document::new(&rows, Values::Absolute, None, Some(5), false);
        let v = serde_json::to_value(&doc).unwrap();
        assert!(v["interval_seconds"].is_null() && v["history_file"].is_null());
        assert!(v["counters"][0].get("meaning").is_none());
    }
}
