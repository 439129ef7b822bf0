#!/usr/bin/env bash
# Two real remote-cache servers on 127.0.0.1, for `make test-remote` and bench/remote.sh:
#   - an S3-compatible service: moto in server mode (PyPI `moto[server]`, in a venv under $dir),
#     with bucket `repro` created;
#   - an HTTP/WebDAV server: nginx with its DAV module (Debian `nginx-light`), serving $dir/webdav.
# Everything lives under $REMOTE_LOCAL (default target/remote-local), runs as the current user.
#   scripts/remote-local.sh start   install what is missing, start both, wait until they answer
#   scripts/remote-local.sh stop    stop what this script started
#   scripts/remote-local.sh env     print the exports the tests and clients need
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${REMOTE_LOCAL:-$root/target/remote-local}"
s3_port="${REMOTE_LOCAL_S3_PORT:-9321}"
dav_port="${REMOTE_LOCAL_DAV_PORT:-9322}"
venv="$dir/venv"

install() {
  if ! command -v nginx >/dev/null; then
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light >/dev/null
  fi
  if [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "moto[server]==5.2.1"
  fi
}

write_nginx_conf() {
  mkdir -p "$dir"/{webdav,nginx-tmp,log}
  local user_line=""
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  cat > "$dir/nginx.conf" <<CONF
$user_line
daemon on;
pid $dir/nginx.pid;
error_log $dir/log/nginx-error.log warn;
events { worker_connections 512; }
http {
  access_log $dir/log/nginx-access.log;
  client_body_temp_path $dir/nginx-tmp/body;
  proxy_temp_path $dir/nginx-tmp/proxy;
  fastcgi_temp_path $dir/nginx-tmp/fastcgi;
  uwsgi_temp_path $dir/nginx-tmp/uwsgi;
  scgi_temp_path $dir/nginx-tmp/scgi;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:$dav_port;
    root $dir/webdav;
    location / {
      dav_methods PUT DELETE MKCOL COPY MOVE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }
  }
}
CONF
}

wait_for() {  # URL
  for _ in $(seq 1 100); do
    python3 - "$1" <<'PY' && return 0
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass  # it answers
except Exception:
    sys.exit(1)
PY
    sleep 0.1
  done
  echo "$1 did not answer; logs in $dir/log" >&2
  return 1
}

start() {
  install
  stop >/dev/null 2>&1 || true
  write_nginx_conf
  nginx -c "$dir/nginx.conf" -p "$dir"
  nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" > "$dir/log/moto.log" 2>&1 &
  echo $! > "$dir/moto.pid"
  wait_for "http://127.0.0.1:$dav_port/"
  wait_for "http://127.0.0.1:$s3_port/"
  python3 - "http://127.0.0.1:$s3_port/repro" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="PUT"), timeout=5)
PY
  echo "S3 (moto) on 127.0.0.1:$s3_port, bucket repro; WebDAV (nginx) on 127.0.0.1:$dav_port, root $dir/webdav"
}

stop() {
  if [ -s "$dir/nginx.pid" ]; then nginx -c "$dir/nginx.conf" -p "$dir" -s stop || true; fi
  if [ -s "$dir/moto.pid" ]; then kill "$(cat "$dir/moto.pid")" 2>/dev/null || true; rm -f "$dir/moto.pid"; fi
}

env_exports() {
  cat <<ENV
export REPRO_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export REPRO_TEST_S3_BUCKET=repro
export REPRO_TEST_WEBDAV_URL=http://127.0.0.1:$dav_port
export REPRO_TEST_WEBDAV_ROOT=$dir/webdav
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
ENV
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) env_exports ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
