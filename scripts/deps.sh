#!/bin/sh
# Install the Debian packages weft needs to build, test and benchmark, if any is missing.
# As root it runs apt-get; otherwise it prints the exact command to run. Idempotent and quiet
# when everything is already there.
#   scripts/deps.sh            build + test packages
#   scripts/deps.sh bench      also the peers the benchmarks compare with
set -eu

# build and test: compilers and libraries, busted, and the real peers specs
# start (sh, tmux for terminal specs, nginx for HTTP specs)
# slurm-wlm + munge: the real one-node Slurm of spec/slurm_spec.lua (scripts/slurm-local.sh)
pkgs="gcc make pkg-config lua5.4 liblua5.4-dev libuv1-dev lua-busted lua-luv lua-luv-dev
lua-cjson lua-cjson-dev libcurl4-openssl-dev libedit-dev python3 procps tmux nginx-light
ca-certificates luarocks bc
libxxhash-dev libsqlite3-dev
slurm-wlm munge"
# the HTML report spec renders the page in a real headless browser; the grouped-output
# spec measures its peak memory with /usr/bin/time
pkgs="$pkgs chromium time"
case "${1:-}" in
  bench) pkgs="$pkgs ninja-build hyperfine time" ;;
  fuzz) pkgs="$pkgs clang libclang-rt-14-dev" ;;
esac

missing=""
for p in $pkgs; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "weft needs these Debian packages:$missing" >&2
  echo "run: sudo apt-get install -y$missing" >&2
  exit 1
fi
echo "deps.sh: installing$missing" >&2
# munge's and slurm's daemons run as their own users; with a root directory only root may enter
# (seen in chroots unpacked from a tar of a mktemp -d directory) munge's postinst fails and apt
# aborts. No Debian system is meant to have it: say so and give / its normal mode.
case "$(stat -c %a /)" in
  *[1357]) ;;
  *) echo "deps.sh: / is mode $(stat -c %a /), so no service user can enter it; setting 755" >&2
     chmod 755 / ;;
esac
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
