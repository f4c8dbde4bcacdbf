#!/usr/bin/env bash
# What instruction counts cannot show: the waits of the database path (key cache off) at full
# speed. The release server runs natively on a fleet fixture (as bench/profile.sh loads it);
# for each scenario (the same four as profile.sh), `perf stat` counts the server's system calls
# by kind during a bounded wrk run (-t1 -c32), printed per request: fdatasync/fsync (commits
# that reach the disk), pwrite64 (SQLite pages and WAL frames), futex (threads parked and woken:
# pool check-outs, the blocking pool, SQLite's in-process mutexes), clock_nanosleep (SQLite's
# busy handler sleeping on a locked database), write/writev (answers and log lines),
# sendto/recvfrom, epoll_wait. Needs perf with syscall tracepoints (Debian's linux-perf).
#
#   bench/syscalls.sh          (BENCH_BIN=path for a given binary)
#
# Environment: BENCH_PROFILE_KEYS [60000], BENCH_SYSCALL_SECS [3], BENCH_CONNS [32],
# BENCH_PORT [18096], BENCH_BIN, BENCH_TARGET_DIR as for run.sh.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

KEYS=${BENCH_PROFILE_KEYS:-60000}
SECS=${BENCH_SYSCALL_SECS:-3}
CONNS=${BENCH_CONNS:-32}
THREADS=1
PORT=${BENCH_PORT:-18096}
HOT=500
command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)"
EVENTS=fdatasync,fsync,pwrite64,pread64,futex,clock_nanosleep,write,writev,sendto,recvfrom,epoll_wait
perf stat -e syscalls:sys_enter_futex true >/dev/null 2>&1 || die "perf cannot count syscall tracepoints here"

need_tools
build_server
work_dir syscalls

write_fixture "$KEYS" "$WORK/fleet.json"
DB="sqlite://$WORK/bench.db"
export BENCH_READY_TIMEOUT=$((120 + KEYS / 100))
log "loading $KEYS keys"
start_server "$DB" "$WORK" "$PORT" --test-mode --fixtures "$WORK/fleet.json"
LOADED_AT=$(now_ms)
stop_server
export GLPI_NETWORK_KEY_CACHE_SIZE=0
start_server "$DB" "$WORK" "$PORT"

HALF=$(((KEYS - 2 * HOT) / 2))
perf_events() { local e out=; for e in ${EVENTS//,/ }; do out+=${out:+,}syscalls:sys_enter_$e; done; echo "$out"; }
scenario() {
    local name=$1 route=$2 n=$3 first=$4 res requests rps p99
    if [ "$first" -lt "$HOT" ]; then
        wrk_run fleet.lua 2 "$PORT" "$route" "$n" 1 "$first" >/dev/null
    else
        while [ $(($(now_ms) - LOADED_AT)) -lt 65000 ]; do sleep 1; done
    fi
    perf stat -x, -e "$(perf_events)" -p "$SERVER_PID" -o "$WORK/perf.$name" -- sleep "$((SECS + 1))" &
    local perf_pid=$!
    sleep 0.5
    res=$(wrk_run fleet.lua "$SECS" "$PORT" "$route" "$n" 1 "$first")
    wait "$perf_pid"
    read -r rps _ p99 _ requests _ <<<"$res"
    printf '| %s | %d | %.1f ms |' "$name" "$rps" "$(awk -v u="$p99" 'BEGIN { print u / 1000 }')"
    awk -F, -v r="$requests" '$3 ~ /sys_enter_/ { sub("syscalls:sys_enter_", "", $3); printf " %.2f |", $1 / r }' "$WORK/perf.$name"
    echo
    [ "$requests" -le "$n" ] || [ "$first" -lt "$HOT" ] ||
        log "warning: $name sent $requests requests for $n keys: some keys were seen twice (fewer writes)"
}
{
    echo "## bench/syscalls.sh: system calls per request, key cache off, SQLite, $KEYS keys"
    echo
    machine_info | sed 's/^/- /'
    echo "- server: $BIN; wrk -t1 -c$CONNS, $SECS s per scenario; counts are per request answered"
    echo
    printf '| scenario | req/s (noisy) | p99 |'
    for e in ${EVENTS//,/ }; do printf ' %s |' "$e"; done
    echo
    printf '|---|---:|---:|'
    for e in ${EVENTS//,/ }; do printf -- '---:|'; done
    echo
    scenario info-read info "$HOT" 0
    scenario validations-read validations "$HOT" 0
    scenario info-write info "$HALF" $((2 * HOT))
    scenario validations-write validations "$HALF" $((2 * HOT + HALF))
} | tee "$WORK/report.md"
mkdir -p "$BENCH_DIR/results"
cp "$WORK/report.md" "$BENCH_DIR/results/syscalls-$(basename "$BIN").md"
