#!/usr/bin/env bash
# Load benchmark of the release server with wrk, on SQLite then PostgreSQL, at a small and a
# large number of keys. Prints one table (route, backend, keys, req/s, p50, p99, ratio to
# /healthz) and the scale figures (bulk issue time, start-up to ready, RSS), checked against
# the targets of issue 9. Loopback only; every loop is bounded.
#
#   bench/run.sh                 full run (1k and 1M keys, 10 s per route; ~7 min + the build)
#   BENCH_QUICK=1 bench/run.sh   smoke run (1k and 50k keys, 3 s per route; ~2 min)
#
# Environment (defaults in brackets, quick-mode defaults after the slash):
#   BENCH_BACKENDS      backends to run                         [sqlite postgres]
#   BENCH_KEYS_SMALL    keys of the small database              [1000]
#   BENCH_KEYS_LARGE    keys of the large database              [1000000 / 50000]
#   BENCH_HOT_KEYS      bound keys hit by /info and /validations at the large size [10000 / 1000]
#   BENCH_REG_POOL      fresh keys for POST /v1/registrations   [100000 / 20000]
#   BENCH_ISSUE_TIMED   keys of the timed bulk issue            [100000 / 10000]
#   BENCH_DURATION      seconds per measured route              [10 / 3]
#   BENCH_WARMUP        warm-up seconds before a route          [2 / 1]
#   BENCH_THREADS, BENCH_CONNS   wrk threads and connections    [2, 32]
#   BENCH_PORT          loopback port of the server             [18080]
#   BENCH_WORKERS       --workers of the server                 [server default: one per core]
#   BENCH_BIN           a server binary to use instead of building one
#   BENCH_TARGET_DIR    CARGO_TARGET_DIR of the release build   [../target-bench]
#   BENCH_PG_HOST_URL   PostgreSQL server (a database is created and dropped)
#                                                               [postgres://postgres@127.0.0.1:5432]
# The server inherits the environment, so its own variables apply too: for instance
#   GLPI_NETWORK_KEY_CACHE_SIZE=0 bench/run.sh   measures the database path of /info and
#                                                validations (the key-state cache off).
# The report is also written to bench/results/latest.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

QUICK=${BENCH_QUICK:-0}
q() { if [ "$QUICK" = 1 ]; then echo "$2"; else echo "$1"; fi; }
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
N_SMALL=${BENCH_KEYS_SMALL:-1000}
N_LARGE=${BENCH_KEYS_LARGE:-$(q 1000000 50000)}
HOT=${BENCH_HOT_KEYS:-$(q 10000 1000)}
POOL=${BENCH_REG_POOL:-$(q 100000 20000)}
ISSUE_TIMED=${BENCH_ISSUE_TIMED:-$(q 100000 10000)}
DURATION=${BENCH_DURATION:-$(q 10 3)}
WARMUP=${BENCH_WARMUP:-$(q 2 1)}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-32}
PORT=${BENCH_PORT:-18080}

REST=$((N_LARGE - N_SMALL - POOL - ISSUE_TIMED))
[ "$REST" -ge 0 ] && [ $((ISSUE_TIMED + REST)) -ge $((HOT + POOL)) ] ||
    die "BENCH_KEYS_LARGE must be at least BENCH_KEYS_SMALL + BENCH_REG_POOL + max(BENCH_ISSUE_TIMED, BENCH_HOT_KEYS + BENCH_REG_POOL)"

need_tools "$(grep -qw postgres <<<"$BACKENDS" && echo postgres)"
build_server
work_dir bench

RESULTS=$WORK/results # route|backend|keys|rps|p50|p99|errors|server CPU µs per request
: >"$RESULTS"
declare -A FIG # extra figures by name

secs() { awk -v m="$1" 'BEGIN { printf "%.1f s", m / 1000 }'; }

label() { # 1000 -> 1k, 1000000 -> 1M
    local n=$1
    if [ $((n % 1000000)) -eq 0 ]; then echo "$((n / 1000000))M"
    elif [ $((n % 1000)) -eq 0 ]; then echo "$((n / 1000))k"
    else echo "$n"; fi
}

# record ROUTE BACKEND KEYS "rps p50 p99 errors requests cpu" [KEY_CACHE_HITS]
record() {
    local route=$1 backend=$2 keys=$3 cache=${5:--} rps p50 p99 errors requests cpu
    read -r rps p50 p99 errors requests cpu _ <<<"$4"
    [ -n "$cpu" ] || die "no result for $route"
    echo "$route|$backend|$keys|$rps|$p50|$p99|$errors|$cpu|$cache" >>"$RESULTS"
    log "  $route: $rps req/s, p50 $(fmt_us "$p50"), p99 $(fmt_us "$p99"), $errors errors ($requests requests), server CPU $cpu µs/request, key cache hits $cache"
}

# A valid answer for one sampled key, so the table measures what it claims.
check_sample() {
    local file=$1 key url uid body
    read -r key url uid < <(shuf -n 1 "$file")
    body=$(curl -s -H "X-Registration-Key: $key" -H "X-Glpi-Network-Uid: $uid" "http://127.0.0.1:$PORT/api/registration/info")
    grep -q '"is_valid":true' <<<"$body" || die "/info is not valid for a bench key: $body"
    body=$(curl -s -H 'Content-Type: application/json' \
        -d "{\"registration_key\":\"$key\",\"instance_url\":\"$url\"}" "http://127.0.0.1:$PORT/v1/validations")
    grep -q '"valid":true' <<<"$body" || die "/v1/validations is not valid for a bench key: $body"
}

# bench_lookups BACKEND KEYS HOT_FILE: /healthz, /readyz, /info and /validations.
bench_lookups() {
    local backend=$1 keys=$2 hot=$3 before after res requests c0 c1
    check_sample "$hot"
    wrk_run healthz.lua "$WARMUP" "$PORT" >/dev/null
    record "GET /healthz" "$backend" "$keys" "$(wrk_run healthz.lua "$DURATION" "$PORT")"
    # not a target: the floor of every database-backed route (web::block hop, pool check-out
    # with its validity ping, one SELECT 1)
    record "GET /readyz" "$backend" "$keys" "$(wrk_run /readyz "$DURATION" "$PORT")"
    wrk_run info.lua "$WARMUP" "$PORT" "$hot" >/dev/null
    c0=$(cache_counts)
    res=$(wrk_run info.lua "$DURATION" "$PORT" "$hot")
    record "GET /api/registration/info" "$backend" "$keys" "$res" "$(cache_share "$c0" "$(cache_counts)")"
    wrk_run validations.lua "$WARMUP" "$PORT" "$hot" >/dev/null
    before=$(metric 'glpi_network_validations_total{status="valid"}' "$PORT")
    c0=$(cache_counts)
    res=$(wrk_run validations.lua "$DURATION" "$PORT" "$hot")
    c1=$(cache_counts)
    after=$(metric 'glpi_network_validations_total{status="valid"}' "$PORT")
    requests=$(cut -d' ' -f5 <<<"$res")
    [ $((after - before)) -ge "$requests" ] ||
        log "warning: only $((after - before)) of $requests validations answered valid"
    record "POST /v1/validations" "$backend" "$keys" "$res" "$(cache_share "$c0" "$c1")"
}

# bench_registrations BACKEND KEYS POOL_FILE: new instances, one fresh key each.
bench_registrations() {
    local backend=$1 keys=$2 pool=$3 before after res requests
    before=$(metric glpi_network_registrations_bound_total "$PORT")
    res=$(wrk_run registrations.lua "$DURATION" "$PORT" "$pool" "$THREADS")
    after=$(metric glpi_network_registrations_bound_total "$PORT")
    requests=$(cut -d' ' -f5 <<<"$res")
    [ $((after - before)) -ge "$requests" ] ||
        log "warning: only $((after - before)) new bindings for $requests registrations"
    record "POST /v1/registrations (new)" "$backend" "$keys" "$res"
}

run_backend() {
    local backend=$1 dir db ms i starts
    dir=$WORK/$backend
    mkdir -p "$dir"
    if [ "$backend" = sqlite ]; then
        db="sqlite://$dir/bench.db"
    else
        pg_create
        db=$PG_URL
    fi
    : >"$WORK/server.log"

    log "$backend, $(label "$N_SMALL") keys"
    issue_keys "$db" "$dir" "$N_SMALL" "$dir/hot-small" >/dev/null
    start_server "$db" "$dir" "$PORT"
    log "  ready in $READY_MS ms"
    seed_registrations "$dir/hot-small" "$PORT"
    bench_lookups "$backend" "$(label "$N_SMALL")" "$dir/hot-small"
    # the pool for new registrations is issued now, so the lookups above ran on N_SMALL keys
    ms=$(issue_keys "$db" "$dir" "$POOL" "$dir/pool-small")
    log "  issued $POOL more keys for registrations in $ms ms (server running)"
    bench_registrations "$backend" "$(label "$N_SMALL")" "$dir/pool-small"
    stop_server

    log "$backend, growing to $(label "$N_LARGE") keys"
    ms=$(issue_keys "$db" "$dir" "$ISSUE_TIMED" "$dir/new")
    FIG[issue_$backend]=$ms
    log "  bulk issue of $ISSUE_TIMED keys through the CLI: $ms ms"
    ms=$(issue_keys "$db" "$dir" "$REST" "$dir/new")
    FIG[issue_rest_$backend]=$ms
    log "  then $REST more: $ms ms"
    shuf -n $((HOT + POOL)) "$dir/new" >"$dir/pick"
    head -n "$HOT" "$dir/pick" >"$dir/hot-large"
    tail -n +$((HOT + 1)) "$dir/pick" >"$dir/pool-large"
    rm -f "$dir/new" "$dir/pick"

    start_server "$db" "$dir" "$PORT"
    FIG[start_$backend]=$READY_MS
    FIG[rss_idle_$backend]=$(rss_kb VmRSS)
    log "  ready in $READY_MS ms on the existing database, RSS $((FIG[rss_idle_$backend] / 1024)) MiB"
    seed_registrations "$dir/hot-large" "$PORT"
    bench_lookups "$backend" "$(label "$N_LARGE")" "$dir/hot-large"
    bench_registrations "$backend" "$(label "$N_LARGE")" "$dir/pool-large"
    FIG[rss_$backend]=$(rss_kb VmRSS)
    FIG[hwm_$backend]=$(rss_kb VmHWM)
    log "  RSS after the load $((FIG[rss_$backend] / 1024)) MiB (peak $((FIG[hwm_$backend] / 1024)) MiB)"
    stop_server

    # start-up to ready on the existing database, three times
    starts=()
    for i in 1 2 3; do
        start_server "$db" "$dir" "$PORT"
        starts+=("$READY_MS")
        stop_server
    done
    FIG[starts_$backend]="${starts[*]}"
    log "  start-up to ready on the existing database: ${starts[*]} ms"
    if grep -E ' (ERROR|WARN) ' "$WORK/server.log" | head -n 5 | grep -q .; then
        log "  server log warnings/errors: $(grep -cE ' (ERROR|WARN) ' "$WORK/server.log")"
        grep -E ' (ERROR|WARN) ' "$WORK/server.log" | head -n 5 >&2
    fi
    [ "$backend" = postgres ] && pg_drop
    rm -rf "$dir"
}

REPORT=$WORK/report.md
{
    echo "## bench/run.sh $( [ "$QUICK" = 1 ] && echo '(quick mode)')"
    echo
    machine_info | sed 's/^/- /'
    echo "- wrk -t$THREADS -c$CONNS, ${DURATION} s per route after ${WARMUP} s of warm-up; keys: $(label "$N_SMALL") and $(label "$N_LARGE"); $HOT bound keys hit at $(label "$N_LARGE")"
    echo "- server key cache: --key-cache-size ${GLPI_NETWORK_KEY_CACHE_SIZE:-20000 (default)}, --key-cache-ttl ${GLPI_NETWORK_KEY_CACHE_TTL:-5 (default)} s (key cache hits: the share of /info and validation look-ups answered from memory; 'off' when none were counted)"
    echo "- server CPU per request: the server's user + system CPU time during the run divided by the requests answered (less sensitive to other load on the machine than req/s)"
} >"$REPORT"

T0=$(now_ms)
for backend in $BACKENDS; do
    run_backend "$backend"
done
ELAPSED=$((($(now_ms) - T0) / 1000))

{
    echo
    echo "| route | backend | keys | req/s | p50 | p99 | ratio to /healthz | errors | server CPU per request | key cache hits |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'|' '
        $1 == "GET /healthz" { ceil[$2 "|" $3] = $4 }
        { rows[NR] = $0 }
        END {
            for (i = 1; i <= NR; i++) {
                split(rows[i], f, "|")
                c = ceil[f[2] "|" f[3]]
                printf "| %s | %s | %s | %d | %.2f ms | %.2f ms | %.2f | %d | %d µs | %s |\n", f[1], f[2], f[3], f[4], f[5] / 1000, f[6] / 1000, (c > 0 ? f[4] / c : 0), f[7], f[8], f[9]
            }
        }' "$RESULTS"
    echo
    for backend in $BACKENDS; do
        echo "- $backend: bulk issue of $ISSUE_TIMED keys through the CLI: $(secs "${FIG[issue_$backend]}") (the next $REST keys: $(secs "${FIG[issue_rest_$backend]}")); start-up to ready on the existing $(label "$N_LARGE")-key database: ${FIG[starts_$backend]// / ms, } ms (first start after the growth: ${FIG[start_$backend]} ms); RSS at $(label "$N_LARGE") keys: $((FIG[rss_idle_$backend] / 1024)) MiB after start, $((FIG[rss_$backend] / 1024)) MiB after the load, peak $((FIG[hwm_$backend] / 1024)) MiB"
    done
    echo
    echo "Targets (issue 9):"
    for backend in $BACKENDS; do
        awk -F'|' -v b="$backend" -v small="$(label "$N_SMALL")" -v large="$(label "$N_LARGE")" '
            $2 == b { rps[$1 "|" $3] = $4; p99[$1 "|" $3] = $6 }
            function verdict(ok) { return ok ? "met" : "NOT met" }
            END {
                i = "GET /api/registration/info"; v = "POST /v1/validations"
                for (k = 0; k < 2; k++) {
                    n = (k == 0 ? small : large)
                    printf "- %s, %s keys: /info >= 40k req/s: %d, %s; /validations >= 20k req/s with p99 < 5 ms: %d, %.2f ms, %s\n", b, n,
                        rps[i "|" n], verdict(rps[i "|" n] >= 40000), rps[v "|" n], p99[v "|" n] / 1000,
                        verdict(rps[v "|" n] >= 20000 && p99[v "|" n] < 5000)
                }
                printf "- %s, %s vs %s keys >= 0.8x:", b, large, small
                split("GET /healthz|GET /api/registration/info|POST /v1/validations|POST /v1/registrations (new)", rs, "|")
                for (r = 1; r <= 4; r++) {
                    a = rps[rs[r] "|" small]; z = rps[rs[r] "|" large]
                    printf " %s %.2fx %s;", rs[r], (a > 0 ? z / a : 0), verdict(a > 0 && z >= 0.8 * a)
                }
                printf "\n"
            }' "$RESULTS"
        echo "- $backend: RSS < 64 MiB at $(label "$N_LARGE") keys: $((FIG[hwm_$backend] / 1024)) MiB peak, $( [ "${FIG[hwm_$backend]}" -lt 65536 ] && echo met || echo 'NOT met'); start-up < 1 s: $(for s in ${FIG[starts_$backend]}; do [ "$s" -lt 1000 ] || { echo 'NOT met'; exit; }; done; echo met); bulk issue of 100k < 30 s: $( [ "$ISSUE_TIMED" -ne 100000 ] && echo "not measured ($ISSUE_TIMED keys issued)" || { [ "${FIG[issue_$backend]}" -lt 30000 ] && echo met || echo 'NOT met'; })"
    done
    echo
    echo "Whole run: ${ELAPSED} s."
} >>"$REPORT"

mkdir -p "$BENCH_DIR/results"
cp "$REPORT" "$BENCH_DIR/results/latest.md"
cat "$REPORT"
