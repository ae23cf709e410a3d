#!/usr/bin/env bash
# The shipped deployment, brought up on this machine and walked through: Debian's nginx running
# deploy/nginx/cloudpilot.conf (TLS with a throwaway self-signed certificate) in front of two daphne
# processes and one Huey worker (with periodic jobs), on PostgreSQL and Redis, with the production
# environment of deploy/cloudpilot.env.example (DEBUG off, simulators off in every CloudPilot process).
# A separate server plays the outside world — IntaSend and the customer's phone, the MikroTik router
# (the app's own simulators, SIMULATORS_ENABLED=1 in that process only): its in-memory state must not
# be split between two load-balanced processes, and production processes never serve it.
# scripts/smoke_production_walk.py then pays through nginx (STK push, webhook, paymentUpdates over
# the proxied WebSocket, the user on the router), kills one daphne and pays again through the other.
#
#   scripts/smoke_production.sh
#   SMOKE_POSTGRES=postgres://postgres@127.0.0.1:5432   where to create the run's database (dropped after)
#   SMOKE_REDIS_DB=15                                   the Redis database it uses (flushed before and after)
#   SMOKE_TIMEOUT=60                                    seconds each process gets to become healthy
#
# Installs Debian's nginx when missing, but runs it only as this script's child (never the service).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
python="$repo/.venv/bin/python"
started_ms=$(($(date +%s%N) / 1000000))
elapsed() { local ms=$(($(date +%s%N) / 1000000 - started_ms)); printf '%3d.%d s' $((ms / 1000)) $((ms % 1000 / 100)); }
say() { echo "smoke_production [$(elapsed)]: $*"; }

if [ ! -x /usr/sbin/nginx ]; then
    say "installing Debian's nginx (run only as this script's child, not as a service)"
    apt-get update -qq && apt-get install -y -qq nginx >/dev/null
fi

workdir="$(mktemp -d)"
chmod 755 "$workdir"  # nginx's workers (not root) read the generated configuration
mkdir "$workdir/metrics"  # PROMETHEUS_MULTIPROC_DIR, shared by the installation's processes
postgres="${SMOKE_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
database="smoke_production"
# This machine's Redis has no password; production's must have one (deploy/cloudpilot.env.example).
redis_url="redis://127.0.0.1:6379/${SMOKE_REDIS_DB:-15}"
health_timeout="${SMOKE_TIMEOUT:-60}"
declare -A pids=()

free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_port=$(free_port); https_port=$(free_port); web1_port=$(free_port); web2_port=$(free_port)
simulator_port=$(free_port); router_port=$(free_port)

cleanup() {
    local status=$?
    for name in "${!pids[@]}"; do
        kill -TERM -- "-${pids[$name]}" 2>/dev/null || true
    done
    for name in "${!pids[@]}"; do
        for _ in $(seq 50); do kill -0 "${pids[$name]}" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-${pids[$name]}" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        for log in "$workdir"/*.log; do
            [ -e "$log" ] || continue
            echo "----- $(basename "$log") (last 40 lines) -----" >&2
            tail -n 40 "$log" >&2
        done
    fi
    psql -q "$postgres/postgres" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    redis-cli -u "$redis_url" flushdb >/dev/null 2>&1 || true
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 143' TERM  # `timeout` in CI: stop everything this script started
trap 'exit 130' INT

fail() {
    echo "smoke_production: FAILED: $1" >&2
    exit 1
}

# --- The production environment ---------------------------------------------------------------
# deploy/cloudpilot.env.example as shipped, with this machine's values for what it leaves to fill
# in (every <...> must be replaced) and the simulators standing in for IntaSend and the router.
say "environment from deploy/cloudpilot.env.example (nginx http :$http_port https :$https_port, daphne :$web1_port :$web2_port)"
secret_key=$("$python" -c 'import secrets; print(secrets.token_urlsafe(50))')
fernet_key=$("$python" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')
metrics_token=$("$python" -c 'import secrets; print(secrets.token_urlsafe(32))')
public="https://127.0.0.1:$https_port"
"$python" - "$repo/deploy/cloudpilot.env.example" "$workdir/cloudpilot.env" <<EOF
import re, sys
source, target = sys.argv[1:]
overrides = {
    "SECRET_KEY": "$secret_key",
    "FIELD_ENCRYPTION_KEY": "$fernet_key",
    "METRICS_TOKEN": "$metrics_token",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DATABASE_URL": "$postgres/$database",
    "REDIS_URL": "$redis_url",
    "CORS_ALLOWED_ORIGINS": "$public",
    "INTASEND_CALLBACK_URL": "$public/payments/webhook/",
    "INTASEND_SUCCESS_URL_BASE": "$public/payment/success/",
    "INTASEND_FAIL_URL_BASE": "$public/payment/failed/",
    # The simulated IntaSend and router live on loopback, outside the production processes.
    "INTASEND_API_BASE_URL": "http://127.0.0.1:$simulator_port/simulator/intasend/api/v1/",
    "ROUTER_ALLOWED_NETWORKS": "127.0.0.1/32",
    "ROUTEROS_SIMULATOR_PORT": "$router_port",
    "STATIC_ROOT": "$workdir/static",
    "PROMETHEUS_MULTIPROC_DIR": "$workdir/metrics",
    "PYTHONUNBUFFERED": "1",
}
values = {}
for line in open(source):
    match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
    if match:
        values[match[1]] = match[2]
values.update(overrides)
for key, value in values.items():
    if "<" in value or " " in value:
        sys.exit(f"{key} is still a placeholder or has a space: {value!r}")
open(target, "w").write("".join(f"{key}={value}\n" for key, value in values.items()))
EOF
mapfile -t production_env <"$workdir/cloudpilot.env"

# One process's environment: nothing from the caller's shell, like a systemd unit's.
run_env() { env -i PATH="$PATH" HOME="$HOME" LANG=C.UTF-8 "${production_env[@]}" "$@"; }

# start NAME [KEY=VALUE...] -- COMMAND...: in the background, in its own process group, logged.
start() {
    local name="$1" vars=()
    shift
    while [ "$1" != "--" ]; do vars+=("$1"); shift; done
    shift
    setsid env -i PATH="$PATH" HOME="$HOME" LANG=C.UTF-8 "${production_env[@]}" "${vars[@]}" "$@" \
        >"$workdir/$name.log" 2>&1 </dev/null &
    pids[$name]=$!
    disown "$!"  # its death (the walk kills one daphne) is checked, not announced by bash
}

wait_healthy() {  # wait_healthy NAME URL [CURL OPTIONS...]
    local name="$1" url="$2" deadline=$((SECONDS + health_timeout))
    shift 2
    until curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; do
        kill -0 "${pids[$name]}" 2>/dev/null || fail "$name exited before $url answered"
        [ "$SECONDS" -lt "$deadline" ] || fail "$name: no answer from $url within $health_timeout s"
        sleep 0.3
    done
    say "$name healthy ($url)"
}

# --- Database, Redis, static files -----------------------------------------------------------------
PGOPTIONS="-c client_min_messages=warning" psql -q "$postgres/postgres" \
    -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database" >/dev/null
redis-cli -u "$redis_url" flushdb >/dev/null
# Side by side: independent, and each is mostly Django starting up.
run_env "$python" manage.py collectstatic --noinput >"$workdir/collectstatic.log" 2>&1 &
collectstatic=$!
run_env "$python" manage.py migrate --noinput >"$workdir/migrate.log" 2>&1 || fail "migrate"
wait "$collectstatic" || fail "collectstatic"
say "database $database migrated, static files collected"

# --- The processes ---------------------------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$workdir/key.pem" -out "$workdir/cert.pem" >/dev/null 2>&1

# The outside world: IntaSend (API, phone), the router; its webhooks go to nginx over HTTPS. Reached
# directly over plain HTTP (no HTTPS redirect), its metrics apart from the installation's.
start simulators SIMULATORS_ENABLED=1 ROUTEROS_SIMULATOR_AUTOSTART=1 PORT="$simulator_port" \
    SERVER_URL="http://127.0.0.1:$simulator_port" REQUESTS_CA_BUNDLE="$workdir/cert.pem" \
    SECURE_SSL_REDIRECT=0 PROMETHEUS_MULTIPROC_DIR= -- \
    "$python" -m daphne -b 127.0.0.1 -p "$simulator_port" project.asgi:application
# deploy/systemd/cloudpilot-web@.service and cloudpilot-worker.service, as they run them.
start web1 -- "$python" -m daphne -b 127.0.0.1 -p "$web1_port" project.asgi:application
start web2 -- "$python" -m daphne -b 127.0.0.1 -p "$web2_port" project.asgi:application
start worker DATABASE_CONN_MAX_AGE=60 -- "$python" manage.py run_huey

# deploy/nginx/cloudpilot.conf as shipped, on this run's ports, certificate and files.
site="$workdir/cloudpilot.conf"
sed -e "s|127.0.0.1:8001|127.0.0.1:$web1_port|" \
    -e "s|127.0.0.1:8002|127.0.0.1:$web2_port|" \
    -e "s|listen 80;|listen 127.0.0.1:$http_port;|" \
    -e "s|listen 443 ssl http2;|listen 127.0.0.1:$https_port ssl http2;|" \
    -e "/listen \[::\]:/d" \
    -e "s|/etc/letsencrypt/live/cloudpilot.example.com/fullchain.pem|$workdir/cert.pem|" \
    -e "s|/etc/letsencrypt/live/cloudpilot.example.com/privkey.pem|$workdir/key.pem|" \
    -e "s|/etc/nginx/cloudpilot-proxy.conf|$workdir/cloudpilot-proxy.conf|" \
    -e "s|server_name cloudpilot.example.com;|server_name 127.0.0.1 localhost;|" \
    -e "s|/var/www/html|$workdir/acme|" \
    deploy/nginx/cloudpilot.conf >"$site"
cp deploy/nginx/cloudpilot-proxy.conf "$workdir/cloudpilot-proxy.conf"
if grep -vE '^\s*#' "$site" | grep -E 'example\.com|:800[12]|/etc/|listen (80|443)'; then
    fail "deploy/nginx/cloudpilot.conf changed shape: the lines above were not adapted (update this script)"
fi
mkdir -p "$workdir/nginx-temp"
cat >"$workdir/nginx.conf" <<EOF
# Debian's nginx.conf reduced to what a site needs, with every path in this run's directory.
worker_processes 1;
pid $workdir/nginx.pid;
error_log $workdir/nginx-error.log warn;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $workdir/nginx-access.log;
    client_body_temp_path $workdir/nginx-temp/body;
    proxy_temp_path $workdir/nginx-temp/proxy;
    fastcgi_temp_path $workdir/nginx-temp/fastcgi;
    uwsgi_temp_path $workdir/nginx-temp/uwsgi;
    scgi_temp_path $workdir/nginx-temp/scgi;
    include $site;
}
EOF
/usr/sbin/nginx -t -q -e "$workdir/nginx-error.log" -p "$workdir" -c "$workdir/nginx.conf" \
    || fail "nginx -t refused the configuration: $(cat "$workdir/nginx-error.log")"
start nginx -- /usr/sbin/nginx -e "$workdir/nginx-error.log" -p "$workdir" -c "$workdir/nginx.conf" -g "daemon off;"

# While the processes start: the shipped environment passes Django's deployment checklist without
# a word, and the demo data is seeded.
run_env "$python" manage.py check --deploy --fail-level WARNING >"$workdir/check-deploy.log" 2>&1 &
check_deploy=$!
# The demo operator, router (the RouterOS simulator's port) and packages; the hotspot is the simulator's.
run_env SIMULATORS_ENABLED=1 SERVER_URL="http://127.0.0.1:$simulator_port" \
    "$python" manage.py seed_demo >"$workdir/seed.log" 2>&1 || fail "seed_demo"
public_key="$(sed -n 's/^  public key  \([0-9a-f]\{32\}\)$/\1/p' "$workdir/seed.log")"
router_id="$(sed -n 's/^  router id   \([0-9]*\) .*/\1/p' "$workdir/seed.log")"
[ -n "$public_key" ] && [ -n "$router_id" ] || fail "seed_demo printed no public key or router id"
say "demo operator seeded (router $router_id)"
wait "$check_deploy" || fail "manage.py check --deploy with deploy/cloudpilot.env.example: $(cat "$workdir/check-deploy.log")"
grep -q "no issues" "$workdir/check-deploy.log" || fail "manage.py check --deploy: $(cat "$workdir/check-deploy.log")"
say "manage.py check --deploy: $(cat "$workdir/check-deploy.log")"

wait_healthy simulators "http://127.0.0.1:$simulator_port/healthz/"
wait_healthy web1 "http://127.0.0.1:$web1_port/healthz/"
wait_healthy web2 "http://127.0.0.1:$web2_port/healthz/"
wait_healthy nginx "$public/healthz/" --cacert "$workdir/cert.pem"
kill -0 "${pids[worker]}" 2>/dev/null || fail "the worker exited"

# --- The walk ----------------------------------------------------------------------------------------
walk_flags=()
grep -q METRICS_TOKEN project/settings.py && walk_flags+=(--require-metrics)
grep -q whitenoise project/settings.py && walk_flags+=(--require-static)
say "walking a payment through nginx"
"$python" scripts/smoke_production_walk.py \
    --base "$public" --plain "http://127.0.0.1:$http_port" --direct "http://127.0.0.1:$web2_port" \
    --simulator "http://127.0.0.1:$simulator_port" \
    --ca "$workdir/cert.pem" --public-key "$public_key" --router-id "$router_id" \
    --metrics-token "$metrics_token" --kill-pid "${pids[web1]}" "${walk_flags[@]}" \
    || fail "the walk through nginx"
kill -0 "${pids[worker]}" 2>/dev/null || fail "the worker died during the walk"
# What went through nginx, from its own logs: both webhooks, the WebSocket upgrades, and the
# killed process found refusing connections (the next one then took the request).
webhooks=$(grep -c '"POST /payments/webhook/ HTTP/1.1" 200' "$workdir/nginx-access.log" || true)
upgrades=$(grep -c '"GET /graphql/ HTTP/1.1" 101' "$workdir/nginx-access.log" || true)
[ "$webhooks" -ge 2 ] || fail "nginx passed $webhooks successful webhooks, not 2"
[ "$upgrades" -ge 2 ] || fail "nginx upgraded $upgrades WebSockets on /graphql/, not 2"
grep -q "Connection refused) while connecting to upstream" "$workdir/nginx-error.log" \
    || fail "nginx never met the killed daphne: the failover was not exercised"
say "nginx logs: $webhooks webhooks, $upgrades WebSocket upgrades, the dead upstream skipped"
say "OK (nginx, TLS, 2 daphne, worker, PostgreSQL, Redis: paid, webhook, subscription, activation; failover)"
