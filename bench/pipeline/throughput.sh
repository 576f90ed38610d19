#!/bin/sh
# Issue 15: output throughput through weft run's prefixer. A task cats a
# file of 80-byte lines (MB megabytes, default 200) with `weft run` (each
# line prefixed, to /dev/null), against `cat FILE > /dev/null` and the same
# bytes through one pipe stage (`cat FILE | cat > /dev/null`), alternating.
# Prints MB/s and the ratios. Usage: bench/pipeline/throughput.sh [MB] [ROUNDS]
# Also the floor of any one-stage reader (bench/pipeline/pipe_floor.c, built
# here with cc): the same `cat FILE` into a socketpair (libuv's stdio pipes)
# or a 1 MiB pipe, drained with no per-line work, or spliced to /dev/null so
# the reader copies nothing. Its rate over cat's is the most any design that
# runs the task as a child process can reach on this machine.
# (weft.sh inside weft run keeps at most 16 MiB of the output for its result,
# weft.pipeline.MAX_CAPTURE, so any MB runs in bounded memory; the data file
# itself takes MB megabytes in $TMPDIR.)
set -eu
cd "$(dirname "$0")/../.."
. bench/pipeline/lib.sh
BIN=${WEFT_BIN:-$(pwd)/${BUILD:-build}/weft}
MB=${1:-200}
ROUNDS=${2:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

line=$(printf '%079d' 0 | tr 0 x)
yes "$line" | head -c "$((MB * 1048576))" > "$tmp/data"
cat > "$tmp/Weftfile.lua" <<LUA
task "print" { function() weft.sh "cat $tmp/data" end }
LUA

weft_run() { CI=true "$BIN" run -f "$tmp/Weftfile.lua" print > /dev/null; }
cat_only() { cat "$tmp/data" > /dev/null; }
cat_pipe() { cat "$tmp/data" | cat > /dev/null; }
${CC:-cc} -O2 -o "$tmp/pipe_floor" bench/pipeline/pipe_floor.c
floor_sock() { "$tmp/pipe_floor" socketpair "$tmp/data"; }
floor_pipe() { "$tmp/pipe_floor" pipe "$tmp/data"; }
floor_splice() { "$tmp/pipe_floor" splice "$tmp/data"; }

all="weft_run cat_only cat_pipe floor_sock floor_pipe floor_splice"
for t in $all; do : > "$tmp/$t.times"; done
r=1
while [ "$r" -le "$ROUNDS" ]; do
  for t in weft_run cat_only weft_run cat_pipe floor_sock floor_pipe floor_splice; do
    time_one $t >> "$tmp/$t.times"
  done
  r=$((r + 1))
done
printf '%-12s %10s %10s   (%d MB in 80-byte lines, %d rounds)\n' tool "median s" "MB/s" "$MB" "$ROUNDS"
for t in $all; do
  m=$(median "$tmp/$t.times")
  printf '%-12s %10.3f %10.1f\n' "$t" "$m" "$(echo "$MB / $m" | bc -l)"
  eval "m_$t=$m"
done
printf 'weft run rate / cat rate = %.3f (target >= 0.8)   / cat|cat rate = %.3f\n' \
  "$(echo "$m_cat_only / $m_weft_run" | bc -l)" "$(echo "$m_cat_pipe / $m_weft_run" | bc -l)"
best_floor=$(printf '%s\n' "$m_floor_sock" "$m_floor_pipe" "$m_floor_splice" | sort -n | head -1)
printf 'one-stage floor (best of the three) / cat rate = %.3f   weft run / that floor = %.3f\n' \
  "$(echo "$m_cat_only / $best_floor" | bc -l)" "$(echo "$best_floor / $m_weft_run" | bc -l)"
