#!/usr/bin/env python3
"""Benchmark: `kubectl netdiag` start-up against the sandbox cluster.

Not a test: prints, over N runs each, the time from command start to the
first byte of tool output for `kubectl netdiag web ss -tln`, the same for
bare `kubectl debug` (the alternative it replaces: it waits for the pod
status to say Running before attaching), and the plugin's own overhead:
its total minus the container start (from the PATCH answer to the agent's
"tool started" frame, taken from NETDIAG_TRACE).

    sudo python3 tests/bench/plugin_bench.py [--runs N]

Builds what it needs with cargo (debug profile, like the tests).
"""

import argparse
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time

PODS = """
pods:
  - name: web
    labels: {app: web}
    containers:
      - name: app
        image: registry.example/web:1.0
        command: [busybox, nc, -ll, -p, "8080", -e, /bin/cat]
"""


def first_byte(cmd, env):
    """(seconds to the first stdout byte, total seconds, stderr)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = None
    chunks = []
    fd = p.stdout.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            p.kill()
            raise SystemExit(f"plugin_bench: no output from {' '.join(cmd)} in 30 s")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        if first is None:
            first = time.perf_counter() - start
        chunks.append(chunk)
    err = p.stderr.read().decode(errors="replace")
    p.wait()
    total = time.perf_counter() - start
    if p.returncode != 0 or first is None:
        raise SystemExit(f"plugin_bench: {' '.join(cmd)} failed ({p.returncode}): {err}")
    return first, total, err


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("plugin_bench: needs root (the sandbox makes network namespaces)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run(["cargo", "build", "-q", "-p", "kubectl-netdiag", "-p", "netdiag-agent",
                    "-p", "netdiag-sandbox"], cwd=root, check=True)
    bins = os.path.join(root, "target", "debug")
    with tempfile.TemporaryDirectory() as d:
        pods = os.path.join(d, "pods.yaml")
        with open(pods, "w") as f:
            f.write(PODS)
        sandbox = subprocess.Popen(
            [os.path.join(bins, "netdiag-sandbox"), "--pods", pods, "--dir", d,
             "--agent", os.path.join(bins, "netdiag-agent")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = sandbox.stdout.readline().split()
            if not line or line[0] != "ready":
                sys.exit("plugin_bench: the sandbox did not start")
            env = dict(os.environ, KUBECONFIG=line[1], PATH=f"{bins}:{os.environ['PATH']}")
            ours, overhead, debug = [], [], []
            for i in range(args.runs):
                fb, total, err = first_byte(["kubectl", "netdiag", "web", "ss", "-tln"],
                                            dict(env, NETDIAG_TRACE="1"))
                ours.append(fb)
                marks = dict((m.group(1), float(m.group(2))) for m in
                             re.finditer(r"netdiag-trace: (.+?) ([0-9.]+) ms", err))
                if "patched" in marks and "tool started" in marks:
                    container = (marks["tool started"] - marks["patched"]) / 1000
                    overhead.append(total - container)
                fb, _, _ = first_byte(["kubectl", "debug", "web", f"--image=netdiag-bench:{i}",
                                       "--target=app", "-i", "--quiet", "--",
                                       "/netdiag-agent", "ss", "-tln"], env)
                debug.append(fb)
            med = statistics.median
            print(f"kubectl netdiag start-up against the sandbox, median of {args.runs} runs:")
            print(f"  kubectl netdiag web ss -tln   first byte {med(ours) * 1000:7.1f} ms")
            print(f"  kubectl debug -i (same agent) first byte {med(debug) * 1000:7.1f} ms")
            print(f"  ratio (netdiag / kubectl debug): {med(ours) / med(debug):.2f}x")
            if overhead:
                print(f"  plugin overhead excluding the container start: {med(overhead) * 1000:.1f} ms")
        finally:
            sandbox.stdin.close()
            sandbox.wait(timeout=30)


if __name__ == "__main__":
    main()
