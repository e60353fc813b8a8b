//! Attach over SPDY/3.1, the kubelet's other streaming transport, which
//! kubectl falls back to when the WebSocket upgrade fails. kubectl 1.32
//! offers only `v5.channel.k8s.io` over WebSocket, so against a server
//! before 1.30 (`--attach-protocols v4`) it always ends up here.
//!
//! What the kubelet does (`remotecommand/httpstream.go`, `moby/spdystream`):
//! the client's `X-Stream-Protocol-Version` headers are matched in client
//! order against `v4.channel.k8s.io`, `v3`, `v2`, `channel.k8s.io`; after
//! `101 Switching Protocols` the client opens one SPDY stream per channel,
//! each a SYN_STREAM whose `streamtype` header is `error`, `stdin`,
//! `stdout`, `stderr` or `resize`, and the server answers each with a
//! SYN_REPLY. Output goes out as DATA frames on the client's stdout and
//! stderr streams; the client's FIN on stdin is its end of input (SPDY can
//! half-close, so no CLOSE signal is needed). When the container's output
//! ends, the server closes the output streams, writes the status on the
//! error stream (a metav1.Status in JSON for v4), and goes away.
//!
//! Header blocks are zlib-compressed with SPDY/3's preset dictionary, one
//! zlib stream per direction across all frames. Incoming blocks are
//! inflated with miniz_oxide, the dictionary preloaded as history; outgoing
//! blocks (only the empty headers of SYN_REPLY) are written as stored
//! deflate blocks, which any inflater reads without needing the dictionary.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::runtime::{Container, OutChunk, Stream};
use crate::status;

/// The protocols the kubelet serves over SPDY, strongest first.
pub const PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const FLAG_FIN: u8 = 0x01;

/// The first client protocol (client order) the kubelet supports.
pub fn negotiate(offered: &[String]) -> Option<&'static str> {
    offered
        .iter()
        .find_map(|p| PROTOCOLS.iter().find(|s| **s == p.as_str()).copied())
}

/// SPDY/3's header compression dictionary (draft 3, section 2.6.10.1):
/// length-prefixed header names and values, then a block of common text.
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        const WORDS: [&str; 65] = [
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TEXT: &str = "100101201202205206300302303304305306307402405406407408409410411\
            412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved \
            Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal \
            Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul \
            Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,\
            text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,\
            text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8\
            charset=iso-8859-1,utf-,*,enq=0.";
        let mut dict = Vec::with_capacity(1423);
        for word in WORDS {
            dict.extend_from_slice(&(word.len() as u32).to_be_bytes());
            dict.extend_from_slice(word.as_bytes());
        }
        dict.extend_from_slice(TEXT.as_bytes());
        dict
    })
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// The receiving half of the header compression context.
struct Inflater {
    state: Box<DecompressorOxide>,
    /// The dictionary followed by everything inflated so far (the history
    /// back-references reach into).
    window: Vec<u8>,
    started: bool,
}

impl Inflater {
    fn new() -> Inflater {
        Inflater {
            state: Box::default(),
            window: dictionary().to_vec(),
            started: false,
        }
    }

    fn inflate(&mut self, mut data: &[u8]) -> Result<Vec<u8>, String> {
        if !self.started {
            if data.len() < 6 || data[0] & 0x0f != 8 || data[1] & 0x20 == 0 {
                return Err("header block is not a zlib stream with a dictionary".to_owned());
            }
            let id = u32::from_be_bytes([data[2], data[3], data[4], data[5]]);
            if id != adler32(dictionary()) {
                return Err(format!(
                    "header block uses dictionary {id:#x}, not SPDY/3's"
                ));
            }
            data = &data[6..];
            self.started = true;
        }
        let start = self.window.len();
        let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF
            | inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
        loop {
            let pos = self.window.len();
            self.window.resize(pos + 4096, 0);
            let (status, consumed, written) =
                decompress(&mut self.state, data, &mut self.window, pos, flags);
            self.window.truncate(pos + written);
            data = &data[consumed..];
            match status {
                TINFLStatus::HasMoreOutput => continue,
                TINFLStatus::NeedsMoreInput | TINFLStatus::Done if data.is_empty() => break,
                TINFLStatus::NeedsMoreInput | TINFLStatus::Done => continue,
                other => return Err(format!("inflating a header block: {other:?}")),
            }
        }
        Ok(self.window[start..].to_vec())
    }
}

/// The sending half: stored deflate blocks, each followed by a sync-flush
/// marker, after a zlib header naming the dictionary.
struct Deflater {
    started: bool,
}

impl Deflater {
    fn deflate(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 11);
        if !self.started {
            // CMF 0x78 (deflate, 32 KiB window), FLG 0x20 (FDICT; the
            // check bits are 0 because 0x7820 is a multiple of 31).
            out.extend_from_slice(&[0x78, 0x20]);
            out.extend_from_slice(&adler32(dictionary()).to_be_bytes());
            self.started = true;
        }
        let len = data.len() as u16;
        out.push(0x00); // BFINAL 0, BTYPE 00 (stored), padded to the byte
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(data);
        // The sync-flush marker, an empty stored block: Go's inflater only
        // hands out a block's data once it has read the next block's
        // header, so without it the reader would wait for the next frame.
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
        out
    }
}

/// Parses a decompressed header block: a count, then length-prefixed
/// names and values (values may hold several, NUL-separated).
fn parse_headers(block: &[u8]) -> Option<Vec<(String, String)>> {
    let mut at = 0usize;
    let take_u32 = |at: &mut usize| -> Option<usize> {
        let b = block.get(*at..*at + 4)?;
        *at += 4;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = take_u32(&mut at)?;
    let mut headers = Vec::new();
    for _ in 0..count {
        let n = take_u32(&mut at)?;
        let name = String::from_utf8_lossy(block.get(at..at + n)?).into_owned();
        at += n;
        let v = take_u32(&mut at)?;
        let value = String::from_utf8_lossy(block.get(at..at + v)?).into_owned();
        at += v;
        headers.push((name, value));
    }
    Some(headers)
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80, 0x03];
    frame.extend_from_slice(&kind.to_be_bytes());
    frame.push(flags);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(payload);
    frame
}

fn data_frame(stream: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 8);
    frame.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    frame.push(flags);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(payload);
    frame
}

/// Writes one frame and flushes it: TLS buffers what is not flushed.
async fn send<W: AsyncWriteExt + Unpin>(writer: &mut W, frame: &[u8]) -> std::io::Result<()> {
    writer.write_all(frame).await?;
    writer.flush().await
}

/// The streams of one attach, by id.
#[derive(Default)]
struct Streams {
    error: Option<u32>,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
}

impl Streams {
    fn count(&self) -> usize {
        [
            self.error,
            self.stdin,
            self.stdout,
            self.stderr,
            self.resize,
        ]
        .iter()
        .filter(|s| s.is_some())
        .count()
    }
}

pub struct Session {
    pub protocol: &'static str,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub container: Arc<Container>,
    pub drop_after: Option<u64>,
}

impl Session {
    fn expected_streams(&self) -> usize {
        1 + usize::from(self.stdin) + usize::from(self.stdout) + usize::from(self.stderr)
    }

    pub async fn run(
        self,
        upgraded: hyper::upgrade::Upgraded,
        mut output: mpsc::Receiver<OutChunk>,
    ) {
        let io = TokioIo::new(upgraded);
        let (mut reader, mut writer) = tokio::io::split(io);
        let mut inflater = Inflater::new();
        let mut deflater = Deflater { started: false };
        let mut streams = Streams::default();
        let mut last_stream = 0u32;
        let mut stdin_done = !self.stdin;
        let mut stdout_sent = 0u64;
        let (frames_tx, mut frames_rx) = mpsc::channel::<Result<(u16, u8, Vec<u8>, u32), ()>>(16);

        // Frames from the client, read on their own task so that a large
        // output write never stalls the reading of stdin and pings.
        let read_task = tokio::spawn(async move {
            loop {
                let mut head = [0u8; 8];
                if reader.read_exact(&mut head).await.is_err() {
                    let _ = frames_tx.send(Err(())).await;
                    return;
                }
                let flags = head[4];
                let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
                let mut payload = vec![0u8; len];
                if reader.read_exact(&mut payload).await.is_err() {
                    let _ = frames_tx.send(Err(())).await;
                    return;
                }
                let item = if head[0] & 0x80 != 0 {
                    (u16::from_be_bytes([head[2], head[3]]), flags, payload, 0)
                } else {
                    let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
                    (0, flags, payload, id)
                };
                if frames_tx.send(Ok(item)).await.is_err() {
                    return;
                }
            }
        });

        let ready = |s: &Streams| s.count() >= self.expected_streams();
        loop {
            tokio::select! {
                frame = frames_rx.recv() => {
                    let Some(Ok((kind, flags, payload, data_stream))) = frame else { break };
                    match kind {
                        SYN_STREAM if payload.len() >= 10 => {
                            let id = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff;
                            let Ok(block) = inflater.inflate(&payload[10..]) else { break };
                            let headers = parse_headers(&block).unwrap_or_default();
                            let stream_type = headers
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case("streamtype"))
                                .map(|(_, v)| v.as_str())
                                .unwrap_or("");
                            match stream_type {
                                "error" => streams.error = Some(id),
                                "stdin" => streams.stdin = Some(id),
                                "stdout" => streams.stdout = Some(id),
                                "stderr" => streams.stderr = Some(id),
                                "resize" => streams.resize = Some(id),
                                _ => {}
                            }
                            last_stream = last_stream.max(id);
                            let mut reply = id.to_be_bytes().to_vec();
                            reply.extend(deflater.deflate(&[0, 0, 0, 0]));
                            if send(&mut writer, &control(SYN_REPLY, 0, &reply)).await.is_err() {
                                break;
                            }
                        }
                        // Inflated only to keep the compression context in step.
                        HEADERS if payload.len() >= 4 && inflater.inflate(&payload[4..]).is_err() => break,
                        PING => {
                            let sent = send(&mut writer, &control(PING, 0, &payload)).await;
                            if sent.is_err() {
                                break;
                            }
                        }
                        RST_STREAM if payload.len() >= 4 => {
                            let id = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff;
                            if Some(id) == streams.stdin && !stdin_done {
                                stdin_done = true;
                                self.end_stdin().await;
                            }
                        }
                        GOAWAY => break,
                        0 if Some(data_stream) == streams.stdin && !stdin_done => {
                            if !payload.is_empty() && self.container.stdin_open {
                                self.container.write_stdin(&payload).await;
                            }
                            if flags & FLAG_FIN != 0 {
                                stdin_done = true;
                                self.end_stdin().await;
                            }
                        }
                        // SETTINGS, WINDOW_UPDATE: nothing to do.
                        _ => {}
                    }
                }
                chunk = output.recv(), if ready(&streams) => {
                    let Some(chunk) = chunk else {
                        self.finish(&mut writer, &streams, last_stream).await;
                        break;
                    };
                    let target = match chunk.stream {
                        Stream::Stdout if self.stdout => streams.stdout,
                        Stream::Stderr if self.stderr => streams.stderr,
                        _ => None,
                    };
                    let Some(id) = target else { continue };
                    let mut data: Bytes = chunk.data;
                    let mut cut = false;
                    if Some(id) == streams.stdout && let Some(limit) = self.drop_after {
                        let room = limit.saturating_sub(stdout_sent);
                        if data.len() as u64 >= room {
                            data = data.slice(..room as usize);
                            cut = true;
                        }
                        stdout_sent += data.len() as u64;
                    }
                    if !data.is_empty() && send(&mut writer, &data_frame(id, 0, &data)).await.is_err() {
                        break;
                    }
                    if cut {
                        break;
                    }
                }
            }
        }
        read_task.abort();
        if !stdin_done {
            self.end_stdin().await;
        }
    }

    /// The end of the session: output streams closed, the status on the
    /// error stream, GOAWAY.
    async fn finish<W: AsyncWriteExt + Unpin>(&self, writer: &mut W, streams: &Streams, last: u32) {
        for id in [streams.stdout, streams.stderr].into_iter().flatten() {
            let _ = writer.write_all(&data_frame(id, FLAG_FIN, &[])).await;
        }
        if let Some(id) = streams.error {
            if self.protocol == PROTOCOLS[0] {
                let _ = writer
                    .write_all(&data_frame(id, 0, &status::success_stream_status()))
                    .await;
            }
            let _ = writer.write_all(&data_frame(id, FLAG_FIN, &[])).await;
        }
        let mut goaway = last.to_be_bytes().to_vec();
        goaway.extend_from_slice(&0u32.to_be_bytes());
        let _ = writer.write_all(&control(GOAWAY, 0, &goaway)).await;
        let _ = writer.flush().await;
        let _ = writer.shutdown().await;
    }

    async fn end_stdin(&self) {
        if self.stdin && self.container.stdin_once {
            self.container.close_stdin().await;
        }
    }
}

/// The kubelet's refusal when no protocol matches (`httpstream.Handshake`:
/// 403, plain text, the accepted versions in a header).
pub fn refusal(offered: &[String]) -> crate::http::Response {
    let mut r = crate::http::text(
        403,
        format!(
            "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{}]\n",
            offered.join(" "),
            PROTOCOLS.join(" ")
        ),
    );
    for p in PROTOCOLS {
        r.headers_mut().append(
            "x-accepted-stream-protocol-versions",
            http::HeaderValue::from_static(p),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_spdy3s() {
        let dict = dictionary();
        assert_eq!(dict.len(), 1423);
        assert_eq!(&dict[..11], b"\x00\x00\x00\x07options");
        assert!(dict.ends_with(b",*,enq=0."));
    }

    #[test]
    fn stored_blocks_round_trip_through_the_inflater() {
        let mut deflater = Deflater { started: false };
        let mut inflater = Inflater::new();
        let block = [
            0, 0, 0, 1, 0, 0, 0, 10, b's', b't', b'r', b'e', b'a', b'm', b't', b'y', b'p', b'e', 0,
            0, 0, 5, b'e', b'r', b'r', b'o', b'r',
        ];
        let out = inflater.inflate(&deflater.deflate(&block)).unwrap();
        assert_eq!(
            parse_headers(&out).unwrap(),
            vec![("streamtype".to_owned(), "error".to_owned())]
        );
        let out = inflater.inflate(&deflater.deflate(&[0, 0, 0, 0])).unwrap();
        assert_eq!(parse_headers(&out).unwrap(), vec![]);
    }

    #[test]
    fn negotiation_prefers_the_clients_order() {
        let offered: Vec<String> = [
            "v5.channel.k8s.io",
            "v3.channel.k8s.io",
            "v4.channel.k8s.io",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(negotiate(&offered), Some("v3.channel.k8s.io"));
        assert_eq!(negotiate(&["v5.channel.k8s.io".to_owned()]), None);
    }
}
