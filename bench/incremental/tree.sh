# Sourced by run.sh and noop.sh (from the repository root): a copy of weft's
# C sources in a fresh $W/src with build.ninja and bench.mk beside them
# (gen.lua), the flags weft's Weftfile is given, and the helpers both use.
W=$(mktemp -d "${TMPDIR:-/tmp}/weft-bench-incr.XXXXXX")
trap 'rm -rf "$W"' EXIT
SRC=$W/src
mkdir -p "$SRC/examples/build" "$SRC/scripts"
cp -r host stdlib "$SRC/"
cp scripts/embed.lua "$SRC/scripts/"
cp examples/build/Weftfile.lua "$SRC/examples/build/"
lua5.4 bench/incremental/gen.lua build "$SRC" "$W/out-make" "$W/out-ninja"

# the flags are passed in, as gen.lua bakes them into the peers' files
INCLUDES=$(pkg-config --cflags lua5.4 libuv)
LIBS="$(pkg-config --libs lua5.4 libuv) -llua5.4-luv -llua5.4-cjson -ldl -lm -lxxhash -lsqlite3 -ledit"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ms() { awk -v u="$1" 'BEGIN {printf "%.1f ms", u/1000}'; }
