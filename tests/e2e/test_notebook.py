"""analysis/notebooks/scaling_laws.ipynb runs top to bottom in a real Jupyter kernel against a sweep on disk."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from support import REPO
from synthetic_sweep import write_sweep

NOTEBOOK = REPO / "analysis" / "notebooks" / "scaling_laws.ipynb"


@pytest.fixture(scope="session")
def synthetic_sweep_for_notebook(tmp_path_factory):
    """A synthetic IsoFLOP sweep (4 budgets x 5 sizes and five broken runs) written through scaling.core.records."""
    return write_sweep(tmp_path_factory.mktemp("notebook") / "synthetic_isoflop", n_sizes=5)


@pytest.fixture(scope="session")
def sweep_dir_for_notebook(request, synthetic_sweep_for_notebook):
    """The real small training sweep when the suite provides one (tests/conftest.py: ``tiny_real_sweep``), else the
    synthetic one."""
    try:
        return Path(request.getfixturevalue("tiny_real_sweep"))
    except pytest.FixtureLookupError:
        return synthetic_sweep_for_notebook


def run_notebook(sweep: Path, monkeypatch) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel inherits this process's environment: that is how the notebook receives its parameters
    monkeypatch.setenv("SWEEP_DIR", str(sweep))
    monkeypatch.setenv("N_BOOT", "6")
    monkeypatch.setenv("GRID", "small")
    monkeypatch.setenv("BUDGET", "1e19")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    return nb


def outputs(nb, kind: str) -> list:
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if kind == "png" and "image/png" in out.get("data", {}):
                found.append(out)
            elif kind == "text":
                found.append(out.get("text", "") + out.get("data", {}).get("text/plain", ""))
    return found


def check_ran_cleanly(nb, sweep: Path) -> str:
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    text = "\n".join(outputs(nb, "text"))
    assert f"analysing {sweep}" in text
    assert "compute-optimal allocation at C = 1e+19 FLOPs" in text
    # isoflop, loss against compute, residuals and the allocation figure always draw
    assert len(outputs(nb, "png")) >= 4
    return text


@pytest.mark.slow
def test_notebook_runs_cleanly_in_a_real_kernel_on_a_real_sweep(sweep_dir_for_notebook, monkeypatch):
    nb = run_notebook(sweep_dir_for_notebook, monkeypatch)  # raises CellExecutionError on any failing cell
    check_ran_cleanly(nb, sweep_dir_for_notebook)


@pytest.mark.slow
def test_notebook_fits_every_approach_on_a_full_isoflop_sweep(synthetic_sweep_for_notebook, monkeypatch):
    nb = run_notebook(synthetic_sweep_for_notebook, monkeypatch)
    text = check_ran_cleanly(nb, synthetic_sweep_for_notebook)
    # four budgets of five sizes support every approach: nothing may fall back to "not possible"
    assert "not possible on this sweep" not in text
    for name in ("Approach1Result(", "Approach2Result(", "Approach3Result(", "KaplanResult(", "RollingBacktest("):
        assert name in text
    assert len(outputs(nb, "png")) >= 5  # plus the L(N, D) contours
