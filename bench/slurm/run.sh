#!/bin/sh
# N jobs of `true` (default 200) on the one-node Slurm of scripts/slurm-local.sh, three ways:
#   weft      `weft run --executor slurm -j J` on a Weftfile of N tasks `weft.sh "true"`
#             (at the default --slurm-rate 10 and at --slurm-rate 1000)
#   sbatch    a plain loop of `sbatch --wait --wrap true`, one after the other (SBATCH_N jobs,
#             default 50: sbatch --wait checks every 2 s, so 200 would take 400 s)
#   srun      a plain loop of `srun true`, one after the other (N jobs)
#   floor     N `sbatch --wrap true` at once, then squeue until empty: the cluster's own pace
# For each: wall time, time per job, the Slurm commands issued per job (weft: from its
# commands.log, and per task against the issue's target of 1 sbatch + 1/50 squeue + 0
# scancel; the loops: one command per job) and the controller's RPCs per job by type,
# from `sdiag` (reset before each run): what the load on slurmctld really is.
#   bench/slurm/run.sh          (as root; N=200 J=50 SBATCH_N=50)
# Starts the cluster if it is not up, and stops it again in that case.
set -eu
cd "$(dirname "$0")/../.."
root=$(pwd)
N=${N:-200}
J=${J:-50}
SBATCH_N=${SBATCH_N:-50}
weft=$root/build/weft

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/slurm: skipped (needs root to start slurmd)"
  exit 0
fi
[ -x "$weft" ] || { echo "bench/slurm: build weft first (make all)" >&2; exit 1; }
was_up=no
scripts/slurm-local.sh status >/dev/null 2>&1 && was_up=yes
conf=$(scripts/slurm-local.sh start | sed -n 's/^SLURM_CONF=//p')
export SLURM_CONF="$conf"
work=$(mktemp -d /tmp/weft-slurm-bench.XXXXXX)
cleanup() {
  rm -rf "$work"
  [ "$was_up" = yes ] || scripts/slurm-local.sh stop
}
trap cleanup EXIT

now() { date +%s.%N; }

# The controller's RPC counts since the last reset, "TYPE=COUNT" a line, biggest first.
rpcs() {
  sdiag | awk '/by message type/ {on = 1; next} /by user/ {on = 0}
    on && /count:/ && !/REQUEST_STATS_INFO|RESET_STATISTICS/ {
      match($0, /count:[0-9]+/); print $1 "=" substr($0, RSTART + 6, RLENGTH - 6) }' \
    | sort -t= -k2 -nr
}

# Prints one result line: NAME SECONDS JOBS COMMANDS-PER-JOB, then the RPCs per job.
report() {
  name=$1 secs=$2 jobs=$3 cmds=$4
  total=$(rpcs | awk -F= '{s += $2} END {print s + 0}')
  printf '%-34s %8.1f s  %6.3f s/job  %s Slurm commands/job  %.2f RPCs/job\n' "$name" "$secs" \
    "$(echo "$secs / $jobs" | bc -l)" "$cmds" "$(echo "$total / $jobs" | bc -l)"
  rpcs | head -n 5 | while IFS== read -r type count; do
    printf '      %-40s %.3f/job\n' "$type" "$(echo "$count / $jobs" | bc -l)"
  done
}

cat >"$work/Weftfile.lua" <<EOF
local all = {}
for i = 1, $N do
  all[i] = "t" .. i
  task(all[i]) { function() weft.sh "true" end }
end
default(all)
EOF

echo "N=$N jobs of true, weft -j $J; sbatch --wait loop: $SBATCH_N jobs; srun loop: $N jobs"
for rate in 10 1000; do
  rm -rf "$work/.weft"
  sdiag --reset >/dev/null
  t0=$(now)
  (cd "$work" && CI=true "$weft" run --executor slurm -j "$J" --slurm-rate "$rate" >/dev/null 2>"$work/err")
  t1=$(now)
  tail -n 1 "$work/err" | grep -q '^slurm:' || grep '^slurm:' "$work/err" >&2
  log=$(ls "$work"/.weft/slurm/*/commands.log)
  sb=$(grep -c ' sbatch ' "$log" || true); sq=$(grep -c ' squeue ' "$log" || true)
  sc=$(grep -c ' scancel ' "$log" || true)
  report "weft --slurm-rate $rate" "$(echo "$t1 - $t0" | bc -l)" "$N" \
    "$(echo "($sb + $sq + $sc) / $N" | bc -l | xargs printf '%.3f') (sbatch $sb, squeue $sq, scancel $sc)"
  # the issue's target per task on success: at most 1 sbatch + 1/50 of a poll + 0 scancel
  met=no
  [ "$sb" -le "$N" ] && [ "$((sq * 50))" -le "$N" ] && [ "$sc" -eq 0 ] && met=yes
  printf '      per task: %.3f sbatch + %.3f squeue + %.3f scancel (target 1 + 0.02 + 0: %s)\n' \
    "$(echo "$sb / $N" | bc -l)" "$(echo "$sq / $N" | bc -l)" "$(echo "$sc / $N" | bc -l)" "$met"
done

# the floor: how fast this cluster drains N batch jobs submitted all at once, nobody waiting
sdiag --reset >/dev/null
t0=$(now)
i=0
while [ "$i" -lt "$N" ]; do
  sbatch --quiet --output=/dev/null --wrap true
  i=$((i + 1))
done
while [ -n "$(squeue --noheader --states=PD,R,CG)" ]; do sleep 0.2; done
t1=$(now)
report "floor: all sbatch, then squeue empty" "$(echo "$t1 - $t0" | bc -l)" "$N" "1 (+ polls)"

sdiag --reset >/dev/null
t0=$(now)
i=0
while [ "$i" -lt "$SBATCH_N" ]; do
  sbatch --wait --quiet --output=/dev/null --wrap true
  i=$((i + 1))
done
t1=$(now)
report "sbatch --wait loop" "$(echo "$t1 - $t0" | bc -l)" "$SBATCH_N" "1"

sdiag --reset >/dev/null
t0=$(now)
i=0
while [ "$i" -lt "$N" ]; do
  srun --quiet true
  i=$((i + 1))
done
t1=$(now)
report "srun loop" "$(echo "$t1 - $t0" | bc -l)" "$N" "1"
