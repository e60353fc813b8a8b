//! Opening `nc`'s sockets: outgoing TCP connects and UDP "connections"
//! (a connected UDP socket), optionally bound to `-s ADDR` / `-p PORT`,
//! bounded by `-w`; and the listening sockets of `-l`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

use super::report::ConnectError;

/// Where outgoing sockets are bound before connecting (`-s`, `-p`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Source {
    pub addr: Option<IpAddr>,
    pub port: Option<u16>,
}

impl Source {
    /// The address to bind for a destination of `dest`'s family, if any.
    fn bind_addr(&self, dest: IpAddr) -> Option<SocketAddr> {
        if self.addr.is_none() && self.port.is_none() {
            return None;
        }
        let ip = self.addr.unwrap_or(unspecified(dest));
        Some(SocketAddr::new(ip, self.port.unwrap_or(0)))
    }

    /// Whether a destination can be reached from this source (same family).
    pub fn admits(&self, dest: IpAddr) -> bool {
        self.addr.is_none_or(|a| a.is_ipv4() == dest.is_ipv4())
    }
}

/// `0.0.0.0` or `::`, matching `like`'s family.
pub fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Binding the source failed: fatal, as in netcat (`nc: bind failed: ...`).
#[derive(Debug)]
pub struct BindError(pub io::Error);

/// A TCP connection to `dest`, within `timeout` if given.
pub async fn tcp(
    dest: SocketAddr,
    source: Source,
    timeout: Option<Duration>,
) -> Result<Result<TcpStream, ConnectError>, BindError> {
    let socket = match dest {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    };
    let socket = match socket {
        Ok(s) => s,
        Err(e) => return Ok(Err(ConnectError::Os(e))),
    };
    if let Some(local) = source.bind_addr(dest.ip()) {
        // netcat sets SO_REUSEADDR before binding a chosen source, so a
        // fixed -p works again while an earlier connection is in TIME-WAIT.
        socket.set_reuseaddr(true).map_err(BindError)?;
        socket.bind(local).map_err(BindError)?;
    }
    let connecting = socket.connect(dest);
    Ok(match timeout {
        None => connecting.await.map_err(ConnectError::Os),
        Some(limit) => match tokio::time::timeout(limit, connecting).await {
            Ok(result) => result.map_err(ConnectError::Os),
            Err(_) => Err(ConnectError::TimedOut),
        },
    })
}

/// A UDP socket connected to `dest` (no packet is sent).
pub async fn udp(
    dest: SocketAddr,
    source: Source,
) -> Result<Result<UdpSocket, ConnectError>, BindError> {
    let local = source
        .bind_addr(dest.ip())
        .unwrap_or(SocketAddr::new(unspecified(dest.ip()), 0));
    let socket = UdpSocket::bind(local).await.map_err(BindError)?;
    Ok(socket
        .connect(dest)
        .await
        .map(|()| socket)
        .map_err(ConnectError::Os))
}

/// A TCP listener on `local`, with SO_REUSEADDR as netcat sets it.
pub fn tcp_listener(local: SocketAddr) -> io::Result<TcpListener> {
    let socket = match local {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }?;
    socket.set_reuseaddr(true)?;
    socket.bind(local)?;
    // netcat's backlog is 1; a few more let -k serve clients that arrive
    // together without their SYNs being dropped.
    socket.listen(16)
}

/// A UDP socket bound to `local` for `-l -u`.
pub async fn udp_listener(local: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::bind(local).await
}
