#!/bin/sh
# Graph benchmarks: weft.run_graph / weft.sorter against their peers, in
# alternating pairs (weft, peer, weft, peer, ...), REPS pairs each; prints
# medians and ratios. Results and commands: bench/graph/RESULTS.md.
#   bench/graph/run.sh            (WEFT_BUILD=build, REPS=3)
set -eu
cd "$(dirname "$0")/../.."
build=${WEFT_BUILD:-build}
weft="$build/weft"
reps=${REPS:-3}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# pair NAME "weft command" "peer command": alternating runs, medians, ratio
pair() {
  name=$1; wcmd=$2; pcmd=$3
  : > /tmp/bench_w.$$; : > /tmp/bench_p.$$
  i=0
  while [ $i -lt "$reps" ]; do
    sh -c "$wcmd" | awk '{print $1}' >> /tmp/bench_w.$$
    sh -c "$pcmd" | awk '{print $1}' >> /tmp/bench_p.$$
    i=$((i + 1))
  done
  w=$(median < /tmp/bench_w.$$); p=$(median < /tmp/bench_p.$$)
  printf '%-28s weft %8.4f s   peer %8.4f s   peer/weft %6.1fx\n' "$name" "$w" "$p" \
    "$(echo "$p $w" | awk '{print $1 / $2}')"
  rm -f /tmp/bench_w.$$ /tmp/bench_p.$$
  echo "$w" > "/tmp/bench_last_w.$$"
}

echo "== run_graph vs Python run_dag (graphlib + TaskGroup + asyncio.wait FIRST_COMPLETED)"
pair "layered 100k" "$weft bench/graph/weft_run_graph.lua layered 100000" \
  "python3 bench/graph/peer_run_dag.py layered 100000"
pair "wide 100k" "$weft bench/graph/weft_run_graph.lua wide 100000" \
  "python3 bench/graph/peer_run_dag.py wide 100000"
w100=$(cat /tmp/bench_last_w.$$)
pair "wide 400k" "$weft bench/graph/weft_run_graph.lua wide 400000" \
  "python3 bench/graph/peer_run_dag.py wide 400000"
w400=$(cat /tmp/bench_last_w.$$)
echo "wide 400k / wide 100k time ratio (weft): $(echo "$w400 $w100" | awk '{printf "%.2f", $1 / $2}')"
pair "wide 5000 limit=2" "$weft bench/graph/weft_run_graph.lua wide 5000 2" \
  "python3 bench/graph/peer_run_dag.py wide 5000 2"

echo "== run_graph vs a pure-Lua Kahn scheduler on luv (lua5.4)"
pair "kahn layered 100k" "$weft bench/graph/weft_run_graph.lua layered 100000" \
  "lua5.4 bench/graph/kahn_luv.lua layered 100000"
pair "kahn wide 100k" "$weft bench/graph/weft_run_graph.lua wide 100000" \
  "lua5.4 bench/graph/kahn_luv.lua wide 100000"

echo "== hand-rolled approaches vs run_graph (layered, width 100, 3 deps; seconds, median of $reps)"
for n in 1000 4000 16000; do
  line="N=$n"
  for a in run_graph events condition memo; do
    : > /tmp/bench_a.$$
    i=0
    while [ $i -lt "$reps" ]; do
      timeout 120 "$weft" bench/graph/approaches.lua $a $n >> /tmp/bench_a.$$ || echo 120 >> /tmp/bench_a.$$
      i=$((i + 1))
    done
    line="$line  $a $(median < /tmp/bench_a.$$)"
  done
  echo "$line"
done
rm -f /tmp/bench_a.$$

for mode in add graph; do
  echo "== sorter static_order, 1M nodes / 3M edges, built with $mode (seconds, VmHWM growth MB)"
  : > /tmp/bench_sw.$$; : > /tmp/bench_sp.$$
  i=0
  while [ $i -lt "$reps" ]; do
    "$weft" bench/graph/static_order.lua 1000000 $mode >> /tmp/bench_sw.$$
    python3 bench/graph/peer_static_order.py 1000000 $mode >> /tmp/bench_sp.$$
    i=$((i + 1))
  done
  wt=$(awk '{print $1}' /tmp/bench_sw.$$ | median); wm=$(awk '{print $2}' /tmp/bench_sw.$$ | median)
  pt=$(awk '{print $1}' /tmp/bench_sp.$$ | median); pm=$(awk '{print $2}' /tmp/bench_sp.$$ | median)
  echo "static_order 1M ($mode): weft $wt s $wm MB; graphlib $pt s $pm MB; time ratio $(echo "$pt $wt" | awk '{printf "%.1f", $1/$2}')x, memory ratio $(echo "$wm $pm" | awk '{printf "%.2f", $1/$2}')"
done
/usr/bin/time -f "weft whole process (add): %M KB max RSS, %e s" "$weft" bench/graph/static_order.lua 1000000 > /dev/null
/usr/bin/time -f "python whole process (add): %M KB max RSS, %e s" python3 bench/graph/peer_static_order.py 1000000 > /dev/null
rm -f /tmp/bench_sw.$$ /tmp/bench_sp.$$ /tmp/bench_last_w.$$
