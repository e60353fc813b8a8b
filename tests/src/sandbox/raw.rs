//! A minimal HTTP/1.1 and WebSocket (RFC 6455) client over plain TCP, for
//! tests that check the sandbox's wire format byte by byte: written from
//! the RFCs with the standard library only, so it shares no code (and no
//! misreading) with the server's hyper and tungstenite.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }
}

const IO_TIMEOUT: Duration = Duration::from_secs(30);

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("set_read_timeout");
    stream.set_nodelay(true).expect("set_nodelay");
    stream
}

#[allow(clippy::too_many_arguments)]
fn write_request(
    stream: &mut TcpStream,
    addr: &str,
    token: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    content_type: Option<&str>,
    body: &[u8],
    close: bool,
) {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: netdiag-tests\r\n");
    if !token.is_empty() {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PATCH" | "PUT") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .expect("writing the request");
    stream.write_all(body).expect("writing the request body");
}

/// Reads the status line and headers.
fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("reading the status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).expect("reading a header");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Reads one chunk of a chunked body; `None` at the last chunk.
fn read_chunk(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut size_line = String::new();
    if reader.read_line(&mut size_line).ok()? == 0 {
        return None;
    }
    let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
    if size == 0 {
        let mut end = String::new();
        let _ = reader.read_line(&mut end);
        return None;
    }
    let mut chunk = vec![0u8; size];
    reader.read_exact(&mut chunk).ok()?;
    let mut crlf = [0u8; 2];
    reader.read_exact(&mut crlf).ok()?;
    Some(chunk)
}

fn read_body(reader: &mut impl BufRead, headers: &[(String, String)]) -> Vec<u8> {
    if header(headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        while let Some(chunk) = read_chunk(reader) {
            body.extend(chunk);
        }
        return body;
    }
    if let Some(len) = header(headers, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).expect("reading the body");
        return body;
    }
    let mut body = Vec::new();
    let _ = reader.read_to_end(&mut body);
    body
}

pub fn request(
    addr: &str,
    token: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    content_type: Option<&str>,
    body: &[u8],
) -> HttpResponse {
    let mut stream = connect(addr);
    write_request(
        &mut stream,
        addr,
        token,
        method,
        path,
        headers,
        content_type,
        body,
        true,
    );
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let body = read_body(&mut reader, &headers);
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// A streamed response read as newline-delimited lines (a watch).
pub struct WatchStream {
    reader: BufReader<TcpStream>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pending: Vec<u8>,
}

impl WatchStream {
    /// The next complete line (without the newline), or `None` when the
    /// stream ended or nothing came within `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                return Some(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.reader
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let chunk = read_chunk(&mut self.reader)?;
            self.pending.extend(chunk);
        }
    }
}

pub fn watch(addr: &str, token: &str, path: &str) -> WatchStream {
    let mut stream = connect(addr);
    write_request(&mut stream, addr, token, "GET", path, &[], None, &[], false);
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    WatchStream {
        reader,
        status,
        headers,
        pending: Vec::new(),
    }
}

/// What a WebSocket client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    Binary(Vec<u8>),
    Text(String),
    /// A close frame with its status code (if any).
    Close(Option<u16>),
    /// The connection ended without a close frame.
    Eof,
    /// Nothing arrived in time.
    Timeout,
}

pub struct WsClient {
    stream: TcpStream,
    buffered: Vec<u8>,
    protocol: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// The key of RFC 6455's example handshake and the accept value it implies.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub fn websocket(
    addr: &str,
    token: &str,
    path: &str,
    protocols: &[&str],
) -> Result<WsClient, HttpResponse> {
    let mut stream = connect(addr);
    let joined = protocols.join(", ");
    let mut headers = vec![
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ];
    if !protocols.is_empty() {
        headers.push(("Sec-WebSocket-Protocol", &joined));
    }
    write_request(
        &mut stream,
        addr,
        token,
        "GET",
        path,
        &headers,
        None,
        &[],
        false,
    );
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    if status != 101 {
        let body = read_body(&mut reader, &headers);
        return Err(HttpResponse {
            status,
            headers,
            body,
        });
    }
    assert_eq!(
        header(&headers, "sec-websocket-accept"),
        Some(ACCEPT),
        "the server's Sec-WebSocket-Accept"
    );
    let buffered = reader.buffer().to_vec();
    Ok(WsClient {
        protocol: header(&headers, "sec-websocket-protocol").map(str::to_owned),
        stream: reader.into_inner(),
        buffered,
        headers,
    })
}

impl WsClient {
    /// The negotiated subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mut frame = vec![0x80 | opcode];
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // A server that already hung up is what some tests expect.
        let _ = self.stream.write_all(&frame);
    }

    /// Sends a binary message: `channel` then `data`.
    pub fn send(&mut self, channel: u8, data: &[u8]) {
        let mut payload = vec![channel];
        payload.extend_from_slice(data);
        self.send_frame(0x2, &payload);
    }

    /// Sends a text message (the base64 protocols).
    pub fn send_text(&mut self, text: &str) {
        self.send_frame(0x1, text.as_bytes());
    }

    /// Sends a close frame (status 1000).
    pub fn send_close(&mut self) {
        self.send_frame(0x8, &1000u16.to_be_bytes());
    }

    /// Closes the TCP connection without a close frame.
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    fn fill(&mut self, need: usize, deadline: Instant) -> Result<(), WsEvent> {
        let mut buf = [0u8; 64 * 1024];
        while self.buffered.len() < need {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(WsEvent::Timeout);
            };
            let _ = self
                .stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(WsEvent::Eof),
                Ok(n) => self.buffered.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(WsEvent::Timeout);
                }
                Err(_) => return Err(WsEvent::Eof),
            }
        }
        Ok(())
    }

    /// The next message (fragments joined; pings answered).
    pub fn recv(&mut self, timeout: Duration) -> WsEvent {
        let deadline = Instant::now() + timeout;
        let mut message: Vec<u8> = Vec::new();
        let mut message_opcode = None;
        loop {
            if let Err(e) = self.fill(2, deadline) {
                return e;
            }
            let fin = self.buffered[0] & 0x80 != 0;
            let opcode = self.buffered[0] & 0x0f;
            let masked = self.buffered[1] & 0x80 != 0;
            let (len, mut offset) = match self.buffered[1] & 0x7f {
                126 => {
                    if let Err(e) = self.fill(4, deadline) {
                        return e;
                    }
                    (
                        u16::from_be_bytes([self.buffered[2], self.buffered[3]]) as usize,
                        4,
                    )
                }
                127 => {
                    if let Err(e) = self.fill(10, deadline) {
                        return e;
                    }
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&self.buffered[2..10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                n => (n as usize, 2),
            };
            assert!(!masked, "servers must not mask frames (RFC 6455 5.1)");
            if let Err(e) = self.fill(offset + len, deadline) {
                return e;
            }
            let payload: Vec<u8> = self.buffered[offset..offset + len].to_vec();
            offset += len;
            self.buffered.drain(..offset);
            match opcode {
                0x9 => {
                    self.send_frame(0xA, &payload);
                    continue;
                }
                0xA => continue,
                0x8 => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return WsEvent::Close(code);
                }
                0x0..=0x2 => {
                    if opcode != 0 {
                        message_opcode = Some(opcode);
                    }
                    message.extend(payload);
                    if fin {
                        return match message_opcode {
                            Some(0x1) => {
                                WsEvent::Text(String::from_utf8_lossy(&message).into_owned())
                            }
                            _ => WsEvent::Binary(message),
                        };
                    }
                }
                other => panic!("unexpected WebSocket opcode {other:#x}"),
            }
        }
    }
}
