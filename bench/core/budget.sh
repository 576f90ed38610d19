#!/bin/sh
# Overhead of the step budget (issue 17): the core benchmarks run without
# and with `--step-budget 10s` (a budget never reached: what is measured is
# the count hook, every 1000 instructions, and the clock read at each resume)
# in alternating pairs. B/A = with / without (target < 1.05).
# Environment: WEFT_BUILD (default build), PAIRS (default 5), N (default 1000000).
set -eu
cd "$(dirname "$0")/../.."
build=${WEFT_BUILD:-build}
pairs=${PAIRS:-5}
n=${N:-1000000}
weft="$build/weft"
ab="lua5.4 bench/core/ab.lua -n $pairs"
echo "== step budget overhead: $(date -u '+%Y-%m-%d %H:%M UTC'), weft at $(git rev-parse --short HEAD)"
echo "-- spawn + await $n tasks (body one weft.yield()), batches of 1000"
$ab "plain" "$weft bench/core/spawn.lua $n 1000 gather" \
    "budget" "$weft --step-budget 10s bench/core/spawn.lua $n 1000 gather"
echo "-- 100000 tasks sleeping 1 s at once"
$ab -k wall "plain" "$weft bench/core/sleep.lua 100000" \
    "budget" "$weft --step-budget 10s bench/core/sleep.lua 100000"
echo "-- one task computing 20M loop iterations without awaiting"
$ab "plain" "$weft bench/core/compute.lua 20000000" \
    "budget" "$weft --step-budget 10s bench/core/compute.lua 20000000"
