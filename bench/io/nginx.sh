#!/bin/sh
# nginx for the HTTP benchmark: `nginx.sh start DIR` serves DIR/www (with a
# 1 KiB file 1k.txt) on a free 127.0.0.1 port and prints the port;
# `nginx.sh stop DIR` stops it by its pid file.
set -eu
dir=$2
case "$1" in
start)
  mkdir -p "$dir/www" "$dir/tmp"
  chmod 755 "$dir"
  head -c 1024 /dev/zero | tr '\0' 'x' > "$dir/www/1k.txt"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/nginx.conf" <<CONF
daemon on;
pid $dir/nginx.pid;
error_log $dir/error.log;
worker_processes 1;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/tmp;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; root $dir/www; }
}
CONF
  nginx -q -c "$dir/nginx.conf" -p "$dir"
  i=0
  while ! curl -sf "http://127.0.0.1:$port/1k.txt" -o /dev/null; do
    i=$((i + 1)); [ "$i" -lt 200 ] || exit 1; sleep 0.02
  done
  echo "$port"
  ;;
stop)
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  ;;
esac
