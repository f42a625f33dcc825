#!/usr/bin/env bash
# Builds Valetkey, starts it on a free loopback port with a throw-away data dir,
# and runs the @airweave/sdk compatibility test (test.mjs) against it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

if [[ ! -d node_modules/@airweave/sdk ]]; then
  npm ci --no-audit --no-fund
fi

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

(cd "$root" && go build -o "$tmp/valetkey" ./cmd/valetkey)

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
  else
    echo $((18080 + RANDOM % 2000))
  fi
}
port="$(free_port)"
api_key="vk_compat_$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
url="http://127.0.0.1:${port}"

mkdir -p "$tmp/data"
VALETKEY_ADDR="127.0.0.1:${port}" \
VALETKEY_DATA_DIR="$tmp/data" \
VALETKEY_BOOTSTRAP_API_KEY="$api_key" \
VALETKEY_LOG_LEVEL=info \
  "$tmp/valetkey" >"$tmp/server.log" 2>&1 &
server_pid=$!

ready=""
for _ in $(seq 1 300); do # 300 x 0.1 s = 30 s
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "valetkey exited before becoming ready; log:" >&2
    cat "$tmp/server.log" >&2 || true
    exit 1
  fi
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url/readyz" || true)"
  if [[ "$code" == "200" ]]; then
    ready=1
    break
  fi
  sleep 0.1
done
if [[ -z "$ready" ]]; then
  echo "valetkey did not answer 200 on /readyz within 30 s; log:" >&2
  cat "$tmp/server.log" >&2 || true
  exit 1
fi

status=0
VALETKEY_URL="$url" VALETKEY_API_KEY="$api_key" node --test test.mjs || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- valetkey server log (last 100 lines) ---" >&2
  tail -n 100 "$tmp/server.log" >&2 || true
fi
exit "$status"
