"""The architecture, checked: no import cycles (lazy imports included), a typed function for every command.

The downward order of the layers and the rule that algorithms import
capabilities, not stores, are import-linter contracts in pyproject.toml, run
by `./dev test`; this module checks what those contracts do not.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import click
import grimp

import ocisift
from ocisift._cli.main import main


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def edges(m: str) -> set[str]:
        return graph.find_modules_directly_imported_by(m) & modules

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges(v):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges(v):
                found.append(sorted(component))

    for m in sorted(modules):
        if m not in index:
            connect(m)
    return found


def test_no_import_cycles_lazy_imports_included():
    graph = grimp.build_graph("ocisift", cache_dir=None)  # grimp reads every import statement, in functions too
    modules = set(graph.modules) - {"ocisift"}  # the facade re-exports everything, by design
    assert len(modules) > 40
    assert _cycles(graph, modules) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.b", imported="p.c")
    assert _cycles(graph, {"p.a", "p.b", "p.c"}) == [["p.a", "p.b"]]


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _commands(command, f"{prefix}{name} ")
        else:
            out.append(f"{prefix}{name}")
    return out


def test_every_command_has_a_typed_api_function():
    commands = _commands(main)
    assert {"pull", "copy", "untag", "gc", "login", "logout", "index create", "manifest get"} <= set(commands)
    named = {"manifest get": "manifest", "blob get": "blob"}
    for command in commands:
        function = getattr(ocisift, named.get(command, command.replace(" ", "_")))
        assert function.__module__ == "ocisift._api", command
        signature = inspect.signature(function)
        assert signature.return_annotation is not inspect.Signature.empty, command
        assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values()), command


def test_the_package_is_typed_and_its_facade_complete():
    assert (Path(ocisift.__file__).parent / "py.typed").is_file()
    for name in ocisift.__all__:
        assert getattr(ocisift, name) is not None, name
