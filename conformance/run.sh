#!/usr/bin/env bash
# Runs the PHP GLPI conformance harness against the real server binary.
# Usage: conformance/run.sh [path/to/glpi-network-server]   (default: target/debug/...)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug/glpi-network-server}"
[ -x "$bin" ] || cargo build -p glpi-network-server
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$bin" --bind "127.0.0.1:$port" --data-dir "$work" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
key() { "$bin" --data-dir "$work" keys issue --subscriber "Conformance" --offer "$1" | python3 -c 'import sys, json; print(json.load(sys.stdin)["key"])'; }
# plugins whose versions require GLPI 10.0, 11.0 or 12 (version compatibility)
"$bin" --data-dir "$work" plugins import conformance/compat-catalogue.json
standard="$(key standard)"
basic="$(key basic)"
php conformance/glpi.php "http://127.0.0.1:$port" "$standard" "$basic"
