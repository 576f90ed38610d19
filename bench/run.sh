#!/bin/sh
# Runs every benchmark suite (bench/*/run.sh) in turn; `make bench` calls it.
# Each suite prints its own comparisons; this exits non-zero if one failed.
set -u
cd "$(dirname "$0")/.."
status=0
for suite in bench/*/run.sh; do
  [ -f "$suite" ] || continue
  echo "### $suite"
  sh "$suite" || { echo "### $suite failed" >&2; status=1; }
  echo
done
exit $status
