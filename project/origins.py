"""Which browser origins may call /graphql/ (CORS over HTTP, the Origin check on WebSockets).

Read once from the environment by project.settings; a typo there must stop the server at startup
rather than silently shut every portal out (or let every page in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

ANY_ORIGIN = "*"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidOrigins(ValueError):
    """An origin list that cannot be what the operator meant."""


@dataclass(frozen=True)
class AllowedOrigins:
    allow_all: bool
    origins: tuple[str, ...]  # as browsers send them in `Origin`; empty when allow_all

    def for_websockets(self) -> list[str]:
        """The list strawberry's WebSocket Origin check takes (`*` for any)."""
        return [ANY_ORIGIN] if self.allow_all else list(self.origins)


def normalize_origin(entry: str) -> str:
    """`entry` as a browser sends it in `Origin` (lowercase, default port left out), or InvalidOrigins."""
    try:
        parts = urlsplit(entry)
        port = parts.port
    except ValueError as exc:
        raise InvalidOrigins(f"{entry!r} is not an origin ({exc})") from None
    if not parts.scheme or not parts.hostname or "*" in entry:
        raise InvalidOrigins(
            f"{entry!r} is not an origin: expected scheme://host[:port], e.g. https://portal.example.com"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidOrigins(f"{entry!r} is not an origin: leave out the path, query and credentials")
    scheme, host = parts.scheme.lower(), parts.hostname
    host = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def parse_allowed_origins(raw: str) -> AllowedOrigins:
    """A comma-separated list of origins, or `*` alone for any origin."""
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    if entries == [ANY_ORIGIN]:
        return AllowedOrigins(allow_all=True, origins=())
    if ANY_ORIGIN in entries:
        raise InvalidOrigins("`*` allows every origin: give it alone, not in a list")
    return AllowedOrigins(allow_all=False, origins=tuple(dict.fromkeys(normalize_origin(e) for e in entries)))


def allowed_origins_from_environment(environ: Mapping[str, str]) -> AllowedOrigins:
    """CORS_ALLOWED_ORIGINS, or its older name GRAPHQL_WS_ALLOWED_ORIGINS; `*` when neither is set.

    Both set to different lists is refused: one of them would be silently ignored."""
    current = environ.get("CORS_ALLOWED_ORIGINS")
    legacy = environ.get("GRAPHQL_WS_ALLOWED_ORIGINS")
    try:
        if (
            current is not None
            and legacy is not None
            and parse_allowed_origins(current) != parse_allowed_origins(legacy)
        ):
            raise InvalidOrigins(
                "CORS_ALLOWED_ORIGINS and GRAPHQL_WS_ALLOWED_ORIGINS (its older name) differ: set only one"
            )
        chosen = current if current is not None else legacy
        return parse_allowed_origins(ANY_ORIGIN if chosen is None else chosen)
    except InvalidOrigins as exc:
        name = "CORS_ALLOWED_ORIGINS" if current is not None else "GRAPHQL_WS_ALLOWED_ORIGINS"
        raise InvalidOrigins(f"{name}: {exc}") from None
