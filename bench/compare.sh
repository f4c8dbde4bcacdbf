#!/usr/bin/env bash
# The project against the naive baseline (../shared/bench/baseline, see its README), in one
# run, one server at a time on loopback, SQLite: the baseline's GET /info and POST /validate,
# then each project server binary's GET /api/registration/info (a bound instance: key and UID)
# and POST /v1/validations (key and instance URL), with the key-state cache on (the default)
# and off (GLPI_NETWORK_KEY_CACHE_SIZE=0), then the baseline again. Prints one table (req/s,
# p50, p99, ratio to the baseline's matching route, server CPU per request, key-cache hits,
# RSS after the run) and writes it to bench/results/. Loopback only; every loop is bounded.
#
#   bench/compare.sh                             1,000 keys, cache on and off, the current tree
#   BENCH_REVS="ccb1f9f main" bench/compare.sh   two commits side by side (before / after)
#   bench/fleet.sh 100000                        the fleet: 100,000 keys, default settings
#
# The keys are KEY-0 ... KEY-<N-1> on both sides: the baseline seeds them (NKEYS); the project
# loads them as a test-mode fixture file (one subscriber and subscription, N keys, each bound to
# https://glpi-<i>.fleet.example/glpi with UID uid-<i>) through `--test-mode --fixtures FILE`,
# timed from spawn to ready, then restarts on that database without test mode for the
# measured runs. wrk/fleet.lua walks every key in turn (round robin over all N), so a key cache
# smaller than N always misses.
#
# Environment (defaults in brackets):
#   BENCH_KEYS          keys on both sides                                   [1000]
#   BENCH_CACHE         key-cache variants of each project binary            [on off]
#   BENCH_BINS          project server binaries, "label=path" or "path", space-separated
#   BENCH_REVS          git revisions to build (git archive into $BENCH_TARGET_DIR/src/<rev>,
#                       one shared CARGO_TARGET_DIR, binaries kept in $BENCH_TARGET_DIR/bin)
#                       (neither: the current tree is built, or BENCH_BIN is used, as run.sh)
#   BENCH_BASELINE_BIN  a baseline binary instead of building ../shared/bench/baseline
#   BENCH_BASELINE_SRC  the baseline's sources   [../shared/bench/baseline or ../../shared/...]
#   BENCH_TARGET_DIR    where everything is built                            [../target-bench]
#   BENCH_DURATION, BENCH_WARMUP   seconds per measured route and warm-up    [10, 3]
#   BENCH_THREADS, BENCH_CONNS     wrk threads and connections               [1, 32]
#   BENCH_PORT          loopback port                                        [18090]
#   BENCH_CEILING       1: also GET /hello of the baseline (actix with no work) [1]
#   BENCH_SETTLE        seconds from the end of the fixture load to the first measured run
#                       [0; fleet.sh: 65]: bindings last seen over a minute ago are due a
#                       last_seen_at refresh, so each request of the walk writes, as a fleet
#                       that calls once a day does
#   BENCH_READY_TIMEOUT seconds for a server (fixture load included) to answer [120 + N/100]
#   BENCH_TAG           a word in the result file's name                     [keys]
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

KEYS=${BENCH_KEYS:-1000}
CACHE=${BENCH_CACHE:-on off}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-3}
THREADS=${BENCH_THREADS:-1}
CONNS=${BENCH_CONNS:-32}
PORT=${BENCH_PORT:-18090}
CEILING=${BENCH_CEILING:-1}
SETTLE=${BENCH_SETTLE:-0}
TARGET=${BENCH_TARGET_DIR:-$(dirname "$ROOT")/target-bench}
export BENCH_READY_TIMEOUT=${BENCH_READY_TIMEOUT:-$((120 + KEYS / 100))}
[ "$KEYS" -ge 1 ] && [ "$KEYS" -le 10000000 ] || die "BENCH_KEYS must be between 1 and 10,000,000"
for c in $CACHE; do [ "$c" = on ] || [ "$c" = off ] || die "BENCH_CACHE takes on and off, not $c"; done

need_tools
mkdir -p "$TARGET/bin" "$TARGET/src"

# --- builds -----------------------------------------------------------------------------------

build_baseline() {
    if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
        BASELINE_BIN=$BENCH_BASELINE_BIN
    else
        local src=${BENCH_BASELINE_SRC:-}
        if [ -z "$src" ]; then
            for src in "$ROOT/../shared/bench/baseline" "$ROOT/../../shared/bench/baseline" ""; do
                [ -z "$src" ] || [ -f "$src/Cargo.toml" ] && break
            done
        fi
        [ -n "$src" ] && [ -f "$src/Cargo.toml" ] || die "no baseline sources (set BENCH_BASELINE_SRC)"
        # built outside the workspace, as its README says
        rm -rf "$TARGET/src/baseline"
        cp -r "$src" "$TARGET/src/baseline"
        log "building the naive baseline (CARGO_TARGET_DIR=$TARGET/baseline)"
        (cd "$TARGET/src/baseline" && CARGO_TARGET_DIR=$TARGET/baseline cargo build --release -q)
        BASELINE_BIN=$TARGET/baseline/release/baseline
    fi
    [ -x "$BASELINE_BIN" ] || die "no baseline binary at $BASELINE_BIN"
}

# build_rev REV: the release server of a commit (kept by commit id, so a second run reuses it).
build_rev() {
    local rev=$1 sha out
    sha=$(git -C "$ROOT" rev-parse --short=7 "$rev^{commit}") || die "unknown revision $rev"
    out=$TARGET/bin/glpi-network-server-$sha
    if [ ! -x "$out" ]; then
        log "building the release server of $rev ($sha)"
        rm -rf "$TARGET/src/$sha"
        mkdir -p "$TARGET/src/$sha"
        git -C "$ROOT" archive "$sha" | tar -x -C "$TARGET/src/$sha"
        (cd "$TARGET/src/$sha" && CARGO_TARGET_DIR=$TARGET/project cargo build --release -q -p glpi-network-server)
        cp "$TARGET/project/release/glpi-network-server" "$out"
    fi
    LABELS+=("$sha"); BINS+=("$out")
}

LABELS=() BINS=()
if [ -n "${BENCH_REVS:-}" ]; then
    for rev in $BENCH_REVS; do build_rev "$rev"; done
fi
for spec in ${BENCH_BINS:-}; do
    if [ "${spec#*=}" != "$spec" ]; then LABELS+=("${spec%%=*}"); BINS+=("${spec#*=}")
    else LABELS+=("$(basename "$spec")"); BINS+=("$spec"); fi
done
if [ "${#BINS[@]}" -eq 0 ]; then
    build_server
    LABELS+=("tree $(git -C "$ROOT" rev-parse --short=7 HEAD)$(git -C "$ROOT" diff --quiet HEAD -- server shared || echo +)")
    BINS+=("$BIN")
fi
for b in "${BINS[@]}"; do [ -x "$b" ] || die "no server binary at $b"; done
build_baseline

work_dir compare
cleanup() {
    local rc=$?
    stop_server
    # a failed run keeps the end of the servers' log
    if [ "$rc" -ne 0 ] && [ -s "$WORK/server.log" ]; then
        mkdir -p "$BENCH_DIR/results"
        sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" | tail -n 200 >"$BENCH_DIR/results/compare-failed-server.log"
        log "the end of the servers' log: bench/results/compare-failed-server.log"
    fi
    rm -rf "$WORK"
}

# route|kind|server|cache|rps|p50|p99|errors|cpu_us|hits|rss_kib
RESULTS=$WORK/results
: >"$RESULTS"
NOTES=$WORK/notes
: >"$NOTES"
note() { log "$*"; echo "- $*" >>"$NOTES"; }
MID=$((KEYS / 2))
LAST=$((KEYS - 1))

# Where the round-robin walk over the keys stands (reset when a server starts).
POS=0
advance() { POS=$(((POS + $(cut -d' ' -f5 <<<"$1")) % KEYS)); }

# measure ROUTE KIND SERVER CACHE WRK_ROUTE: warm-up, then the measured wrk run.
measure() {
    local route=$1 kind=$2 server=$3 cache=$4 wroute=$5 res c0 c1 hits=- v0 v1 s0 rps p50 p99 errors requests cpu
    if [ "$wroute" = hello ]; then
        wrk_run /hello "$WARMUP" "$PORT" >/dev/null
        res=$(wrk_run /hello "$DURATION" "$PORT")
    else
        # the walk goes on where the last run left it, round robin across runs: a key comes
        # back only after all N others, as in a fleet
        res=$(wrk_run fleet.lua "$WARMUP" "$PORT" "$wroute" "$KEYS" "$THREADS" 0 "$POS")
        advance "$res"
        if [ "$server" != baseline ]; then
            c0=$(cache_counts)
            v0=$(metric 'glpi_network_validations_total{status="valid"}' "$PORT")
            s0=$(signing_totals)
        fi
        res=$(wrk_run fleet.lua "$DURATION" "$PORT" "$wroute" "$KEYS" "$THREADS" 0 "$POS")
        advance "$res"
        if [ "$server" != baseline ]; then
            c1=$(cache_counts)
            hits=$(awk -v a="$c0" -v b="$c1" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%d hits, %d misses", y[1] - x[1], y[2] - x[2] }')
            if [ "$wroute" = validations ]; then
                v1=$(metric 'glpi_network_validations_total{status="valid"}' "$PORT")
                requests=$(cut -d' ' -f5 <<<"$res")
                [ $((v1 - v0)) -ge "$requests" ] ||
                    note "warning: $server (cache $cache): only $((v1 - v0)) of $requests validations answered valid"
                note "$server, key cache $cache: $(signing_mean "$s0" "$(signing_totals)") (token_signing_seconds over the measured run)"
            fi
        fi
    fi
    read -r rps p50 p99 errors requests cpu _ <<<"$res"
    [ -n "$cpu" ] || die "no result for $route"
    echo "$route|$kind|$server|$cache|$rps|$p50|$p99|$errors|$cpu|$hits|" >>"$RESULTS"
    log "  $route: $rps req/s, p50 $(fmt_us "$p50"), p99 $(fmt_us "$p99"), $errors errors, server CPU $cpu µs/request, key cache: $hits"
}

# set_rss: fills the RSS column of the last N result rows with the running server's VmRSS.
set_rss() {
    local n=$1 rss
    rss=$(rss_kb VmRSS)
    awk -v n="$n" -v rss="$rss" -v total="$(wc -l <"$RESULTS")" -F'|' -v OFS='|' \
        'NR > total - n { $11 = rss } { print }' "$RESULTS" >"$RESULTS.tmp"
    mv "$RESULTS.tmp" "$RESULTS"
    echo "$rss"
}

start_baseline() {
    local t0 deadline
    if curl -s -m 2 -o /dev/null "http://127.0.0.1:$PORT/hello"; then
        die "something already listens on 127.0.0.1:$PORT (set BENCH_PORT)"
    fi
    t0=$(now_ms)
    deadline=$((t0 + BENCH_READY_TIMEOUT * 1000))
    PORT=$PORT WORKERS=2 NKEYS=$KEYS DB=$WORK/baseline.db "$BASELINE_BIN" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if [ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/hello")" = 200 ]; then
            READY_MS=$(($(now_ms) - t0))
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || die "the baseline exited at start (see $WORK/server.log)"
        sleep 0.005
    done
    die "the baseline was not ready within $BENCH_READY_TIMEOUT s"
}

expect() { # expect WHAT PATTERN BODY
    grep -q "$2" <<<"$3" || die "$1: unexpected answer: $3"
}

run_baseline() {
    local round=$1 k
    log "baseline ($round), $KEYS keys"
    start_baseline
    POS=0
    note "baseline ($round): $KEYS keys seeded, spawn to ready $READY_MS ms"
    for k in 0 "$MID" "$LAST"; do
        expect "baseline /info KEY-$k" '"is_valid":true' \
            "$(curl -s -H "X-Registration-Key: KEY-$k" "http://127.0.0.1:$PORT/info")"
        expect "baseline /validate KEY-$k" '"valid":true' \
            "$(curl -s -H 'Content-Type: application/json' -d "{\"registration_key\":\"KEY-$k\"}" "http://127.0.0.1:$PORT/validate")"
    done
    local n=2
    if [ "$CEILING" = 1 ]; then
        measure "GET /hello" hello baseline "-" hello
        n=3
    fi
    measure "GET /info" info baseline "-" base-info
    measure "POST /validate" validate baseline "-" base-validate
    note "baseline ($round): RSS after the run $(($(set_rss "$n") / 1024)) MiB"
    stop_server
}

check_project() {
    local label=$1 cache=$2 k body
    for k in 0 "$MID" "$LAST"; do
        body=$(curl -s -H "X-Registration-Key: KEY-$k" -H "X-Glpi-Network-Uid: uid-$k" "http://127.0.0.1:$PORT/api/registration/info")
        expect "$label /api/registration/info KEY-$k" '"is_valid":true' "$body"
        [ "$k" = "$MID" ] && echo "$body" >"$WORK/info-$3-$cache.json"
        expect "$label /v1/validations KEY-$k" '"valid":true' \
            "$(curl -s -H 'Content-Type: application/json' \
                -d "{\"registration_key\":\"KEY-$k\",\"instance_url\":\"https://glpi-$k.fleet.example/glpi\"}" \
                "http://127.0.0.1:$PORT/v1/validations")"
    done
}

run_project() {
    local idx=$1 label=$2 dir db cache rss hwm
    BIN=$3
    dir=$WORK/p$idx
    mkdir -p "$dir"
    db="sqlite://$dir/bench.db"
    log "$label: loading the fixture ($KEYS keys) in test mode"
    start_server "$db" "$dir" "$PORT" --test-mode --fixtures "$FIXTURE"
    hwm=$(rss_kb VmHWM)
    rss=$(rss_kb VmRSS)
    note "$label: fixture of $KEYS keys loaded (--test-mode --fixtures), spawn to ready $(awk -v m="$READY_MS" 'BEGIN { printf "%.1f s", m / 1000 }'), RSS then $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB)"
    stop_server
    local loaded_at
    loaded_at=$(now_ms)
    for cache in $CACHE; do
        if [ "$cache" = off ]; then export GLPI_NETWORK_KEY_CACHE_SIZE=0; else unset GLPI_NETWORK_KEY_CACHE_SIZE; fi
        log "$label, key cache $cache"
        start_server "$db" "$dir" "$PORT"
        POS=0
        if [ "$SETTLE" -gt 0 ] && [ $(($(now_ms) - loaded_at)) -lt $((SETTLE * 1000)) ]; then
            log "  waiting until $SETTLE s after the fixture load (BENCH_SETTLE)"
            sleep $(((SETTLE * 1000 - ($(now_ms) - loaded_at)) / 1000 + 1))
        fi
        check_project "$label" "$cache" "$idx"
        measure "GET /api/registration/info" info "$label" "$cache" info
        measure "POST /v1/validations" validate "$label" "$cache" validations
        note "$label, key cache $cache: restart to ready $READY_MS ms, RSS after the run $(($(set_rss 2) / 1024)) MiB (peak $(($(rss_kb VmHWM) / 1024)) MiB)"
        stop_server
    done
    unset GLPI_NETWORK_KEY_CACHE_SIZE
    # the same /info answer with the cache on and off (sampled key; the dates are the same day)
    if [ -f "$WORK/info-$idx-on.json" ] && [ -f "$WORK/info-$idx-off.json" ]; then
        if cmp -s "$WORK/info-$idx-on.json" "$WORK/info-$idx-off.json"; then
            note "$label: /info answers KEY-$MID the same with the cache on and off"
        else
            note "warning: $label: /info answers KEY-$MID differently with the cache on and off: $(cat "$WORK/info-$idx-on.json") vs $(cat "$WORK/info-$idx-off.json")"
        fi
    fi
    rm -rf "$dir"
}

FIXTURE=$WORK/fleet.json
T0=$(now_ms)
write_fixture "$KEYS" "$FIXTURE"
note "fixture file: $KEYS keys and registrations, $(($(stat -c %s "$FIXTURE") / 1024)) KiB, written in $(($(now_ms) - T0)) ms"

REPORT=$WORK/report.md
{
    echo "## bench/compare.sh: $KEYS keys, SQLite"
    echo
    machine_info | sed 's/^/- /'
    echo "- wrk -t$THREADS -c$CONNS, ${DURATION} s per route after ${WARMUP} s of warm-up, one server at a time; every request takes the next of the $KEYS keys in turn (wrk/fleet.lua)"
    echo "- project servers: $(for i in "${!LABELS[@]}"; do printf '%s (%s) ' "${LABELS[$i]}" "${BINS[$i]}"; done)"
    echo "- the first measured run of a project server starts $SETTLE s or more after its fixture load (BENCH_SETTLE; bindings last seen over a minute ago get a last_seen_at write on their next call)"
    echo "- key cache: on = server default, off = GLPI_NETWORK_KEY_CACHE_SIZE=0; hits and misses counted from /metrics around each measured run"
    echo "- the machine is shared and noisy: only ratios to the baseline of this same run mean anything; the baseline runs first and last, and ratios are to the mean of its two runs"
} >"$REPORT"

T0=$(now_ms)
run_baseline first
for i in "${!BINS[@]}"; do
    run_project "$i" "${LABELS[$i]}" "${BINS[$i]}"
done
run_baseline last
ELAPSED=$((($(now_ms) - T0) / 1000))

{
    echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); the run took $ELAPSED s"
    echo
    echo "| route | server | key cache | req/s | p50 | p99 | ratio to baseline | server CPU per request | CPU ratio | errors | key cache | RSS after |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
    awk -F'|' '
        { row[NR] = $0 }
        $3 == "baseline" { n[$2]++; rps[$2] += $5; cpu[$2] += $9 }
        END {
            for (i = 1; i <= NR; i++) {
                split(row[i], f, "|")
                k = f[2]
                ratio = (n[k] && rps[k] > 0) ? sprintf("%.2fx", f[5] / (rps[k] / n[k])) : "-"
                cr = (n[k] && cpu[k] > 0 && f[9] > 0) ? sprintf("%.2fx", (cpu[k] / n[k]) / f[9]) : "-"
                printf "| %s | %s | %s | %d | %.2f ms | %.2f ms | %s | %d µs | %s | %d | %s | %s |\n",
                    f[1], f[3], f[4], f[5], f[6] / 1000, f[7] / 1000, ratio, f[9], cr, f[8], f[10],
                    (f[11] == "" ? "-" : sprintf("%.1f MiB", f[11] / 1024))
            }
        }' "$RESULTS"
    echo
    echo "(ratio: req/s over the baseline's matching route, /info or /validate, mean of its two runs; CPU ratio: the baseline's own user + system CPU time per request (mean of its two runs) over this server's, so above 1.0x means less CPU per request than the baseline: it moves much less with the machine's load than req/s)"
    echo
    cat "$NOTES"
} >>"$REPORT"

mkdir -p "$BENCH_DIR/results"
OUT=$BENCH_DIR/results/compare-${BENCH_TAG:-${KEYS}keys}-$(date -u +%Y%m%dT%H%MZ).md
cp "$REPORT" "$OUT"
echo
cat "$REPORT"
log "report written to ${OUT#"$ROOT"/}"
