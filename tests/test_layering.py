"""How the package's modules may use each other, read from their source: the engine contract, and no private names
across modules."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import sdmodel
from sdmodel.engines import Engine
from sdmodel.simulate import ENGINES

PACKAGE = Path(sdmodel.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _private_uses(name: str, path: Path) -> list[str]:
    """``from sdmodel.x import _y`` and ``x._y`` where ``x`` is another sdmodel module, in one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases, found = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sdmodel"):
            for alias in node.names:
                if f"{node.module}.{alias.name}" in MODULES:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                elif alias.name.startswith("_") and node.module != name:
                    found.append(f"{path.name}:{node.lineno} imports {node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.name.startswith("sdmodel") and a.asname})
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and aliases.get(node.value.id, name) != name
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{path.name}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    found = [use for name, path in MODULES.items() for use in _private_uses(name, path)]
    assert found == []


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_engine_provides_the_engine_contract(name):
    module = importlib.import_module(ENGINES[name])
    assert isinstance(module, Engine)
    assert module.NAME == name
    assert module.member_runner is None or callable(module.member_runner)


ENGINE_LIBRARIES = {"pysd", "simlin"}
ENGINE_ADAPTERS = set(ENGINES.values())  # reached by name through sdmodel.simulate.engine_module


def _imported(path: Path) -> set[str]:
    """Every module a file imports, and for ``from a import b`` also ``a.b`` (b may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_the_engines_package_imports_an_engine():
    """PySD and Simlin, and the adapters over them, are imported in sdmodel/engines/ only; the rest of sdmodel asks
    sdmodel.simulate (prepare, model_info, engine_module)."""
    found = []
    for name, path in MODULES.items():
        if name == "sdmodel.engines" or name.startswith("sdmodel.engines."):
            continue
        for imported in sorted(_imported(path)):
            if imported.split(".")[0] in ENGINE_LIBRARIES or imported in ENGINE_ADAPTERS:
                found.append(f"{path.relative_to(PACKAGE.parent)} imports {imported}")
    assert found == []
