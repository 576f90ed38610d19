#!/bin/sh
# I/O benchmarks (issue 8): five comparisons, each run in alternating pairs
# (weft, then each peer, PAIRS times), reporting medians and the median of
# the per-pair ratios. Needs build/weft.so (WEFT_BUILD to pick another
# build), lua-luv, python3, curl and nginx (scripts/deps.sh installs them).
#   bench/io/run.sh [all|pingpong|bulk|http|files|threads|lines]
# Sizes: PINGPONG_N (100000), BULK_BYTES (1 GiB), HTTP_N (10000),
# FILES_N (10000), LINES_N (200000), PAIRS (5; bulk uses BULK_PAIRS, 3).
# lines (issue 14): weft.fs file:lines() vs io.lines, stream read_line vs
# plain reads of the same bytes (pairs and ratios printed by lines.lua).
set -eu
cd "$(dirname "$0")/../.."
export WEFT_BUILD=${WEFT_BUILD:-build}
what=${1:-all}
PAIRS=${PAIRS:-5}
tmp=$(mktemp -d /tmp/weft-bench-io-XXXXXX)
trap 'bench/io/nginx.sh stop "$tmp" 2>/dev/null || true; rm -rf "$tmp"' EXIT

# value NAME: the number in the last line a run printed ("... 12.3 us each",
# "... in 0.456 s")
num() { sed -n 's/.* \([0-9.]*\) us each.*/\1/p; s/.* in \([0-9.]*\) s.*/\1/p' | tail -n 1; }
now() { date +%s.%N; }
record() { echo "$2" >> "$tmp/$1"; }

# report LABEL BASE PEER...: medians of each series and of BASE/PEER ratios
report() {
  label=$1; base=$2; shift 2
  lua5.4 - "$tmp" "$label" "$base" "$@" <<'LUA'
local dir, label, base = arg[1], arg[2], arg[3]
local function series(name)
  local t = {}
  for l in io.lines(dir .. "/" .. name) do t[#t + 1] = tonumber(l) end
  return t
end
local function median(t)
  local s = {table.unpack(t)}
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end
local b = series(base)
local out = {("%s: %s median %.4g"):format(label, base, median(b))}
for i = 4, #arg do
  local p = series(arg[i])
  local r = {}
  for k = 1, math.min(#b, #p) do r[k] = b[k] / p[k] end
  out[#out + 1] = ("%s %.4g (%s/%s median ratio %.2f)"):format(arg[i], median(p), base, arg[i], median(r))
end
print(table.concat(out, "; "))
LUA
}

pingpong() {
  n=${PINGPONG_N:-100000}
  i=0
  while [ "$i" -lt "$PAIRS" ]; do
    record pp_weft "$(lua5.4 bench/io/pingpong_weft.lua "$n" | num)"
    record pp_asyncio "$(python3 bench/io/pingpong_asyncio.py "$n" | num)"
    record pp_luv "$(lua5.4 bench/io/pingpong_luv.lua "$n" | num)"
    i=$((i + 1))
  done
  report "ping-pong, $n round trips, us per round trip" pp_weft pp_asyncio pp_luv
}

bulk() {
  bytes=${BULK_BYTES:-1073741824}
  i=0
  while [ "$i" -lt "${BULK_PAIRS:-3}" ]; do
    record bulk_weft "$(lua5.4 bench/io/bulk_weft.lua "$bytes" | num)"
    record bulk_luv "$(lua5.4 bench/io/bulk_luv.lua "$bytes" | num)"
    record bulk_asyncio "$(python3 bench/io/bulk_asyncio.py "$bytes" | num)"
    i=$((i + 1))
  done
  report "bulk echo, $bytes bytes in 64 KiB writes, seconds" bulk_weft bulk_luv bulk_asyncio
}

# wall-clock seconds of a whole command (curl has no timer of its own)
wall() {
  t0=$(now)
  "$@" > /dev/null 2>&1
  echo "$(now) - $t0" | bc -l
}

http() {
  n=${HTTP_N:-10000}
  port=$(bench/io/nginx.sh start "$tmp")
  url="http://127.0.0.1:$port/1k.txt"
  awk -v u="$url" -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "url = \"%s\"\noutput = \"/dev/null\"\n", u }' \
    > "$tmp/curl.cfg"
  i=0
  while [ "$i" -lt "$PAIRS" ]; do
    record http_weft "$(wall lua5.4 bench/io/http_weft.lua "$url" "$n" 50)"
    record http_curl "$(wall curl -s --parallel --parallel-max 50 -K "$tmp/curl.cfg")"
    record http_asyncio "$(wall python3 bench/io/http_asyncio.py "$url" "$n" 50)"
    i=$((i + 1))
  done
  bench/io/nginx.sh stop "$tmp"
  report "HTTP, $n GETs of 1 KiB from nginx, 50 at a time, wall seconds" http_weft http_curl http_asyncio
}

files() {
  n=${FILES_N:-10000}
  mkdir -p "$tmp/files"
  lua5.4 -e "local b = ('y'):rep(1024) for i = 1, $n do local f = io.open('$tmp/files/f' .. i, 'wb') f:write(b) f:close() end"
  i=0
  while [ "$i" -lt "$PAIRS" ]; do
    record files_weft "$(lua5.4 bench/io/files_weft.lua "$tmp/files" "$n" 64 | num)"
    record files_luv "$(lua5.4 bench/io/files_luv.lua "$tmp/files" "$n" 64 | num)"
    record files_sync "$(lua5.4 bench/io/files_sync.lua "$tmp/files" "$n" | num)"
    i=$((i + 1))
  done
  report "files, $n x 1 KiB, 64 tasks, seconds" files_weft files_luv files_sync
}

threads() {
  i=0
  while [ "$i" -lt 3 ]; do
    lua5.4 bench/io/threads_weft.lua 8
    i=$((i + 1))
  done
}

lines() {
  lua5.4 bench/io/lines.lua "${LINES_N:-200000}" "$PAIRS"
}

case "$what" in
  all) pingpong; bulk; http; files; threads; lines ;;
  pingpong|bulk|http|files|threads|lines) "$what" ;;
  *) echo "usage: $0 [all|pingpong|bulk|http|files|threads|lines]" >&2; exit 2 ;;
esac
