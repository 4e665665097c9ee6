"""Notebook charts stay labelled (issue 15), checked from the cell sources.

Executing the notebooks (pytest --nbmake notebooks/) runs the assertions the
chart cells carry; this test only needs the sources, so it fails fast when a
chart cell loses its title, an axis label or its own label assertions, and
when notebook 03 loses its findings-over-time chart.
"""
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CHARTED = ["02-hunting.ipynb", "03-scheduled-detection.ipynb"]


def chart_cells(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and "plt.subplots(" in c.source]


@pytest.mark.parametrize("name", CHARTED)
def test_every_chart_is_titled_labelled_and_checks_itself(name):
    cells = chart_cells(name)
    assert cells, f"{name}: no chart"
    for src in cells:
        head = src.strip().splitlines()[0]
        for call in ("set_title(", "set_xlabel(", "set_ylabel("):
            assert call in src, f"{name}: the chart cell starting {head!r} has no {call}"
        assert re.search(r"assert .*get_xlabel\(\).*get_ylabel\(\)", src), (
            f"{name}: the chart cell starting {head!r} does not assert its axis labels")


def test_the_first_seen_chart_highlights_what_the_rule_flags():
    (src,) = [s for s in chart_cells("02-hunting.ipynb") if "first_seen" in s and "fsd" in s]
    assert "fsd.address" in src, "the highlighted domains should come from the rule's findings"
    assert "exfil" not in src, "the suspicious domain must not be hard-coded"
    assert "get_facecolor()" in src and "annotate(" in src


def test_notebook_03_charts_findings_per_run():
    (src,) = chart_cells("03-scheduled-detection.ipynb")
    assert "runs" in src and "severity" in src and "_findings" in src
