#!/usr/bin/env python3
"""Benchmark: packet capture under a UDP flood, tcpdump vs netdiag-agent.

Not a test: it prints figures and ratios measured in the same run. A
sender in one namespace floods a veth with UDP at rising rates (bounded
in count and time; the matching port plus 10% of traffic the filter must
reject); each tool captures on the other end with the same filter and
buffer, writing to /dev/null, alternating tools at every rate. Per run:
packets sent, captured, dropped by the kernel (PACKET_STATISTICS), and
the capture process's CPU time and peak RSS. Reported: the highest rate
each tool captured with zero drops, CPU per captured packet, peak RSS,
and the ratios.
Needs root (namespaces); all traffic stays on the veth between them.

    sudo python3 tests/bench/tcpdump_bench.py [--agent PATH] [--seconds S] [--buffer KIB]

The agent defaults to the static release build:
    RUSTFLAGS='-C target-feature=+crt-static' \\
      cargo build --release -p netdiag-agent --target x86_64-unknown-linux-gnu
"""

import argparse
import os
import signal
import subprocess
import sys
import time

FILTER = "udp port 9000"
RATES = [10_000, 25_000, 50_000, 75_000, 100_000, 0]  # 0: as fast as the sender goes
MAX_PACKETS = 400_000

SENDER = r"""
import socket, sys, time
rate, count = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
payload = b"netdiag-bench" * 5
match, other = ("198.51.100.1", 9000), ("198.51.100.1", 9001)
send = s.sendto
start = time.perf_counter()
sent = 0
batch = 200
while sent < count:
    for i in range(batch):
        send(payload, match)
        if i % 10 == 0:
            send(payload, other)
    sent += batch
    if rate:
        ahead = sent / rate - (time.perf_counter() - start)
        if ahead > 0:
            time.sleep(ahead)
print(sent, time.perf_counter() - start)
"""


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stats(stderr):
    """(captured, received by filter, dropped) from the three lines."""
    out = {}
    for line in stderr.splitlines():
        for key in ("captured", "received by filter", "dropped by kernel"):
            if line.rstrip().endswith(key):
                out[key] = int(line.split()[0])
    return out.get("captured", -1), out.get("received by filter", -1), out.get("dropped by kernel", -1)


def run(ns_a, ns_b, veth, tool_cmd, rate, count, senders):
    """One capture during one flood; returns a dict of figures. An unpaced
    flood (rate 0) comes from `senders` processes at once."""
    err_path = f"/tmp/nd-bench-{os.getpid()}.err"
    with open(err_path, "w") as err:
        cap = subprocess.Popen(["ip", "netns", "exec", ns_a, *tool_cmd, "-i", veth,
                                "-w", "/dev/null", FILTER],
                               stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 20
    while "listening on" not in open(err_path).read():
        if time.time() > deadline or cap.poll() is not None:
            cap.kill()
            sys.exit(f"tcpdump_bench: {tool_cmd[0]} did not start: {open(err_path).read()}")
        time.sleep(0.05)
    n = senders if rate == 0 else 1
    procs = [subprocess.Popen(["ip", "netns", "exec", ns_b, sys.executable, "-c", SENDER,
                               str(rate), str(count // n - count // n % 200)],
                              stdout=subprocess.PIPE, text=True) for _ in range(n)]
    figures = [p.communicate(timeout=120)[0].split() for p in procs]
    sent = sum(int(f[0]) for f in figures)
    secs = max(float(f[1]) for f in figures)
    time.sleep(0.5)
    # The tool's own peak RSS: VmHWM belongs to the address space, which
    # exec replaced (wait4's ru_maxrss would include `ip netns exec`).
    with open(f"/proc/{cap.pid}/status") as status_file:
        hwm_kib = next(int(l.split()[1]) for l in status_file if l.startswith("VmHWM:"))
    cap.send_signal(signal.SIGINT)
    _, status, usage = os.wait4(cap.pid, 0)
    cap.returncode = os.waitstatus_to_exitcode(status)
    text = open(err_path).read()
    os.unlink(err_path)
    captured, received, dropped = stats(text)
    return {
        "sent": sent,
        "pps": sent / secs,
        "captured": captured,
        "received": received,
        "dropped": dropped,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mib": hwm_kib / 1024,
        # No drop: every matching packet passed the filter into the ring and
        # none was dropped for lack of room. (tcpdump, stopped by a signal
        # without --immediate-mode, leaves the last partly filled block
        # unread: those packets count as received, not captured.)
        "ok": dropped == 0 and received >= sent,
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    default_agent = os.path.join(root, "target/x86_64-unknown-linux-gnu/release/netdiag-agent")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", default=default_agent)
    p.add_argument("--seconds", type=float, default=2.0, help="flood length per run")
    p.add_argument("--buffer", type=int, default=4096, help="capture buffer, KiB (-B), both tools")
    p.add_argument("--senders", type=int, default=2, help="sender processes for the unpaced run")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("tcpdump_bench: needs root to create network namespaces")
    if not os.access(args.agent, os.X_OK):
        sys.exit(f"tcpdump_bench: no agent at {args.agent}; build it first (see --help)")

    ns_a, ns_b = f"nd-bench-a-{os.getpid()}", f"nd-bench-b-{os.getpid()}"
    veth_a, veth_b = f"vb{os.getpid() % 100000}a", f"vb{os.getpid() % 100000}b"
    tools = {
        "tcpdump": ["tcpdump", "-B", str(args.buffer)],
        "agent": [args.agent, "tcpdump", "-B", str(args.buffer)],
    }
    try:
        sh("ip", "netns", "add", ns_a)
        sh("ip", "netns", "add", ns_b)
        sh("ip", "link", "add", veth_a, "netns", ns_a, "type", "veth", "peer", "name", veth_b,
           "netns", ns_b)
        sh("ip", "-n", ns_a, "addr", "add", "198.51.100.1/24", "dev", veth_a)
        sh("ip", "-n", ns_b, "addr", "add", "198.51.100.2/24", "dev", veth_b)
        for ns, dev in ((ns_a, veth_a), (ns_b, veth_b)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        # Datagrams to closed ports would draw ICMP errors; drop them quietly.
        sh("ip", "netns", "exec", ns_a, "iptables", "-A", "INPUT", "-p", "udp", "-j", "DROP")

        results = {name: [] for name in tools}
        print(f"filter {FILTER!r}, buffer {args.buffer} KiB, {args.seconds:g} s per run\n")
        print(f"{'offered':>10} {'tool':>8} {'sent/s':>9} {'received':>9} {'captured':>9}"
              f" {'dropped':>8} {'cpu s':>7} {'cpu us/pkt':>10} {'rss MiB':>8}")
        for rate in RATES:
            count = int(min(MAX_PACKETS, (rate or 200_000) * args.seconds))
            count -= count % 200
            for name, cmd in tools.items():
                r = run(ns_a, ns_b, veth_a, cmd, rate, count, args.senders)
                results[name].append((rate, r))
                per = r["cpu"] / max(r["captured"], 1) * 1e6
                print(f"{rate or 'max':>10} {name:>8} {r['pps']:>9.0f} {r['received']:>9}"
                      f" {r['captured']:>9} {r['dropped']:>8} {r['cpu']:>7.2f} {per:>10.2f}"
                      f" {r['rss_mib']:>8.1f}"
                      f"{'' if r['ok'] else '  (drops)'}")

        def best(name):
            ok = [r["pps"] for _, r in results[name] if r["ok"]]
            return max(ok) if ok else 0.0

        def cpu_per_packet(name):
            cpu = sum(r["cpu"] for _, r in results[name])
            pkts = sum(max(r["captured"], 0) for _, r in results[name])
            return cpu / max(pkts, 1) * 1e6

        t, a = best("tcpdump"), best("agent")
        print(f"\nhighest rate captured with zero drops: tcpdump {t:.0f} pps, agent {a:.0f} pps,"
              + (f" ratio agent/tcpdump {a / t:.2f}x" if t else " (tcpdump dropped at every rate)"))
        tc, ac = cpu_per_packet("tcpdump"), cpu_per_packet("agent")
        print(f"CPU per captured packet (all runs): tcpdump {tc:.2f} us, agent {ac:.2f} us,"
              f" ratio tcpdump/agent {tc / ac if ac else float('nan'):.2f}x (higher: agent cheaper)")
        tr = max(r["rss_mib"] for _, r in results["tcpdump"])
        ar = max(r["rss_mib"] for _, r in results["agent"])
        print(f"peak RSS (ring of {args.buffer} KiB included): tcpdump {tr:.1f} MiB,"
              f" agent {ar:.1f} MiB, ratio agent/tcpdump {ar / tr:.2f}x")
    finally:
        subprocess.run(["ip", "netns", "del", ns_a], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "del", ns_b], stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
