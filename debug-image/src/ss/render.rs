//! Turning sockets into output: iproute2's text (through [`Table`]) or one
//! JSON document. Sockets arrive one at a time through [`Sink`], so neither
//! printer holds more than a bounded batch in memory.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;

use super::args::Show;
use super::columns::{self, COLUMNS, Table};
use super::model::{Endpoint, Netid, Socket, TcpState};
use super::services;
use super::tcp_info::{self, TcpInfo};

/// Receives the sockets to print, in output order.
pub trait Sink {
    fn socket(&mut self, s: &Socket) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
}

/// iproute2's text layout.
pub struct TextSink<W: Write> {
    out: W,
    show: Show,
    table: Table,
    /// Reused across sockets to avoid an allocation per cell.
    cells: [String; COLUMNS],
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W, show: Show, screen_width: Option<usize>) -> Self {
        let mut disabled = [false; COLUMNS];
        disabled[columns::NETID] = !show.netid_column;
        disabled[columns::STATE] = !show.state_column;
        let mut table = Table::new(disabled, screen_width);
        if show.header {
            table.push_header();
        }
        TextSink {
            out,
            show,
            table,
            cells: Default::default(),
        }
    }
}

impl<W: Write> Sink for TextSink<W> {
    fn socket(&mut self, s: &Socket) -> io::Result<()> {
        for c in &mut self.cells {
            c.clear();
        }
        fill_cells(s, &self.show, &mut self.cells);
        let refs: [&str; COLUMNS] = std::array::from_fn(|i| self.cells[i].as_str());
        self.table.push_row(&refs);
        if self.table.wants_flush() {
            self.table.render(&mut self.out, false)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.table.render(&mut self.out, true)?;
        self.out.flush()
    }
}

/// One JSON document: `{"sockets": [ ... ]}`, written as sockets arrive.
pub struct JsonSink<W: Write> {
    out: W,
    count: usize,
    summary: Option<serde_json::Value>,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W, summary: Option<serde_json::Value>) -> Self {
        JsonSink {
            out,
            count: 0,
            summary,
        }
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn socket(&mut self, s: &Socket) -> io::Result<()> {
        self.out.write_all(if self.count == 0 {
            b"{\"sockets\":["
        } else {
            b","
        })?;
        self.count += 1;
        serde_json::to_writer(&mut self.out, s).map_err(io::Error::other)
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.count == 0 {
            self.out.write_all(b"{\"sockets\":[")?;
        }
        self.out.write_all(b"]")?;
        if let Some(summary) = &self.summary {
            self.out.write_all(b",\"summary\":")?;
            serde_json::to_writer(&mut self.out, summary).map_err(io::Error::other)?;
        }
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
}

/// The ten cells of one socket's row, as iproute2 fills them.
fn fill_cells(s: &Socket, show: &Show, cells: &mut [String; COLUMNS]) {
    cells[0].push_str(s.netid.label());
    cells[1].push_str(s.state.label());
    let _ = write!(cells[2], "{:<6}", s.recv_q);
    let _ = write!(cells[3], "{:<6}", s.send_q);
    let [
        _,
        _,
        _,
        _,
        local_addr,
        local_port,
        peer_addr,
        peer_port,
        _,
        _,
    ] = cells;
    endpoint_cells(&s.local, s, show, true, local_addr, local_port);
    endpoint_cells(&s.peer, s, show, false, peer_addr, peer_port);
    extras(s, show, &mut cells[columns::PROCESS]);
}

fn endpoint_cells(
    e: &Endpoint,
    s: &Socket,
    show: &Show,
    local: bool,
    addr: &mut String,
    port: &mut String,
) {
    match e {
        Endpoint::Inet {
            address,
            port: p,
            ifindex,
        } => {
            match address {
                IpAddr::V4(a) => {
                    let _ = write!(addr, "{a}");
                }
                IpAddr::V6(a) => {
                    if a.is_unspecified() && s.v6only != Some(true) {
                        addr.push('*');
                    } else {
                        let _ = write!(addr, "[{a}]");
                    }
                }
            }
            if local && *ifindex != 0 {
                let _ = write!(addr, "%{}", interface_name(*ifindex));
            }
            addr.push(':');
            service_text(*p, s.netid, show.numeric, port);
        }
        Endpoint::Unix { path, inode } => {
            addr.push_str(path.as_deref().unwrap_or("*"));
            addr.push(' ');
            let _ = write!(port, "{inode}");
        }
    }
}

fn service_text(port: u16, netid: Netid, numeric: bool, out: &mut String) {
    if port == 0 {
        out.push('*');
        return;
    }
    if !numeric {
        let name = match netid {
            Netid::Raw => services::protocol_name(port),
            Netid::Udp => services::name_by_port(port, "udp"),
            _ => services::name_by_port(port, "tcp"),
        };
        if let Some(name) = name {
            out.push_str(name);
            return;
        }
    }
    let _ = write!(out, "{port}");
}

fn interface_name(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .ok()
        .and_then(|n| n.into_string().ok())
        .unwrap_or_else(|| format!("if{index}"))
}

/// The Process column: users, timers, details, memory and TCP internals,
/// in iproute2's order.
fn extras(s: &Socket, show: &Show, out: &mut String) {
    if show.processes && !s.processes.is_empty() {
        out.push_str(" users:(");
        for (i, p) in s.processes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "(\"{}\",pid={},fd={})", p.name, p.pid, p.fd);
        }
        out.push(')');
    }
    if s.netid.is_unix() {
        if show.memory
            && let Some(m) = &s.skmem
        {
            skmem_text(m, out);
        }
        if show.extended
            && let Some(mask) = s.shutdown
        {
            shutdown_text(mask, out);
        }
        return;
    }
    if show.timers
        && let Some(t) = &s.timer
    {
        let _ = write!(
            out,
            " timer:({},{},{})",
            t.kind,
            ms_timer(t.expires_ms),
            t.retrans
        );
    }
    if show.extended {
        if s.uid != 0 {
            let _ = write!(out, " uid:{}", s.uid);
        }
        let _ = write!(out, " ino:{} sk:{:x}", s.inode, s.cookie);
        if let Some(mark) = s.mark.filter(|m| *m != 0) {
            let _ = write!(out, " fwmark:0x{mark:x}");
        }
        if let Some(v6only) = s.v6only {
            let _ = write!(out, " v6only:{}", u8::from(v6only));
        }
        if let Some(mask) = s.shutdown {
            shutdown_text(mask, out);
        }
    }
    if show.memory || (show.info && s.netid != Netid::Udp) {
        out.push_str(if show.oneline { "" } else { "\n\t" });
        if let Some(m) = &s.skmem {
            skmem_text(m, out);
        }
        if let Some(info) = &s.tcp_info {
            tcp_info_text(s, info, show, out);
        }
    }
}

fn shutdown_text(mask: u8, out: &mut String) {
    let _ = write!(
        out,
        " {}-{}",
        if mask & 1 != 0 { '-' } else { '<' },
        if mask & 2 != 0 { '-' } else { '>' }
    );
}

fn skmem_text(m: &super::model::SkMem, out: &mut String) {
    let _ = write!(
        out,
        " skmem:(r{},rb{},t{},tb{},f{},w{},o{}",
        m.rmem_alloc, m.rcvbuf, m.wmem_alloc, m.sndbuf, m.fwd_alloc, m.wmem_queued, m.optmem
    );
    if let Some(bl) = m.backlog {
        let _ = write!(out, ",bl{bl}");
    }
    if let Some(d) = m.drops {
        let _ = write!(out, ",d{d}");
    }
    out.push(')');
}

/// iproute2's tcp_stats_print, field for field.
fn tcp_info_text(s: &Socket, i: &TcpInfo, show: &Show, out: &mut String) {
    let ms = |us: u32| f64::from(us) / 1000.0;
    if show.timers {
        for (bit, word) in [
            (tcp_info::OPT_TIMESTAMPS, " ts"),
            (tcp_info::OPT_SACK, " sack"),
            (tcp_info::OPT_ECN, " ecn"),
            (tcp_info::OPT_ECN_SEEN, " ecnseen"),
            (tcp_info::OPT_SYN_DATA, " fastopen"),
        ] {
            if i.options & bit != 0 {
                out.push_str(word);
            }
        }
    }
    if let Some(cc) = &s.congestion {
        let _ = write!(out, " {cc}");
    }
    if i.options & tcp_info::OPT_WSCALE != 0 {
        let _ = write!(out, " wscale:{},{}", i.snd_wscale, i.rcv_wscale);
    }
    if i.rto != 0 && i.rto != 3_000_000 {
        let _ = write!(out, " rto:{}", fmt_g(ms(i.rto), 6));
    }
    if i.backoff != 0 {
        let _ = write!(out, " backoff:{}", i.backoff);
    }
    if i.rtt != 0 {
        let _ = write!(
            out,
            " rtt:{}/{}",
            fmt_g(ms(i.rtt), 6),
            fmt_g(ms(i.rttvar), 6)
        );
    }
    if i.ato != 0 {
        let _ = write!(out, " ato:{}", fmt_g(ms(i.ato), 6));
    }
    for (value, name) in [
        (i.snd_mss, "mss"),
        (i.pmtu, "pmtu"),
        (i.rcv_mss, "rcvmss"),
        (i.advmss, "advmss"),
        (i.snd_cwnd, "cwnd"),
    ] {
        if value != 0 {
            let _ = write!(out, " {name}:{value}");
        }
    }
    if i.snd_ssthresh != 0 && i.snd_ssthresh < 0xFFFF {
        let _ = write!(out, " ssthresh:{}", i.snd_ssthresh);
    }
    for (value, name) in [
        (i.bytes_sent, "bytes_sent"),
        (i.bytes_retrans, "bytes_retrans"),
        (i.bytes_acked, "bytes_acked"),
        (i.bytes_received, "bytes_received"),
        (u64::from(i.segs_out), "segs_out"),
        (u64::from(i.segs_in), "segs_in"),
        (u64::from(i.data_segs_out), "data_segs_out"),
        (u64::from(i.data_segs_in), "data_segs_in"),
    ] {
        if value != 0 {
            let _ = write!(out, " {name}:{value}");
        }
    }
    if let Some(bbr) = &s.bbr {
        let _ = write!(
            out,
            " bbr:(bw:{}bps,mrtt:{}",
            bandwidth(bbr.bw as f64 * 8.0, show.numeric),
            fmt_g(f64::from(bbr.min_rtt_us) / 1000.0, 6)
        );
        if bbr.pacing_gain != 0 {
            let _ = write!(
                out,
                ",pacing_gain:{}",
                fmt_g(f64::from(bbr.pacing_gain) / 256.0, 6)
            );
        }
        if bbr.cwnd_gain != 0 {
            let _ = write!(
                out,
                ",cwnd_gain:{}",
                fmt_g(f64::from(bbr.cwnd_gain) / 256.0, 6)
            );
        }
        out.push(')');
    }
    if i.rtt > 0 && i.snd_mss != 0 && i.snd_cwnd != 0 {
        let bps = f64::from(i.snd_cwnd) * f64::from(i.snd_mss) * 8_000_000.0 / f64::from(i.rtt);
        let _ = write!(out, " send {}bps", bandwidth(bps, show.numeric));
    }
    for (value, name) in [
        (i.last_data_sent_ms, "lastsnd"),
        (i.last_data_recv_ms, "lastrcv"),
        (i.last_ack_recv_ms, "lastack"),
    ] {
        if value != 0 {
            let _ = write!(out, " {name}:{value}");
        }
    }
    if i.pacing_rate != 0 && i.pacing_rate != u64::MAX {
        let _ = write!(
            out,
            " pacing_rate {}bps",
            bandwidth(i.pacing_rate as f64 * 8.0, show.numeric)
        );
        if i.max_pacing_rate != 0 && i.max_pacing_rate != u64::MAX {
            let _ = write!(
                out,
                "/{}bps",
                bandwidth(i.max_pacing_rate as f64 * 8.0, show.numeric)
            );
        }
    }
    if i.delivery_rate != 0 {
        let _ = write!(
            out,
            " delivery_rate {}bps",
            bandwidth(i.delivery_rate as f64 * 8.0, show.numeric)
        );
    }
    if i.delivered != 0 {
        let _ = write!(out, " delivered:{}", i.delivered);
    }
    if i.delivered_ce != 0 {
        let _ = write!(out, " delivered_ce:{}", i.delivered_ce);
    }
    if i.delivery_rate_app_limited {
        out.push_str(" app_limited");
    }
    if i.busy_time != 0 {
        let _ = write!(out, " busy:{}ms", i.busy_time / 1000);
        if i.rwnd_limited != 0 {
            let pct = 100.0 * i.rwnd_limited as f64 / i.busy_time as f64;
            let _ = write!(out, " rwnd_limited:{}ms({pct:.1}%)", i.rwnd_limited / 1000);
        }
        if i.sndbuf_limited != 0 {
            let pct = 100.0 * i.sndbuf_limited as f64 / i.busy_time as f64;
            let _ = write!(
                out,
                " sndbuf_limited:{}ms({pct:.1}%)",
                i.sndbuf_limited / 1000
            );
        }
    }
    if i.unacked != 0 {
        let _ = write!(out, " unacked:{}", i.unacked);
    }
    if i.retrans != 0 || i.total_retrans != 0 {
        let _ = write!(out, " retrans:{}/{}", i.retrans, i.total_retrans);
    }
    if i.lost != 0 {
        let _ = write!(out, " lost:{}", i.lost);
    }
    if i.sacked != 0 && s.state != TcpState(TcpState::LISTEN) {
        let _ = write!(out, " sacked:{}", i.sacked);
    }
    if i.dsack_dups != 0 {
        let _ = write!(out, " dsack_dups:{}", i.dsack_dups);
    }
    if i.fackets != 0 {
        let _ = write!(out, " fackets:{}", i.fackets);
    }
    if i.reordering != 3 {
        let _ = write!(out, " reordering:{}", i.reordering);
    }
    if i.reord_seen != 0 {
        let _ = write!(out, " reord_seen:{}", i.reord_seen);
    }
    if i.rcv_rtt != 0 {
        let _ = write!(out, " rcv_rtt:{}", fmt_g(ms(i.rcv_rtt), 6));
    }
    if i.rcv_space != 0 {
        let _ = write!(out, " rcv_space:{}", i.rcv_space);
    }
    if i.rcv_ssthresh != 0 {
        let _ = write!(out, " rcv_ssthresh:{}", i.rcv_ssthresh);
    }
    if i.notsent_bytes != 0 {
        let _ = write!(out, " notsent:{}", i.notsent_bytes);
    }
    if i.min_rtt != 0 && i.min_rtt != u32::MAX {
        let _ = write!(out, " minrtt:{}", fmt_g(ms(i.min_rtt), 6));
    }
    if i.rcv_ooopack != 0 {
        let _ = write!(out, " rcv_ooopack:{}", i.rcv_ooopack);
    }
    if i.snd_wnd != 0 {
        let _ = write!(out, " snd_wnd:{}", i.snd_wnd);
    }
}

/// iproute2's sprint_bw: `%.0f` with -n, else `%.3g` with k/M/G/T.
fn bandwidth(bps: f64, numeric: bool) -> String {
    if numeric {
        return format!("{bps:.0}");
    }
    for (scale, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if bps >= scale {
            return format!("{}{suffix}", fmt_g(bps / scale, 3));
        }
    }
    fmt_g(bps, 6)
}

/// iproute2's print_ms_timer: `2min`, `59sec`, `1.234ms`-style.
pub fn ms_timer(timeout: u32) -> String {
    let mut secs = timeout / 1000;
    let minutes = secs / 60;
    secs %= 60;
    let mut msecs = timeout % 1000;
    let mut out = String::new();
    if minutes != 0 {
        msecs = 0;
        let _ = write!(out, "{minutes}min");
        if minutes > 9 {
            secs = 0;
        }
    }
    if secs != 0 {
        if secs > 9 {
            msecs = 0;
        }
        let _ = write!(out, "{secs}{}", if msecs != 0 { "." } else { "sec" });
    }
    if msecs != 0 {
        let _ = write!(out, "{msecs:03}ms");
    }
    out
}

/// C's `%.Pg`: P significant digits, trailing zeros removed, exponent
/// form outside [1e-4, 10^P).
pub fn fmt_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".into();
    }
    if !value.is_finite() {
        return format!("{value}");
    }
    let p = precision.max(1);
    // The exponent after rounding to P significant digits.
    let sci = format!("{:.*e}", p - 1, value);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mantissa = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{value:.decimals$}")).to_owned()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_like_c() {
        assert_eq!(fmt_g(0.018, 6), "0.018");
        assert_eq!(fmt_g(204.0, 6), "204");
        assert_eq!(fmt_g(0.009, 6), "0.009");
        assert_eq!(fmt_g(1.0, 6), "1");
        assert_eq!(fmt_g(145.635555556, 3), "146");
        assert_eq!(fmt_g(1234567.0, 6), "1.23457e+06");
        assert_eq!(fmt_g(0.00001, 6), "1e-05");
        assert_eq!(fmt_g(12.5, 3), "12.5");
        assert_eq!(
            bandwidth(145635555556.0, false),
            "146Gbps".trim_end_matches("bps")
        );
        assert_eq!(bandwidth(145635555556.0, true), "145635555556");
    }

    #[test]
    fn timers_like_iproute2() {
        assert_eq!(ms_timer(59_000), "59sec");
        assert_eq!(ms_timer(7_140_000), "119min");
        assert_eq!(ms_timer(204), "204ms");
        assert_eq!(ms_timer(1_204), "1.204ms");
        assert_eq!(ms_timer(61_500), "1min1sec");
    }
}
