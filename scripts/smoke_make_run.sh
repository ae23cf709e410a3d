#!/usr/bin/env bash
# `make run` from a fresh clone reaches a healthy /healthz/, seeds the demo and serves the phone page.
#
#   scripts/smoke_make_run.sh [SOURCE]   SOURCE: a git URL or path to clone (default: this repository's HEAD)
#   SMOKE_WORKTREE=1 scripts/smoke_make_run.sh   copy the working tree (tracked and untracked, not ignored)
#                                                instead of cloning HEAD: check uncommitted work
#   PORT=8123 / SMOKE_TIMEOUT=900                 the port to use (default: a free one) / seconds to wait
#   ROUTEROS_SIMULATOR_PORT=18728                 the RouterOS simulator's port (default: a free one)
#
# Runs on the embedded defaults whatever the caller's environment says (no DATABASE_URL, REDIS_URL...).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
source="${1:-$repo}"
workdir="$(mktemp -d)"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="${PORT:-$(free_port)}"
router_port="${ROUTEROS_SIMULATOR_PORT:-$(free_port)}"  # not the fixed default: a developer's demo may hold it
log="$workdir/make-run.log"
pid=""

cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

fail() {
    echo "smoke_make_run: $1" >&2
    echo "----- make run output (last 60 lines) -----" >&2
    tail -n 60 "$log" >&2 || true
    exit 1
}

clone="$workdir/cloudpilot"
if [ "${SMOKE_WORKTREE:-0}" = "1" ]; then
    mkdir -p "$clone"
    (cd "$repo" && git ls-files --cached --others --exclude-standard -z \
        | while IFS= read -r -d '' file; do [ -e "$file" ] && printf '%s\0' "$file"; done \
        | xargs -0 cp --parents -t "$clone")
else
    git clone --quiet "$source" "$clone"
fi

echo "smoke_make_run: make run in $clone on port $port"
cd "$clone"
# setsid: make, daphne and the rest get their own process group, stopped together by cleanup().
env -u DATABASE_URL -u REDIS_URL -u INTASEND_API_BASE_URL -u INTASEND_CALLBACK_URL -u DEBUG \
    -u SIMULATORS_ENABLED -u SERVER_URL -u HUEY_SQLITE_PATH -u VIRTUAL_ENV \
    ROUTEROS_SIMULATOR_PORT="$router_port" setsid make run PORT="$port" >"$log" 2>&1 < /dev/null &
pid=$!

deadline=$((SECONDS + ${SMOKE_TIMEOUT:-900}))
until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz/" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || fail "make run exited before /healthz/ answered"
    [ "$SECONDS" -lt "$deadline" ] || fail "no healthy /healthz/ within ${SMOKE_TIMEOUT:-900} s"
    sleep 1
done

curl -fsS "http://127.0.0.1:$port/healthz/"; echo
curl -fsS -o /dev/null "http://127.0.0.1:$port/simulator/phone/" || fail "the phone page does not answer"
grep -q "password    demo-pass-2026" "$log" || fail "the demo login was not printed"
key="$(sed -n 's/^  public key  \([0-9a-f]\{32\}\)$/\1/p' "$log" | head -n 1)"
[ -n "$key" ] || fail "the demo public key was not printed"
curl -fsS -o /dev/null "http://127.0.0.1:$port/portal/$key/" || fail "the portal does not answer"
curl -fsS "http://127.0.0.1:$port/simulator/router/state.json" | grep -q '"running": true' \
    || fail "the RouterOS simulator is not running in the server"
grep -q "router id   [0-9]* (127.0.0.1:$router_port)" "$log" || fail "the demo router does not point at the simulator"
echo "smoke_make_run: OK (healthy, demo seeded, phone, portal and router simulator answer)"
