#!/bin/sh
# No-op runs only (issue 13's two no-op targets), alternating rounds of
# weft, [an older weft,] ninja and make on examples/build (weft's own C
# sources) and weft, [older weft,] ninja on the synthetic NTASKS/NFILES
# pipeline; medians of ROUNDS; the load average before and after.
#   ROUNDS=21 [WEFT_BASE=/path/to/older/weft] bench/incremental/noop.sh
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WEFT=${WEFT:-$ROOT/build/weft}
BASE=${WEFT_BASE:-}
ROUNDS=${ROUNDS:-21}
NTASKS=${NTASKS:-2000}
NFILES=${NFILES:-10000}
. bench/incremental/tree.sh
mkdir -p "$SRC/examples/build-base"   # the older weft's state lives beside its own copy
cp examples/build/Weftfile.lua "$SRC/examples/build-base/"
# each weft build keeps its own output and state (state versions differ)
weft_build() {   # BIN OUTDIR
  dir=build
  [ "$1" = "$WEFT" ] || dir=build-base
  "$1" run -f "$SRC/examples/$dir/Weftfile.lua" -j2 "OUT=$2" "INCLUDES=$INCLUDES" "LIBS=$LIBS"
}
usec() {
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000))
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
weft_build "$WEFT" "$W/out-new" >/dev/null 2>&1
[ -z "$BASE" ] || weft_build "$BASE" "$W/out-base" >/dev/null 2>&1
ninja -C "$SRC" -j2 >/dev/null
make --no-print-directory -C "$SRC" -f bench.mk -j2 >/dev/null
sleep 1.2   # past the racy window: the first no-op records the stats once
weft_build "$WEFT" "$W/out-new" >/dev/null 2>&1
[ -z "$BASE" ] || weft_build "$BASE" "$W/out-base" >/dev/null 2>&1
: >"$W/t.new"; : >"$W/t.base"; : >"$W/t.ninja"; : >"$W/t.make"
i=0
while [ $i -lt "$ROUNDS" ]; do
  i=$((i + 1))
  usec weft_build "$WEFT" "$W/out-new" >>"$W/t.new"
  [ -z "$BASE" ] || usec weft_build "$BASE" "$W/out-base" >>"$W/t.base"
  usec ninja -C "$SRC" -j2 >>"$W/t.ninja"
  usec make --no-print-directory -C "$SRC" -f bench.mk -j2 >>"$W/t.make"
done
tn=$(median <"$W/t.new"); tj=$(median <"$W/t.ninja"); tm=$(median <"$W/t.make")
echo "examples/build no-op: weft $(ms "$tn"), ninja $(ms "$tj"), make $(ms "$tm");" \
  "weft/ninja $(ratio "$tn" "$tj"), weft/make $(ratio "$tn" "$tm")"
if [ -n "$BASE" ]; then
  tb=$(median <"$W/t.base")
  echo "  older weft $(ms "$tb"), older/ninja $(ratio "$tb" "$tj")"
fi

S=$W/synth
lua5.4 bench/incremental/gen.lua synth "$S" "$NTASKS" "$NFILES"
cp -r "$S" "$W/synth-base"
(cd "$S" && "$WEFT" run -j2 >/dev/null 2>&1)
[ -z "$BASE" ] || (cd "$W/synth-base" && "$BASE" run -j2 >/dev/null 2>&1)
ninja -C "$S" -j2 >/dev/null
sleep 1.2
(cd "$S" && "$WEFT" run -j2 >/dev/null 2>&1)
[ -z "$BASE" ] || (cd "$W/synth-base" && "$BASE" run -j2 >/dev/null 2>&1)
: >"$W/s.new"; : >"$W/s.base"; : >"$W/s.ninja"
i=0
while [ $i -lt "$(( (ROUNDS + 2) / 3 ))" ]; do
  i=$((i + 1))
  (cd "$S" && usec "$WEFT" run -j2) >>"$W/s.new"
  [ -z "$BASE" ] || (cd "$W/synth-base" && usec "$BASE" run -j2) >>"$W/s.base"
  usec ninja -C "$S" -j2 >>"$W/s.ninja"
done
tn=$(median <"$W/s.new"); tj=$(median <"$W/s.ninja")
echo "synthetic $NTASKS tasks / $NFILES files no-op: weft $(ms "$tn"), ninja $(ms "$tj");" \
  "weft/ninja $(ratio "$tn" "$tj")"
[ -z "$BASE" ] || echo "  older weft $(ms "$(median <"$W/s.base")")"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
