//! pcap savefiles (`-r`, `-w`), encoded and decoded by the pcap-file crate.
//!
//! The reader takes the raw records (`next_raw_packet`) and checks them
//! itself, because pcap-file's checked path rejects a record whose original
//! length exceeds the file's snap length — which is every packet of a
//! capture made with `-s 96`. The writer writes the header and records
//! with pcap-file's encoders into a buffer we own, so `-U` can flush after
//! each packet (pcap-file's own writer cannot be flushed).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::time::Duration;

use std::cell::RefCell;
use std::rc::Rc;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

/// One packet: when, how long it was on the wire, and the bytes kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub ts: Duration,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// A packet as the sinks take it: borrowed, from the capture ring or a
/// file, so that nothing is copied on the way to the printer or the pcap
/// writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub ts: Duration,
    pub orig_len: u32,
    pub data: &'a [u8],
}

impl Packet {
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            ts: self.ts,
            orig_len: self.orig_len,
            data: &self.data,
        }
    }
}

/// A pcap file being read.
pub struct Reader {
    inner: PcapReader<Box<dyn Read>>,
    linktype: u32,
    resolution: TsResolution,
    snaplen: u32,
}

impl Reader {
    /// Opens `path` (`-` for stdin).
    pub fn open(path: &str) -> Result<Reader, String> {
        let source: Box<dyn Read> = if path == "-" {
            Box::new(io::stdin())
        } else {
            let f = File::open(path).map_err(|e| format!("{path}: {e}"))?;
            Box::new(BufReader::with_capacity(256 * 1024, f))
        };
        Reader::new(source).map_err(|e| format!("{path}: {e}"))
    }

    pub fn new(source: Box<dyn Read>) -> Result<Reader, String> {
        let inner = PcapReader::new(source).map_err(|e| match e {
            pcap_file::PcapError::IncompleteBuffer => "file is empty or too short for a pcap header".to_owned(),
            pcap_file::PcapError::InvalidField(f) => {
                format!("not a pcap file ({f}); pcapng is not supported, convert it with 'editcap -F pcap'")
            }
            e => format!("not a readable pcap file ({e})"),
        })?;
        let header = inner.header();
        Ok(Reader {
            linktype: u32::from(header.datalink),
            resolution: header.ts_resolution,
            snaplen: header.snaplen,
            inner,
        })
    }

    /// The file's link type (LINKTYPE_*).
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The snap length in the file header.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// The next packet, `None` at the end of the file.
    pub fn next_packet(&mut self) -> Option<Result<Packet, String>> {
        let raw = match self.inner.next_raw_packet()? {
            Ok(raw) => raw,
            Err(pcap_file::PcapError::IncompleteBuffer) => {
                return Some(Err(
                    "truncated dump file; the last packet is cut short".into()
                ));
            }
            Err(e) => return Some(Err(format!("bad packet record ({e})"))),
        };
        let nanos = match self.resolution {
            TsResolution::MicroSecond => raw.ts_frac.checked_mul(1000),
            TsResolution::NanoSecond => Some(raw.ts_frac),
        };
        let Some(nanos) = nanos.filter(|n| *n < 1_000_000_000) else {
            return Some(Err(format!(
                "bad packet record (fraction of second {})",
                raw.ts_frac
            )));
        };
        if raw.incl_len as usize != raw.data.len() {
            return Some(Err("bad packet record (length)".into()));
        }
        Some(Ok(Packet {
            ts: Duration::new(u64::from(raw.ts_sec), nanos),
            // Some writers leave orig_len below the captured length.
            orig_len: raw.orig_len.max(raw.incl_len),
            data: raw.data.into_owned(),
        }))
    }
}

/// A pcap file being written (microsecond timestamps, native byte order,
/// like tcpdump's).
pub struct Writer {
    inner: PcapWriter<SharedSink>,
    /// The same buffer as `inner`'s, for flushing.
    sink: SharedSink,
    snaplen: u32,
    flush_each: bool,
}

/// The writer's buffered output, shared with us so it can be flushed.
#[derive(Clone)]
struct SharedSink(Rc<RefCell<BufWriter<Box<dyn Write + Send>>>>);

impl Write for SharedSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(b)
    }
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().write_all(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

impl Writer {
    /// Creates `path` (`-` for stdout) and writes the file header.
    pub fn create(
        path: &str,
        linktype: u32,
        snaplen: u32,
        flush_each: bool,
    ) -> Result<Writer, String> {
        let sink: Box<dyn Write + Send> = if path == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(File::create(path).map_err(|e| format!("{path}: {e}"))?)
        };
        Writer::new(sink, linktype, snaplen, flush_each).map_err(|e| format!("{path}: {e}"))
    }

    pub fn new(
        sink: Box<dyn Write + Send>,
        linktype: u32,
        snaplen: u32,
        flush_each: bool,
    ) -> io::Result<Writer> {
        let sink = SharedSink(Rc::new(RefCell::new(BufWriter::with_capacity(
            256 * 1024,
            sink,
        ))));
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen,
            datalink: DataLink::from(linktype),
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::native(),
        };
        let inner = PcapWriter::with_header(sink.clone(), header).map_err(into_io)?;
        let mut w = Writer {
            inner,
            sink,
            snaplen,
            flush_each,
        };
        if flush_each {
            w.flush()?;
        }
        Ok(w)
    }

    /// Appends one packet (cut to the file's snap length).
    pub fn write(&mut self, p: &Frame<'_>) -> io::Result<()> {
        let keep = p.data.len().min(self.snaplen as usize);
        let packet = PcapPacket::new(p.ts, p.orig_len.max(keep as u32), &p.data[..keep]);
        self.inner.write_packet(&packet).map_err(into_io)?;
        if self.flush_each {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

fn into_io(e: pcap_file::PcapError) -> io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        e => io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A `Write` the test can look into afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn round_trip_keeps_times_lengths_and_bytes() {
        let buf = Shared::default();
        let mut w = Writer::new(Box::new(buf.clone()), 1, 96, true).unwrap();
        let packets = [
            Packet {
                ts: Duration::new(1_700_000_000, 123_456_000),
                orig_len: 60,
                data: vec![7; 60],
            },
            Packet {
                ts: Duration::new(5, 0),
                orig_len: 1514,
                data: vec![1; 200],
            },
        ];
        for p in &packets {
            w.write(&p.frame()).unwrap();
        }
        let bytes = buf.0.lock().unwrap().clone();
        // Flushed per packet: everything is there without dropping `w`.
        assert_eq!(bytes.len(), 24 + 16 + 60 + 16 + 96);
        let mut r = Reader::new(Box::new(io::Cursor::new(bytes))).unwrap();
        assert_eq!(r.linktype(), 1);
        assert_eq!(r.next_packet().unwrap().unwrap(), packets[0]);
        let second = r.next_packet().unwrap().unwrap();
        assert_eq!(second.orig_len, 1514);
        assert_eq!(second.data, vec![1; 96]);
        assert!(r.next_packet().is_none());
    }

    #[test]
    fn bad_files_are_named() {
        assert!(Reader::new(Box::new(io::Cursor::new(Vec::new()))).is_err());
        assert!(
            Reader::new(Box::new(io::Cursor::new(vec![0u8; 64])))
                .err()
                .unwrap()
                .contains("not a pcap file")
        );
    }
}
