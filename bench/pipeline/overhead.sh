#!/bin/sh
# Issue 15: weft run's overhead per task. 500 tasks of `true` at -j8,
# against ninja -j8 (500 independent edges) and xargs -P8, in alternating
# pairs (weft, ninja, weft, xargs, ...). Prints each tool's median ms/task
# and the ratios. Usage: bench/pipeline/overhead.sh [ROUNDS] [N] [JOBS]
set -eu
cd "$(dirname "$0")/../.."
. bench/pipeline/lib.sh
BIN=${WEFT_BIN:-$(pwd)/${BUILD:-build}/weft}
ROUNDS=${1:-7}
N=${2:-500}
J=${3:-8}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

{
  echo 'local names = {}'
  echo "for i = 1, $N do"
  echo '  names[i] = "t" .. i'
  echo '  task(names[i]) { function() weft.exec { "true" } end }'
  echo 'end'
  echo 'default(names)'
} > "$tmp/Weftfile.lua"
{
  echo 'rule t'
  echo '  command = true'
  i=1
  while [ $i -le $N ]; do echo "build o$i: t"; i=$((i + 1)); done
} > "$tmp/build.ninja"

weft_run() { CI=true "$BIN" run -f "$tmp/Weftfile.lua" -j "$J"; }
ninja_run() { ninja -C "$tmp" -j "$J" -f build.ninja; }
xargs_run() { seq "$N" | xargs -P "$J" -n 1 true; }

for t in weft_run ninja_run xargs_run; do : > "$tmp/$t.times"; done
r=1
while [ "$r" -le "$ROUNDS" ]; do
  # ninja keeps no state here (no outputs are written), so every round runs all edges
  time_one weft_run >> "$tmp/weft_run.times"; time_one ninja_run >> "$tmp/ninja_run.times"
  time_one weft_run >> "$tmp/weft_run.times"; time_one xargs_run >> "$tmp/xargs_run.times"
  r=$((r + 1))
done
printf '%-10s %10s %12s   (%d tasks of true, -j%d, %d rounds)\n' tool "median s" "ms/task" "$N" "$J" "$ROUNDS"
for t in weft_run ninja_run xargs_run; do
  m=$(median "$tmp/$t.times")
  printf '%-10s %10.3f %12.3f\n' "$t" "$m" "$(echo "$m * 1000 / $N" | bc -l)"
  eval "m_$t=$m"
done
printf 'weft run / ninja = %.2f (target <= 1.2)   weft run / xargs = %.2f\n' \
  "$(echo "$m_weft_run / $m_ninja_run" | bc -l)" "$(echo "$m_weft_run / $m_xargs_run" | bc -l)"
