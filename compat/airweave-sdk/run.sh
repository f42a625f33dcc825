#!/usr/bin/env bash
# Builds Valetkey, starts `valetkey serve` on a free loopback port with a
# throw-away data dir, and runs the @airweave/sdk compatibility test (test.mjs)
# against it. Works from any directory; exits non-zero on any failure and
# prints the server's log when something goes wrong. The server is always
# stopped on exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

if [[ ! -d node_modules/@airweave/sdk ]]; then
  npm ci --no-audit --no-fund
fi

tmp="$(mktemp -d)"
server_pid=""
status=1
show_log() {
  if [[ -f "$tmp/server.log" ]]; then
    echo "--- valetkey server log (last 200 lines) ---" >&2
    tail -n 200 "$tmp/server.log" >&2 || true
    echo "--- end of server log ---" >&2
  fi
}
cleanup() {
  local rc=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do # up to 5 s for a graceful shutdown
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && "${log_shown:-}" != 1 ]]; then
    show_log
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

fail() {
  echo "run.sh: $*" >&2
  show_log
  log_shown=1
  exit 1
}

(cd "$root" && go build -o "$tmp/valetkey" ./cmd/valetkey)

# Port 0: the kernel picks a free port at bind time (no race with other
# processes); the bound address is read back from the "listening" log line.
api_key="vk_compat_$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$tmp/data"
VALETKEY_ADDR="127.0.0.1:0" \
VALETKEY_DATA_DIR="$tmp/data" \
VALETKEY_BOOTSTRAP_API_KEY="$api_key" \
VALETKEY_LOG_LEVEL=info \
VALETKEY_LOG_FORMAT=json \
  "$tmp/valetkey" serve >"$tmp/server.log" 2>&1 </dev/null &
server_pid=$!

addr=""
for _ in $(seq 1 300); do # 300 x 0.1 s = 30 s
  kill -0 "$server_pid" 2>/dev/null || fail "valetkey exited before listening"
  addr="$(sed -n 's/.*"msg":"listening".*"addr":"\([^"]*\)".*/\1/p' "$tmp/server.log" | head -n 1)"
  [[ -n "$addr" ]] && break
  sleep 0.1
done
[[ -n "$addr" ]] || fail "valetkey logged no \"listening\" line within 30 s"
url="http://${addr}"

ready=""
for _ in $(seq 1 100); do # 100 x 0.1 s = 10 s
  kill -0 "$server_pid" 2>/dev/null || fail "valetkey exited before becoming ready"
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url/readyz" || true)"
  if [[ "$code" == "200" ]]; then
    ready=1
    break
  fi
  sleep 0.1
done
[[ -n "$ready" ]] || fail "valetkey did not answer 200 on $url/readyz within 10 s (last status: ${code:-none})"
echo "valetkey listening on $url" >&2

status=0
VALETKEY_URL="$url" VALETKEY_API_KEY="$api_key" \
  timeout --kill-after=5 90 node --test --test-timeout=60000 test.mjs || status=$?
if [[ $status -ne 0 ]]; then
  [[ $status -eq 124 ]] && echo "run.sh: node --test timed out after 90 s" >&2
  show_log
  log_shown=1
fi
exit "$status"
