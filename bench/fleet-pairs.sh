#!/usr/bin/env bash
# The 1M-against-100k target of issue 18 measured in back-to-back pairs: on a shared machine whose
# speed drifts by a third within minutes, a 1,000,000-key run and a 100,000-key run made by
# bench/fleet.sh minutes apart compare the machine as much as the server. Here each fleet is
# loaded once from its fixture (write_fixture, as bench/compare.sh does), every run starts a
# server on a fresh copy of its database, and the two sizes alternate (large first in odd pairs,
# small first in even ones). Each run is bench/fleet.sh's: default settings, the bindings due
# their last_seen_at refresh (the fleets are loaded over BENCH_SETTLE s before the first run),
# wrk/fleet.lua's walk, warm-up, then /info and validations measured where the walk stands.
# It prints each pair's LARGE / SMALL ratio of req/s and their median, per route.
#
#   bench/fleet-pairs.sh                      1,000,000 against 100,000 keys, 5 pairs
#   BENCH_PAIRS=3 bench/fleet-pairs.sh 200000 20000
#
# Settings (environment): BENCH_BIN (else the tree is built), BENCH_PAIRS [5], BENCH_DURATION
# [10], BENCH_WARMUP [3], BENCH_THREADS [1], BENCH_CONNS [32], BENCH_PORT [18091],
# BENCH_SETTLE [65], BENCH_READY_TIMEOUT [120 + LARGE/100]. The result goes to stdout and to
# bench/results/fleet-pairs-<LARGE>-<SMALL>-<date>.md.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

LARGE=${1:-1000000}
SMALL=${2:-100000}
PAIRS=${BENCH_PAIRS:-5}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-3}
THREADS=${BENCH_THREADS:-1}
CONNS=${BENCH_CONNS:-32}
PORT=${BENCH_PORT:-18091}
SETTLE=${BENCH_SETTLE:-65}
export BENCH_READY_TIMEOUT=${BENCH_READY_TIMEOUT:-$((120 + LARGE / 100))}
for n in "$LARGE" "$SMALL" "$PAIRS"; do
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "sizes and BENCH_PAIRS must be positive integers"
done
[ "$LARGE" -le 10000000 ] || die "at most 10,000,000 keys"

need_tools
build_server
work_dir pairs

# load N: the fleet of N keys into $WORK/fleet-N (loaded once, copied before each run)
load() {
    local n=$1 dir=$WORK/fleet-$1
    mkdir -p "$dir"
    write_fixture "$n" "$WORK/fixture.json"
    log "loading the fleet of $n keys"
    start_server "sqlite://$dir/bench.db" "$dir" "$PORT" --test-mode --fixtures "$WORK/fixture.json"
    log "  loaded in $((READY_MS / 1000)) s"
    stop_server
    rm -f "$WORK/fixture.json"
}

# run N: one server on a copy of the fleet of N keys; prints "info_rps info_cpu val_rps val_cpu"
run() {
    local n=$1 dir=$WORK/run pos=0 res out=()
    rm -rf "$dir"
    cp -r "$WORK/fleet-$n" "$dir"
    start_server "sqlite://$dir/bench.db" "$dir" "$PORT"
    for route in info validations; do
        res=$(wrk_run fleet.lua "$WARMUP" "$PORT" "$route" "$n" "$THREADS" 0 "$pos")
        pos=$(((pos + $(cut -d' ' -f5 <<<"$res")) % n))
        res=$(wrk_run fleet.lua "$DURATION" "$PORT" "$route" "$n" "$THREADS" 0 "$pos")
        pos=$(((pos + $(cut -d' ' -f5 <<<"$res")) % n))
        out+=("$(cut -d' ' -f1 <<<"$res")" "$(cut -d' ' -f6 <<<"$res")")
    done
    stop_server
    rm -rf "$dir"
    echo "${out[*]}"
}

T0=$(now_ms)
load "$SMALL"
load "$LARGE"
LOADED=$(now_ms)
wait_ms=$((SETTLE * 1000 - ($(now_ms) - LOADED)))
if [ "$wait_ms" -gt 0 ]; then
    log "waiting $((wait_ms / 1000 + 1)) s so that every binding is due its refresh (BENCH_SETTLE)"
    sleep $((wait_ms / 1000 + 1))
fi

ROWS=$WORK/rows
: >"$ROWS"
for ((p = 1; p <= PAIRS; p++)); do
    if ((p % 2)); then order="$LARGE $SMALL"; else order="$SMALL $LARGE"; fi
    declare -A got=()
    for n in $order; do
        log "pair $p: $n keys"
        got[$n]=$(run "$n")
        log "  /info $(cut -d' ' -f1 <<<"${got[$n]}") req/s ($(cut -d' ' -f2 <<<"${got[$n]}") µs CPU a request), validations $(cut -d' ' -f3 <<<"${got[$n]}") req/s ($(cut -d' ' -f4 <<<"${got[$n]}") µs)"
    done
    echo "$p ${got[$LARGE]} ${got[$SMALL]}" >>"$ROWS"
    unset got
done

mkdir -p "$BENCH_DIR/results"
OUT=$BENCH_DIR/results/fleet-pairs-$LARGE-$SMALL-$(date -u +%Y%m%dT%H%MZ).md
{
    echo "## bench/fleet-pairs.sh: $LARGE against $SMALL keys, SQLite, $PAIRS pairs"
    echo
    machine_info | sed 's/^/- /'
    echo "- server: $BIN; wrk -t$THREADS -c$CONNS, ${DURATION} s per route after ${WARMUP} s of warm-up, one server at a time on a fresh copy of its fleet"
    echo
    echo "| pair | /info $LARGE | /info $SMALL | ratio | validations $LARGE | validations $SMALL | ratio |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    awk '{ printf "| %d | %d (%d µs) | %d (%d µs) | %.2fx | %d (%d µs) | %d (%d µs) | %.2fx |\n",
        $1, $2, $3, $6, $7, $2 / $6, $4, $5, $8, $9, $4 / $8 }' "$ROWS"
    echo
    median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    echo "- median ratio, $LARGE / $SMALL keys: /info $(awk '{ printf "%.3f\n", $2 / $6 }' "$ROWS" | median | xargs printf '%.2fx'), validations $(awk '{ printf "%.3f\n", $4 / $8 }' "$ROWS" | median | xargs printf '%.2fx') (req/s; µs: the server's CPU a request)"
    echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); the run took $((($(now_ms) - T0) / 1000)) s"
} | tee "$OUT"
log "written to ${OUT#"$ROOT"/}"
