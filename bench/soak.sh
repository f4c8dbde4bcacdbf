#!/usr/bin/env bash
# Bounded soak: a few minutes of mixed traffic against the release server (wrk/soak.lua:
# validations, /info, register/release churn, /healthz), sampling the server's RSS and the
# latency every window. Prints one line per window, then whether memory and latency stayed
# flat and whether any error occurred (wrk errors: non-2xx answers, socket errors, timeouts;
# ERROR lines in the server log). Loopback only; every loop is bounded.
#
#   bench/soak.sh                     3 minutes on SQLite
#   BENCH_SOAK_DB=postgres bench/soak.sh
#
# Environment: BENCH_SOAK_SECS [180], BENCH_SOAK_WINDOW seconds per sample [10],
# BENCH_SOAK_DB sqlite|postgres [sqlite], BENCH_SOAK_KEYS bound keys [1000],
# BENCH_SOAK_CHURN keys cycled through register/release [2000], BENCH_THREADS [2],
# BENCH_CONNS [32], BENCH_PORT [18081], and BENCH_BIN, BENCH_TARGET_DIR, BENCH_WORKERS,
# BENCH_PG_HOST_URL as for run.sh; BENCH_KEEP_LOG=FILE keeps the whole server log there. Exits 1 when errors occurred or memory grew.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

SECS=${BENCH_SOAK_SECS:-180}
WINDOW=${BENCH_SOAK_WINDOW:-10}
DB_KIND=${BENCH_SOAK_DB:-sqlite}
KEYS=${BENCH_SOAK_KEYS:-1000}
CHURN=${BENCH_SOAK_CHURN:-2000}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-32}
PORT=${BENCH_PORT:-18081}
WINDOWS=$((SECS / WINDOW))
[ "$WINDOWS" -ge 3 ] || die "BENCH_SOAK_SECS must be at least 3 windows"

need_tools "$DB_KIND"
build_server
work_dir soak
cleanup() {
    stop_server
    pg_drop
    # keep what went wrong: the server's refusals and errors (not the whole log: millions of
    # lines)
    if [ -s "$WORK/server.log" ]; then
        mkdir -p "$BENCH_DIR/results"
        sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" |
            grep -E 'status=[45][0-9][0-9]|"status":[45][0-9][0-9]| (WARN|ERROR) ' |
            head -n 500 >"$BENCH_DIR/results/soak-errors.log" || true
        [ -s "$BENCH_DIR/results/soak-errors.log" ] &&
            log "server answers >= 400 and warnings: bench/results/soak-errors.log (first 500)"
    fi
    if [ -n "${BENCH_KEEP_LOG:-}" ] && [ -s "$WORK/server.log" ]; then
        mv "$WORK/server.log" "$BENCH_KEEP_LOG" && log "server log kept in $BENCH_KEEP_LOG"
    fi
    rm -rf "$WORK"
}

if [ "$DB_KIND" = postgres ]; then pg_create; db=$PG_URL; else db="sqlite://$WORK/soak.db"; fi
issue_keys "$db" "$WORK" "$KEYS" "$WORK/hot" >/dev/null
issue_keys "$db" "$WORK" "$CHURN" "$WORK/churn" >/dev/null
start_server "$db" "$WORK" "$PORT"
seed_registrations "$WORK/hot" "$PORT"
machine_info
echo "soak: $DB_KIND, $KEYS bound keys + $CHURN churn keys, wrk -t$THREADS -c$CONNS, $WINDOWS windows of $WINDOW s"
echo
printf '%6s %9s %9s %9s %7s %7s %9s\n' "t (s)" "req/s" "p50 ms" "p99 ms" errors stale "RSS MiB"
SAMPLES=$WORK/samples # t rps p50 p99 errors rss_kb stale
: >"$SAMPLES"
c0=$(cache_counts)
for ((w = 1; w <= WINDOWS; w++)); do
    res=$(wrk_run soak.lua "$WINDOW" "$PORT" "$WORK/hot" "$WORK/churn" "$THREADS")
    read -r rps p50 p99 errors _ _ stale <<<"$res"
    [ -n "$stale" ] || die "no result from wrk"
    rss=$(rss_kb VmRSS)
    echo "$((w * WINDOW)) $rps $p50 $p99 $errors $rss $stale" >>"$SAMPLES"
    awk -v t=$((w * WINDOW)) -v rps="$rps" -v p50="$p50" -v p99="$p99" -v e="$errors" -v s="$stale" -v rss="$rss" \
        'BEGIN { printf "%6d %9d %9.2f %9.2f %7d %7d %9.1f\n", t, rps, p50 / 1000, p99 / 1000, e, s, rss / 1024 }'
done
share=$(cache_share "$c0" "$(cache_counts)")
server_errors=$(grep -c ' ERROR ' "$WORK/server.log" || true)
echo
# flat: compare the median of the first third (after the first window) with the last third
echo "key cache: $share of the /info and validation look-ups answered from memory"
awk -v errs="$server_errors" -v n="$WINDOWS" '
    function median(a, k,    i, j, t) {
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    { t[NR] = $1; rps[NR] = $2; p99[NR] = $4; e += $5; rss[NR] = $6; stale += $7 }
    END {
        third = int(n / 3); if (third < 1) third = 1
        for (i = 1; i <= third; i++) { fr[i] = rss[i + 1 <= n ? i + 1 : i]; fp[i] = p99[i + 1 <= n ? i + 1 : i]; fq[i] = rps[i + 1 <= n ? i + 1 : i] }
        for (i = 1; i <= third; i++) { lr[i] = rss[n - third + i]; lp[i] = p99[n - third + i]; lq[i] = rps[n - third + i] }
        r0 = median(fr, third); r1 = median(lr, third); p0 = median(fp, third); p1 = median(lp, third)
        q0 = median(fq, third); q1 = median(lq, third)
        grow = r1 - r0; allowed = (r0 * 0.05 > 2048 ? r0 * 0.05 : 2048)
        mem_flat = grow <= allowed; lat_flat = p1 <= 1.5 * p0
        printf "memory: %.1f MiB early, %.1f MiB late (%+.1f MiB): %s\n", r0 / 1024, r1 / 1024, grow / 1024, mem_flat ? "flat" : "GROWING"
        printf "latency p99: %.2f ms early, %.2f ms late: %s (req/s %d early, %d late)\n", p0 / 1000, p1 / 1000, lat_flat ? "flat" : "RISING", q0, q1
        printf "errors: %d in wrk (answers >= 400, socket errors, timeouts), %d ERROR lines in the server log: %s\n", e, errs, (e + errs == 0) ? "none" : "ERRORS"
        printf "stale releases (DELETE of a key the churn had already released, rightly 404; see bench/wrk/soak.lua): %d\n", stale
        exit !(mem_flat && e + errs == 0)
    }' "$SAMPLES"
