"""The typed stubs (_native.pyi) describe what the extension really has."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import mcp_forensics as mf
from mcp_forensics import _native

STUB = Path(mf.__file__).with_name("_native.pyi")


def stub_classes() -> dict[str, set[str]]:
    tree = ast.parse(STUB.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef) and not (n.name.startswith("__") and n.name not in ("__len__",))}
    return out


def test_the_stub_ships_with_the_package():
    assert STUB.is_file() and STUB.with_name("py.typed").is_file()


@pytest.mark.parametrize("name", ["Lake", "Rows", "Findings", "IngestSummary"])
def test_stub_members_match_the_extension(name):
    cls = getattr(_native, name)
    real = {n for n, _ in inspect.getmembers(cls) if not n.startswith("_") or n == "__len__"}
    if name == "Findings":  # inherited members are declared on Rows
        real -= {n for n, _ in inspect.getmembers(_native.Rows)}
    assert stub_classes()[name] == real


def test_every_exported_name_is_in_the_stub():
    tree = ast.parse(STUB.read_text())
    declared = {n.name for n in tree.body if isinstance(n, ast.ClassDef)} | {t.id for n in tree.body if isinstance(n, ast.AnnAssign) for t in [n.target]}
    assert set(mf.__all__) <= declared
