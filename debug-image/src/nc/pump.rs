//! Moving bytes: stdin → socket and socket → stdout at the same time,
//! binary-safe, ending the way OpenBSD netcat's `readwrite()` ends.
//!
//! The two directions are independent futures, so a peer that writes while
//! we write (both buffers full) cannot deadlock us. When they stop:
//!
//! - stdin ends: with `-N` the socket's write side is shut down (the peer
//!   reads EOF); without it nothing is sent, exactly as netcat.
//! - connect mode ends when both directions are done (stdin ended or the
//!   socket stopped taking data, and the socket ended or stdout closed);
//! - listen mode ends as soon as the peer's side ends (netcat's "listen and
//!   net in gone"), even if stdin still holds data, which is then not sent:
//!   netcat does the same;
//! - `-w SECS`: SECS without any progress (nothing read from stdin or the
//!   socket, nothing written) end the connection, as netcat's poll()
//!   timeout does; usually that is the wait for the last reply after stdin
//!   ended.
//!
//! A closed stdout (`nc ... | head -c 10`) only stops the socket → stdout
//! direction; nothing panics and the exit status is unchanged.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Stdin};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

/// TCP reads and writes in chunks of this size.
const TCP_CHUNK: usize = 64 * 1024;
/// One read of stdin becomes one datagram: netcat's buffer size.
const UDP_CHUNK: usize = 16 * 1024;
/// Largest datagram we can receive (IPv4's 65,507-byte payload fits).
const UDP_RECV: usize = 64 * 1024;

/// How a pump behaves.
#[derive(Clone, Copy, Debug)]
pub struct PumpOptions {
    /// `-N`.
    pub shutdown_on_eof: bool,
    /// `-w`: how long both directions may stand still.
    pub idle_limit: Option<Duration>,
    /// `-l`: the peer ending the connection ends the pump.
    pub listen: bool,
}

/// Pipes `stdin` ⇄ a TCP connection until netcat would stop.
pub async fn tcp(stream: &mut TcpStream, stdin: &mut Stdin, opts: PumpOptions) {
    let (mut net_in, mut net_out) = stream.split();
    let last_progress = Cell::new(Instant::now());
    let up = async {
        let mut buf = vec![0u8; TCP_CHUNK];
        loop {
            let n = match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            last_progress.set(Instant::now());
            if net_out.write_all(&buf[..n]).await.is_err() {
                // The peer stopped taking data: nothing more to send.
                return;
            }
            last_progress.set(Instant::now());
        }
        if opts.shutdown_on_eof {
            let _ = net_out.shutdown().await;
        }
    };
    let down = async {
        let mut stdout = tokio::io::stdout();
        let mut buf = vec![0u8; TCP_CHUNK];
        loop {
            let n = match net_in.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            last_progress.set(Instant::now());
            if stdout.write_all(&buf[..n]).await.is_err() || stdout.flush().await.is_err() {
                return;
            }
            last_progress.set(Instant::now());
        }
    };
    drive(up, down, &last_progress, opts).await;
}

/// Pipes `stdin` ⇄ a UDP socket: each stdin read is one datagram, each
/// datagram received goes to stdout. The socket is connected to its peer,
/// or (`-l -k -u`) unconnected: then datagrams from anyone are printed and
/// stdin goes to whoever sent the latest one.
pub async fn udp(socket: &UdpSocket, stdin: &mut Stdin, opts: PumpOptions) {
    let last_progress = Cell::new(Instant::now());
    let last_peer: Cell<Option<SocketAddr>> = Cell::new(None);
    let connected = socket.peer_addr().is_ok();
    let up = async {
        let mut buf = vec![0u8; UDP_CHUNK];
        loop {
            let n = match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            last_progress.set(Instant::now());
            let sent = if connected {
                socket.send(&buf[..n]).await
            } else if let Some(peer) = last_peer.get() {
                socket.send_to(&buf[..n], peer).await
            } else {
                // Nobody has written to us yet: nowhere to send.
                continue;
            };
            if sent.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut stdout = tokio::io::stdout();
        let mut buf = vec![0u8; UDP_RECV];
        loop {
            let received = if connected {
                socket.recv(&mut buf).await
            } else {
                socket.recv_from(&mut buf).await.map(|(n, peer)| {
                    last_peer.set(Some(peer));
                    n
                })
            };
            let Ok(n) = received else { return };
            last_progress.set(Instant::now());
            if stdout.write_all(&buf[..n]).await.is_err() || stdout.flush().await.is_err() {
                return;
            }
            last_progress.set(Instant::now());
        }
    };
    drive(up, down, &last_progress, opts).await;
}

/// Runs both directions until netcat's end conditions hold.
async fn drive(
    up: impl Future<Output = ()>,
    down: impl Future<Output = ()>,
    last_progress: &Cell<Instant>,
    opts: PumpOptions,
) {
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    loop {
        if down_done && (up_done || opts.listen) {
            return;
        }
        let idle_deadline = opts.idle_limit.map(|limit| last_progress.get() + limit);
        tokio::select! {
            () = &mut up, if !up_done => {
                up_done = true;
                // Reaching the end of stdin is an event too.
                last_progress.set(Instant::now());
            }
            () = &mut down, if !down_done => down_done = true,
            () = sleep_until(idle_deadline), if idle_deadline.is_some() => {
                // Progress may have happened since the deadline was set.
                if let Some(limit) = opts.idle_limit
                    && Instant::now() >= last_progress.get() + limit
                {
                    return;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
