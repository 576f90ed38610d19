#!/bin/sh
# Startup time of one command: prints time=<median seconds per run>.
# With hyperfine (scripts/deps.sh bench): `hyperfine -N`, no shell in
# between; without it, a shell loop of RUNS runs (fork + exec included).
#   bench/core/startup.sh RUNS CMD [ARGS...]
set -eu
runs=$1
shift
if command -v hyperfine >/dev/null 2>&1; then
  json=$(mktemp)
  quoted=""
  for a in "$@"; do
    case $a in
      '') quoted="$quoted ''" ;;
      *) quoted="$quoted $a" ;;
    esac
  done
  hyperfine -N --style none --warmup 20 --runs "$runs" --export-json "$json" \
    "${quoted# }" >/dev/null 2>&1
  med=$(sed -n 's/.*"median": *\([0-9.e-]*\).*/\1/p' "$json" | head -n 1)
  rm -f "$json"
  echo "time=$med"
else
  t0=$(date +%s%N)
  i=0
  while [ "$i" -lt "$runs" ]; do "$@" >/dev/null; i=$((i + 1)); done
  t1=$(date +%s%N)
  echo "time=$(echo "($t1 - $t0) / $runs / 1000000000" | bc -l)"
fi
