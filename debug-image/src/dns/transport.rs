//! Sockets to one name server, with deadlines: the UDP and TCP exchanges
//! the stub resolvers and `dig` are built from.
//!
//! Deliberately lower-level than hickory-net's clients: replaying what glibc
//! does means controlling each datagram (two queries on one connected
//! socket, sent together or one after the other, a fresh socket for the
//! second with `single-request-reopen`), seeing every reply including the
//! ones a resolver discards, and timing each one.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

/// The largest DNS message (and the receive buffer size).
pub const MAX_MESSAGE: usize = 65535;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// What waiting for a message produced.
#[derive(Debug)]
pub enum Received {
    /// A message of this many bytes is in the buffer.
    Message(usize),
    /// The deadline passed first.
    TimedOut,
    /// The socket reported an error (ICMP port unreachable arrives as
    /// ECONNREFUSED on a connected UDP socket).
    Failed(io::Error),
}

/// The wildcard address of `server`'s family, port 0.
pub fn unspecified_for(server: SocketAddr) -> SocketAddr {
    if server.is_ipv4() {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    }
}

/// A UDP socket connected to one server, as glibc opens it: replies from
/// any other address are filtered by the kernel.
pub struct UdpChannel {
    socket: UdpSocket,
    buf: Vec<u8>,
}

impl UdpChannel {
    pub async fn open(server: SocketAddr) -> io::Result<UdpChannel> {
        let socket = UdpSocket::bind(unspecified_for(server)).await?;
        socket.connect(server).await?;
        Ok(UdpChannel {
            socket,
            buf: vec![0; MAX_MESSAGE],
        })
    }

    pub async fn send(&self, bytes: &[u8]) -> io::Result<()> {
        self.socket.send(bytes).await.map(drop)
    }

    /// Waits for the next datagram until `deadline`.
    pub async fn recv_until(&mut self, deadline: Instant) -> Received {
        match timeout_at(deadline, self.socket.recv(&mut self.buf)).await {
            Err(_) => Received::TimedOut,
            Ok(Ok(n)) => Received::Message(n),
            Ok(Err(e)) => Received::Failed(e),
        }
    }

    /// The bytes of the last [`Received::Message`].
    pub fn message(&self, len: usize) -> &[u8] {
        &self.buf[..len]
    }
}

/// An unconnected UDP socket that talks to several servers (musl's way:
/// one socket, every server at once).
pub struct UdpFanout {
    socket: UdpSocket,
    v6: bool,
    buf: Vec<u8>,
}

impl UdpFanout {
    /// A socket able to reach all of `servers`: IPv6 (dual stack) when any
    /// of them is IPv6, as musl does.
    pub async fn open(servers: &[SocketAddr]) -> io::Result<UdpFanout> {
        let v6 = servers.iter().any(SocketAddr::is_ipv6);
        let local = if v6 {
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
        } else {
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
        };
        Ok(UdpFanout {
            socket: UdpSocket::bind(local).await?,
            v6,
            buf: vec![0; MAX_MESSAGE],
        })
    }

    fn wire_addr(&self, server: SocketAddr) -> SocketAddr {
        match server {
            SocketAddr::V4(v4) if self.v6 => {
                SocketAddr::from((v4.ip().to_ipv6_mapped(), v4.port()))
            }
            other => other,
        }
    }

    pub async fn send_to(&self, bytes: &[u8], server: SocketAddr) -> io::Result<()> {
        self.socket
            .send_to(bytes, self.wire_addr(server))
            .await
            .map(drop)
    }

    /// The next datagram and its sender (v4-mapped senders unmapped).
    pub async fn recv_until(&mut self, deadline: Instant) -> (Received, Option<SocketAddr>) {
        match timeout_at(deadline, self.socket.recv_from(&mut self.buf)).await {
            Err(_) => (Received::TimedOut, None),
            Ok(Ok((n, from))) => {
                let from = match from {
                    SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
                        Some(v4) => SocketAddr::from((v4, v6.port())),
                        None => SocketAddr::V6(v6),
                    },
                    v4 => v4,
                };
                (Received::Message(n), Some(from))
            }
            Ok(Err(e)) => (Received::Failed(e), None),
        }
    }

    pub fn message(&self, len: usize) -> &[u8] {
        &self.buf[..len]
    }
}

/// A TCP connection to one server carrying length-prefixed messages.
pub struct TcpChannel {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl TcpChannel {
    pub async fn connect(server: SocketAddr, deadline: Instant) -> io::Result<TcpChannel> {
        let stream = timeout_at(deadline, TcpStream::connect(server))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timed out"))??;
        stream.set_nodelay(true)?;
        Ok(TcpChannel {
            stream,
            buf: vec![0; MAX_MESSAGE],
        })
    }

    /// Sends messages back to back in one write, as glibc's `writev`.
    pub async fn send(&mut self, messages: &[&[u8]]) -> io::Result<()> {
        let mut out = Vec::new();
        for m in messages {
            let len = u16::try_from(m.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(m);
        }
        self.stream.write_all(&out).await
    }

    /// Reads one length-prefixed message until `deadline`.
    pub async fn recv_until(&mut self, deadline: Instant) -> Received {
        let read = async {
            let mut len = [0u8; 2];
            self.stream.read_exact(&mut len).await?;
            let len = usize::from(u16::from_be_bytes(len));
            self.stream.read_exact(&mut self.buf[..len]).await?;
            Ok::<usize, io::Error>(len)
        };
        match timeout_at(deadline, read).await {
            Err(_) => Received::TimedOut,
            Ok(Ok(n)) => Received::Message(n),
            Ok(Err(e)) => Received::Failed(e),
        }
    }

    pub fn message(&self, len: usize) -> &[u8] {
        &self.buf[..len]
    }
}

/// "timed out", "connection refused", ... : an I/O error as dig words it.
pub fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        io::ErrorKind::UnexpectedEof => "end of file".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        _ => {
            let text = e.to_string();
            // "Network is unreachable (os error 101)" → "network unreachable"
            let text = text.split(" (os error").next().unwrap_or(&text);
            text.to_lowercase().replace(" is ", " ")
        }
    }
}
