#!/usr/bin/env python3
"""Benchmark: `ss -tan` over >= 20,000 TCP sockets, iproute2 vs netdiag-agent.

Not a test: it prints figures and ratios measured in the same run, on the
same sockets, alternating the two tools. Needs root (it makes a network
namespace; all traffic stays on that namespace's loopback).

    sudo python3 tests/bench/ss_bench.py [--agent PATH] [--pairs N] [--runs N]

The agent defaults to the static release build:
    RUSTFLAGS='-C target-feature=+crt-static' \
      cargo build --release -p netdiag-agent --target x86_64-unknown-linux-gnu
"""

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

HOLDER = r"""
import resource, socket, sys, time
pairs = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = min(pairs * 2 + 100, hard)
resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
addr = listener.getsockname()
held = []
for _ in range(pairs):
    c = socket.create_connection(addr)
    a, _ = listener.accept()
    held += [c, a]
print("ready", flush=True)
deadline = time.time() + 600  # stops by itself even if the driver dies
while time.time() < deadline and sys.stdin.read(1):
    pass
"""
PAIRS_PER_HOLDER = 4_000


def run_once(cmd):
    """Wall time (s) of one run with stdout to /dev/null."""
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def peak_rss_kib(cmd):
    """Peak RSS (KiB) of one run, from GNU time: it forks the tool from its
    own small process, so the figure is not inflated by this Python
    interpreter's memory (a child forked from here would inherit its
    high-water mark across exec)."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=True)
    return int(out.stderr.strip().splitlines()[-1])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    default_agent = os.path.join(root, "target/x86_64-unknown-linux-gnu/release/netdiag-agent")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", default=default_agent)
    p.add_argument("--pairs", type=int, default=10_500, help="connected pairs (2 sockets each)")
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("ss_bench: needs root to create a network namespace")
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("ss_bench: needs GNU time for peak RSS (apt-get install time)")
    if not os.access(args.agent, os.X_OK):
        sys.exit(f"ss_bench: no agent at {args.agent}; build it first (see --help)")

    ns = f"nd-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    holders = []
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        # Several holder processes: the per-process fd limit here is 20,000.
        remaining = args.pairs
        while remaining > 0:
            n = min(remaining, PAIRS_PER_HOLDER)
            remaining -= n
            holders.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-c", HOLDER, str(n)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for holder in holders:
            if holder.stdout.readline().strip() != "ready":
                sys.exit("ss_bench: a socket holder did not start")
        count_cmd = ["ip", "netns", "exec", ns, "ss", "-Htan"]
        sockets = subprocess.run(count_cmd, capture_output=True, text=True).stdout.count("\n")
        theirs = ["ip", "netns", "exec", ns, "ss", "-tan"]
        ours = ["ip", "netns", "exec", ns, args.agent, "ss", "-tan"]
        # Same output first: a fast wrong answer is no answer.
        a = subprocess.run(theirs, capture_output=True).stdout
        b = subprocess.run(ours, capture_output=True).stdout
        if a != b:
            sys.exit("ss_bench: outputs differ; fix that before timing")
        t_theirs, t_ours = [], []
        for _ in range(args.runs):
            t_theirs.append(run_once(theirs))
            t_ours.append(run_once(ours))
        # `ip netns exec` is in both; measure the tools' own RSS directly.
        rss_theirs = peak_rss_kib(["nsenter", f"--net=/run/netns/{ns}", "ss", "-tan"])
        rss_ours = peak_rss_kib(["nsenter", f"--net=/run/netns/{ns}", args.agent, "ss", "-tan"])
        m_theirs, m_ours = statistics.median(t_theirs), statistics.median(t_ours)
        print(f"ss -tan over {sockets} TCP sockets, median of {args.runs} runs each (same run, alternating):")
        print(f"  iproute2 ss      {m_theirs * 1000:8.1f} ms   peak RSS {rss_theirs:6d} KiB")
        print(f"  netdiag-agent ss {m_ours * 1000:8.1f} ms   peak RSS {rss_ours:6d} KiB")
        print(f"  time ratio (netdiag / iproute2): {m_ours / m_theirs:.2f}x   (goal <= 1.0x)")
        print(f"  RSS ratio  (netdiag / iproute2): {rss_ours / rss_theirs:.2f}x")
    finally:
        for holder in holders:
            holder.stdin.close()
            holder.kill()
            holder.wait()
        subprocess.run(["ip", "netns", "del", ns])


if __name__ == "__main__":
    main()
