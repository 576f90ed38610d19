# Shared by the bench/pipeline scripts (sourced): timing and medians.
now() { date +%s.%N; }
time_one() {   # prints seconds taken by "$@"
  s=$(now); "$@" > /dev/null 2>&1; e=$(now)
  echo "$e - $s" | bc -l
}
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
