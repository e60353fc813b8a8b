//! Where packets go: a pcap file (`-w`) or the text printer.

use std::io::{self, BufWriter, Stdout, Write};

use super::print::Printer;
use super::savefile::{Frame, Writer};
use crate::cli::Failure;

pub trait Sink {
    fn packet(&mut self, p: &Frame<'_>) -> Result<(), Failure>;
    /// Makes everything so far visible (end of a batch from the ring).
    fn flush(&mut self) -> Result<(), Failure>;
}

/// `-w FILE`: records in a pcap file.
pub struct PcapSink(pub Writer);

impl Sink for PcapSink {
    fn packet(&mut self, p: &Frame<'_>) -> Result<(), Failure> {
        Ok(self.0.write(p)?)
    }

    fn flush(&mut self) -> Result<(), Failure> {
        Ok(self.0.flush()?)
    }
}

/// Text like `tcpdump -nn` on stdout.
pub struct TextSink {
    pub printer: Printer,
    pub out: BufWriter<Stdout>,
}

impl TextSink {
    pub fn new(printer: Printer) -> TextSink {
        TextSink {
            printer,
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
        }
    }
}

impl Sink for TextSink {
    fn packet(&mut self, p: &Frame<'_>) -> Result<(), Failure> {
        Ok(self.printer.print(p, &mut self.out)?)
    }

    fn flush(&mut self) -> Result<(), Failure> {
        Ok(self.out.flush()?)
    }
}
