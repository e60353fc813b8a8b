#!/usr/bin/env bash
# The main job: `kubectl netdiag` for real.
#
#   tests/demo.sh                      a tour against the local sandbox cluster
#   tests/demo.sh POD TOOL [ARGS...]   one command: against your cluster when
#                                      one is configured and reachable, else
#                                      against the sandbox (pods: web, db)
#
# The sandbox (tests/sandbox) is a Kubernetes API server whose pods are real
# network namespaces; it needs root. It stops when this script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p kubectl-netdiag -p netdiag-agent -p netdiag-sandbox
export PATH="$PWD/target/debug:$PATH"

if [ $# -gt 0 ] && kubectl version --request-timeout=5s >/dev/null 2>&1; then
    exec kubectl netdiag "$@"
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: no reachable cluster, and the sandbox cluster makes network namespaces: run as root (sudo $0 $*)" >&2
    exit 1
fi

dir=$(mktemp -d)
cleanup() {
    [ -n "${SANDBOX_PID:-}" ] && kill "$SANDBOX_PID" 2>/dev/null && wait "$SANDBOX_PID" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
# The sandbox serves until its stdin closes, so it cannot outlive us.
coproc SANDBOX { exec netdiag-sandbox --pods tests/demo/pods.yaml --dir "$dir" --agent "$PWD/target/debug/netdiag-agent"; }
read -r ready kubeconfig <&"${SANDBOX[0]}"
if [ "$ready" != ready ]; then
    echo "demo: the sandbox did not start" >&2
    exit 1
fi
export KUBECONFIG=$kubeconfig

if [ $# -gt 0 ]; then
    kubectl netdiag "$@"
    exit
fi

show() {
    echo "\$ $*"
    "$@" || true
    echo
}
show kubectl get pods -o wide
db=$(kubectl get pod db -o jsonpath='{.status.podIP}')
show kubectl netdiag web ss -tlnp
show kubectl netdiag deploy/web ss -tn state established
show kubectl netdiag web nc -vz "$db" 5432
show kubectl netdiag web nc -vz "$db" 5433
show kubectl netdiag web paping "$db" -p 5432 -c 3
show kubectl netdiag web nstat --drops -a
show kubectl netdiag web dig db.default.svc.cluster.local +noall +answer
show kubectl netdiag web resolve api.example.com
# A capture in db while web connects to it: tcpdump listens first. Its
# stdout and stderr travel apart (as with kubectl exec), so they are put
# back in tcpdump's order: the two header lines, the packets, the counts.
kubectl netdiag db tcpdump -i any -c 6 tcp port 5432 >"$dir/capture.out" 2>"$dir/capture.err" &
capture=$!
for _ in $(seq 100); do
    grep -q "listening on" "$dir/capture.err" 2>/dev/null && break
    sleep 0.1
done
kubectl netdiag web nc -z "$db" 5432
wait "$capture" || true
echo "\$ kubectl netdiag db tcpdump -i any -c 6 tcp port 5432"
head -n 2 "$dir/capture.err"
cat "$dir/capture.out"
tail -n +3 "$dir/capture.err"
