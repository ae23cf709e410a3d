"""Which JSON media type a GraphQL answer uses, from the request's Accept (GraphQL over HTTP).

`application/graphql-response+json` lets status codes mean something (400 for a request that never
ran); `application/json` stays the default for clients that do not ask, as the spec's watershed
rules require: no Accept, `*/*` and `application/json` all get it.
"""

from __future__ import annotations

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def _accepted_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for entry in accept.split(","):
        media_range, *parameters = (part.strip() for part in entry.split(";"))
        if "/" not in media_range:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = -1.0  # unreadable: the entry says nothing
        if 0.0 <= quality <= 1.0:
            ranges.append((media_range.lower(), quality))
    return ranges


def _quality(media_type: str, ranges: list[tuple[str, float]]) -> tuple[float, bool]:
    """The quality the most specific matching range gives `media_type`, and whether it named it."""
    kind = media_type.split("/")[0]
    best: tuple[int, float] | None = None
    for media_range, quality in ranges:
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range)
        if specificity is not None and (best is None or specificity > best[0]):
            best = (specificity, quality)
    if best is None:
        return 0.0, False
    return best[1], best[0] == 2


def response_media_type(accept: str | None) -> str:
    """`application/graphql-response+json` when the client prefers it (or names it as much as
    `application/json`), else `application/json`; q-values are honoured."""
    ranges = _accepted_ranges(accept or "")
    graphql_quality, named = _quality(GRAPHQL_RESPONSE_JSON, ranges)
    json_quality, _ = _quality(JSON, ranges)
    if graphql_quality > 0 and (graphql_quality > json_quality or (graphql_quality == json_quality and named)):
        return GRAPHQL_RESPONSE_JSON
    return JSON
