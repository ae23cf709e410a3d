"""Every error code the server can emit is a member of `ErrorCode`, by construction.

Payload errors are `UserError.code`, typed as the enum. Top-level errors carry `extensions.code`: the
source scan below requires every such code to be taken from the enum (never a string literal), and
the runtime tests show the two codes no resolver raises itself, UNAUTHENTICATED and INTERNAL, arrive
as documented.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from project.errors import ErrorCode
from project.schema import schema
from tests.grants import grant_for

ROOT = Path(__file__).resolve().parents[2]
# The apps that answer clients. Their simulators speak IntaSend's and RouterOS's own shapes (a
# `{"code": ..., "detail": ...}` body is IntaSend's, not a GraphQL error), which the scan below
# tells apart by looking only where a GraphQL error's extensions are built.
SCANNED_PACKAGES = ("project", "billing", "network", "portal")


class _ErrorCodeScan(ast.NodeVisitor):
    """Finds where a GraphQL error's `extensions` are built and every `ErrorCode.<NAME>` reference.

    An extensions code must be `ErrorCode.<MEMBER>.value`, `<error>.code.value` (an ApplicationError's
    code) or `<name>.value` for a parameter annotated `ErrorCode`; a literal, an f-string or any other
    expression could name a code the enum does not list.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []
        self.extension_codes: list[str] = []
        self._error_code_parameters: list[set[str]] = [set()]

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        arguments = node.args
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        self._error_code_parameters.append(
            self._error_code_parameters[-1]
            | {
                argument.arg
                for argument in every
                if argument.annotation is not None and _is_error_code(argument.annotation)
            }
        )
        self.generic_visit(node)
        self._error_code_parameters.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        for keyword in node.keywords:
            if keyword.arg == "extensions":
                self._extensions(keyword.value)
        if _is_error_code(node.func) and node.args:
            self._member_literal(node.args[0], node)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "extensions":
                self._extensions(value)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if _names_extensions(target):
                self._extensions(node.value)
            elif (
                isinstance(target, ast.Subscript)
                and isinstance(target.slice, ast.Constant)
                and target.slice.value == "code"
                and _names_extensions(target.value)
            ):
                self._code(node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None and _names_extensions(node.target):
            self._extensions(node.value)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if _is_error_code(node.value):
            self._member_literal(node.slice, node)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _is_error_code(node.value) and not node.attr.startswith("_") and not hasattr(ErrorCode, node.attr):
            self.problems.append(f"{self._at(node)}: ErrorCode.{node.attr} is not a member of ErrorCode")
        self.generic_visit(node)

    def _extensions(self, node: ast.expr) -> None:
        if not isinstance(node, ast.Dict):
            return
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "code":
                self._code(value)

    def _code(self, value: ast.expr) -> None:
        self.extension_codes.append(self._at(value))
        if not _is_enum_value(value, self._error_code_parameters[-1]):
            self.problems.append(
                f"{self._at(value)}: extensions code `{ast.unparse(value)}` is not taken from ErrorCode "
                "(write ErrorCode.<MEMBER>.value)"
            )

    def _member_literal(self, node: ast.expr, where: ast.expr) -> None:
        if isinstance(node, ast.Constant) and node.value not in ErrorCode.__members__:
            self.problems.append(f"{self._at(where)}: {ast.unparse(where)} is not a member of ErrorCode")

    def _at(self, node: ast.AST) -> str:
        return f"{self.path}:{node.lineno}"


def _is_error_code(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "ErrorCode") or (
        isinstance(node, ast.Attribute) and node.attr == "ErrorCode"
    )


def _is_enum_value(node: ast.expr, error_code_parameters: set[str]) -> bool:
    """`ErrorCode.<MEMBER>.value`, `<something>.code.value` (an ApplicationError's ErrorCode), or
    `<parameter>.value` for a parameter annotated `ErrorCode`."""
    if not (isinstance(node, ast.Attribute) and node.attr == "value"):
        return False
    owner = node.value
    if isinstance(owner, ast.Name):
        return owner.id in error_code_parameters
    if isinstance(owner, ast.Attribute):
        return (_is_error_code(owner.value) and owner.attr in ErrorCode.__members__) or owner.attr == "code"
    return False


def _names_extensions(target: ast.expr) -> bool:
    name = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else ""
    return name.endswith("extensions")


def scan(source: str, path: str) -> _ErrorCodeScan:
    visitor = _ErrorCodeScan(path)
    visitor.visit(ast.parse(source, filename=path))
    return visitor


def _application_sources() -> list[Path]:
    return sorted(
        path
        for package in SCANNED_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.relative_to(ROOT).parts
    )


def test_every_top_level_code_in_the_source_is_taken_from_the_enum():
    problems: list[str] = []
    extension_codes: list[str] = []
    for path in _application_sources():
        found = scan(path.read_text(), str(path.relative_to(ROOT)))
        problems.extend(found.problems)
        extension_codes.extend(found.extension_codes)
    assert not problems, "error codes the ErrorCode enum cannot vouch for:\n  " + "\n  ".join(problems)
    # Not vacuous: the permission classes' and the error masking's codes are among those checked.
    assert any(site.startswith("project/graphql_support.py:") for site in extension_codes), extension_codes
    assert any(site.startswith("project/schema.py:") for site in extension_codes), extension_codes


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ('raise GraphQLError("no", extensions={"code": "NOT_LISTED"})', "extensions code `'NOT_LISTED'`"),
        ('error = {"message": "no", "extensions": {"code": f"{kind}_FAILED"}}', "extensions code `f'{kind}_FAILED'`"),
        ('class Denied(BasePermission):\n    error_extensions = {"code": "DENIED"}', "extensions code `'DENIED'`"),
        ('GraphQLError("no", extensions={"code": ErrorCode.NOT_LISTED.value})', "ErrorCode.NOT_LISTED is not a member"),
        ('ErrorCode("NOT_LISTED")', "ErrorCode('NOT_LISTED') is not a member"),
        ('ErrorCode["NOT_LISTED"]', "ErrorCode['NOT_LISTED'] is not a member"),
        ('error.extensions["code"] = "NOT_LISTED"', "extensions code `'NOT_LISTED'`"),
        (
            'def refuse(code: str):\n    return {"extensions": {"code": code.value}}',
            "extensions code `code.value` is not taken",
        ),
    ],
)
def test_the_scan_catches_codes_from_outside_the_enum(source: str, problem: str):
    problems = scan(source, "example.py").problems
    assert any(found.split(": ", 1)[1].startswith(problem) for found in problems), problems


def test_the_scan_accepts_codes_from_the_enum():
    source = (
        'GraphQLError("no", extensions={"code": ErrorCode.RATE_LIMITED.value})\n'
        'frame = {"message": error.message, "extensions": {"code": error.code.value}}\n'
        'intasend_body = {"code": "invalid_phone", "detail": "IntaSend\'s own shape"}\n'
        "def refuse(message: str, code: ErrorCode) -> dict:\n"
        '    return {"errors": [{"message": message, "extensions": {"code": code.value}}]}\n'
    )
    assert scan(source, "example.py").problems == []


def test_the_python_and_graphql_enums_list_the_same_codes():
    graphql_enum = schema._schema.get_type("ErrorCode")
    assert {name: value.value for name, value in graphql_enum.values.items()} == {
        code.name: code.value for code in ErrorCode
    }
    assert {name: value.description for name, value in graphql_enum.values.items()} == {
        code.name: code.description for code in ErrorCode
    }


def _top_level_codes(body: dict) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


@pytest.mark.django_db
def test_an_operator_query_without_credentials_is_unauthenticated(gql, operator):
    body = gql("{ routers { id name } }")
    assert body["data"] is None
    assert _top_level_codes(body) == ["UNAUTHENTICATED"]
    # A portal key is not enough for an operator-only field either.
    assert _top_level_codes(gql("{ routers { id } }", **operator.portal)) == ["UNAUTHENTICATED"]


@pytest.mark.django_db
def test_a_negative_offset_is_invalid_input(gql, operator):
    body = gql("{ payments(pagination: {offset: -1}) { totalCount } }", **operator.auth)
    assert _top_level_codes(body) == ["INVALID_INPUT"]


PAYMENT_ACTIVATION = """
query ($id: UUID!) { payment(id: $id) { id activation { id status } } }
"""


@pytest.mark.django_db
def test_an_unexpected_exception_in_a_resolver_is_internal_and_masked(gql, operator, caplog):
    """Provoked for real, without patching our code: an activation whose stored status is none the
    API knows (as a hand-edited row or a half-applied migration would leave it) makes the `status`
    resolver raise ValueError. The client sees only the masked message and INTERNAL; the server
    logs the exception at ERROR."""
    router = operator.add_router()
    payment = operator.add_paid_payment(router, operator.add_package(router))
    grant_for(payment, status="GARBLED")

    with caplog.at_level(logging.INFO):
        body = gql(PAYMENT_ACTIVATION, {"id": str(payment.pk)}, **operator.auth)

    [error] = body["errors"]
    assert {key: error[key] for key in ("message", "path", "extensions")} == {
        "message": "Internal server error",
        "path": ["payment", "activation", "status"],
        "extensions": {"code": "INTERNAL"},
    }
    assert "GARBLED" not in str(body)
    assert any(record.levelno == logging.ERROR and record.exc_info for record in caplog.records)


DOCUMENT_MISTAKES = {
    "does not parse": ("{ payments { totalCount ", None),
    "too many tokens": ("{ " + "__typename " * 2100 + "}", None),
    "unknown field": ("{ paymnts { totalCount } }", None),
    "too many aliases": ("{ " + " ".join(f"a{i}: __typename" for i in range(20)) + " }", None),
    "too deep": ("{ a { b { c { d { e { f { g { h { i { j { k { l } } } } } } } } } } } }", None),
    "introspection off": ("{ __schema { types { name } } }", None),
    "variable of the wrong type": ("query($id: UUID!) { payment(id: $id) { id } }", {"id": "not-a-uuid"}),
}


@pytest.mark.django_db
@pytest.mark.parametrize("query,variables", DOCUMENT_MISTAKES.values(), ids=DOCUMENT_MISTAKES.keys())
def test_a_document_the_server_refuses_is_invalid_input(gql, operator, query, variables):
    """graphql-core's own errors (parse, validation, limits, variables) had no code at all: a
    client could not tell its mistake from ours without reading English."""
    body = gql(query, variables, **operator.auth)
    assert body["data"] is None
    assert body["errors"] and set(_top_level_codes(body)) == {"INVALID_INPUT"}, body


@pytest.mark.django_db(transaction=True)  # the socket reads the operator on its own connection
async def test_a_subscription_the_server_refuses_is_invalid_input_on_a_websocket(operator, caplog):
    """A subscription that did not parse was answered with a bare `complete`, and an ERROR traceback."""
    from strawberry.channels.testing import GraphQLWebsocketCommunicator

    from project.asgi import application

    params = {"Authorization": f"Bearer {operator.tokens.access_token}"}
    async with GraphQLWebsocketCommunicator(application, "/graphql/", connection_params=params) as ws:
        for number, query in enumerate(["subscription { paymntUpdates { id } }", "subscription { "]):
            await ws.send_json_to({"id": f"s{number}", "type": "subscribe", "payload": {"query": query}})
            reply = await ws.receive_json_from(timeout=3)
            assert reply["type"] == "error", reply
            assert [error["extensions"]["code"] for error in reply["payload"]] == ["INVALID_INPUT"], reply
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


def test_graphql_cores_own_error_during_execution_is_internal():
    """A null for a non-null field, say: graphql-core's error has a path and no code, and is ours."""
    from graphql import GraphQLError

    from project.schema import _with_a_code

    error = _with_a_code(GraphQLError("Cannot return null for non-nullable field Payment.id.", path=["payment", "id"]))
    assert (error.extensions, error.path) == ({"code": "INTERNAL"}, ["payment", "id"])
    coded = GraphQLError("Payment not found", path=["payment"], extensions={"code": "PAYMENT_NOT_FOUND"})
    assert _with_a_code(coded) is coded


@pytest.mark.django_db(transaction=True)
async def test_a_subscription_the_server_refuses_is_invalid_input_on_legacy_graphql_ws(operator, caplog):
    """On the legacy protocol a subscription that did not parse was answered with nothing at all."""
    from channels.testing import WebsocketCommunicator

    from project.asgi import application

    ws = WebsocketCommunicator(application, "/graphql/", subprotocols=["graphql-ws"])
    assert (await ws.connect())[0]
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {operator.tokens.access_token}"}}
    await ws.send_json_to(init)
    assert (await ws.receive_json_from(timeout=3))["type"] == "connection_ack"
    for number, query in enumerate(["subscription { paymntUpdates { id } }", "subscription { "]):
        await ws.send_json_to({"id": f"s{number}", "type": "start", "payload": {"query": query}})
        reply = await ws.receive_json_from(timeout=3)
        assert (reply["type"], reply["payload"]["extensions"]["code"]) == ("error", "INVALID_INPUT"), reply
    await ws.disconnect()
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
