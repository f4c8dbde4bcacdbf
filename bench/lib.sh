# Shared by bench/run.sh and bench/soak.sh (sourced, not run). Loopback only, bounded loops.
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
ADMIN_TOKEN=bench-admin-token
PG_HOST_URL=${BENCH_PG_HOST_URL:-postgres://postgres@127.0.0.1:5432}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Installs wrk (and the PostgreSQL client when asked) from Debian when missing.
need_tools() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v curl >/dev/null || missing+=(curl)
    command -v shuf >/dev/null || missing+=(coreutils)
    if [ "${1:-}" = postgres ] && ! command -v psql >/dev/null; then
        missing+=(postgresql-client)
    fi
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Builds the release server unless BENCH_BIN names one; sets BIN.
build_server() {
    if [ -n "${BENCH_BIN:-}" ]; then
        BIN=$BENCH_BIN
    else
        local target=${BENCH_TARGET_DIR:-$(dirname "$ROOT")/target-bench}
        log "building the release server (CARGO_TARGET_DIR=$target)"
        (cd "$ROOT" && CARGO_TARGET_DIR=$target cargo build --release -q -p glpi-network-server)
        BIN=$target/release/glpi-network-server
    fi
    [ -x "$BIN" ] || die "no server binary at $BIN"
}

machine_info() {
    echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- server shared 2>/dev/null || echo ' (+ uncommitted changes in server/ or shared/)'), $(rustc --version 2>/dev/null | cut -d' ' -f1-2), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# A fresh PostgreSQL database; sets PG_DB and PG_URL (not in a subshell).
pg_create() {
    pg_isready -q -d "$PG_HOST_URL/postgres" 2>/dev/null || pg_isready -q -h 127.0.0.1 -p 5432 ||
        die "PostgreSQL is not reachable at $PG_HOST_URL (set BENCH_BACKENDS=sqlite to skip it)"
    PG_DB=gn_bench_$$_$RANDOM
    psql -q -X -v ON_ERROR_STOP=1 "$PG_HOST_URL/postgres" -c "CREATE DATABASE $PG_DB" >/dev/null
    PG_URL="$PG_HOST_URL/$PG_DB?sslmode=disable"
}

pg_drop() {
    [ -n "${PG_DB:-}" ] || return 0
    psql -q -X "$PG_HOST_URL/postgres" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    PG_DB=
}

# cli DB_URL DATA_DIR ARGS...: runs an admin subcommand on the database.
cli() {
    local db=$1 dir=$2
    shift 2
    "$BIN" --database-url "$db" --data-dir "$dir" "$@"
}

# issue_keys DB_URL DATA_DIR COUNT OUT: issues COUNT keys through the CLI (--count, CSV),
# appends "key url uid" lines to OUT (one instance URL and UID derived from each key), and
# prints the milliseconds the CLI took.
issue_keys() {
    local db=$1 dir=$2 count=$3 out=$4 csv t0 t1
    csv=$(mktemp "$WORK/issue.XXXXXX")
    # only serve, migrate and restore create a database; on an existing one this does nothing
    cli "$db" "$dir" migrate 2>>"$WORK/cli.log" || die "migrate failed (see $WORK/cli.log)"
    t0=$(now_ms)
    cli "$db" "$dir" keys issue --subscriber "Bench Corp" --offer basic --count "$count" --format csv >"$csv" 2>>"$WORK/cli.log" ||
        die "keys issue failed (see $WORK/cli.log)"
    t1=$(now_ms)
    local got
    got=$(($(wc -l <"$csv") - 1))
    [ "$got" -eq "$count" ] || die "keys issue printed $got keys, not $count"
    # id,key,key_prefix,subscription_id -> key url uid
    awk -F, 'NR > 1 { u = $2; gsub("-", "", u); print $2, "https://" tolower(u) ".bench.example/glpi", u }' "$csv" >>"$out"
    rm -f "$csv"
    echo $((t1 - t0))
}

SERVER_PID=
READY_MS=
# start_server DB_URL DATA_DIR PORT [ARGS...]: spawns the server (SERVER_PID) with ARGS added
# to its command line, waits for the first 200 on /readyz and sets READY_MS to the
# milliseconds from spawn to ready (BENCH_READY_TIMEOUT seconds at most [30]: a large fixture
# file loads before the server answers). Not in a subshell: the caller must keep SERVER_PID.
start_server() {
    local db=$1 dir=$2 port=$3 t0 deadline
    shift 3
    if curl -s -m 2 -o /dev/null "http://127.0.0.1:$port/healthz"; then
        die "something already listens on 127.0.0.1:$port (set BENCH_PORT)"
    fi
    t0=$(now_ms)
    deadline=$((t0 + ${BENCH_READY_TIMEOUT:-30} * 1000))
    "$BIN" --bind "127.0.0.1:$port" --database-url "$db" --data-dir "$dir" \
        --admin-token "$ADMIN_TOKEN" \
        --failed-lookups-per-minute 100000000 --registrations-per-key-per-minute 100000000 \
        ${BENCH_WORKERS:+--workers "$BENCH_WORKERS"} "$@" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if [ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ]; then
            READY_MS=$(($(now_ms) - t0))
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited at start (see $WORK/server.log)"
        sleep 0.005
    done
    die "the server was not ready within ${BENCH_READY_TIMEOUT:-30} s"
}

stop_server() {
    [ -n "${SERVER_PID:-}" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# rss_kb FIELD: VmRSS or VmHWM of the running server, in KiB.
rss_kb() {
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/$SERVER_PID/status"
}

# metric NAME_WITH_LABELS PORT: one value from /metrics (0 when absent).
metric() {
    curl -s "http://127.0.0.1:$2/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print (v == "" ? 0 : v) + 0 }'
}

# metric_pair NAME1 NAME2: "V1 V2", two values from one scrape of the server's /metrics (0 when
# absent).
metric_pair() {
    curl -s "http://127.0.0.1:$PORT/metrics" | awk -v a="$1" -v b="$2" '
        $1 == a { x = $2 }
        $1 == b { y = $2 }
        END { print x + 0, y + 0 }'
}

# cache_counts: "hits misses" of the server's key-state cache so far (one scrape).
cache_counts() {
    metric_pair 'glpi_network_key_cache_lookups_total{result="hit"}' \
        'glpi_network_key_cache_lookups_total{result="miss"}'
}

# signing_totals: "sum count" of the server's token_signing_seconds histogram (one scrape).
signing_totals() {
    metric_pair glpi_network_token_signing_seconds_sum glpi_network_token_signing_seconds_count
}

# signing_mean "S0 C0" "S1 C1": the mean time to sign one token between the two scrapes.
signing_mean() {
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); n = y[2] - x[2];
        if (n <= 0) print "no token signed"; else printf "%.1f µs a token signed (%d tokens)\n", 1e6 * (y[1] - x[1]) / n, n }'
}

# cache_share "H0 M0" "H1 M1": the share of look-ups between the two answered from memory.
cache_share() {
    local h0 m0 h1 m1
    read -r h0 m0 <<<"$1"
    read -r h1 m1 <<<"$2"
    awk -v h=$((h1 - h0)) -v m=$((m1 - m0)) 'BEGIN { if (h + m == 0) print "off"; else printf "%.2f%% (%d misses)\n", 100 * h / (h + m), m }'
}

# seed_registrations KEYS_FILE PORT: binds every key of the file (URL and UID) through
# POST /v1/registrations, 16 at a time with curl --parallel; dies unless all answer 201.
seed_registrations() {
    local file=$1 port=$2 cfg codes n ok
    cfg=$WORK/seed.curl
    awk -v base="http://127.0.0.1:$port" '{
        if (NR > 1) print "next"
        printf "url = \"%s/v1/registrations\"\n", base
        print "header = \"Content-Type: application/json\""
        printf "data = \"{\\\"registration_key\\\":\\\"%s\\\",\\\"instance_url\\\":\\\"%s\\\",\\\"instance_uid\\\":\\\"%s\\\"}\"\n", $1, $2, $3
        print "output = \"/dev/null\""
        print "write-out = \"%{http_code}\\n\""
    }' "$file" >"$cfg"
    codes=$(curl -s --no-progress-meter --parallel --parallel-max 16 -K "$cfg") ||
        die "seeding: curl failed ($?)"
    n=$(wc -l <"$file")
    ok=$(grep -c '^201$' <<<"$codes" || true)
    [ "$ok" -eq "$n" ] || die "seeding: $ok of $n registrations answered 201 ($(sort <<<"$codes" | uniq -c | tr '\n' ' '))"
}

# server_cpu_ticks: user + system CPU time of the server so far, in clock ticks.
server_cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"
}

# wrk_run SCRIPT DURATION PORT ARGS...: one wrk run; prints
# "rps p50_us p99_us errors requests server_cpu_us_per_request". SCRIPT is a file of bench/wrk/,
# or a path such as /readyz for a plain GET.
wrk_run() {
    local script=$1 duration=$2 port=$3 out line cpu0 cpu1 url=http://127.0.0.1:$3
    shift 3
    if [ "${script#/}" != "$script" ]; then
        url=$url$script
        script=healthz.lua
        set -- "$@" keep-path
    fi
    cpu0=$(server_cpu_ticks)
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${duration}s" --timeout 5s -s "$BENCH_DIR/wrk/$script" \
        "$url" -- "$@" 2>&1) || die "wrk failed: $out"
    cpu1=$(server_cpu_ticks)
    if grep -q 'POOL EXHAUSTED' <<<"$out"; then
        log "warning: the registration key pool ran out during the run: its req/s is a lower bound"
    fi
    line=$(grep '^BENCH ' <<<"$out") || die "no result from wrk: $out"
    if ! grep -q 'connect=0 read=0 write=0 status=0 timeout=0' <<<"$line"; then
        log "  wrk errors: $(grep -oE 'connect=.* timeout=[0-9]+' <<<"$line") (status: answers >= 400)"
    fi
    awk -v ticks=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        errors = v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"]
        printf "%.0f %d %d %d %d %.0f %d\n", v["requests"] / (v["duration_us"] / 1e6), v["p50_us"], v["p99_us"], errors, v["requests"],
            (v["requests"] > 0 ? ticks / hz * 1e6 / v["requests"] : 0), v["stale"]
    }' <<<"$line"
}

# work_dir NAME: the run's scratch directory in WORK (gn-NAME.XXXXXX, with an empty server.log),
# removed at exit by cleanup. The default cleanup stops the server and drops the PostgreSQL
# database; a script that must do more at exit defines its own cleanup() after this call.
work_dir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/gn-$1.XXXXXX")
    : >"$WORK/server.log"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}
cleanup() {
    stop_server
    pg_drop
    rm -rf "$WORK"
}

# write_fixture N FILE: the fleet fixture, one subscriber, one subscription, N keys KEY-0 ...
# KEY-<N-1>, key i bound to https://glpi-<i>.fleet.example/glpi with UID uid-<i> (wrk/fleet.lua).
write_fixture() {
    awk -v n="$1" 'BEGIN {
        printf "{\"subscribers\":[{\"ref\":\"fleet\",\"name\":\"Fleet Corp\"}],"
        printf "\"subscriptions\":[{\"ref\":\"fleet\",\"subscriber\":\"fleet\",\"offer\":\"basic\"}],\n\"keys\":["
        for (i = 0; i < n; i++) printf "%s{\"key\":\"KEY-%d\",\"subscription\":\"fleet\"}\n", (i ? "," : ""), i
        printf "],\n\"registrations\":["
        for (i = 0; i < n; i++)
            printf "%s{\"key\":\"KEY-%d\",\"instance_url\":\"https://glpi-%d.fleet.example/glpi\",\"instance_uid\":\"uid-%d\"}\n", (i ? "," : ""), i, i, i
        print "]}"
    }' >"$2"
}

# fmt_us MICROSECONDS: "0.41 ms".
fmt_us() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
