"""The shape of the code, held by tests: layers that point inward, no import circle, modules
one can hold in one's head, and no rule of access decided in the web layer or a template."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

PACKAGES = ("app", "adapters", "ports")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """What a module imports when it is imported: top-level statements, not those under
    `if TYPE_CHECKING:` or inside functions."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in MODULES}


def test_no_module_imports_itself_back() -> None:
    graph = {name: _imports(path) for name, path in MODULES.items()}
    circles: list[list[str]] = []

    def visit(name: str, trail: list[str], done: set[str]) -> None:
        if name in trail:
            circles.append([*trail[trail.index(name):], name])
            return
        if name in done:
            return
        for imported in sorted(graph[name]):
            # A package's __init__ importing its own modules is no circle.
            if imported.startswith(name + "."):
                continue
            visit(imported, [*trail, name], done)
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        visit(name, [], done)
    assert circles == []


@pytest.mark.parametrize(("layer", "allowed"), [
    ("app.domain", ("app.domain",)),
    ("ports", ("ports", "app.domain")),
    ("app.services", ("app.services", "app.domain", "ports")),
])
def test_layers_point_inward(layer: str, allowed: tuple[str, ...]) -> None:
    wrong = {name: sorted(i for i in _imports(path) if not i.startswith(allowed))
             for name, path in MODULES.items() if name.startswith(layer)}
    assert {name: imported for name, imported in wrong.items() if imported} == {}


def test_only_the_container_imports_adapters() -> None:
    importers = {name for name, path in MODULES.items() if name.startswith("app")
                 and any(i.startswith("adapters") for i in _imports(path))}
    assert importers == {"app.container"}


def test_no_production_module_is_too_long_to_hold_in_ones_head() -> None:
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


# A role, a rank or a staff flag tested outside the access rule (showing a role's label is
# fine): pages ask `can`/`here` (app.domain.access's capabilities) instead.
_ROLE_TEST = re.compile(
    r"\b(me|principal|actor|user|u)\.role\s*(\.value\s*)?(==|!=|\bis\b|\bin\b)"
    r"|\bis_staff\b|\boutranks|\bis_admin\b|(==|!=|\bis\b)\s*Role\.")


def test_no_access_decision_in_the_web_layer_or_a_template() -> None:
    places = [*(PROJECT_ROOT / "app" / "web").rglob("*.py"),
              *(PROJECT_ROOT / "templates").rglob("*.html")]
    found = [f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
             for path in places for number, line in enumerate(path.read_text().splitlines(), 1)
             if _ROLE_TEST.search(line)]
    assert found == []
