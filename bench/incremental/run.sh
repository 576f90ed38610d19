#!/bin/sh
# Incremental builds (issue 13): weft (examples/build/Weftfile.lua) against
# ninja and make building the same graph with the same commands (written by
# gen.lua), on a copy of this tree in a temporary directory:
#   no-op run, one .c touched, one .c changed, a branch switch (20 files
#   rewritten with new content, then the old, before a run), and a synthetic
#   NTASKS-task, NFILES-file pipeline (no-op) against ninja.
# Times are medians over PAIRS alternating runs (weft, peer, weft, peer...).
#   PAIRS=5 NTASKS=2000 NFILES=10000 JOBS=2 bench/incremental/run.sh
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WEFT=${WEFT:-$ROOT/build/weft}   # WEFT=... measures another build
PAIRS=${PAIRS:-5}
NTASKS=${NTASKS:-2000}
NFILES=${NFILES:-10000}
JOBS=${JOBS:-2}
[ -x "$WEFT" ] || { echo "build weft first (make all)" >&2; exit 1; }
command -v ninja >/dev/null || { echo "ninja missing: scripts/deps.sh bench" >&2; exit 1; }

. bench/incremental/tree.sh
weft_build() {
  "$WEFT" run -f "$SRC/examples/build/Weftfile.lua" -j"$JOBS" "OUT=$W/out-weft" \
    "INCLUDES=$INCLUDES" "LIBS=$LIBS" "$@"
}
ninja_build() { ninja -C "$SRC" -j"$JOBS" "$@"; }
make_build() { make --no-print-directory -C "$SRC" -f bench.mk -j"$JOBS" "$@"; }

# usec CMD...: runs CMD (output to $W/last.out) and prints its wall time in µs
usec() {
  t0=$(date +%s%N)
  "$@" >"$W/last.out" 2>&1 || { cat "$W/last.out" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000))
}
# tasks that ran in the last build: weft counts "done" rows, ninja "[n/m]"
# lines, make the commands it echoed
ran_weft() { grep -cE '^(\[[0-9]+/[0-9]+\] )?done ' "$W/last.out" || true; }
ran_ninja() { grep -c '^\[' "$W/last.out" || true; }
ran_make() { grep -cE '^(cc|cd|rm|/)' "$W/last.out" || true; }

echo "clean builds (-j$JOBS):"
echo "  weft  $(ms "$(usec weft_build)")"
echo "  ninja $(ms "$(usec ninja_build)")"
echo "  make  $(ms "$(usec make_build)")"

# pair NAME SETUP: PAIRS rounds of (SETUP; weft; SETUP; ninja; SETUP; make)
pair() {
  name=$1 setup=$2
  : >"$W/t.weft"; : >"$W/t.ninja"; : >"$W/t.make"
  i=0
  while [ $i -lt "$PAIRS" ]; do
    i=$((i + 1))
    $setup "$i" weft; usec weft_build >>"$W/t.weft"; rw=$(ran_weft)
    $setup "$i" ninja; usec ninja_build >>"$W/t.ninja"; rn=$(ran_ninja)
    $setup "$i" make; usec make_build >>"$W/t.make"; rm_=$(ran_make)
  done
  tw=$(median <"$W/t.weft"); tn=$(median <"$W/t.ninja"); tm=$(median <"$W/t.make")
  echo "$name: weft $(ms "$tw") ($rw tasks ran), ninja $(ms "$tn") ($rn ran)," \
    "make $(ms "$tm") ($rm_ ran); weft/ninja $(awk -v a="$tw" -v b="$tn" 'BEGIN{printf "%.2f", a/b}')," \
    "weft/make $(awk -v a="$tw" -v b="$tm" 'BEGIN{printf "%.2f", a/b}')"
}

nothing() { :; }
touch_one() { touch "$SRC/host/json.c"; }
# a real change: a new definition, so the object file differs every time
change_one() {
  cp "$W/json.c.orig" "$SRC/host/json.c"
  echo "const int weft__bench_change_$1_$2 = $1;" >>"$SRC/host/json.c"
}
cp "$SRC/host/json.c" "$W/json.c.orig"
# a branch switch: 20 files get new content, then their old content back
switch_20() {
  for f in $(ls "$SRC"/host/*.c | head -20); do
    cp "$f" "$f.orig"
    echo "/* another branch */" >>"$f"
    sleep 0.001
    mv "$f.orig" "$f"
    touch "$f"
  done
}

# CPU time (user+sys) of a command: what the machine's load inflates less
# than wall time
# (average of 10 runs under /usr/bin/time, whose 10 ms resolution this divides)
cpu() {
  /usr/bin/time -f "%U %S" sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do "$@" >/dev/null 2>&1; done' \
    sh "$@" 2>&1 | tail -n 1 | awk '{printf "%.1f ms", ($1 + $2) * 100}'
}
pair "no-op" nothing
echo "cpu (user+sys, mean of 10 more no-ops): weft $(cpu "$WEFT" run \
  -f "$SRC/examples/build/Weftfile.lua" "OUT=$W/out-weft" "INCLUDES=$INCLUDES" "LIBS=$LIBS")," \
  "ninja $(cpu ninja -C "$SRC"), make $(cpu make -C "$SRC" -f bench.mk)"
pair "one .c touched" touch_one
pair "one .c changed" change_one
cp "$W/json.c.orig" "$SRC/host/json.c"
weft_build >/dev/null 2>&1; ninja_build >/dev/null 2>&1; make_build >/dev/null 2>&1
pair "branch switch (20 files away and back)" switch_20

# the synthetic pipeline
S=$W/synth
lua5.4 bench/incremental/gen.lua synth "$S" "$NTASKS" "$NFILES"
echo "synthetic $NTASKS tasks / $NFILES files, clean: weft $(ms "$(cd "$S" && usec "$WEFT" run -j"$JOBS")")," \
  "ninja $(ms "$(usec ninja -C "$S" -j"$JOBS")")"
: >"$W/s.weft"; : >"$W/s.ninja"
i=0
while [ $i -lt "$PAIRS" ]; do
  i=$((i + 1))
  (cd "$S" && usec "$WEFT" run -j"$JOBS") >>"$W/s.weft"
  usec ninja -C "$S" -j"$JOBS" >>"$W/s.ninja"
done
tw=$(median <"$W/s.weft"); tn=$(median <"$W/s.ninja")
echo "synthetic no-op: weft $(ms "$tw"), ninja $(ms "$tn"); weft/ninja" \
  "$(awk -v a="$tw" -v b="$tn" 'BEGIN{printf "%.2f", a/b}')"
echo "cpu (user+sys, mean of 10 more synthetic no-ops): weft $(cd "$S" && cpu "$WEFT" run -j"$JOBS"), ninja $(cpu ninja -C "$S")"
