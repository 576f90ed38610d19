#!/bin/sh
# Issue 9's benchmarks, in alternating pairs with median ratios (core/ab.lua):
#   1. spawn + await 1M tasks (bench/core/spawn.lua): weft as built vs weft
#      built with -DWEFT_NO_INSTRUMENT (the hooks compiled out): the cost of
#      the one branch with no instrument installed (target: within 3%)
#   2. the same with one no-op instrument installed, and with --debug
#   3. 100k sleepers with random deadlines up to a day on virtual time:
#      wall (target < 1 s) and peak RSS per task
# Environment: WEFT_BUILD (default build), PAIRS (default 5), N (default 1000000).
set -eu
cd "$(dirname "$0")/../.."
build=${WEFT_BUILD:-build}
pairs=${PAIRS:-5}
n=${N:-1000000}
noinst=build/noinst
ab="lua5.4 bench/core/ab.lua -n $pairs"

make --no-print-directory BUILD=$noinst CFLAGS=-DWEFT_NO_INSTRUMENT $noinst/weft >/dev/null

echo "== introspection benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
echo
echo "== 1. spawn + await $n tasks: hooks compiled out (A) vs built in, none installed (B); B/A target <= 1.03"
$ab "compiled-out" "$noinst/weft bench/core/spawn.lua $n 1000 gather" \
    "built-in" "$build/weft bench/core/spawn.lua $n 1000 gather"
echo
echo "== 2a. no instrument (A) vs one no-op instrument (B): the price of the hooks"
$ab "none" "$build/weft bench/core/spawn.lua $n 1000 gather" \
    "no-op instrument" "$build/weft bench/introspection/noop_instrument.lua $n 1000 gather"
echo
echo "== 2b. normal (A) vs --debug (B): spawn sites and step timing"
$ab "normal" "$build/weft bench/core/spawn.lua $n 1000 gather" \
    "--debug" "$build/weft --debug bench/core/spawn.lua $n 1000 gather"
echo
echo "== 3. 100k sleepers, random deadlines up to one day, virtual time (target: time < 1 s)"
for i in 1 2 3; do
  $build/weft bench/introspection/virtual_sleepers.lua 100000
done
