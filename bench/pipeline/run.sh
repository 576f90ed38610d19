#!/bin/sh
# 1000 /bin/true processes at 2 at a time, four ways, in the same run:
#   weft run (a generated Weftfile), weft.exec under a semaphore of 2,
#   ninja -j2 (1000 independent edges), xargs -P2.
# Rounds alternate the tools; prints each tool's median ms/process and the
# ratios weft/ninja and weft/xargs. Usage: bench/pipeline/run.sh [ROUNDS]
set -eu
cd "$(dirname "$0")/../.."
. bench/pipeline/lib.sh
BIN=${WEFT_BIN:-$(pwd)/${BUILD:-build}/weft}
ROUNDS=${1:-7}
N=1000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

{
  echo 'local names = {}'
  echo "for i = 1, $N do"
  echo '  names[i] = "t" .. i'
  echo '  task(names[i]) { function() weft.exec { "/bin/true" } end }'
  echo 'end'
  echo 'default(names)'
} > "$tmp/Weftfile.lua"

cat > "$tmp/exec.lua" <<LUA
local weft = require "weft"
local sem, tasks = weft.semaphore(2), {}
for i = 1, $N do
  tasks[i] = weft.spawn(function() sem:with(weft.exec, { "/bin/true" }) end)
end
for _, t in ipairs(tasks) do t:await() end
LUA

{
  echo 'rule t'
  echo '  command = /bin/true'
  i=1
  while [ $i -le $N ]; do echo "build o$i: t"; i=$((i + 1)); done
} > "$tmp/build.ninja"

weft_run() { CI=true "$BIN" run -f "$tmp/Weftfile.lua" -j 2; }
weft_exec() { "$BIN" "$tmp/exec.lua"; }
ninja_run() { ninja -C "$tmp" -j 2 -f build.ninja; }
xargs_run() { seq $N | xargs -P 2 -n 1 /bin/true; }

for tool in weft_run weft_exec ninja_run xargs_run; do : > "$tmp/$tool.times"; done
r=1
while [ "$r" -le "$ROUNDS" ]; do
  for tool in weft_run ninja_run weft_exec xargs_run; do
    time_one $tool >> "$tmp/$tool.times"
  done
  r=$((r + 1))
done

printf '%-10s %10s %14s\n' tool "median s" "ms/process"
for tool in weft_run weft_exec ninja_run xargs_run; do
  m=$(median "$tmp/$tool.times")
  printf '%-10s %10.3f %14.3f\n' "$tool" "$m" "$(echo "$m * 1000 / $N" | bc -l)"
  eval "m_$tool=$m"
done
printf 'weft run / ninja  = %.2f   weft run / xargs  = %.2f\n' \
  "$(echo "$m_weft_run / $m_ninja_run" | bc -l)" "$(echo "$m_weft_run / $m_xargs_run" | bc -l)"
printf 'weft.exec / ninja = %.2f   weft.exec / xargs = %.2f\n' \
  "$(echo "$m_weft_exec / $m_ninja_run" | bc -l)" "$(echo "$m_weft_exec / $m_xargs_run" | bc -l)"
