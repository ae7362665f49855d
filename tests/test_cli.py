"""Command line: bad input fails cleanly; a tiny run writes the documented layout."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ENV = dict(os.environ, PYTHONUNBUFFERED="1")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "replicantface", *args], capture_output=True,
                          text=True, env=ENV, cwd=cwd, timeout=600)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--count", "0"], "--count must be at least 1"),
        (["--count", "-3"], "--count must be at least 1"),
        (["--count", "2", "--preset", "nope"], "unknown preset 'nope'"),
        (["--count", "2", "--quality", "ultra"], "unknown --quality 'ultra'"),
        (["--count", "2", "--resolution", "8"], "--resolution must be in"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "ds"
    r = run("generate", "--out", str(out), *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert not out.exists()


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("generate", "--out", str(blocker / "ds"), "--count", "1")
    assert r.returncode == 2 and "not writable" in r.stderr
    assert blocker.read_text() == "x"


def test_bad_config_value(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[camera]\nshift_max = 3\n")
    r = run("generate", "--out", str(tmp_path / "ds"), "--count", "1", "--config", str(cfg))
    assert r.returncode == 2 and "shift_max = 3 is out of range" in r.stderr
    assert not (tmp_path / "ds").exists()


def test_generate_layout_and_regenerate_one_index(tmp_path):
    out = tmp_path / "ds"
    r = run("generate", "--out", str(out), "--count", "2", "--seed", "4", "--quality", "test",
            "--resolution", "64", "--cpu")
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["classes"]["BACKGROUND"] == 0 and meta["classes"]["FACEWEAR"] == 18
    assert meta["landmarks"]["count"] == 68
    names = sorted(p.name for p in out.iterdir())
    assert names == ["dataset.json", "face_000000.jpg", "face_000000.npz", "face_000000_mask.png",
                     "face_000001.jpg", "face_000001.npz", "face_000001_mask.png"]
    with np.load(out / "face_000001.npz") as npz:
        first = {k: npz[k] for k in npz.files}
    assert first["landmarks_2d"].shape == (68, 2) and first["landmarks_3d"].shape == (68, 3)
    assert first["modelview"].shape == (4, 4) and first["projection"].shape == (4, 4)
    assert first["gaze"].shape == (2, 3) and first["expression"].shape == (52,)
    json.loads(str(first["params"]))

    alone = tmp_path / "alone"
    r = run("generate", "--out", str(alone), "--count", "1", "--start", "1", "--seed", "4",
            "--quality", "test", "--resolution", "64", "--cpu")
    assert r.returncode == 0, r.stderr
    with np.load(alone / "face_000001.npz") as npz:
        for key in ("modelview", "vertices", "landmarks_2d", "pose_aflw", "bbox_face", "params"):
            np.testing.assert_array_equal(npz[key], first[key], err_msg=key)

    # A re-run skips complete samples.
    r = run("generate", "--out", str(out), "--count", "2", "--seed", "4", "--quality", "test",
            "--resolution", "64", "--cpu")
    assert r.returncode == 0 and "0 rendered, 2 already complete" in r.stdout
