"""CloudPilot settings: twelve-factor, everything from the environment.

Embedded default (no REDIS_URL): SQLite, in-memory channel layer, SQLite task queue, one process.
Scaled out (REDIS_URL set): Redis channel layer, cache and task queue; web and worker processes apart.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Public (it is in this file): good for `make run` and tests only, so refused below for any server
# that answers on a non-loopback name.
DEVELOPMENT_SECRET_KEY = "dev-insecure-cloudpilot-secret-key-change-me-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY") or DEVELOPMENT_SECRET_KEY
# Off unless asked for (`make run` passes DEBUG=1): a forgotten variable must not open the
# simulators, GraphiQL and debug pages in production.
DEBUG = env_bool("DEBUG", False)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1", "testserver")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ",".join(LOOPBACK_HOSTS))
if DEBUG and any(host not in LOOPBACK_HOSTS for host in ALLOWED_HOSTS):
    raise ImproperlyConfigured(
        f"DEBUG is on while ALLOWED_HOSTS names {', '.join(h for h in ALLOWED_HOSTS if h not in LOOPBACK_HOSTS)}: "
        "DEBUG serves simulators and debug pages, so it is for loopback only. Unset DEBUG in production."
    )
if SECRET_KEY == DEVELOPMENT_SECRET_KEY and any(host not in LOOPBACK_HOSTS for host in ALLOWED_HOSTS):
    raise ImproperlyConfigured(
        "SECRET_KEY is not set while ALLOWED_HOSTS names other hosts than loopback: with the built-in "
        "development key anyone could forge sessions, tokens and queued jobs and read stored secrets. "
        "Set SECRET_KEY, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )
# CIDRs of reverse proxies whose X-Forwarded-For names the client (project.client_address) and whose
# X-Forwarded-Proto says whether the client used HTTPS (project.forwarded_proto); from anyone else
# both are ignored, so a client can neither pick the address its throttles count nor pass for HTTPS.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")

# --- HTTPS (docs/production-settings.md) -----------------------------------------------------------
# SECURE_SSL_REDIRECT=1 says clients reach this server over HTTPS (TLS ends at the proxy, or at
# daphne): plain-HTTP requests are redirected, cookies are marked Secure and browsers are told to
# keep to HTTPS (HSTS). Off by default so `make run` and tests work over plain HTTP.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers' health probes and Prometheus scrape over plain HTTP (Django matches the path
# without its leading slash).
SECURE_REDIRECT_EXEMPT = [r"^healthz/$", r"^metrics/?$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES else None
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", SECURE_SSL_REDIRECT)
# Sent on HTTPS responses only; a year once SECURE_SSL_REDIRECT is on. Browsers remember it, so a
# first deployment may start with 300 and raise it once HTTPS is known to work.
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if SECURE_SSL_REDIRECT else 0))
# Only when every subdomain serves HTTPS; preload asks browsers to ship the rule built in.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Origins, besides this server's own, from which the admin's forms may be posted (scheme included).
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "corsheaders",
    "strawberry_django",
    "huey.contrib.djhuey",
    "billing",
    "network",
]

MIDDLEWARE = [
    # First: a preflight is answered before anything else looks at it, and every /graphql/ answer
    # (refusals included) carries the CORS headers a browser needs to read it.
    "corsheaders.middleware.CorsMiddleware",
    # Before anything asks request.is_secure(): X-Forwarded-Proto counts from TRUSTED_PROXIES only.
    "project.forwarded_proto.ForwardedProtoFromTrustedProxiesOnly",
    "project.request_hygiene.RefuseNulInQueryStrings",
    "django.middleware.security.SecurityMiddleware",
    # Right after the redirect to HTTPS: static files skip sessions, CSRF and everything below.
    "project.static_files.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", "sqlite:///db.sqlite3"))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the task consumer both write: WAL + a busy timeout + IMMEDIATE
    # transactions turn "database is locked" errors into short waits.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;",
    }
    # A file, not memory, so live-server tests' child processes share it; one per test run.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")}
else:
    # 0: a connection per request or job. Set it (e.g. 60) for `run_huey` workers: forking a
    # PostgreSQL backend per job cost ~20% of their throughput (tests/benchmarks/README.md). Django
    # advises against persistent connections in ASGI servers, so leave daphne's at 0.
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("DATABASE_CONN_MAX_AGE", 0))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Customer pages (portal, checkout return page, voucher sheet) are in English or Swahili, chosen per
# request by project.i18n; there is no LocaleMiddleware, so the admin and the API stay English.
# Catalogues live in each app's locale/ (`make messages` regenerates them).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("sw", "Kiswahili")]
TIME_ZONE = "Africa/Nairobi"
USE_I18N = True
USE_TZ = True

# --- Static files (docs/production-settings.md) ---------------------------------------------------
# Served by the app itself (WhiteNoise, project.static_files), so `daphne project.asgi:application`
# alone serves a styled admin, the portal and GraphiQL. Outside DEBUG they come from STATIC_ROOT as
# `manage.py collectstatic --noinput` left them: content-hashed names (cached for ten years,
# immutable) with gzip copies. With DEBUG on (`make run`) they are read from the apps' static/
# folders on each request, under their plain names, so edits show up and nothing needs collecting.
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "var" / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# GraphQL requests carry JSON bodies of a few KiB; anything much larger is abuse.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

REDIS_URL = os.environ.get("REDIS_URL") or None

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # No socket timeout: redis-py then wraps every write in asyncio.wait_for, which on
                # Python 3.11 can swallow a task's cancellation, leaving a closed socket's consumer
                # reading Redis forever. TCP keepalive finds a dead Redis instead. (redis-py 8's
                # default pool of 100 also refused bursts of connecting portals.)
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": 2000,
                        "socket_timeout": None,
                        "socket_keepalive": True,
                        # A silent Redis is found dead after ~25 s (idle 10 s, then 3 probes 5 s apart).
                        "socket_keepalive_options": {
                            getattr(socket, name): value
                            for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
                            if hasattr(socket, name)  # Linux names
                        },
                    }
                ],
                "capacity": 1000,
                "group_expiry": 86400,
            },
        }
    }
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
        "persisted_queries": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "apq",
        },
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "project.embedded.InMemoryChannelLayer"}}
    CACHES = {
        # The throttles' counters and turns live here: Django's default of 300 entries let a flood of
        # rotating client addresses evict the ones in use (tests/benchmarks/code_guessing.py). Culling
        # drops the least recently used third, so live throttle state survives below thousands of new
        # keys a second, more than one process serves.
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 100_000}},
        # Apart from the default cache: anyone may register documents, and a flood of them must
        # cull only other documents, never the throttling counters kept in the default cache.
        "persisted_queries": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "persisted-queries",
            "OPTIONS": {"MAX_ENTRIES": 2000},
        },
    }

# --- Secrets at rest -------------------------------------------------------------------------
# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation). Without one, a key is
# derived from SECRET_KEY so the embedded default works out of the box.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEY") or [
    base64.urlsafe_b64encode(hashlib.sha256(("cloudpilot-fields:" + SECRET_KEY).encode()).digest()).decode()
]

# --- Operator authentication (JWT) -----------------------------------------------------------
JWT_SIGNING_KEY = os.environ.get("JWT_SIGNING_KEY", SECRET_KEY)
JWT_ACCESS_TOKEN_SECONDS = int(os.environ.get("JWT_ACCESS_TOKEN_SECONDS", 15 * 60))
JWT_REFRESH_TOKEN_SECONDS = int(os.environ.get("JWT_REFRESH_TOKEN_SECONDS", 7 * 24 * 3600))

# --- GraphQL ---------------------------------------------------------------------------------
GRAPHIQL_ENABLED = env_bool("GRAPHIQL_ENABLED", DEBUG)
GRAPHQL_MAX_DEPTH = int(os.environ.get("GRAPHQL_MAX_DEPTH", 10))
GRAPHQL_MAX_TOKENS = int(os.environ.get("GRAPHQL_MAX_TOKENS", 2000))
GRAPHQL_MAX_ALIASES = int(os.environ.get("GRAPHQL_MAX_ALIASES", 15))
STRAWBERRY_DJANGO = {"PAGINATION_DEFAULT_LIMIT": 20, "PAGINATION_MAX_LIMIT": 100}
# Apollo's automatic persisted queries (project.persisted_queries): documents registered by their
# SHA-256 live this long in their own cache (see CACHES) and are never stored above this size.
PERSISTED_QUERY_TTL_SECONDS = int(os.environ.get("PERSISTED_QUERY_TTL_SECONDS", 24 * 3600))
PERSISTED_QUERY_MAX_BYTES = int(os.environ.get("PERSISTED_QUERY_MAX_BYTES", 16 * 1024))
PERSISTED_QUERY_REGISTRATIONS_PER_HOUR = int(os.environ.get("PERSISTED_QUERY_REGISTRATIONS_PER_HOUR", 100))
# A successful public-key GET (packages, portalInfo) may be cached by browsers and CDNs this long:
# short, since the operator may change prices at any time.
GRAPHQL_PUBLIC_GET_MAX_AGE_SECONDS = int(os.environ.get("GRAPHQL_PUBLIC_GET_MAX_AGE_SECONDS", 60))

# --- Browsers on other origins (docs/frontend-http.md) -----------------------------------------
# CORS_ALLOWED_ORIGINS: comma-separated origins or `*` (the default). No cookie is honoured on
# /graphql/ (bearer tokens and public keys only), so `*` exposes nothing a direct request could
# not, and portals served from each router's hotspot folder (an origin per router) just work.
# The same list is the WebSocket Origin check (project.asgi); GRAPHQL_WS_ALLOWED_ORIGINS is its
# older name. A malformed entry stops the server here.
from project.origins import InvalidOrigins, allowed_origins_from_environment  # noqa: E402

try:
    GRAPHQL_ALLOWED_ORIGINS = allowed_origins_from_environment(os.environ)
except InvalidOrigins as exc:
    raise ImproperlyConfigured(str(exc)) from None
CORS_ALLOW_ALL_ORIGINS = GRAPHQL_ALLOWED_ORIGINS.allow_all
CORS_ALLOWED_ORIGINS = list(GRAPHQL_ALLOWED_ORIGINS.origins)
CORS_URLS_REGEX = r"^/graphql/?$"
CORS_ALLOW_METHODS = ("GET", "POST", "OPTIONS")
from corsheaders.defaults import default_headers  # noqa: E402

# Apollo Client sends its name and version when configured to (client awareness).
CORS_ALLOW_HEADERS = (*default_headers, "x-public-key", "apollographql-client-name", "apollographql-client-version")
CORS_ALLOW_CREDENTIALS = False
# Chromium caps a cached preflight at two hours; longer would only matter to Firefox.
CORS_PREFLIGHT_MAX_AGE = 7200

# --- IntaSend --------------------------------------------------------------------------------
INTASEND_API_BASE_URL = os.environ.get("INTASEND_API_BASE_URL") or None
INTASEND_CALLBACK_URL = os.environ.get("INTASEND_CALLBACK_URL") or None
INTASEND_SUCCESS_URL_BASE = os.environ.get("INTASEND_SUCCESS_URL_BASE") or None
INTASEND_FAIL_URL_BASE = os.environ.get("INTASEND_FAIL_URL_BASE") or None
# Derived from the request when unset, i.e. from the Host header a caller chose (ALLOWED_HOSTS ignores
# the port): a checkout created with `Host: our-name:9999` sent IntaSend's webhook, with the operator's
# challenge, to whoever listens there. So a server on a real name must be told its public URLs.
if any(host not in LOOPBACK_HOSTS for host in ALLOWED_HOSTS) and not (
    INTASEND_CALLBACK_URL and INTASEND_SUCCESS_URL_BASE and INTASEND_FAIL_URL_BASE
):
    raise ImproperlyConfigured(
        "INTASEND_CALLBACK_URL, INTASEND_SUCCESS_URL_BASE and INTASEND_FAIL_URL_BASE must be set when "
        "ALLOWED_HOSTS names other hosts than loopback: derived from a request's Host header they would "
        "send IntaSend's webhooks and returning customers wherever a caller says."
    )
# Checks of IntaSend keys (addPaymentCredential, verifyPaymentCredential) per operator: each asks IntaSend.
CREDENTIAL_CHECK_RATE_LIMIT = int(os.environ.get("CREDENTIAL_CHECK_RATE_LIMIT", 10))
CREDENTIAL_CHECK_RATE_LIMIT_WINDOW_SECONDS = int(os.environ.get("CREDENTIAL_CHECK_RATE_LIMIT_WINDOW_SECONDS", 60))
INTASEND_CONNECT_TIMEOUT = float(os.environ.get("INTASEND_CONNECT_TIMEOUT", 5))
INTASEND_READ_TIMEOUT = float(os.environ.get("INTASEND_READ_TIMEOUT", 15))

# --- Payment rules ---------------------------------------------------------------------------
PAYMENT_PENDING_WINDOW_SECONDS = 120
# A push whose answer never came (timeout, 5xx) blocks a second push this long (API.md "Unknown outcomes").
PAYMENT_UNKNOWN_OUTCOME_WINDOW_SECONDS = 300
# Portal (public-key) callers: at most N payment requests per window, per phone and per client IP.
PAYMENT_RATE_LIMIT_WINDOW_SECONDS = int(os.environ.get("PAYMENT_RATE_LIMIT_WINDOW_SECONDS", 600))
PAYMENT_RATE_LIMIT_PER_PHONE = int(os.environ.get("PAYMENT_RATE_LIMIT_PER_PHONE", 5))
PAYMENT_RATE_LIMIT_PER_IP = int(os.environ.get("PAYMENT_RATE_LIMIT_PER_IP", 30))
# checkPaymentStatus from portals: per payment and client address; within the cache window every
# portal call for a payment gets the last answer instead of another IntaSend call.
PAYMENT_STATUS_CHECKS_PER_MINUTE = int(os.environ.get("PAYMENT_STATUS_CHECKS_PER_MINUTE", 20))
PAYMENT_STATUS_CACHE_SECONDS = int(os.environ.get("PAYMENT_STATUS_CACHE_SECONDS", 5))

# Codes customers type in the portal (redeemCode, accessStatus, renewCode; billing.access). Only failures
# count (CODE_INVALID, CODE_EXPIRED), within CODE_FAILURE_WINDOW_SECONDS. Per (router, device MAC):
# CODE_FAILURES_PER_DEVICE, then RATE_LIMITED. Per router, never a lock (behind a hotspot's NAT every
# customer shares one address, and the router id and public key are public): past CODE_FAILURES_PER_ROUTER
# the router is slowed, every code on it waits for a turn first, CODE_ROUTER_SLOWED_PER_SECOND turns a
# second shared by all processes (through Redis), a turn at most CODE_ROUTER_MAX_WAIT_SECONDS ahead, and one
# client address takes at most CODE_ROUTER_TURNS_PER_ADDRESS turns in that time (else RATE_LIMITED: try again).
# Addresses where a code was good within CODE_GOOD_ADDRESS_SECONDS (the hotspot's NAT address) take their
# turns from a second lane of the same rate, which guessers elsewhere cannot fill.
CODE_FAILURE_WINDOW_SECONDS = int(os.environ.get("CODE_FAILURE_WINDOW_SECONDS", 900))
CODE_FAILURES_PER_DEVICE = int(os.environ.get("CODE_FAILURES_PER_DEVICE", 5))
CODE_FAILURES_PER_ROUTER = int(os.environ.get("CODE_FAILURES_PER_ROUTER", 60))
CODE_ROUTER_SLOWED_PER_SECOND = float(os.environ.get("CODE_ROUTER_SLOWED_PER_SECOND", 1))
CODE_ROUTER_MAX_WAIT_SECONDS = int(os.environ.get("CODE_ROUTER_MAX_WAIT_SECONDS", 20))
CODE_ROUTER_TURNS_PER_ADDRESS = int(os.environ.get("CODE_ROUTER_TURNS_PER_ADDRESS", 10))
CODE_GOOD_ADDRESS_SECONDS = int(os.environ.get("CODE_GOOD_ADDRESS_SECONDS", 24 * 3600))

# Logs (project.logging_config): LOG_FORMAT=plain (default) or json, LOG_LEVEL (default INFO).
from project import logging_config  # noqa: E402

LOGGING_CONFIG = "project.logging_config.configure"
LOGGING = logging_config.build(os.environ)

# /metrics (project.metrics): with a token, `Authorization: Bearer <token>` is required; without one it
# is served only with DEBUG on.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# Personal data (phones, MACs, IPs, raw gateway bodies) of settled payments is erased after this many
# days by a nightly job (billing.retention; Kenya's Data Protection Act 2019).
DATA_RETENTION_DAYS = int(os.environ.get("DATA_RETENTION_DAYS", 365))

# Webhook deliveries that change nothing (not JSON, unknown payment, wrong challenge) stored per sender
# address per hour; further ones are answered and counted (/metrics) but not stored.
WEBHOOK_UNUSED_KEPT_PER_HOUR = int(os.environ.get("WEBHOOK_UNUSED_KEPT_PER_HOUR", 100))

# Sign-in throttling (tokenAuth and the admin login, project/signin.py); only failures count.
# Per (username, client address): LOGIN_FREE_FAILURES, then a delay of 1, 2, 4 ... s after each
# failure, capped. Per client address across usernames: LOGIN_RATE_LIMIT_PER_IP failures a window.
LOGIN_FREE_FAILURES = int(os.environ.get("LOGIN_FREE_FAILURES", 5))
LOGIN_MAX_DELAY_SECONDS = int(os.environ.get("LOGIN_MAX_DELAY_SECONDS", 300))
LOGIN_RATE_LIMIT_WINDOW_SECONDS = int(os.environ.get("LOGIN_RATE_LIMIT_WINDOW_SECONDS", 300))
LOGIN_RATE_LIMIT_PER_IP = int(os.environ.get("LOGIN_RATE_LIMIT_PER_IP", 50))

# --- Background jobs (Huey) ------------------------------------------------------------------
# Embedded: an SQLite queue whose consumer runs inside the server process (project.asgi).
# Scaled out: Redis; `python manage.py run_huey` workers, exactly one with periodic jobs on.
# Entries are signed with a key derived from SECRET_KEY; unsigned or forged ones are dropped and
# logged, never unpickled (project.task_queue). Web and workers must share SECRET_KEY.
from project.task_queue import TaskSerializer, task_signing_key  # noqa: E402

if REDIS_URL:
    HUEY = {
        "huey_class": "project.task_queue.SignedRedisHuey",
        "serializer": TaskSerializer(secret=task_signing_key(SECRET_KEY), salt="cloudpilot"),
        "name": "cloudpilot",
        "url": REDIS_URL,
        "immediate": False,
        "consumer": {"workers": 4, "worker_type": "thread"},
    }
else:
    HUEY = {
        "huey_class": "project.task_queue.SignedSqliteHuey",
        "serializer": TaskSerializer(secret=task_signing_key(SECRET_KEY), salt="cloudpilot"),
        "name": "cloudpilot",
        "immediate": False,
        "filename": os.environ.get("HUEY_SQLITE_PATH", str(BASE_DIR / "var" / "huey.sqlite3")),
        # Jobs enqueued by this process wake a worker at once (project.embedded); others, e.g. from
        # management commands, are seen within max_delay (Huey's idle default backs off to 10 s).
        "consumer": {"workers": 2, "worker_type": "thread", "initial_delay": 0.1, "max_delay": 1.0},
    }
# Run the consumer inside the ASGI process (the embedded default); off when workers run apart.
TASKS_IN_SERVER_PROCESS = env_bool("TASKS_IN_SERVER_PROCESS", REDIS_URL is None)

# --- Webhook, reconciler, live updates ---------------------------------------------------------
WEBHOOK_MAX_BODY_BYTES = 64 * 1024
PAYMENT_RECONCILE_AFTER_SECONDS = int(os.environ.get("PAYMENT_RECONCILE_AFTER_SECONDS", 120))
PAYMENT_RECONCILE_MAX_BACKOFF_SECONDS = 600
PAYMENT_GIVE_UP_SECONDS = int(os.environ.get("PAYMENT_GIVE_UP_SECONDS", 30 * 60))
# A checkout link can be paid for as long as its signature lives (an hour at IntaSend).
PAYMENT_LINK_GIVE_UP_SECONDS = int(os.environ.get("PAYMENT_LINK_GIVE_UP_SECONDS", 60 * 60))
# While IntaSend cannot be reached, an open payment keeps being asked (not failed) this long.
PAYMENT_UNKNOWN_OUTCOME_MAX_SECONDS = int(os.environ.get("PAYMENT_UNKNOWN_OUTCOME_MAX_SECONDS", 24 * 60 * 60))
# Subscriptions re-read the row this often even without a hint (hints are at-most-once).
# One query per process per interval however many subscriptions (billing.subscriptions): the bound on how
# late a lost hint makes an update, for every local subscriber of that payment at once.
SUBSCRIPTION_RESYNC_SECONDS = float(os.environ.get("SUBSCRIPTION_RESYNC_SECONDS", 5))
GRAPHQL_WS_MAX_SUBSCRIPTIONS = int(os.environ.get("GRAPHQL_WS_MAX_SUBSCRIPTIONS", 10))
# The garbage collector (project.gc_tuning): freeze the start-up heap, and every GC_REFREEZE_SECONDS
# what has survived since (0: never), so full collections do not walk every open socket's objects;
# GC_THRESHOLDS: gc.set_threshold's three numbers, comma-separated (empty: CPython's 700,10,10). A full
# collection after 100 middle ones, not 10: between refreezes it walks whatever was promoted since,
# and a burst of closing sockets promoted enough for 4 pauses of 150-213 ms (1 at 10k with this).
GC_FREEZE = env_bool("GC_FREEZE", True)
GC_REFREEZE_SECONDS = float(os.environ.get("GC_REFREEZE_SECONDS", 1))
GC_THRESHOLDS = tuple(int(n) for n in env_list("GC_THRESHOLDS", "700,10,100"))
# What became garbage once frozen is collected (the frozen generation walked whole) at most every
# GC_FULL_COLLECTION_SECONDS, and only while at most GC_FULL_COLLECTION_MAX_SOCKETS sockets are open;
# with no more than that open, nothing is refrozen (CPython's own full collections are cheap then).
GC_FULL_COLLECTION_SECONDS = float(os.environ.get("GC_FULL_COLLECTION_SECONDS", 600))
GC_FULL_COLLECTION_MAX_SOCKETS = int(os.environ.get("GC_FULL_COLLECTION_MAX_SOCKETS", 100))
# Open sockets per client address, per portal public key and per operator's tokens, counted per server
# process (N web processes allow N times as many). One address is often a whole hotspot behind NAT, each
# paying customer's portal holding one socket; a public key serves all of an operator's hotspots; an
# operator's consoles and dashboards need a few. Beyond
# the cap a socket is closed with 4429 "Too many connections" (project.socket_caps).
GRAPHQL_WS_MAX_SOCKETS_PER_ADDRESS = int(os.environ.get("GRAPHQL_WS_MAX_SOCKETS_PER_ADDRESS", 250))
GRAPHQL_WS_MAX_SOCKETS_PER_PUBLIC_KEY = int(os.environ.get("GRAPHQL_WS_MAX_SOCKETS_PER_PUBLIC_KEY", 1000))
GRAPHQL_WS_MAX_SOCKETS_PER_OPERATOR = int(os.environ.get("GRAPHQL_WS_MAX_SOCKETS_PER_OPERATOR", 50))
# New sockets and started subscriptions per second per client address (burst: twice that), per
# process; the rest wait their turn, refused when the wait would be too long (project.ws_pacing).
# 0 switches pacing off.
GRAPHQL_WS_HANDSHAKES_PER_SECOND_PER_ADDRESS = float(os.environ.get("GRAPHQL_WS_HANDSHAKES_PER_SECOND_PER_ADDRESS", 10))
GRAPHQL_WS_SUBSCRIBES_PER_SECOND_PER_ADDRESS = float(os.environ.get("GRAPHQL_WS_SUBSCRIBES_PER_SECOND_PER_ADDRESS", 20))
# Threads (each with its own database connection) that load subscription data, apart from the one
# thread HTTP requests share (project.db_threads).
WS_DB_THREADS = int(os.environ.get("WS_DB_THREADS", 4))
# Threads (each keeping its database connection) that record IntaSend's webhooks (project.db_threads).
WEBHOOK_DB_THREADS = int(os.environ.get("WEBHOOK_DB_THREADS", 2))
# Threads for GraphQL work that waits on a router (redeemCode logging a device in), apart from that
# shared thread: a router that times out must not hold every other request up.
ROUTER_IO_THREADS = int(os.environ.get("ROUTER_IO_THREADS", 8))
# HTTP requests served at once per process (project.http_concurrency); Django gives each its own thread
# and database connection, so this plus WS_DB_THREADS, WEBHOOK_DB_THREADS and ROUTER_IO_THREADS bounds a process's
# connections (keep the sum over all processes under PostgreSQL's max_connections, 100 by default).
# Others wait, and get 503 SERVICE_UNAVAILABLE after HTTP_QUEUE_TIMEOUT_SECONDS. 0 switches it off.
HTTP_MAX_CONCURRENT_REQUESTS = int(os.environ.get("HTTP_MAX_CONCURRENT_REQUESTS", 24))
HTTP_QUEUE_TIMEOUT_SECONDS = float(os.environ.get("HTTP_QUEUE_TIMEOUT_SECONDS", 15))

# --- Router activation (network) ---------------------------------------------------------------
# Seconds for connecting to a router's API and for each reply.
ROUTER_API_TIMEOUT_SECONDS = float(os.environ.get("ROUTER_API_TIMEOUT_SECONDS", 5))
# Live API connections kept per process (network.routeros_pool): at most N routers (0: none, a
# connection per job); one idle longer than PING_AFTER is proven alive with one command before use,
# longer than IDLE (or older than MAX_AGE) closed, and reopened (resolved and checked again) when needed.
ROUTER_POOL_SIZE = int(os.environ.get("ROUTER_POOL_SIZE", 64))
ROUTER_POOL_PING_AFTER_SECONDS = float(os.environ.get("ROUTER_POOL_PING_AFTER_SECONDS", 30))
ROUTER_POOL_IDLE_SECONDS = float(os.environ.get("ROUTER_POOL_IDLE_SECONDS", 900))
ROUTER_POOL_MAX_AGE_SECONDS = float(os.environ.get("ROUTER_POOL_MAX_AGE_SECONDS", 3600))
# Where a router's host may point (network.destinations): CIDRs allowed although normally refused
# (loopback, link-local, ...), and CIDRs refused on top (this installation's own subnets: its
# database, Redis, metadata service).
ROUTER_ALLOWED_NETWORKS = env_list("ROUTER_ALLOWED_NETWORKS")
ROUTER_DENIED_NETWORKS = env_list("ROUTER_DENIED_NETWORKS")
# routerSetupScript: the address CloudPilot connects to routers from (CIDR), to restrict their API
# service to it; empty: the script carries a placeholder.
ROUTER_API_CLIENT_ADDRESS = os.environ.get("ROUTER_API_CLIENT_ADDRESS", "")
# The health probe (network.tasks.probe_routers): at most N logins per run (every minute), each with a
# short timeout; a router that did not answer waits twice as long each time, up to the maximum.
ROUTER_PROBE_BATCH = int(os.environ.get("ROUTER_PROBE_BATCH", 20))
ROUTER_PROBE_TIMEOUT_SECONDS = float(os.environ.get("ROUTER_PROBE_TIMEOUT_SECONDS", 3))
ROUTER_PROBE_INTERVAL_SECONDS = int(os.environ.get("ROUTER_PROBE_INTERVAL_SECONDS", 5 * 60))
ROUTER_PROBE_MAX_BACKOFF_SECONDS = int(os.environ.get("ROUTER_PROBE_MAX_BACKOFF_SECONDS", 60 * 60))
# checkRouterConnection per operator: at most N checks per window.
ROUTER_CHECK_RATE_LIMIT = int(os.environ.get("ROUTER_CHECK_RATE_LIMIT", 10))
ROUTER_CHECK_RATE_LIMIT_WINDOW_SECONDS = int(os.environ.get("ROUTER_CHECK_RATE_LIMIT_WINDOW_SECONDS", 60))
# activeSessions and disconnectSession per operator (each is a router connection): at most N per minute.
ROUTER_LIVE_RATE_LIMIT = int(os.environ.get("ROUTER_LIVE_RATE_LIMIT", 60))
# Retries after the first attempt, with exponential backoff: 5, 10, 20, 40, 80, 160 s (~5 min in all).
ACTIVATION_RETRIES = int(os.environ.get("ACTIVATION_RETRIES", 6))
ACTIVATION_RETRY_DELAY_SECONDS = float(os.environ.get("ACTIVATION_RETRY_DELAY_SECONDS", 5))
ACTIVATION_RETRY_BACKOFF = float(os.environ.get("ACTIVATION_RETRY_BACKOFF", 2))
# How long one worker may hold an activation while it talks to the router (others back off).
ACTIVATION_LEASE_SECONDS = 300
# A PENDING activation untouched this long has lost its job; the rescue job enqueues it again.
ACTIVATION_STALLED_AFTER_SECONDS = int(os.environ.get("ACTIVATION_STALLED_AFTER_SECONDS", 15 * 60))
# Reaching the router later than this after payment: the customer gets the full duration from then.
ACTIVATION_LATE_GRACE_SECONDS = int(os.environ.get("ACTIVATION_LATE_GRACE_SECONDS", 5 * 60))
# A renewal (PaymentInput.renewCode) extends the grant only if that has at least this long to run.
ACTIVATION_RENEWAL_MIN_REMAINING_SECONDS = int(os.environ.get("ACTIVATION_RENEWAL_MIN_REMAINING_SECONDS", 120))
# FAILED activations are retried by themselves once their router answers a login again: routers are
# probed every minute at first, doubling while silent up to the max; a grant stops being retried
# automatically after this many attempts in all (retryActivation still works).
ACTIVATION_AUTO_RETRY_PROBE_SECONDS = int(os.environ.get("ACTIVATION_AUTO_RETRY_PROBE_SECONDS", 60))
ACTIVATION_AUTO_RETRY_PROBE_MAX_SECONDS = int(os.environ.get("ACTIVATION_AUTO_RETRY_PROBE_MAX_SECONDS", 15 * 60))
ACTIVATION_AUTO_RETRY_MAX_ATTEMPTS = int(os.environ.get("ACTIVATION_AUTO_RETRY_MAX_ATTEMPTS", 30))
PROFILE_SYNC_RETRIES = int(os.environ.get("PROFILE_SYNC_RETRIES", 3))
PROFILE_SYNC_RETRY_DELAY_SECONDS = float(os.environ.get("PROFILE_SYNC_RETRY_DELAY_SECONDS", 10))

# --- Simulators and the reference captive portal -------------------------------------------------
# Stand-ins for IntaSend and a MikroTik router served by the app under /simulator/ (the phone page,
# the checkout page, IntaSend's API, the router view), so the whole flow runs on one machine.
# Development only: never switch them on in production (the IntaSend simulator signs webhooks with
# stored SANDBOX credentials' challenges). Off → the routes do not exist.
SIMULATORS_ENABLED = env_bool("SIMULATORS_ENABLED", DEBUG)
# The RouterOS API simulator's TCP port on 127.0.0.1 (the seeded demo router points at it).
ROUTEROS_SIMULATOR_PORT = int(os.environ.get("ROUTEROS_SIMULATOR_PORT", 18728))
# Whether the server process (project.asgi) runs that simulator when simulators are on. Test servers
# (tests/live.py) turn it off unless a test asks for it, so they never fight over the port.
ROUTEROS_SIMULATOR_AUTOSTART = env_bool("ROUTEROS_SIMULATOR_AUTOSTART", SIMULATORS_ENABLED)
# This server's own address, for the URLs it gives itself (`make run` passes PORT).
SERVER_URL = (os.environ.get("SERVER_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}").rstrip("/")
if SIMULATORS_ENABLED and INTASEND_API_BASE_URL is None:
    # With simulators on and no IntaSend host given, the gateway talks to the app's own simulator.
    INTASEND_API_BASE_URL = f"{SERVER_URL}/simulator/intasend/api/v1/"

INSTALLED_APPS += ["portal", "project"]  # project: the vendored GraphiQL page and assets
