#!/usr/bin/env bash
# The fleet benchmark (issue 18): bench/compare.sh with N keys bound to as many instances
# (default 100,000), each request the next key in turn, the servers at their default settings
# (the key cache on, smaller than N, so nearly every look-up misses), measured from 65 s after the
# fixture load (BENCH_SETTLE), so that every binding is due its last_seen_at refresh as in a
# fleet where each instance calls once a day. The project's keys are
# loaded from a test-mode fixture file (its load time is reported); the baseline seeds the same
# keys. Every other setting is compare.sh's (BENCH_REVS, BENCH_BINS, ...).
#
#   bench/fleet.sh              100,000 keys
#   bench/fleet.sh 1000000      1,000,000 keys (the project's fixture load takes minutes)
set -euo pipefail
export BENCH_KEYS=${1:-${BENCH_KEYS:-100000}}
export BENCH_CACHE=${BENCH_CACHE:-on}
export BENCH_SETTLE=${BENCH_SETTLE:-65}
export BENCH_TAG=${BENCH_TAG:-fleet-${BENCH_KEYS}keys}
exec "$(dirname "$0")/compare.sh"
