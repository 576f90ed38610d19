#!/bin/sh
# The core benchmarks of issue 2, each weft against a peer in alternating
# pairs (A B A B ...) with the median ratio (see core/ab.lua):
#   1. spawn + await tasks whose body is one weft.yield(): vs Python asyncio
#      (create_task + gather, body `await asyncio.sleep(0)`) and vs bare Lua
#      coroutines; batches of 1000 (the main shape) and all at once
#   2. 100k tasks sleeping 1 s at once: wall and RSS per task, vs asyncio
#   3. startup: `weft -e ''` vs `lua5.4 -e ''`
# weft runs as the CLI ($BUILD/weft) and, where noted, as the module under
# lua5.4 ($BUILD/weft.so). Environment: WEFT_BUILD (default build), PAIRS
# (default 5), N (tasks for 1., default 1000000), NSLEEP (default 100000),
# QUICK=1 (skips the all-at-once shape, the slowest part).
set -eu
cd "$(dirname "$0")/../.."
build=${WEFT_BUILD:-build}
pairs=${PAIRS:-5}
n=${N:-1000000}
nsleep=${NSLEEP:-100000}
py=${PYTHON:-python3}
weft="$build/weft"
modlua="env LUA_CPATH_5_4='$build/?.so;;' lua5.4"
ab="lua5.4 bench/core/ab.lua -n $pairs"

for f in "$weft" "$build/weft.so"; do
  [ -e "$f" ] || { echo "bench/core: $f missing (make BUILD=$build all)" >&2; exit 1; }
done

echo "== core benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) cores,"\
  "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "   weft at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- host stdlib 2>/dev/null || echo ' + uncommitted changes'),"\
  "$build, $(lua5.4 -v 2>&1 | cut -d' ' -f1-2), $($py --version 2>&1)"

echo
echo "== 1. spawn + await $n tasks, body one weft.yield(); batches of 1000 spawned, then gathered"
echo "-- weft CLI vs asyncio (B/A = how many times faster weft is; target >= 20)"
$ab "weft" "$weft bench/core/spawn.lua $n 1000 gather" \
    "asyncio" "$py bench/core/spawn.py $n 1000"
echo "-- bare lua5.4 floor (create + resume + resume per task) vs weft CLI (B/A target <= 1.5)"
$ab "floor" "lua5.4 bench/core/floor.lua $n loop" \
    "weft" "$weft bench/core/spawn.lua $n 1000 gather"
echo "-- bare lua5.4 floor vs weft as a module under lua5.4 (B/A target <= 1.5)"
$ab "floor" "lua5.4 bench/core/floor.lua $n loop" \
    "weft.so" "$modlua bench/core/spawn.lua $n 1000 gather"
echo "-- floor in the same batch shape (1000 coroutines suspended at once) vs weft, t:await() each"
$ab "floor-batch" "lua5.4 bench/core/floor.lua $n batch 1000" \
    "weft-await" "$weft bench/core/spawn.lua $n 1000 await"

if [ "${QUICK:-0}" != 1 ]; then
  echo
  echo "== 1'. the same, all $n tasks spawned before one gather (peak memory grows with n)"
  $ab "weft" "$weft bench/core/spawn.lua $n $n gather" \
      "asyncio" "$py bench/core/spawn.py $n $n"
  $ab "floor-all" "lua5.4 bench/core/floor.lua $n batch $n" \
      "weft" "$weft bench/core/spawn.lua $n $n gather"
  echo "-- the floor with the smallest handle a task could have (an empty table held while"
  echo "   unfinished) vs weft: what weft adds beyond the one object API.md requires"
  $ab "floor-object" "lua5.4 bench/core/floor.lua $n object $n" \
      "weft" "$weft bench/core/spawn.lua $n $n gather"
fi

echo
echo "== 2. $nsleep tasks sleeping 1 s at once (targets: wall <= 1.15 s, <= 1300 bytes/task)"
$ab -k wall -k bytes_per_task "weft" "$weft bench/core/sleep.lua $nsleep 1" \
    "asyncio" "$py bench/core/sleep.py $nsleep 1"
$ab -k wall -k bytes_per_task "weft" "$weft bench/core/sleep.lua $nsleep 1" \
    "weft.so" "$modlua bench/core/sleep.lua $nsleep 1"

echo
echo "== 3. startup (median of 200 runs per sample; B/A target <= 2)"
if "$weft" -e '' >/dev/null 2>&1; then
  $ab "lua5.4" "bench/core/startup.sh 200 lua5.4 -e ''" \
      "weft" "bench/core/startup.sh 200 $weft -e ''"
else
  echo "!! '$weft -e \"\"' fails; measuring an empty script file instead"
  empty=$(mktemp)
  $ab "lua5.4" "bench/core/startup.sh 200 lua5.4 $empty" \
      "weft" "bench/core/startup.sh 200 $weft $empty"
  rm -f "$empty"
fi
