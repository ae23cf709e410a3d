"""network stands on its own (DESIGN.md "Access grants"): payments, vouchers and manual grants all end
in network's Activation, so network never imports billing, nor names its models, nor its schema."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import network

NETWORK = Path(network.__file__).parent


def _modules() -> list[Path]:
    return sorted(NETWORK.rglob("*.py"))


def _imported(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in {
            "import_module",
            "__import__",
        }:
            names.extend(arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str))
    return names


def test_network_imports_nothing_from_billing() -> None:
    offenders = [
        f"{path.relative_to(NETWORK.parent)}: {name}"
        for path in _modules()
        for name in _imported(ast.parse(path.read_text(), filename=str(path)))
        if name == "billing" or name.startswith("billing.")
    ]
    assert offenders == []


# A model reference ("billing.Payment"), a lazy type (strawberry.lazy("billing.schema")), a dotted path
# in a string: any string that names billing's code. Migrations before the grants stood alone are history.
_BILLING_REFERENCE = re.compile(r"\bbilling\.[A-Za-z_]")
_HISTORY = {
    "0001_initial.py",
    "0002_activation_renewal_limits_lease.py",
    "0003_security_hardening.py",
    "0004_personal_data_retention.py",
    "0005_access_grants.py",
}


def test_network_code_names_no_billing_model_or_module_in_strings() -> None:
    offenders = []
    for path in _modules():
        if path.parent.name == "migrations" and path.name in _HISTORY:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _BILLING_REFERENCE.search(node.value):
                if _is_docstring_like(node.value):
                    continue
                offenders.append(f"{path.relative_to(NETWORK.parent)}:{node.lineno}: {node.value[:60]!r}")
    assert offenders == []


def _is_docstring_like(text: str) -> bool:
    # Prose may mention billing (who listens to network's signal); code strings are single tokens.
    return " " in text.strip()


def test_the_scan_sees_what_it_looks_for() -> None:
    tree = ast.parse(
        "from billing.models import Payment\nimport billing.schema\nimportlib.import_module('billing.services')\n"
    )
    assert _imported(tree) == ["billing.models", "billing.schema", "billing.services"]
    assert _BILLING_REFERENCE.search("billing.Payment") and not _is_docstring_like("billing.Payment")
