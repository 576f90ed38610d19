#!/bin/sh
# I/O benchmarks (issue 8). Only the ping-pong pair exists so far: weft
# streams against raw luv callbacks, in alternating pairs.
#   bench/io/run.sh [round_trips] [pairs]
set -eu
cd "$(dirname "$0")/../.."
n=${1:-100000}
pairs=${2:-5}
i=0
while [ "$i" -lt "$pairs" ]; do
  lua5.4 bench/io/pingpong_weft.lua "$n"
  lua5.4 bench/io/pingpong_luv.lua "$n"
  i=$((i + 1))
done
