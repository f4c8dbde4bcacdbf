#!/usr/bin/env bash
# Where a request's instructions go on the database path (key cache off): the release server
# runs under valgrind's callgrind (instruction counts repeat on a noisy machine; wall time does
# not), SQLite, a fleet fixture of BENCH_PROFILE_KEYS keys bound to as many instances (as
# bench/compare.sh loads it). Collection is switched on only around each scenario's bounded wrk
# run, and each scenario is dumped apart:
#
#   info-read          GET /api/registration/info, keys 0..499 again and again (last_seen_at
#                      fresh after the first pass: the read-only path)
#   validations-read   POST /v1/validations, the same keys
#   info-write         GET /api/registration/info, each request a key not seen for over a
#                      minute (the fleet's case: last_seen_at is due, so the read writes)
#   validations-write  POST /v1/validations, the same on other keys
#
# For each: instructions per request, the top functions by inclusive cost with calls per
# request (bench/callgrind.py), written to bench/results/profile-<label>.md; the raw callgrind
# files stay in BENCH_PROFILE_OUT [$BENCH_TARGET_DIR/profile-<label>] for callgrind_annotate or
# kcachegrind. Loopback only; every loop and run is bounded.
#
#   bench/profile.sh                     the current tree (or BENCH_BIN=path)
#   BENCH_PROFILE_SECS=30 bench/profile.sh
#
# Environment: BENCH_PROFILE_KEYS [30000], BENCH_PROFILE_SECS seconds per scenario [20],
# BENCH_PROFILE_CONNS wrk connections [8], BENCH_PROFILE_SCENARIOS [all four, in that order],
# BENCH_PORT [18095], BENCH_BIN, BENCH_TARGET_DIR as for run.sh.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

KEYS=${BENCH_PROFILE_KEYS:-30000}
SECS=${BENCH_PROFILE_SECS:-20}
CONNS=${BENCH_PROFILE_CONNS:-8}
THREADS=1
PORT=${BENCH_PORT:-18095}
SCENARIOS=${BENCH_PROFILE_SCENARIOS:-info-read validations-read info-write validations-write}
HOT=500
[ "$KEYS" -ge $((HOT * 2 + 2000)) ] || die "BENCH_PROFILE_KEYS must be at least $((HOT * 2 + 2000))"
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || die "valgrind is not installed"

need_tools
build_server
LABEL=${BENCH_PROFILE_LABEL:-$("$BIN" --version 2>/dev/null | awk '{print $NF}')-$(git -C "$ROOT" rev-parse --short=7 HEAD)}
[ -n "${BENCH_BIN:-}" ] && LABEL=${BENCH_PROFILE_LABEL:-$(basename "$BIN")}
OUT=${BENCH_PROFILE_OUT:-${BENCH_TARGET_DIR:-$(dirname "$ROOT")/target-bench}/profile-$LABEL}
mkdir -p "$OUT"
rm -f "$OUT"/callgrind.*
work_dir profile

# the fleet fixture, loaded natively in test mode
write_fixture "$KEYS" "$WORK/fleet.json"
DB="sqlite://$WORK/bench.db"
export BENCH_READY_TIMEOUT=$((120 + KEYS / 100))
log "loading $KEYS keys"
start_server "$DB" "$WORK" "$PORT" --test-mode --fixtures "$WORK/fleet.json"
LOADED_AT=$(now_ms)
stop_server

# the server under callgrind, key cache off, instrumented only during a scenario
log "starting the server under callgrind"
export GLPI_NETWORK_KEY_CACHE_SIZE=0
REAL_BIN=$BIN
BIN=$WORK/vg-server
cat >"$BIN" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --instr-atstart=no --dump-instr=no --dump-line=no \
    --callgrind-out-file="$OUT/callgrind.out.%p" "$REAL_BIN" "\$@"
EOF
chmod +x "$BIN"
BENCH_READY_TIMEOUT=300 start_server "$DB" "$WORK" "$PORT"
log "ready under callgrind in $READY_MS ms"

# scenario NAME ROUTE N FIRST: a warm-up with collection off, then SECS seconds collected.
REPORT=$WORK/report.md
HALF=$(((KEYS - 2 * HOT) / 2))
scenario() {
    local name=$1 route=$2 n=$3 first=$4 res requests rps
    if [ "$first" -lt "$HOT" ]; then
        # one pass over the hot keys refreshes their last_seen_at: reads only from then on
        wrk_run fleet.lua 5 "$PORT" "$route" "$n" 1 "$first" >/dev/null
    else
        # keys not seen since the fixture: wait until their last_seen_at is over a minute old
        while [ $(($(now_ms) - LOADED_AT)) -lt 65000 ]; do sleep 1; done
    fi
    callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
    callgrind_control -i on "$SERVER_PID" >/dev/null 2>&1
    res=$(wrk_run fleet.lua "$SECS" "$PORT" "$route" "$n" 1 "$first")
    callgrind_control -i off "$SERVER_PID" >/dev/null 2>&1
    local before i f
    before=$(find "$OUT" -name 'callgrind.out.*' | wc -l)
    callgrind_control -d "$name" "$SERVER_PID" >/dev/null 2>&1
    for ((i = 0; i < 600; i++)); do
        [ "$(find "$OUT" -name 'callgrind.out.*' | wc -l)" -gt "$before" ] && break
        sleep 0.1
    done
    f=$(ls -t "$OUT"/callgrind.out.* | head -n1)
    mv "$f" "$OUT/callgrind.$name.out"
    read -r rps _ _ _ requests _ <<<"$res"
    log "  $name: $requests requests ($rps req/s under callgrind)"
    echo "$name $requests" >>"$WORK/requests"
    [ "$requests" -le "$n" ] || [ "$first" -lt "$HOT" ] ||
        log "  warning: $name sent $requests requests for $n keys: some keys were seen twice"
}
for s in $SCENARIOS; do
    case $s in
    info-read) scenario "$s" info "$HOT" 0 ;;
    validations-read) scenario "$s" validations "$HOT" 0 ;;
    info-write) scenario "$s" info "$HALF" $((2 * HOT)) ;;
    validations-write) scenario "$s" validations "$HALF" $((2 * HOT + HALF)) ;;
    *) die "unknown scenario $s" ;;
    esac
done
stop_server
BIN=$REAL_BIN

{
    echo "## bench/profile.sh: callgrind, key cache off, SQLite, $KEYS keys"
    echo
    machine_info | sed 's/^/- /'
    echo "- server: $REAL_BIN; wrk -t1 -c$CONNS, $SECS s per scenario under callgrind (instructions are counted exactly; the request rate under valgrind means nothing)"
    echo "- callgrind files: $OUT"
    for s in $SCENARIOS; do
        file=$OUT/callgrind.$s.out
        requests=$(awk -v s="$s" '$1 == s { print $2 }' "$WORK/requests")
        echo
        echo "### $s ($(basename "$file"))"
        echo
        python3 "$BENCH_DIR/callgrind.py" "$file" "$requests" --top 45 \
            --pick 'sqlite3_(step|prepare|exec|reset|finalize)|sqlite3VdbeExec$|sqlite3_busy|unixSleep|sqlite3OsSleep' \
            --pick 'r2d2|Condvar|futex|parking_lot' \
            --pick 'serde_json|Serialize|Deserialize' \
            --pick '^ring::|<ring::|ed25519|TokenSigner|jsonwebtoken|^ring_core' \
            --pick 'SerializedQuery|statement_cache|push_identifier|walk_ast|StatementUse::bind|build_from_row|chrono::.*parse' \
            --pick 'actix_router|regex_lite' \
            --pick 'tracing|log_request|telemetry|uuid|Uuid' \
            --pick 'malloc|free|realloc|memcpy|memmove'
    done
} >"$REPORT"
mkdir -p "$BENCH_DIR/results"
cp "$REPORT" "$BENCH_DIR/results/profile-$LABEL.md"
log "report: bench/results/profile-$LABEL.md"
