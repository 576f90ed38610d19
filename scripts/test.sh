#!/bin/sh
# Runs every spec under stock lua5.4 (or, when WEFT_BUILD names a sanitizer
# build, under the sanitized lua host built beside it) and ends with the
# line "N passed, N failed". Extra arguments go to busted.
# The run is the first process of a PID namespace of its own (where unshare
# allows it): a process that a spec started and that outlived the run fails
# it, is listed, and is killed with the namespace (scripts/reaper.lua).
set -u
cd "$(dirname "$0")/.."
build=${WEFT_BUILD:-build}
busted=$(command -v busted)
if [ -x "$build/luahost" ]; then
  lua="$build/luahost"
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/scripts/lsan.supp:print_suppressions=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
else
  lua=lua5.4
fi
export WEFT_BUILD="$build" WEFT_BIN="$(pwd)/$build/weft"
reaper=""
for ns in "--pid --fork --mount-proc" "--user --map-root-user --pid --fork --mount-proc"; do
  # shellcheck disable=SC2086
  if unshare $ns true 2>/dev/null; then
    reaper="unshare $ns lua5.4 scripts/reaper.lua"
    break
  fi
done
[ -n "$reaper" ] || echo "scripts/test.sh: no PID namespace here: processes outliving the specs go unnoticed" >&2
out=$(mktemp)
$reaper "$lua" "$busted" --output=spec/summary_output.lua "$@" 2>&1 | tee "$out"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
outlived=$(grep -c 'outlived the specs' "$out")
rm -f "$out"
if [ -z "$summary" ]; then
  echo "0 passed, 1 failed"
  exit 1
fi
failed=$(echo "$summary" | sed -E 's/.* ([0-9]+) failed/\1/')
[ "$failed" -eq 0 ] && [ "$outlived" -eq 0 ]
