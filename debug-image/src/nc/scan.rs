//! `nc -z`: which ports of a range accept connections, tried many at a
//! time but reported in port order, as netcat's one-by-one scan reports.
//!
//! At most [`MAX_IN_FLIGHT`] ports are being tried at any moment (fewer if
//! the open-files limit is low). Results that finish early wait in a table
//! until every lower port has been reported, so the output is identical to
//! a sequential scan's whatever the timing; a slow (dropped, `-w`-bounded)
//! port holds back the printing, not the probing.
//!
//! TCP: a port is open when the connect succeeds; the connection is then
//! closed normally. UDP (`-uz`), as netcat does it: send "X" twice, then one
//! more each second for `-w` seconds (3 without `-w`); an ICMP port
//! unreachable (ECONNREFUSED) means closed, silence or a reply means open.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use netdiag_wire::exit;
use tokio::task::JoinSet;

use super::args::Proto;
use super::connect::{self, BindError, Source};
use super::report::{ConnectError, Reporter};
use crate::cli::Failure;

/// Upper bound on ports tried at once.
pub const MAX_IN_FLIGHT: usize = 128;
/// netcat's UDP_SCAN_TIMEOUT: seconds a UDP port is watched without `-w`.
const UDP_SCAN_SECS: u64 = 3;

/// What trying one port found.
struct PortOutcome {
    /// Failed attempts, one per address tried, in order.
    failures: Vec<(IpAddr, ConnectError)>,
    /// The address that accepted, if any.
    open: Option<IpAddr>,
}

/// Everything a probe task needs, shared by all of them.
pub struct ScanJob {
    pub addrs: Vec<IpAddr>,
    pub proto: Proto,
    pub source: Source,
    pub timeout: Option<Duration>,
}

/// Scans `ports` and reports each (successes and, with `verbose`,
/// failures). Returns netcat's exit status, which a sequential scan leaves
/// as: 1 until a port is open, then 0 — except that a UDP port whose probe
/// was refused sets it back to 1 (netcat's `udptest()` path), so `-uz`
/// over a range ends with the last such verdict.
pub async fn run(
    job: ScanJob,
    ports: &[u16],
    reporter: &Reporter,
    verbose: bool,
) -> Result<u8, Failure> {
    let job = Arc::new(job);
    let limit = in_flight_limit().min(ports.len()).max(1);
    let mut pending: Vec<Option<PortOutcome>> = Vec::new();
    pending.resize_with(ports.len(), || None);
    let mut tasks: JoinSet<Result<(usize, PortOutcome), BindError>> = JoinSet::new();
    let mut next_to_start = 0;
    let mut next_to_report = 0;
    let mut status = exit::FAILURE;

    while next_to_report < ports.len() {
        while tasks.len() < limit && next_to_start < ports.len() {
            let (index, port, job) = (next_to_start, ports[next_to_start], job.clone());
            tasks.spawn(async move { probe(&job, port).await.map(|o| (index, o)) });
            next_to_start += 1;
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (index, outcome) = match joined {
            Ok(Ok(done)) => done,
            Ok(Err(BindError(e))) => {
                return Err(Failure::msg(format!(
                    "bind failed: {}",
                    super::report::os_words(&e)
                )));
            }
            Err(e) => return Err(Failure::msg(format!("port probe failed: {e}"))),
        };
        pending[index] = Some(outcome);
        while let Some(Some(outcome)) = pending.get_mut(next_to_report).map(Option::take) {
            let port = ports[next_to_report];
            for (ip, error) in &outcome.failures {
                if matches!(error, ConnectError::UdpRefused) {
                    status = exit::FAILURE;
                }
                if verbose {
                    reporter.failed(*ip, port, error)?;
                }
            }
            if let Some(ip) = outcome.open {
                status = exit::SUCCESS;
                if verbose {
                    reporter.succeeded(ip, port)?;
                }
            }
            next_to_report += 1;
        }
    }
    Ok(status)
}

/// Tries each address for `port` until one answers.
async fn probe(job: &ScanJob, port: u16) -> Result<PortOutcome, BindError> {
    let mut failures = Vec::new();
    for &ip in &job.addrs {
        let dest = SocketAddr::new(ip, port);
        let result = match job.proto {
            Proto::Tcp => connect::tcp(dest, job.source, job.timeout).await?.map(drop),
            Proto::Udp => udp_probe(dest, job.source, job.timeout).await?,
        };
        match result {
            Ok(()) => {
                return Ok(PortOutcome {
                    failures,
                    open: Some(ip),
                });
            }
            Err(e) => failures.push((ip, e)),
        }
    }
    Ok(PortOutcome {
        failures,
        open: None,
    })
}

/// netcat's `udptest()`, without blocking the other ports: refused as soon
/// as the ICMP error arrives, open after the watch ends quietly.
async fn udp_probe(
    dest: SocketAddr,
    source: Source,
    timeout: Option<Duration>,
) -> Result<Result<(), ConnectError>, BindError> {
    let socket = match connect::udp(dest, source).await? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    // Any error on a connected UDP socket is the ICMP answer to a probe.
    let refused = |_: std::io::Error| Ok(Err(ConnectError::UdpRefused));
    for _ in 0..2 {
        if let Err(e) = socket.send(b"X").await {
            return refused(e);
        }
    }
    let seconds = timeout.map_or(UDP_SCAN_SECS, |t| t.as_secs().max(1));
    let mut buf = [0u8; 512];
    for _ in 0..seconds {
        match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await {
            // A reply: something is there.
            Ok(Ok(_)) => return Ok(Ok(())),
            Ok(Err(e)) => return refused(e),
            Err(_) => {}
        }
        if let Err(e) = socket.send(b"X").await {
            return refused(e);
        }
    }
    Ok(Ok(()))
}

/// [`MAX_IN_FLIGHT`], lowered to fit the open-files limit with room for
/// the runtime's and stdio's descriptors.
fn in_flight_limit() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| soft_nofile(&text))
        .unwrap_or(1024);
    MAX_IN_FLIGHT.min(soft.saturating_sub(32)).max(1)
}

/// The soft "Max open files" of /proc/self/limits ("unlimited" is huge).
fn soft_nofile(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(usize::MAX);
    }
    soft.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::soft_nofile;

    #[test]
    fn reads_the_soft_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 1048576              files     \n";
        assert_eq!(soft_nofile(limits), Some(1024));
        assert_eq!(
            soft_nofile(
                "Max open files            unlimited            unlimited            files\n"
            ),
            Some(usize::MAX)
        );
        assert_eq!(soft_nofile("nothing here"), None);
    }
}
