"""Every notebook in notebooks/ executes headless with tiny parameters (papermill).

Notebooks whose defaults are full-size get tiny overrides from PARAMS; any other notebook's
own defaults must already be tiny. generate.ipynb is tested by its owner's tests and skipped here.
"""

import json
import time
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SKIP = {"generate.ipynb"}
# Tiny overrides for notebooks whose "parameters" cell holds full-size defaults.
PARAMS = {
    "01_workbench.ipynb": {"quality": "test", "resolution": 96, "use_gpu": False},
    "02_explore_randomization.ipynb": {"pose_count": 200, "grid_count": 4, "quality": "test",
                                       "resolution": 64, "tile": 96, "use_gpu": False},
    "03_inspect_dataset.ipynb": {"count": 4, "quality": "test", "resolution": 96},
}
# Per notebook with PARAMS, on 2 busy cores: a guard against a notebook that quietly grows.
MAX_SECONDS = 300
CELL_TIMEOUT_S = 900


def _notebooks():
    return [p for p in sorted(NOTEBOOKS.glob("*.ipynb")) if p.name not in SKIP]


def test_every_notebook_has_one_parameters_cell():
    assert {p.name for p in _notebooks()} >= {"01_workbench.ipynb", "02_explore_randomization.ipynb",
                                               "03_inspect_dataset.ipynb", "04_train_baseline.ipynb"}
    for path in _notebooks():
        cells = json.loads(path.read_text())["cells"]
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        for name in PARAMS.get(path.name, {}):
            assert f"{name} =" in "".join(tagged[0]["source"]), f"{path.name}: no parameter {name}"


def test_workbench_notebooks_are_thin():
    """Logic lives in the package; a notebook cell only calls it."""
    for path in (NOTEBOOKS / name for name in PARAMS):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{path.name}: commit notebooks without outputs"
                lines = "".join(cell["source"]).splitlines()
                assert len(lines) <= 20, f"{path.name}: a {len(lines)}-line cell belongs in the package"
                assert not any(line.startswith(("def ", "class ")) for line in lines), path.name


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path):
    papermill = pytest.importorskip("papermill")
    pytest.importorskip("ipykernel")
    params = dict(PARAMS.get(path.name, {}))
    if "out_dir" in _parameter_names(path):
        params["out_dir"] = str(tmp_path / "out")
    t0 = time.perf_counter()
    papermill.execute_notebook(str(path), str(tmp_path / path.name), parameters=params,
                               kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False,
                               execution_timeout=CELL_TIMEOUT_S)
    elapsed = time.perf_counter() - t0
    print(f"{path.name}: {elapsed:.0f} s")
    if path.name in PARAMS:
        assert elapsed < MAX_SECONDS
    executed = json.loads((tmp_path / path.name).read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def _parameter_names(path):
    cells = json.loads(path.read_text())["cells"]
    source = "".join(next(c["source"] for c in cells if "parameters" in c["metadata"].get("tags", [])))
    return {line.split("=")[0].strip() for line in source.splitlines() if "=" in line}
