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


def test_poses_command_is_fast_and_plots(tmp_path):
    out = tmp_path / "h.png"
    r = run("poses", "--preset", "pitch-bias", "--count", "20000", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 10_000
    assert "label pitch -5" in r.stdout  # the pitch-bias preset's ~5 deg downward bias


def test_bad_hdri_dir(tmp_path):
    r = run("generate", "--out", str(tmp_path / "ds"), "--count", "1", "--hdri-dir", str(tmp_path / "nope"))
    assert r.returncode == 2 and "--hdri-dir" in r.stderr and not (tmp_path / "ds").exists()


def test_variation_set_renders_and_exports(tmp_path):
    out = tmp_path / "var"
    r = run("generate", "--out", str(out), "--count", "2", "--variations", "2", "--seed", "3",
            "--quality", "test", "--resolution", "128", "--cpu")
    assert r.returncode == 0, r.stderr
    names = sorted(p.stem for p in out.glob("*.npz"))
    assert names == [f"face_{i:06d}_{j:02d}" for i in range(2) for j in range(3)]
    for i in range(2):
        poses = [np.load(out / f"face_{i:06d}_{j:02d}.npz")["pose_aflw"] for j in range(3)]
        np.testing.assert_allclose(np.degrees(poses), np.degrees([poses[0]] * 3), atol=0.01)
    r = run("export", "npz-sequences", str(out), str(tmp_path / "seq"))
    assert r.returncode == 0, r.stderr
    seqs = sorted((tmp_path / "seq").glob("*.npz"))
    assert len(seqs) == 2
    with np.load(seqs[0]) as seq:
        assert seq["colorImages"].shape[0] == 3 and seq["headPose"].shape == (3, 3)
    r = run("export", "300wlp", str(out), str(tmp_path / "var.zip"), "--min-face-px", "0")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args, message", [
    (["--count", "0"], "--count must be in [1, 1024]"),
    (["--category", "hats"], "unknown --category 'hats'; choose from random, hair"),
    (["--resolution", "8"], "--resolution must be in [32, 4096]"),
])
def test_gallery_bad_input(tmp_path, args, message):
    out = tmp_path / "g" / "gallery.jpg"
    r = run("gallery", "--out", str(out), *args)
    assert r.returncode == 2 and message in r.stderr
    assert not out.exists()


def test_gallery_writes_a_sheet(tmp_path):
    from PIL import Image

    out = tmp_path / "gallery.png"
    r = run("gallery", "--out", str(out), "--category", "skin", "--count", "2", "--quality", "test",
            "--resolution", "64", "--columns", "2", "--cpu")
    assert r.returncode == 0, r.stderr[-2000:]
    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (64, 128, 3)
    # Two different faces, not two blank tiles.
    assert sheet[:, :64].std() > 5 and np.abs(sheet[:, :64].astype(int) - sheet[:, 64:]).mean() > 3


@pytest.mark.parametrize("args, message", [
    (["--columns", "0"], "--columns must be in [1, 1024], got 0"),
    (["--columns", "-2"], "--columns must be in [1, 1024], got -2"),
    (["--tile", "0"], "--tile must be in [1, 4096], got 0"),
    (["--tile", "-5"], "--tile must be in [1, 4096], got -5"),
    (["--limit", "0"], "--limit must be at least 1, got 0"),
    (["--limit", "-1"], "--limit must be at least 1, got -1"),
    (["--out", "{o}/sub/x"], "--out must end in .png, .jpg"),
    (["--out", "{o}/sub/x.txt"], "--out must end in .png, .jpg"),
    (["--out", "{o}"], "--out must end in .png, .jpg"),
    (["--out", "{o}/dir.png"], "is a folder; name a file"),
    (["--out", "{o}/afile/x.png"], "afile is a file, not a folder"),
])
def test_sheet_bad_input_exits_2_and_writes_nothing(raw_dataset, tmp_path, capsys, args, message):
    from replicantface.cli import main

    o = tmp_path / "o"
    o.mkdir()
    (o / "dir.png").mkdir()
    (o / "afile").write_text("x")
    args = [a.replace("{o}", str(o)) for a in args]
    assert main(["sheet", str(raw_dataset), "--out", str(o / "sub" / "s.png"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert sorted(os.listdir(o)) == ["afile", "dir.png"] and not os.listdir(o / "dir.png")


def test_sheet_writes_the_image(raw_dataset, tmp_path, capsys):
    from PIL import Image

    from replicantface.cli import main

    out = tmp_path / "sub" / "s.jpg"
    assert main(["sheet", str(raw_dataset), "--out", str(out), "--tile", "64", "--limit", "3",
                 "--columns", "2"]) == 0
    assert Image.open(out).size == (128, 128)
    assert os.listdir(out.parent) == ["s.jpg"]


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "--seed must be 0 or more, got -1"),
    (["--count", "10000000000000"], "--count must be in [1, 1000000]"),
    (["--count", "0"], "--count must be in [1, 1000000]"),
    (["--out", "{o}/afile/h.png"], "afile is a file, not a folder"),
])
def test_poses_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, message):
    from replicantface.cli import main

    o = tmp_path / "o"
    o.mkdir()
    (o / "afile").write_text("x")
    args = [a.replace("{o}", str(o)) for a in args]
    assert main(["poses", "--count", "10", "--out", str(o / "sub" / "h.png"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert os.listdir(o) == ["afile"]
