"""routerSetupScript: the RouterOS commands that prepare one router for CloudPilot (README "Captive portal setup").

Every value is interpolated through ``ros_quote``: a router name holding `"`, `$`, `;` or a newline must stay
one string, never a second command. Nothing secret is written: the API password is a placeholder.
"""

from __future__ import annotations

import json
import string
from urllib.parse import urlsplit

from django.conf import settings

from network.models import Router

# IntaSend's hosted checkout (payment links), live and sandbox: a customer may pay on either.
INTASEND_CHECKOUT_HOSTS = ("payment.intasend.com", "sandbox.intasend.com")
PASSWORD_PLACEHOLDER = "REPLACE-WITH-A-LONG-RANDOM-PASSWORD"
_SAFE = frozenset(string.ascii_letters + string.digits + " .-_:/@,+=")


def ros_quote(value: str) -> str:
    """A RouterOS double-quoted string: anything but plain letters, digits and a few marks as `\\HH`
    (RouterOS's hex escape), so quotes, `$` (variables), `;`, `[` (commands) and newlines stay text."""
    escaped = "".join(char if char in _SAFE else "".join(f"\\{byte:02X}" for byte in char.encode()) for char in value)
    return f'"{escaped}"'


def _comment(value: str) -> str:
    """Text for a `#` line: a newline there would start a command."""
    return "".join(char if char.isprintable() else "?" for char in value)


def server_url(request_url: str) -> str:
    """This installation's public origin: the configured callback URL's (the same trust as IntaSend's
    callbacks), else the request's own."""
    source = settings.INTASEND_CALLBACK_URL or request_url
    parts = urlsplit(source)
    return f"{parts.scheme}://{parts.netloc}"


def router_setup_script(*, router: Router, cloudpilot_url: str, public_key: str | None) -> str:
    server_host = urlsplit(cloudpilot_url).hostname or ""
    source = settings.ROUTER_API_CLIENT_ADDRESS
    service = "api-ssl" if router.use_ssl else "api"
    lines = [
        f"# CloudPilot setup for router {_comment(router.name)} (id {router.pk}): paste into a RouterOS terminal.",
        "# 1. A least-privilege API user for CloudPilot (replace the password, then give it to updateRouter).",
        '/user group add name=cloudpilot policy=api,read,write comment="CloudPilot: API only"',
        f"/user add name={ros_quote(router.username)} group=cloudpilot password={ros_quote(PASSWORD_PLACEHOLDER)}",
        f"# 2. The {service} service on port {router.api_port}, reachable from CloudPilot only.",
    ]
    if source:
        lines.append(f"/ip service set {service} port={router.api_port} address={ros_quote(source)} disabled=no")
    else:
        lines += [
            "# Put CloudPilot's outgoing address below (the server does not know it: set ROUTER_API_CLIENT_ADDRESS).",
            f'/ip service set {service} port={router.api_port} address="REPLACE-WITH-CLOUDPILOT-IP/32" disabled=no',
        ]
    lines += [
        "# 3. The hotspot (run /ip hotspot setup on the customers' interface first): PAP, the portal posts the code.",
        "/ip hotspot profile set [find] login-by=http-pap,http-chap,cookie",
        "# 4. The walled garden: CloudPilot and IntaSend's checkout before login (HTTPS needs the IP list).",
    ]
    for host in (server_host, *INTASEND_CHECKOUT_HOSTS):
        lines.append(f"/ip hotspot walled-garden ip add action=accept dst-host={ros_quote(host)}")
    lines.append(f"/ip hotspot walled-garden add dst-host={ros_quote(server_host)}")
    lines += [
        "# 5. Upload portal/mikrotik/login.html as hotspot/login.html, with these three values at its top:",
        f"#   var CLOUDPILOT_URL = {_comment(json.dumps(cloudpilot_url))};",
        f"#   var PUBLIC_KEY = {_comment(json.dumps(public_key or 'REPLACE-WITH-me-publicKey'))};",
        f"#   var ROUTER_ID = {json.dumps(str(router.pk))};",
        "#   e.g. scp login.html <admin>@<router>:hotspot/login.html",
    ]
    return "\n".join(lines) + "\n"
