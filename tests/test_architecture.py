"""The layers of the code, checked on its import graph (grimp reads every import: at the top, inside functions
and under ``TYPE_CHECKING``): adapters -> bot -> animegan, and no import cycle inside a layer."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import grimp
import pytest

PACKAGES = ("animegan", "bot", "adapters")
OUTWARD = [("bot", "adapters"), ("animegan", "bot"), ("animegan", "adapters")]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES)


def import_cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """Each strongly connected group of two or more modules of ``package`` (Tarjan's algorithm), sorted."""
    modules = sorted(module for module in graph.modules if module == package or module.startswith(package + "."))
    inside = set(modules)
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def imported_by(module: str) -> Iterable[str]:
        return sorted(graph.find_modules_directly_imported_by(module) & inside)

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in imported_by(module):
            if other not in index:
                visit(other)
                lowest[module] = min(lowest[module], lowest[other])
            elif other in on_stack:
                lowest[module] = min(lowest[module], index[other])
        if lowest[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return sorted(groups)


@pytest.mark.parametrize(("importer", "imported"), OUTWARD)
def test_no_layer_imports_one_above_it(graph: grimp.ImportGraph, importer: str, imported: str) -> None:
    chain = graph.find_shortest_chain(importer=importer, imported=imported, as_packages=True)
    assert chain is None, f"{importer} must not import {imported}: {' -> '.join(chain or ())}"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(graph: grimp.ImportGraph, package: str) -> None:
    assert import_cycles(graph, package) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: two modules importing each other (one only for types) are reported."""
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclic.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cyclic.a import B\nB = 1\n"
    )
    (package / "c.py").write_text("import cyclic.a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles(grimp.build_graph("cyclic", cache_dir=None), "cyclic") == [["cyclic.a", "cyclic.b"]]
