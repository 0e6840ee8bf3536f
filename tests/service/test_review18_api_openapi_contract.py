"""docs/openapi.json, the machine-readable contract of the job API, held to the code: it is a valid OpenAPI
3.1 document; its paths are exactly the router's routes (read from `service.app.ROUTES`); and the error codes
it lists per operation and status are exactly those the code can raise for that route, derived from the
source.

How the codes are derived (`CodeIndex`): every `ApiError(<status>, "<code>", ...)` in service/, and every
ApiError subclass's `super().__init__(<status>, "<code>")`, is a (status, code) of the function that makes it.
A route's codes are those of its handler and of every function it calls, followed through the call graph:
plain names and imported names, `module.function`, and `obj.method` where `obj`'s class is known from an
annotation, a constructor or a callee's return annotation (`app.registry.get(...)` is `Registry.get`, whose
`Workflow` has `validate_inputs`). Codes raised inside a `try` whose handler catches them (ApiError,
Exception, or that subclass) without a bare `raise` are not the caller's. To every route come the dispatcher's
(405, 413, and 404 `not_found` for a path its pattern refuses) and the runtimes' edge refusals
(local_server.py's ApiErrors, the `{"error": {"code": ...}}` answers built in app.py and cloudflare_entry.py);
to the upload route, the Worker's refusal of an upload its isolate has no room to read (`worker_upload_codes`).
A call on the Database port may raise StorageFull, which App.handle answers itself (its `except
StorageFull`): a route whose handler lets such a call's error out gets those codes too (`storage_full_codes`).
What a data-dependent condition rules out is listed in `UNREACHABLE`, each with its reason, and checked to be
derived at all (so it cannot rot)."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from service import app as service_app
from service.app import ROUTES

ROOT = Path(__file__).resolve().parents[2]
DOC = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
SERVICE = Path(service_app.__file__).resolve().parent  # the source of the service that is imported
METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")
DATABASE_PORT = "service.ports.Database."
# Not a code: a call on the Database port, which may raise StorageFull (service/ports.py). App.handle answers
# that with what its `except StorageFull` gives, for a route whose handler lets such a call's error out.
DATABASE_CALL = (0, "<a Database port call>")


def _catches(names: set[str], api_codes: set[tuple[int, str]], item: tuple[int, str]) -> bool:
    """Whether an except clause catching `names` (and ApiError subclasses with `api_codes`) catches `item`."""
    if names & {"Exception", "BaseException"} or item in api_codes:
        return True
    return "StorageFull" in names if item == DATABASE_CALL else "ApiError" in names


# (operation, status, code) the call graph reaches but a condition on the request's data rules out.
UNREACHABLE = {
    ("POST /api/runpod/webhook", 409, "runpod_job_taken"): (
        "Transitions._refuse_taken raises RunPodIdTaken only for source == 'recover'; a webhook is recorded "
        "ignored (200, reason runpod_job_taken)"
    ),
    ("POST /api/cancel/{job_id}", 409, "runpod_job_taken"): (
        "as for the webhook: the cancel applies with source 'cancel'"
    ),
}


def template(pattern: re.Pattern[str]) -> str:
    """`^/api/status/(?P<job_id>[^/]{1,200})$` -> `/api/status/{job_id}`."""
    text = pattern.pattern.removeprefix("^").removesuffix("$")
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", text)


def router_operations() -> set[tuple[str, str]]:
    """(method, path template) for every route; a GET route answers HEAD too (App._route)."""
    ops = set()
    for method, pattern, _ in ROUTES:
        for verb in ("get", "head") if method == "GET" else (method.lower(),):
            ops.add((verb, template(pattern)))
    return ops


def document_operations() -> set[tuple[str, str]]:
    return {(verb, path) for path, item in DOC["paths"].items() for verb in item if verb in METHODS}


def node_ref_parts(ref: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in ref.removeprefix("#/").split("/")]


def deref(node: dict[str, Any]) -> dict[str, Any]:
    """`node` with its `$ref` (a document-local one) followed."""
    while "$ref" in node:
        target: Any = DOC
        for part in node_ref_parts(node["$ref"]):
            target = target[part]
        node = target
    return node


def enums_of_code(schema: Any) -> Iterator[list[str]]:
    """The `enum`s of `error.code` in an error response's schema (through allOf and $ref)."""
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        yield from enums_of_code(deref(schema))
    for part in schema.get("allOf", []):
        yield from enums_of_code(part)
    code = schema.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
    if "enum" in code:
        yield code["enum"]


def documented_codes(verb: str, path: str) -> set[tuple[int, str]]:
    codes = set()
    for status, response in DOC["paths"][path][verb]["responses"].items():
        response = deref(response)
        if verb == "head":  # HEAD answers GET's statuses without a body: its codes are GET's
            continue
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        for enum in enums_of_code(schema):
            codes |= {(int(status), code) for code in enum}
    return codes


# --- the code's side ----------------------------------------------------------------------------------------


def _annotation_names(node: ast.expr | None) -> list[str]:
    """The plain names an annotation mentions (`App`, `Workflow | None` -> Workflow, `"App"`)."""
    if node is None:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _annotation_names(ast.parse(node.value, mode="eval").body)
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.BinOp):
        return _annotation_names(node.left) + _annotation_names(node.right)
    return []


def _statuses_and_codes(status: ast.expr, code: ast.expr) -> set[tuple[int, str]]:
    """An ApiError's (status, code) pairs: literals, or two IfExps on one test, paired branch by branch."""

    def literal(node: ast.expr) -> list[Any]:
        if isinstance(node, ast.Constant):
            return [node.value]
        if isinstance(node, ast.IfExp):
            return literal(node.body) + literal(node.orelse)
        raise AssertionError(
            f"an ApiError whose status or code is no literal: {ast.unparse(node)}; teach "
            "the contract test to read it"
        )

    statuses, codes = literal(status), literal(code)
    if len(statuses) == len(codes):
        return set(zip(statuses, codes, strict=True))
    return {(s, c) for s in statuses for c in codes}


class CodeIndex:
    """The service's functions, classes and imports, for the call-graph walk of the module docstring."""

    def __init__(self) -> None:
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self.names: dict[
            str, dict[str, str]
        ] = {}  # module -> local name -> qualified name (module or object)
        self.owner: dict[str, str] = {}  # function qualname -> module
        for path in sorted(SERVICE.glob("*.py")):
            module = f"service.{path.stem}"
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = self.names.setdefault(module, {})
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("service"):
                    for alias in node.names:
                        names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self._add_function(module, f"{module}.{node.name}", node)
                elif isinstance(node, ast.ClassDef):
                    qual = f"{module}.{node.name}"
                    self.classes[qual] = node
                    names[node.name] = qual
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            self._add_function(module, f"{qual}.{item.name}", item)
        self._memo: dict[str, set[tuple[int, str]]] = {}

    def _add_function(self, module: str, qual: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions[qual] = node
        self.owner[qual] = module
        if qual.count(".") == 2:
            self.names[module][node.name] = qual

    def _class(self, module: str, name: str) -> str | None:
        qual = self.names[module].get(name)
        return qual if qual in self.classes else None

    def is_api_error(self, qual: str) -> bool:
        node = self.classes.get(qual)
        if node is None:
            return False
        module = qual.rsplit(".", 1)[0]
        return any(
            isinstance(b, ast.Name)
            and (b.id == "ApiError" or self.is_api_error(self.names[module].get(b.id, "")))
            for b in node.bases
        )

    def attribute_type(self, cls: str, attr: str) -> str | None:
        """The class of `cls().attr`: a class-level annotation, or `self.attr = <param or constructor>` in
        __init__."""
        node = self.classes[cls]
        module = cls.rsplit(".", 1)[0]
        for item in node.body:
            if (
                isinstance(item, ast.AnnAssign)
                and isinstance(item.target, ast.Name)
                and item.target.id == attr
            ):
                return next(
                    filter(None, (self._class(module, n) for n in _annotation_names(item.annotation))), None
                )
        init = self.functions.get(f"{cls}.__init__")
        if init is None:
            return None
        params = {a.arg: a.annotation for a in init.args.args}
        for stmt in ast.walk(init):
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(target := stmt.targets[0], ast.Attribute)
                and target.attr == attr
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                value = stmt.value
                if isinstance(value, ast.Name) and value.id in params:
                    return next(
                        filter(None, (self._class(module, n) for n in _annotation_names(params[value.id]))),
                        None,
                    )
                if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
                    return self._class(module, value.func.id)
        return None

    def codes(self, qual: str) -> set[tuple[int, str]]:
        """The (status, code) pairs function `qual` can raise, through what it calls."""
        if qual in self._memo:
            return self._memo[qual]
        self._memo[qual] = set()  # a cycle adds nothing new
        node = self.functions[qual]
        module = self.owner[qual]
        cls = qual.rsplit(".", 1)[0] if qual.rsplit(".", 1)[0] in self.classes else None
        env: dict[str, str] = {}
        for arg in node.args.args:
            if arg.arg == "self" and cls:
                env["self"] = cls
            for name in _annotation_names(arg.annotation):
                if found := self._class(module, name):
                    env[arg.arg] = found
        found = self._block(node.body, module, cls, env)
        self._memo[qual] = found
        return found

    def _block(
        self, body: list[ast.stmt], module: str, cls: str | None, env: dict[str, str]
    ) -> set[tuple[int, str]]:
        found: set[tuple[int, str]] = set()
        for stmt in body:
            if isinstance(stmt, ast.Try):
                inner = self._block(stmt.body, module, cls, env)
                for handler in stmt.handlers:
                    names, caught = self._caught(handler, module)
                    reraises = any(isinstance(n, ast.Raise) and n.exc is None for n in ast.walk(handler))
                    if not reraises:
                        inner = {c for c in inner if not _catches(names, caught, c)}
                    found |= self._block(handler.body, module, cls, env)
                found |= inner | self._block(stmt.orelse + stmt.finalbody, module, cls, env)
                continue
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
            ) and (kind := self._type_of(stmt.value, module, env)):
                env[stmt.targets[0].id] = kind
            found |= self._statement(stmt, module, cls, env)
        return found

    def _statement(
        self, stmt: ast.stmt, module: str, cls: str | None, env: dict[str, str]
    ) -> set[tuple[int, str]]:
        nested = [
            getattr(stmt, f)
            for f in ("body", "orelse", "finalbody")
            if isinstance(getattr(stmt, f, None), list)
        ]
        if nested and not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found = set()
            for field_name, value in ast.iter_fields(stmt):
                if field_name not in ("body", "orelse", "finalbody", "handlers"):
                    for node in ast.walk(value) if isinstance(value, ast.AST) else ():
                        found |= self._call(node, module, cls, env)
            for block in nested:
                found |= self._block(block, module, cls, env)
            return found
        found = set()
        for node in ast.walk(stmt):
            found |= self._call(node, module, cls, env)
        return found

    def _caught(self, handler: ast.ExceptHandler, module: str) -> tuple[set[str], set[tuple[int, str]]]:
        """(the names the handler catches, the codes of the ApiError subclasses among them)."""
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names: set[str] = set()
        caught: set[tuple[int, str]] = set()
        for kind in types:
            name = (
                kind.id
                if isinstance(kind, ast.Name)
                else kind.attr
                if isinstance(kind, ast.Attribute)
                else ""
            )
            names.add("Exception" if kind is None else name)
            qual = self.names[module].get(name) or (
                self.names[module].get(kind.value.id, "") + "." + name
                if isinstance(kind, ast.Attribute) and isinstance(kind.value, ast.Name)
                else ""
            )
            if self.is_api_error(qual):
                caught |= self.codes(f"{qual}.__init__")
        return names, caught

    def _type_of(self, node: ast.expr, module: str, env: dict[str, str]) -> str | None:
        if isinstance(node, ast.Await):
            return self._type_of(node.value, module, env)
        if isinstance(node, ast.Name):
            return env.get(node.id)
        if isinstance(node, ast.Attribute):
            owner = self._type_of(node.value, module, env)
            return self.attribute_type(owner, node.attr) if owner else None
        if isinstance(node, ast.Call):
            target = self._target(node, module, env)
            if target in self.classes:
                return target
            if target in self.functions:
                return next(
                    filter(
                        None,
                        (
                            self._class(self.owner[target], n)
                            for n in _annotation_names(self.functions[target].returns)
                        ),
                    ),
                    None,
                )
        return None

    def _target(self, call: ast.Call, module: str, env: dict[str, str]) -> str | None:
        func = call.func
        if isinstance(func, ast.Name):
            return self.names[module].get(func.id)
        if isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id not in env:
                imported = self.names[module].get(func.value.id)  # `jobs.insert`: a service module
                if imported:
                    return f"{imported}.{func.attr}"
            owner = self._type_of(func.value, module, env)
            if owner:
                return f"{owner}.{func.attr}"
        return None

    def _call(self, node: ast.AST, module: str, cls: str | None, env: dict[str, str]) -> set[tuple[int, str]]:
        if not isinstance(node, ast.Call):
            return set()
        func = node.func
        if (
            isinstance(func, ast.Name)
            and func.id == "ApiError"
            or (
                isinstance(func, ast.Attribute)
                and func.attr == "__init__"
                and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name)
                and func.value.func.id == "super"
                and cls is not None
                and self.is_api_error(cls)
            )
        ):
            return _statuses_and_codes(node.args[0], node.args[1])
        target = self._target(node, module, env)
        if target and target.startswith(DATABASE_PORT):
            return {DATABASE_CALL}
        if target in self.classes and self.is_api_error(target):
            return self.codes(f"{target}.__init__")
        if target in self.functions:
            return self.codes(target)
        return set()


def edge_codes() -> set[tuple[int, str]]:
    """What the runtimes answer around the app (local_server.py's ApiErrors), and the error answers built as
    JSON outside ApiError (`{"error": {"code": "<literal>"}}` in a json_response(<status>, ...))."""
    found: set[tuple[int, str]] = set()
    tree = ast.parse((SERVICE / "local_server.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "ApiError":
            found |= _statuses_and_codes(node.args[0], node.args[1])
    for name in ("app.py", "cloudflare_entry.py"):
        tree = ast.parse((SERVICE / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "json_response"
                and isinstance(node.args[0], ast.Constant)
            ):
                continue
            for inner in ast.walk(node.args[1]):
                if isinstance(inner, ast.Dict):
                    pairs = {
                        k.value: v
                        for k, v in zip(inner.keys, inner.values, strict=True)
                        if isinstance(k, ast.Constant)
                    }
                    if isinstance(pairs.get("code"), ast.Constant):
                        found.add((node.args[0].value, pairs["code"].value))
    return found


INDEX = CodeIndex()


def storage_full_codes() -> set[tuple[int, str]]:
    """What App.handle answers for a StorageFull out of a handler: the codes of its `except StorageFull`."""
    handle = INDEX.functions["service.app.App.handle"]
    env = {"self": "service.app.App"}
    found: set[tuple[int, str]] = set()
    for node in ast.walk(handle):
        if isinstance(node, ast.ExceptHandler) and "StorageFull" in INDEX._caught(node, "service.app")[0]:
            found |= INDEX._block(node.body, "service.app", "service.app.App", env)
    return found


def derived_codes(verb: str, path: str) -> set[tuple[int, str]]:
    [handler] = [
        h
        for method, pattern, h in ROUTES
        if template(pattern) == path and method.lower() == ("get" if verb == "head" else verb)
    ]
    codes = INDEX.codes(f"{handler.__module__}.{handler.__qualname__}")
    if DATABASE_CALL in codes:
        codes = (codes - {DATABASE_CALL}) | storage_full_codes()
    dispatcher = INDEX.codes("service.app.App._dispatch")
    if "{" not in path:  # a literal path matched its pattern: no route-miss 404 for it
        dispatcher = dispatcher - {(404, "not_found")}
    return codes | dispatcher | edge_codes() | worker_upload_codes(verb, path)


def worker_upload_codes(verb: str, path: str) -> set[tuple[int, str]]:
    """What the Worker's entry answers, before the app, for an upload its isolate has no room to read
    (cloudflare_entry._uploads_busy): only for a request App.is_upload holds, a POST to the upload route."""
    if (verb, path) != ("post", service_app.INPUTS_PATH):
        return set()
    return INDEX.codes("service.cloudflare_entry._uploads_busy")


OPERATIONS = sorted(document_operations())


def test_the_document_is_a_valid_openapi_3_1_document() -> None:
    assert DOC["openapi"].startswith("3.1.")
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in OpenAPIV31SpecValidator(DOC).iter_errors()
    ]
    assert not errors, errors


def test_every_route_of_the_router_is_documented_and_every_documented_path_is_a_route() -> None:
    router, documented = router_operations(), document_operations()
    assert router - documented == set(), (
        f"routes missing from docs/openapi.json: {sorted(router - documented)}"
    )
    assert documented - router == set(), f"documented but not routed: {sorted(documented - router)}"


@pytest.mark.parametrize(("verb", "path"), OPERATIONS, ids=[f"{v} {p}" for v, p in OPERATIONS])
def test_path_parameters_are_the_routes_own_and_a_valid_value_is_routed(verb: str, path: str) -> None:
    [pattern] = {p for m, p, _ in ROUTES if template(p) == path}
    operation = DOC["paths"][path][verb]
    params = [deref(p) for p in operation.get("parameters", [])]
    in_path = {p["name"]: p for p in params if p["in"] == "path"}
    assert set(in_path) == set(pattern.groupindex)
    samples = {"job_id": "0123456789abcdef0123456789abcdef", "key": f"results/{'a' * 32}/0.png"}
    concrete = path.format(**{name: samples[name] for name in in_path})
    assert pattern.match(concrete), (path, concrete)
    for name, param in in_path.items():  # the documented pattern accepts what the route serves
        assert re.search(param["schema"]["pattern"], samples[name]), name


@pytest.mark.parametrize(("verb", "path"), OPERATIONS, ids=[f"{v} {p}" for v, p in OPERATIONS])
def test_documented_error_codes_are_exactly_those_the_code_can_give_for_the_route(
    verb: str, path: str
) -> None:
    name = f"{verb.upper()} {path}"
    if verb == "head":  # HEAD answers GET's statuses, bodiless: every GET status is listed for HEAD too
        get = DOC["paths"][path]["get"]["responses"]
        assert set(DOC["paths"][path]["head"]["responses"]) == set(get)
        return
    derived = derived_codes(verb, path)
    excluded = {(status, code) for (op, status, code) in UNREACHABLE if op == name}
    assert excluded <= derived, (
        f"UNREACHABLE lists {excluded - derived} for {name}, which the code no longer derives"
    )
    expected, documented = derived - excluded, documented_codes(verb, path)
    assert expected - documented == set(), (
        f"{name}: the code gives, the document does not list: {sorted(expected - documented)}"
    )
    assert documented - expected == set(), (
        f"{name}: the document lists, the code never gives: {sorted(documented - expected)}"
    )


def test_the_code_index_follows_calls_through_modules_methods_and_subclasses() -> None:
    # The walk's reach, on what the create route is known to give (so a blind index cannot pass the test above
    # by finding nothing on either side).
    create = INDEX.codes("service.routes.create_job")
    assert {
        (429, "queue_full"),
        (400, "missing_input"),
        (400, "unknown_workflow"),
        (422, "idempotency_key_reused"),
        (413, "inputs_too_large"),
        (400, "invalid_json"),
        (401, "unauthorized"),
    } <= create
    # a code caught and converted is not the caller's: recover's parse of RunPod's answer becomes a 502
    assert (400, "invalid_payload") not in INDEX.codes("service.recover.recover_job")
    assert (502, "runpod_bad_answer") in INDEX.codes("service.recover.recover_job")
