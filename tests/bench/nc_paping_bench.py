#!/usr/bin/env python3
"""Benchmark: `nc -z` ports per second and paping's per-probe overhead.

Not a test: it prints figures and ratios measured in the same run, on the
same namespace's loopback, alternating the tools:

  1. `nc -z 127.0.0.1 LO-HI` over a range with a few open ports:
     netdiag-agent nc (concurrent) against OpenBSD netcat (sequential).
     Both must report the same open ports before anything is timed. The
     same scan then crosses a veth pair to a second namespace, where a
     round trip exists to overlap (closer to a pod network).
  2. paping against `hping3 -S` to an open port: the round trip each
     reports (the same SYN -> SYN-ACK on loopback, where the wire adds
     almost nothing, so what remains is the tool's own overhead), and the
     CPU time each spends per probe.

Needs root (it makes a network namespace; all traffic stays on its
loopback), netcat-openbsd, hping3 and GNU time.

    sudo python3 tests/bench/nc_paping_bench.py [--agent PATH] [--ports N] [--runs N] [--probes N]

The agent defaults to the static release build:
    RUSTFLAGS='-C target-feature=+crt-static' \\
      cargo build --release -p netdiag-agent --target x86_64-unknown-linux-gnu
"""

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

OPEN_PORTS = (1100, 5000, 12345)
PAPING_PORT = 1100

LISTENER = r"""
import socket, sys, time
held = []
for port in map(int, sys.argv[1:]):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4096)
    held.append(s)
print("ready", flush=True)
# Accept and drop, so a backlog never fills; stops by itself after 10 min.
for s in held:
    s.setblocking(False)
deadline = time.time() + 600
while time.time() < deadline:
    idle = True
    for s in held:
        try:
            c, _ = s.accept()
            c.close()
            idle = False
        except BlockingIOError:
            pass
    if idle:
        time.sleep(0.0005)
"""


def in_ns(ns, *cmd):
    return ["ip", "netns", "exec", ns, *cmd]


def timed(cmd):
    """Wall time (s) and child CPU time (s) of one run; output captured."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out


def peak_rss_kib(cmd):
    """Peak RSS (KiB) of one run, from GNU time (see ss_bench.py for why)."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    return int(out.stderr.strip().splitlines()[-1])


def open_ports_reported(stderr):
    return [int(line.split()[3]) for line in stderr.splitlines() if line.endswith("succeeded!")]


def bench_scan(ns, agent, hi, runs, target="127.0.0.1", where="loopback"):
    rng = f"1-{hi}"
    theirs = in_ns(ns, "nc", "-zvn", target, rng)
    ours = in_ns(ns, agent, "nc", "-zvn", target, rng)
    a, b = timed(theirs)[2], timed(ours)[2]
    want = [p for p in OPEN_PORTS if p <= hi]
    if open_ports_reported(a.stderr) != want or open_ports_reported(b.stderr) != want:
        sys.exit(f"bench: open ports differ: netcat {open_ports_reported(a.stderr)}, "
                 f"ours {open_ports_reported(b.stderr)}, expected {want}")
    if a.stderr != b.stderr or a.returncode != b.returncode:
        sys.exit("bench: nc -zvn outputs differ; fix that before timing")
    w_theirs, w_ours = [], []
    for _ in range(runs):
        w_theirs.append(timed(theirs)[0])
        w_ours.append(timed(ours)[0])
    m_theirs, m_ours = statistics.median(w_theirs), statistics.median(w_ours)
    rss_theirs = peak_rss_kib(["nsenter", f"--net=/run/netns/{ns}", "nc", "-zn", target, rng])
    rss_ours = peak_rss_kib(["nsenter", f"--net=/run/netns/{ns}", agent, "nc", "-zn", target, rng])
    print(f"nc -zvn {target} {rng} over {where} ({hi} ports, {len(want)} open), median of {runs} runs each:")
    print(f"  OpenBSD nc        {m_theirs * 1000:8.1f} ms  {hi / m_theirs:10.0f} ports/s  peak RSS {rss_theirs:6d} KiB")
    print(f"  netdiag-agent nc  {m_ours * 1000:8.1f} ms  {hi / m_ours:10.0f} ports/s  peak RSS {rss_ours:6d} KiB")
    print(f"  ports/s ratio (netdiag / netcat): {m_theirs / m_ours:.2f}x")


def bench_probes(ns, agent, probes):
    # paping back to back (-i 0): its JSON gives each probe's connect time.
    cmd = in_ns(ns, agent, "paping", "127.0.0.1", "-p", str(PAPING_PORT), "-c", str(probes),
                "-i", "0", "-o", "json")
    wall_p, cpu_p, out = timed(cmd)
    events = [json.loads(l) for l in out.stdout.splitlines()]
    summary = events[-1]
    if summary.get("connected") != probes:
        sys.exit(f"bench: paping did not connect every probe: {summary}")
    paping_rtts = sorted(e["time_us"] for e in events if e["type"] == "probe")
    rss_paping = peak_rss_kib(["nsenter", f"--net=/run/netns/{ns}", agent, "paping", "127.0.0.1",
                               "-p", str(PAPING_PORT), "-c", str(probes), "-i", "0", "-o", "json"])

    # hping3 needs a send interval; 1 ms keeps replies apart. Its CPU time
    # is per probe sent, whatever the interval.
    hcount = min(probes, 1000)
    cmd = in_ns(ns, "hping3", "-n", "-S", "-p", str(PAPING_PORT), "-c", str(hcount), "-i", "u1000",
                "127.0.0.1")
    wall_h, cpu_h, out = timed(cmd)
    hping_rtts = sorted(float(m) * 1000 for m in re.findall(r"rtt=([0-9.]+) ms", out.stdout))
    if len(hping_rtts) < hcount * 0.9:
        sys.exit(f"bench: hping3 got {len(hping_rtts)} of {hcount} replies")

    def pct(v, p):
        return v[max(0, -(-len(v) * p // 100) - 1)]

    print(f"SYN -> SYN-ACK on loopback to an open port ({probes} paping probes at -i 0, "
          f"{hcount} hping3 probes at 1 ms):")
    print(f"  paping   p50 {pct(paping_rtts, 50):7.1f} us  p99 {pct(paping_rtts, 99):7.1f} us   "
          f"CPU {cpu_p / probes * 1e6:6.1f} us/probe   {probes / wall_p:8.0f} probes/s   "
          f"peak RSS {rss_paping} KiB")
    print(f"  hping3   p50 {pct(hping_rtts, 50):7.1f} us  p99 {pct(hping_rtts, 99):7.1f} us   "
          f"CPU {cpu_h / hcount * 1e6:6.1f} us/probe   (0.1 ms resolution)")
    print(f"  reported RTT ratio (paping / hping3, p50): {pct(paping_rtts, 50) / pct(hping_rtts, 50):.2f}x")
    print(f"  CPU per probe ratio (paping / hping3):     {(cpu_p / probes) / (cpu_h / hcount):.2f}x")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    default_agent = os.path.join(root, "target/x86_64-unknown-linux-gnu/release/netdiag-agent")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", default=default_agent)
    p.add_argument("--ports", type=int, default=20000, help="scan 1-PORTS")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--probes", type=int, default=5000)
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("nc_paping_bench: needs root to create a network namespace")
    for tool in ("nc", "hping3", "nsenter"):
        if not shutil.which(tool):
            sys.exit(f"nc_paping_bench: {tool} is not installed")
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("nc_paping_bench: needs GNU time for peak RSS (apt-get install time)")
    if not os.access(args.agent, os.X_OK):
        sys.exit(f"nc_paping_bench: no agent at {args.agent}; build it first (see --help)")

    ns = f"nd-ncbench-{os.getpid()}"
    peer = f"{ns}-c"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "netns", "add", peer], check=True)
    listener = None
    try:
        for n, addr in ((ns, "198.51.100.1/24"), (peer, "198.51.100.2/24")):
            subprocess.run(["ip", "-n", n, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "add", "vbench", "type", "veth", "peer", "name",
                        "vbench", "netns", peer], check=True)
        for n, addr in ((ns, "198.51.100.1/24"), (peer, "198.51.100.2/24")):
            subprocess.run(["ip", "-n", n, "addr", "add", addr, "dev", "vbench"], check=True)
            subprocess.run(["ip", "-n", n, "link", "set", "vbench", "up"], check=True)
        listener = subprocess.Popen(in_ns(ns, sys.executable, "-c", LISTENER, *map(str, OPEN_PORTS)),
                                    stdout=subprocess.PIPE, text=True)
        if listener.stdout.readline().strip() != "ready":
            sys.exit("nc_paping_bench: the listener did not start")
        bench_scan(ns, args.agent, args.ports, args.runs)
        bench_scan(peer, args.agent, args.ports // 4, args.runs, "198.51.100.1", "a veth pair")
        bench_probes(ns, args.agent, args.probes)
    finally:
        if listener:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "netns", "del", ns])
        subprocess.run(["ip", "netns", "del", peer])


if __name__ == "__main__":
    main()
