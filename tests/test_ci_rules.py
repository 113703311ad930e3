"""CI cannot go green without the browser: with `CI` set, a missing Chromium or slider asset fails the
browser tests with a sentence; on a person's machine they skip. And the test script looks where they look."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

E2E_PROBE = '''
from tests.e2e.conftest import require_assets
require_assets()

def test_probe():
    pass
'''


def run_probe(tmp_path: Path, env: dict[str, str], chromium: str) -> subprocess.CompletedProcess:
    """pytest on a one-test browser module, with the Chromium path pointed at `chromium`."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(E2E_PROBE.replace("from tests.e2e.conftest import require_assets",
                                       "import tests.e2e.conftest as c\n"
                                       f"c.CHROMIUM = c.Path({chromium!r})\n"
                                       "from tests.e2e.conftest import require_assets"))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           "--rootdir", str(tmp_path), str(probe)],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def base_env():
    import os

    return {k: v for k, v in os.environ.items() if k != "CI"}


def test_on_ci_a_missing_browser_fails_the_run_with_a_sentence(tmp_path, base_env):
    got = run_probe(tmp_path, {**base_env, "CI": "true"}, "/nonexistent/chromium")
    assert got.returncode != 0, got.stdout
    assert "chromium is not installed" in got.stdout and "CI must run the browser tests" in got.stdout
    assert "skipped" not in got.stdout.splitlines()[-1]


def test_off_ci_a_missing_browser_skips(tmp_path, base_env):
    got = run_probe(tmp_path, base_env, "/nonexistent/chromium")
    assert got.returncode in (0, 5) and "1 skipped" in got.stdout.splitlines()[-1], got.stdout  # 5: none ran


def test_the_test_script_checks_the_path_the_browser_tests_launch():
    from tests.e2e.conftest import CHROMIUM

    script = (ROOT / "scripts" / "test.sh").read_text()
    assert f"[ -x {CHROMIUM} ]" in script
    assert "command -v chromium" not in script


# --- no import circle under services/ -------------------------------------------------------------------

def service_imports() -> dict[str, set[str]]:
    """Module → the services modules it imports (at the top or inside a function), from the source of
    services/*.py and services/engines/*.py. A submodule's import of its own package's parts is not a
    circle through the package: only the module an import statement names counts."""
    paths = sorted((ROOT / "services").glob("*.py")) + sorted((ROOT / "services" / "engines").glob("*.py"))
    names = {}
    for path in paths:
        parts = path.relative_to(ROOT).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in names.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up `level - 1` packages
                    base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1],
                                     *([node.module] if node.module else [])])
                found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in names else base for alias in node.names}
        graph[name] = {target for target in found if target in names and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle in the graph, as the modules along it with the first repeated at the end; None if none."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph.get(node, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    return next((cycle for node in sorted(graph) if (cycle := visit(node))), None)


def test_the_cycle_finder_finds_a_circle_and_passes_a_line():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_under_services_imports_its_importer():
    graph = service_imports()
    assert {"services.items", "services.store"} <= graph["services.history"]  # the parse sees imports
    assert "services.engines.base" in graph["services.engines.qwen_edit"]
    assert not any(target.startswith("services") for target in graph["services.items"])  # the leaf
    cycle = find_cycle(graph)
    assert cycle is None, "an import circle: " + " -> ".join(cycle)


# --- no sentence for a person under services/ -----------------------------------------------------------

LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
# Errors whose message is for a programmer (a wrong argument) or for the app's owner (a setting that cannot
# work, read in the log and quoted under the settings notice), never for the person using the app.
PROGRAMMER_OR_OWNER_ERRORS = {"ValueError", "TypeError", "ConfigError", "ConfigurationError"}
# Text that is not for a person at all: (module, constant) pairs, each with its reason.
NOT_FOR_A_PERSON = {
    ("services/novita.py", "EDIT_INSTRUCTION"),  # the instruction Novita's model reads around the prompt
}


def _text(node: ast.AST) -> str | None:
    """A string literal's text; an f-string's with "{}" for each value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
    return None


def _strings_in(node: ast.AST) -> set[int]:
    return {id(each) for each in ast.walk(node) if _text(each) is not None}


def _own_nodes(scope: ast.AST) -> list[ast.AST]:
    """The nodes of a module or function, not those of the functions defined inside it."""
    nodes, todo = [], list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        nodes.append(node)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            todo.extend(ast.iter_child_nodes(node))
    return nodes


def _called(node: ast.Call) -> tuple[str | None, str | None]:
    """(owner, name) of a call: `log.info(...)` is ("log", "info"), `config.ConfigError(...)` ("config",
    "ConfigError"), `ValueError(...)` (None, "ValueError")."""
    func = node.func
    if isinstance(func, ast.Attribute):
        return (func.value.id if isinstance(func.value, ast.Name) else None), func.attr
    return None, func.id if isinstance(func, ast.Name) else None


def sentences_for_a_person(path: Path) -> list[tuple[int, str]]:
    """The sentences meant for a person in one module: every string literal (an f-string counts, its values
    as "{}") that ends with ".", "?" or "!" straight after a word and has more than four words. Not counted: docstrings; what is
    passed to a log call (`log.<level>(...)`, `logging.<level>(...)`); the message of a raised ValueError,
    TypeError, ConfigError or ConfigurationError, written in the raise or bound to a name the raise uses in
    the same function (`msg = "…"; raise ValueError(msg)`); the constants in NOT_FOR_A_PERSON."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = path.relative_to(ROOT).as_posix()
    skip: set[int] = set()
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and _text(body[0].value) is not None):
            skip.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.Call):
            owner, name = _called(node)
            if owner in ("log", "logger", "logging") and name in LOG_METHODS:
                skip |= set().union(*map(_strings_in, [*node.args, *(k.value for k in node.keywords)]))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and (module, t.id) in NOT_FOR_A_PERSON
                                                for t in node.targets):
            skip |= _strings_in(node.value)
    for scope in scopes:
        inner = _own_nodes(scope)
        raised: set[str] = set()
        for node in inner:
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                if _called(node.exc)[1] in PROGRAMMER_OR_OWNER_ERRORS:
                    for arg in node.exc.args:
                        skip |= _strings_in(arg)
                        raised |= {each.id for each in ast.walk(arg) if isinstance(each, ast.Name)}
        for node in inner:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in raised for t in node.targets):
                skip |= _strings_in(node.value)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip |= {id(part) for part in node.values}  # its pieces are judged as one string
    for node in ast.walk(tree):
        text = _text(node)
        if text is None or id(node) in skip:
            continue
        stripped = text.strip()
        if re.search(r"\S[.?!]$", stripped) and len(stripped.split()) > 4:  # "id = ?" is SQL, not a question
            found.append((node.lineno, stripped))
    return found


def test_the_sentence_finder_tells_a_sentence_from_a_log_line_and_a_programmers_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    module = tmp_path / "sample.py"
    module.write_text('''"""A docstring is not a sentence for anyone, even with a full stop."""
import logging
log = logging.getLogger(__name__)
SAID = "Your photo was turned upright by this app."
SHORT = "Done."


def f(name):
    """Neither is a function's."""
    log.warning("The store could not be read (%s); it is skipped.", name)
    msg = f"size must be two whole numbers, not {name!r}."
    raise ValueError(msg)


def g(name):
    return f"{name} can't be opened: it looks damaged. Export it again."
''')
    assert [line for line, _ in sentences_for_a_person(module)] == [4, 16]


def test_no_module_under_services_holds_a_sentence_for_a_person():
    found = {path.relative_to(ROOT).as_posix(): sentences
             for path in sorted((ROOT / "services").rglob("*.py")) if (sentences := sentences_for_a_person(path))}
    assert not found, ("sentences for a person belong in components/messages.py (services raise or keep a kind "
                       f"and its facts): {found}")
