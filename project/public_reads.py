"""What GET may run on /graphql/: a captive portal's public reads, the only answers a browser or a
CDN may keep (Cache-Control: public). Everything else goes by POST.

A GET is a link: it lands in history, logs and caches, and a page on any origin can make a browser
send one. So it never carries an operator token, a payment's clientSecret or an access code, and
it never changes anything: only public-key queries of `packages` and `portalInfo` run (and a bare
`__typename`, which reads nothing: HTTP clients probe with it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from django.conf import settings
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)

PUBLIC_ROOT_FIELDS = frozenset({"packages", "portalInfo", "__typename"})
USE_POST = (
    "Over GET only public-key queries of packages and portalInfo run, "
    "without an Authorization header; send this operation with POST."
)


class NotAPublicRead(Exception):
    """A GET that must be sent with POST."""


def _root_fields(
    selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], seen: set[str]
) -> Iterator[str]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen:
                continue  # a cycle: validation reports it
            seen.add(name)
            fragment = fragments.get(name)
            if fragment is None:
                yield f"...{name}"  # unknown: certainly not a public field
            else:
                yield from _root_fields(fragment.selection_set, fragments, seen)


def _root_fields_of_every_operation(document: DocumentNode) -> tuple[bool, set[str]]:
    """Whether every operation is a query, and the root fields all of them select."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fields: set[str] = set()
    for operation in operations:
        fields.update(_root_fields(operation.selection_set, fragments, set()))
    return all(o.operation == OperationType.QUERY for o in operations), fields


def refuse_unless_public_read(query: str | None, headers: Mapping[str, str]) -> None:
    """Raise NotAPublicRead unless this GET's document is a public read the caller may make.

    Every operation in the document is checked, whichever `operationName` picks. A document that
    is missing or does not parse runs nothing: strawberry answers it as usual."""
    if query is None:
        return
    try:
        document = parse(query, no_location=True, max_tokens=settings.GRAPHQL_MAX_TOKENS)
    except GraphQLError:
        return
    only_queries, fields = _root_fields_of_every_operation(document)
    if not only_queries or not fields <= PUBLIC_ROOT_FIELDS or "Authorization" in headers:
        raise NotAPublicRead(USE_POST)
    if fields - {"__typename"} and "X-Public-Key" not in headers:
        raise NotAPublicRead(USE_POST)
