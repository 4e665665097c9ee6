"""The examples in the docstrings run (against the bundled incident)."""
from __future__ import annotations

import doctest
import inspect

import pyarrow
import pytest

import mcp_forensics as mf


def documented():
    yield "mcp_forensics", mf
    for cls in (mf.Lake, mf.Rows, mf.Findings, mf.IngestSummary):
        yield cls.__name__, cls
        for name, member in inspect.getmembers(cls):
            if not name.startswith("_") and getattr(member, "__doc__", None):
                yield f"{cls.__name__}.{name}", member


EXAMPLES = [(n, o) for n, o in documented() if ">>>" in (o.__doc__ or "")]


def test_there_are_examples():
    assert len(EXAMPLES) >= 4, [n for n, _ in EXAMPLES]


@pytest.mark.parametrize("name,obj", EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_docstring_examples(name, obj, tmp_path, incident):
    globs = {"mf": mf, "Lake": mf.Lake, "pyarrow": pyarrow, "tmp": tmp_path, "lake": incident, "findings": incident.detect()}
    test = doctest.DocTestParser().get_doctest(obj.__doc__, globs, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0, f"{name}: {runner.failures} example(s) failed (output above)"
