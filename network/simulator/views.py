"""``/simulator/router/``: the RouterOS simulator's tables, live, and the hotspot's login page.

Routed only when SIMULATORS_ENABLED (project.urls), and every view checks again, so switching the
setting off in a running process (tests) turns them into 404s.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from network.models import Package
from network.simulator import runtime
from network.simulator.server import ACTIVE, COOKIE, PROFILE, USER, RouterOSSimulator
from project.simulators import simulators_on

# What the page shows of each table (RouterOS property names, as Winbox and `print` name them).
TABLES: list[tuple[str, str, str, list[str]]] = [
    ("users", USER, "Hotspot users", ["name", "profile", "limit-uptime", "limit-bytes-total", "comment", "disabled"]),
    ("profiles", PROFILE, "User profiles", ["name", "rate-limit", "shared-users"]),
    ("active", ACTIVE, "Active sessions", ["user", "address", "mac-address", "login-by", "uptime"]),
    ("cookies", COOKIE, "MAC cookies", ["user", "mac-address", "expires-in"]),
]
# Never shown: the hotspot password (the access code is the user's name anyway) and login secrets.
HIDDEN_PROPERTIES = frozenset({"password"})
SECRET_ARGS = frozenset({"password", "response"})
RECENT_COMMANDS = 15
_PACKAGE_PROFILE = re.compile(r"^cloudpilot-pkg-(\d+)$")


def _rows(simulator: RouterOSSimulator, path: str) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in HIDDEN_PROPERTIES} for row in simulator.table(path)]


def router_state() -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (also served at ``state.json``)."""
    simulator = runtime.router_simulator()
    state: dict[str, Any] = {
        "running": simulator is not None,
        "error": runtime.start_error(),
        "address": None,
        "identity": None,
        "apiUser": runtime.USERNAME,
        "connections": 0,
        "commands": [],
        **{key: [] for key, *_ in TABLES},
    }
    if simulator is None:
        return state
    state.update(
        address=f"{simulator.host}:{simulator.port}",
        identity=simulator.identity,
        connections=simulator.connection_count,
        commands=[
            {
                "path": command.path,
                "args": {k: ("***" if k in SECRET_ARGS else v) for k, v in command.args.items()},
                "queries": list(command.queries),
            }
            for command in simulator.commands[-RECENT_COMMANDS:]
        ],
        **{key: _rows(simulator, path) for key, path, *_ in TABLES},
    )
    return state


def _package_names(profiles: list[dict[str, str]]) -> dict[str, str]:
    """``cloudpilot-pkg-<id>`` → the package's name, for the profile column."""
    ids = {int(m.group(1)) for p in profiles if (m := _PACKAGE_PROFILE.match(p.get("name", "")))}
    names = dict(Package.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    return {f"cloudpilot-pkg-{pk}": name for pk, name in names.items()}


def _page_context() -> dict[str, Any]:
    state = router_state()
    packages = _package_names(state["profiles"])
    tables = []
    for key, _path, title, columns in TABLES:
        rows = []
        for row in state[key]:
            cells = []
            for column in columns:
                value = row.get(column, "")
                if column in ("profile", "name") and key in ("users", "profiles") and value in packages:
                    value = f"{value} ({packages[value]})"
                cells.append(value)
            rows.append({"id": row.get(".id", ""), "key": row.get("name") or row.get("user") or "", "cells": cells})
        tables.append({"key": key, "title": title, "columns": columns, "rows": rows})
    commands = [
        {
            "path": c["path"],
            "words": " ".join([*(f"={k}={v}" for k, v in c["args"].items()), *c["queries"]]),
        }
        for c in reversed(state["commands"])
    ]
    return {"state": state, "tables": tables, "commands": commands, "port": settings.ROUTEROS_SIMULATOR_PORT}


@simulators_on
@require_safe
def router(request: HttpRequest) -> HttpResponse:
    """The simulated router's hotspot tables; the page refreshes them every 2 s (``?partial=1``)."""
    template = "simulator/router_tables.html" if request.GET.get("partial") else "simulator/router.html"
    response = render(request, template, _page_context())
    response["Cache-Control"] = "no-store"
    return response


@simulators_on
@require_safe
def router_json(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(router_state())
    response["Cache-Control"] = "no-store"
    return response


def _device_mac(ip: str) -> str:
    """The MAC a real hotspot would know from ARP; the simulator makes one up from the IPv4 address."""
    try:
        packed = ipaddress.ip_address(ip).packed[-4:]
    except ValueError:
        packed = bytes(4)
    return "02:00:" + ":".join(f"{b:02X}" for b in packed)


@csrf_exempt  # the router's login page: posted by the portal (and by login.html's form), no Django session
@simulators_on
@require_http_methods(["GET", "HEAD", "POST"])
def hotspot_login(request: HttpRequest) -> HttpResponse:
    """The hotspot's login URL, ``$(link-login-only)``: the portal posts the access code here.

    ``username``/``password`` (PAP) and ``dst`` as the portal and login.html send them. A real
    hotspot knows the device from the connection; here ``mac`` and ``ip`` (query or form) say which
    device it is, the client's own address otherwise.
    """
    simulator = runtime.router_simulator()
    data = request.POST if request.method == "POST" else request.GET
    dst = data.get("dst", "")
    if not dst.startswith(("http://", "https://")):
        dst = ""  # only a web page the customer wanted, as a link (never javascript: and the like)
    context: dict[str, Any] = {"username": data.get("username", ""), "dst": dst, "error": None, "logged_in": False}
    if request.method == "POST":
        ip = data.get("ip") or request.GET.get("ip") or request.META.get("REMOTE_ADDR") or "10.5.50.254"
        mac = (data.get("mac") or request.GET.get("mac") or _device_mac(ip)).upper()
        if simulator is None:
            context["error"] = "The RouterOS simulator is not running in this server process."
        else:
            error = simulator.hotspot_login(
                user=context["username"], password=data.get("password", ""), mac_address=mac, address=ip
            )
            context.update(error=error, logged_in=error is None, mac=mac, ip=ip)
    response = render(request, "simulator/hotspot_login.html", context)
    response["Cache-Control"] = "no-store"
    return response
