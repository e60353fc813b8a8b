//! The small protocol `kubectl-netdiag` and `netdiag-agent` speak on top of
//! the attach streams.
//!
//! Why it exists (measured against real API servers): attach has no
//! "close stdin only" on `v4.channel.k8s.io` (servers before 1.30), so a
//! client that closes stdin loses the tail of stdout; attach reports no exit
//! code; and a container that starts before the client is attached loses
//! its first output. So, when the plugin launches the agent:
//!
//! - **stdin** (plugin → agent) carries frames only: [`Kind::Start`] once
//!   the plugin is attached (the agent runs nothing before it, and exits by
//!   itself if it never comes), [`Kind::Stdin`] data for the tool,
//!   [`Kind::StdinEof`] to half-close the tool's stdin, [`Kind::Stop`] to stop
//!   the tool (Ctrl-C, closed pipe). The stream itself closing means the
//!   plugin is gone: the agent stops the tool too.
//! - **stdout** stays the tool's raw bytes, so a pcap passes untouched.
//! - **stderr** (agent → plugin) carries frames only: [`Kind::Started`] once
//!   the tool runs (only then does the plugin send the user's input, so a
//!   retried attach cannot lose any), [`Kind::Stderr`] data, then one
//!   [`Kind::Exit`] with the tool's exit code, after which the agent's stdout
//!   is complete.
//!
//! stdout and stderr travel as separate streams through the API server and
//! kubelet, so their order is lost on the way (`kubectl exec` shows
//! tcpdump's "6 packets captured" before its last packets). Each stderr
//! frame therefore says how many stdout bytes the tool had written before
//! it ([`StderrChunk`]), and the plugin holds it until those have reached
//! its own stdout: the terminal shows both in the tool's order.
//!
//! A frame is a kind byte, a big-endian u32 payload length, and the payload.
//! The agent is in this mode only when its environment has
//! [`PROTOCOL_ENV`] = [`PROTOCOL_VERSION`]; run by hand it is the plain tool.

use std::fmt;

/// Environment variable the plugin sets on the ephemeral container.
pub const PROTOCOL_ENV: &str = "NETDIAG_PROTOCOL";
/// The version of this protocol; the agent refuses versions it lacks.
pub const PROTOCOL_VERSION: &str = "2";
/// How long the agent waits for [`Kind::Start`] before exiting by itself,
/// overridable through this environment variable (seconds).
pub const START_TIMEOUT_ENV: &str = "NETDIAG_START_TIMEOUT";
pub const DEFAULT_START_TIMEOUT_SECS: u64 = 120;

/// Largest payload accepted; larger data is split into several frames.
pub const MAX_PAYLOAD: usize = 64 * 1024;
const HEADER: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// plugin → agent: attached, run the tool now.
    Start = 0x01,
    /// plugin → agent: bytes for the tool's stdin.
    Stdin = 0x02,
    /// plugin → agent: the tool's stdin ends.
    StdinEof = 0x03,
    /// plugin → agent: stop the tool (as Ctrl-C would).
    Stop = 0x04,
    /// agent → plugin: bytes the tool wrote to stderr, after how much of
    /// its stdout ([`StderrChunk`]).
    Stderr = 0x11,
    /// agent → plugin: the tool exited; payload is its code (one byte)
    /// then the number of bytes it wrote to stdout (u64, big-endian), so
    /// the plugin knows when all of stdout has arrived.
    Exit = 0x12,
    /// agent → plugin: the tool is running; input may follow.
    Started = 0x13,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            0x01 => Kind::Start,
            0x02 => Kind::Stdin,
            0x03 => Kind::StdinEof,
            0x04 => Kind::Stop,
            0x11 => Kind::Stderr,
            0x12 => Kind::Exit,
            0x13 => Kind::Started,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub payload: Vec<u8>,
}

/// What an [`Kind::Exit`] frame says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitReport {
    pub code: u8,
    pub stdout_bytes: Option<u64>,
}

impl ExitReport {
    pub fn encode(&self) -> Frame {
        let mut payload = vec![self.code];
        if let Some(n) = self.stdout_bytes {
            payload.extend_from_slice(&n.to_be_bytes());
        }
        Frame::new(Kind::Exit, payload)
    }

    pub fn decode(payload: &[u8]) -> Option<ExitReport> {
        let code = *payload.first()?;
        let stdout_bytes = payload.get(1..9).map(|b| {
            let mut n = [0u8; 8];
            n.copy_from_slice(b);
            u64::from_be_bytes(n)
        });
        Some(ExitReport { code, stdout_bytes })
    }
}

/// What a [`Kind::Stderr`] frame says: the tool wrote `data` to stderr
/// after writing `after_stdout` bytes to stdout. The payload is that count
/// (u64, big-endian) then the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StderrChunk {
    pub after_stdout: u64,
    pub data: Vec<u8>,
}

impl StderrChunk {
    /// `data` as one or more frames, each carrying the same count.
    pub fn encode(after_stdout: u64, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + HEADER + 8);
        for chunk in data.chunks(MAX_PAYLOAD - 8) {
            let mut payload = Vec::with_capacity(8 + chunk.len());
            payload.extend_from_slice(&after_stdout.to_be_bytes());
            payload.extend_from_slice(chunk);
            out.extend(Frame::new(Kind::Stderr, payload).encode());
        }
        out
    }

    pub fn decode(payload: &[u8]) -> Option<StderrChunk> {
        let count: [u8; 8] = payload.get(..8)?.try_into().ok()?;
        Some(StderrChunk {
            after_stdout: u64::from_be_bytes(count),
            data: payload[8..].to_vec(),
        })
    }
}

impl Frame {
    pub fn new(kind: Kind, payload: impl Into<Vec<u8>>) -> Frame {
        Frame {
            kind,
            payload: payload.into(),
        }
    }

    /// The frame's bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.payload.len() <= MAX_PAYLOAD, "frame payload too large");
        let mut out = Vec::with_capacity(HEADER + self.payload.len());
        out.push(self.kind as u8);
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Encodes `data` as one or more frames of `kind`.
    pub fn encode_data(kind: Kind, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + HEADER);
        for chunk in data.chunks(MAX_PAYLOAD) {
            out.extend(Frame::new(kind, chunk).encode());
        }
        out
    }
}

/// The stream broke the protocol: the other side is not a netdiag peer
/// of this version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Reassembles frames from a byte stream that arrives in arbitrary pieces.
#[derive(Default)]
pub struct Decoder {
    buffer: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if self.buffer.len() < HEADER {
            return Ok(None);
        }
        let kind = Kind::from_byte(self.buffer[0])
            .ok_or_else(|| ProtocolError(format!("unknown frame kind 0x{:02x}", self.buffer[0])))?;
        let len = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if len > MAX_PAYLOAD {
            return Err(ProtocolError(format!(
                "frame of {len} bytes exceeds {MAX_PAYLOAD}"
            )));
        }
        if self.buffer.len() < HEADER + len {
            return Ok(None);
        }
        let payload = self.buffer[HEADER..HEADER + len].to_vec();
        self.buffer.drain(..HEADER + len);
        Ok(Some(Frame { kind, payload }))
    }

    /// Bytes received that do not form a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split() {
        let mut wire = Frame::new(Kind::Start, vec![]).encode();
        wire.extend(Frame::encode_data(Kind::Stdin, &[7u8; MAX_PAYLOAD + 10]));
        wire.extend(Frame::new(Kind::Exit, vec![3]).encode());
        for step in [1, 2, 5, 4096, wire.len()] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(step) {
                d.push(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got.len(), 4, "step {step}");
            assert_eq!(got[0].kind, Kind::Start);
            assert_eq!(got[1].payload.len(), MAX_PAYLOAD);
            assert_eq!(got[2].payload.len(), 10);
            assert_eq!(got[3], Frame::new(Kind::Exit, vec![3]));
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn exit_reports_round_trip() {
        for r in [
            ExitReport {
                code: 3,
                stdout_bytes: Some(1 << 40),
            },
            ExitReport {
                code: 0,
                stdout_bytes: None,
            },
        ] {
            assert_eq!(ExitReport::decode(&r.encode().payload), Some(r));
        }
        assert_eq!(ExitReport::decode(&[]), None);
    }

    #[test]
    fn stderr_chunks_keep_their_stdout_count_when_split() {
        let data = vec![b'x'; MAX_PAYLOAD + 100];
        let mut d = Decoder::new();
        d.push(&StderrChunk::encode(1 << 33, &data));
        let mut joined = Vec::new();
        while let Some(f) = d.next_frame().unwrap() {
            assert_eq!(f.kind, Kind::Stderr);
            let chunk = StderrChunk::decode(&f.payload).unwrap();
            assert_eq!(chunk.after_stdout, 1 << 33);
            joined.extend(chunk.data);
        }
        assert_eq!(joined, data);
        assert_eq!(StderrChunk::decode(&[0; 7]), None);
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let mut d = Decoder::new();
        d.push(b"hello world");
        assert!(
            d.next_frame()
                .unwrap_err()
                .0
                .contains("unknown frame kind 0x68")
        );
        let mut d = Decoder::new();
        d.push(&[0x02, 0xff, 0xff, 0xff, 0xff]);
        assert!(d.next_frame().is_err());
    }
}
