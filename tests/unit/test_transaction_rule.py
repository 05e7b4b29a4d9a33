"""The README's transaction rule, checked on the source: a function that takes an AsyncSession
(and no session factory) never commits and never calls the gateway; only a function that takes
a session factory (async_sessionmaker) owns transactions and may call the gateway."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
GATEWAY_TYPES = {"PaymentGateway", "BillingRobo"}
# Protocol methods that only read their arguments (no network): any code may use them.
PURE_GATEWAY_METHODS = {"parse_notification", "describe_error"}


def _annotation(arg: ast.arg) -> str:
    return ast.unparse(arg.annotation) if arg.annotation is not None else ""


def _violations() -> list[str]:
    found: list[str] = []
    for path in sorted(APP.rglob("*.py")):
        if "sandbox" in path.parts:
            continue  # the simulator is not our payment code
        tree = ast.parse(path.read_text(), filename=str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
            kinds = {a.arg: _annotation(a) for a in args}
            takes_session = any(v.endswith("AsyncSession") for v in kinds.values())
            takes_factory = any("async_sessionmaker" in v for v in kinds.values())
            if not takes_session or takes_factory:
                continue
            gateways = {n for n, v in kinds.items() if v in GATEWAY_TYPES}
            where = f"{path.relative_to(APP.parent)}:{fn.lineno} {fn.name}"
            for node in ast.walk(fn):
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                    continue
                if node.func.attr == "commit":
                    found.append(f"{where} commits")
                target = node.func.value
                if (
                    isinstance(target, ast.Name)
                    and target.id in gateways
                    and node.func.attr not in PURE_GATEWAY_METHODS
                ):
                    found.append(f"{where} calls the gateway ({node.func.attr})")
    return found


def test_functions_that_take_a_session_never_commit_nor_call_the_gateway() -> None:
    assert _violations() == []


# What a router may not do itself: query, write or end a transaction (a service function does).
_SESSION_CALLS = {"execute", "scalar", "scalars", "commit", "rollback", "flush"}
_SESSION_NAMES = {"session", "db", "s"}


def _router_queries() -> list[str]:
    found: list[str] = []
    for path in sorted(APP.rglob("*.py")):
        if "sandbox" in path.parts:
            continue
        source = path.read_text()
        if "APIRouter(" not in source:
            continue
        where = path.relative_to(APP.parent)
        for node in ast.walk(ast.parse(source, filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                found.append(f"{where}:{node.lineno} imports {node.module}")
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            attr, target = node.func.attr, node.func.value
            named = isinstance(target, ast.Name) and target.id in _SESSION_NAMES
            if attr in _SESSION_CALLS or (named and attr in {"get", "add", "delete", "refresh"}):
                found.append(f"{where}:{node.lineno} calls .{attr}()")
    return found


def test_routers_never_query() -> None:
    assert _router_queries() == []
