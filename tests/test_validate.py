"""``replicantface validate``: a sound dataset passes; each kind of damage is named. No bpy."""

import json
import os
import subprocess
import sys

import numpy as np

from replicantface import dataset
from replicantface.cli import main
from replicantface.config import load_preset
from replicantface.validate import validate_dataset

SIZE = 48
SEED = 5


def fake_labels(index: int, variation: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """A sample whose labels agree with its mask: a skin disc with the landmarks inside it."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[(xx - 24) ** 2 + (yy - 24) ** 2 < 15**2] = 1  # SKIN
    mask[40:, :] = 15  # CLOTHING
    rgb = np.dstack([mask * 10, mask * 5, np.full_like(mask, 90)]).astype(np.uint8)
    angle = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    lm2 = np.stack([24 + 8 * np.cos(angle), 24 + 8 * np.sin(angle)], axis=1)
    labels = {
        "modelview": np.eye(4), "projection": np.eye(4),
        "resolution": np.array([SIZE, SIZE], np.int32),
        "vertices": np.zeros((10, 3), np.float32), "vertex_indices": np.arange(10, dtype=np.int32),
        "landmarks_3d": np.zeros((68, 3)), "landmarks_2d": lm2, "landmarks_depth": np.ones(68),
        "landmarks_visible": np.ones(68, bool), "pose_aflw": np.zeros(3),
        "bbox_face": np.array([9.0, 9.0, 39.0, 39.0]), "gaze": np.tile([0.0, 0.0, 1.0], (2, 1)),
        "expression": np.zeros(52, np.float32), "seed": np.int64(SEED),
        "index": np.int64(index), "variation": np.int64(-1 if variation is None else variation),
        "params": np.array(json.dumps({"index": index})),
    }
    return rgb, mask, labels


def make_dataset(path, count=4, skip=()):
    meta = dataset.dataset_metadata(load_preset("default").to_dict(), "test", SIZE, SEED)
    path.mkdir(parents=True, exist_ok=True)
    dataset.write_metadata(path, meta)
    for i in range(count):
        if i not in skip:
            dataset.write_sample(path, dataset.stem(i), *fake_labels(i))
    return path


def rewrite_npz(path, **changes):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    path.write_bytes(dataset.encode_npz(arrays))


def run_validate(capsys, *args):
    code = main(["validate", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_sound_dataset_passes(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds")
    code, text = run_validate(capsys, ds, "--count", 4)
    assert code == 0, text
    assert "4 samples checked" in text and "OK" in text


def test_truncated_jpg_and_missing_mask(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds")
    jpg = ds / "face_000001.jpg"
    jpg.write_bytes(jpg.read_bytes()[:200])
    (ds / "face_000002_mask.png").unlink()
    code, text = run_validate(capsys, ds)
    assert code == 1
    assert "bad face_000001: jpg unreadable" in text
    assert "bad face_000002: missing face_000002_mask.png" in text
    assert "face_000000" not in text and "face_000003" not in text


def test_bad_npz_keys_shapes_and_values(tmp_path):
    ds = make_dataset(tmp_path / "ds", count=5)
    rewrite_npz(ds / "face_000000.npz", pose_aflw=None)
    rewrite_npz(ds / "face_000001.npz", landmarks_2d=np.zeros((67, 2)))
    rewrite_npz(ds / "face_000002.npz", modelview=np.full((4, 4), np.nan))
    (ds / "face_000003.npz").write_bytes(b"not a zip file")
    result = validate_dataset(ds)
    assert sorted(result.bad) == [f"face_00000{i}" for i in range(4)]
    assert "npz lacks pose_aflw" in result.bad["face_000000"][0]
    assert "landmarks_2d has shape (67, 2), expected (68, 2)" in result.bad["face_000001"]
    assert "modelview has NaN or infinite values" in result.bad["face_000002"]
    assert result.bad["face_000003"][0].startswith("npz unreadable")


def test_landmark_off_the_head_and_unknown_mask_class(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    rgb, mask, labels = fake_labels(1)
    labels["landmarks_2d"][30] = [2.5, 2.5]  # background corner
    dataset.write_sample(ds, "face_000001", rgb, mask, labels)
    rgb, mask, labels = fake_labels(2)
    mask[0, 0] = 42
    dataset.write_sample(ds, "face_000002", rgb, mask, labels)
    rgb, mask, labels = fake_labels(3)
    labels["landmarks_2d"][30] = [2.5, 2.5]
    labels["landmarks_visible"][30] = False  # hidden landmarks are not checked
    dataset.write_sample(ds, "face_000003", rgb, mask, labels)
    result = validate_dataset(ds)
    assert result.bad["face_000001"] == ["visible landmarks [30] are not on the head in the mask"]
    assert result.bad["face_000002"] == ["mask has class ids not in the class table: [42]"]
    assert "face_000003" not in result.bad


def test_missing_and_duplicate_indices(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds", count=6, skip=(2,))
    # face_000005 holds the labels of index 4: index 4 is claimed twice.
    dataset.write_sample(ds, "face_000005", *fake_labels(4))
    result = validate_dataset(ds, start=0, count=8)
    assert result.missing == ["face_000002", "face_000006", "face_000007"]
    assert result.duplicates == ["face_000004", "face_000005"]
    assert "label index 4 does not match the file name" in result.bad["face_000005"]
    # Without a range, the gap between the smallest and largest index is still found.
    assert validate_dataset(ds).missing == ["face_000002"]
    code, text = run_validate(capsys, ds, "--count", 8)
    assert code == 1 and "missing: face_000002, face_000006, face_000007" in text


def test_a_huge_index_range_is_reported_not_enumerated(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds", count=2)
    dataset.write_sample(ds, "face_999999999999", *fake_labels(999999999999))
    result = validate_dataset(ds)
    assert not result.ok and result.missing == []
    assert any("faces 0..999999999999" in p and "not listed" in p for p in result.dataset_problems)
    code, text = run_validate(capsys, ds, "--count", 10**13)
    assert code == 1 and "more than 10,000,000 samples" in text


def test_duplicate_manifest_lines_and_stray_temp_files(tmp_path):
    ds = make_dataset(tmp_path / "ds", count=2)
    (ds / ".face_000001.npz.abc123.tmp").write_bytes(b"half")
    assert validate_dataset(ds).ok  # a killed writer's temp file is harmless
    assert validate_dataset(ds).stray_temp_files == 1
    line = json.dumps({"name": "face_000001", "status": "ok"})
    (ds / "manifest.jsonl").write_text(f"{line}\n{line}\n")
    assert validate_dataset(ds).duplicates == ["face_000001"]


def test_inconsistent_key_sets_and_seed(tmp_path):
    ds = make_dataset(tmp_path / "ds", count=4)
    rewrite_npz(ds / "face_000001.npz", extra_key=np.zeros(3))
    rewrite_npz(ds / "face_000002.npz", seed=np.int64(SEED + 1))
    result = validate_dataset(ds)
    differ = "npz keys differ from the rest of the dataset; extra extra_key"
    assert result.bad["face_000001"] == [differ]
    assert result.bad["face_000002"] == [f"seed {SEED + 1} differs from dataset.json's {SEED}"]


def test_usage_errors(tmp_path, capsys):
    code, text = run_validate(capsys, tmp_path / "nope")
    assert code == 2 and "dataset folder not found" in text
    make_dataset(tmp_path / "ds", count=1)
    code, text = run_validate(capsys, tmp_path / "ds", "--start", 3)
    assert code == 2 and "--start needs --count" in text


def test_parallel_jobs_agree(tmp_path):
    ds = make_dataset(tmp_path / "ds", count=6)
    (ds / "face_000003_mask.png").unlink()
    one, two = validate_dataset(ds), validate_dataset(ds, jobs=2)
    assert one.bad == two.bad and list(one.bad) == ["face_000003"]


def test_validate_does_not_import_bpy(tmp_path):
    ds = make_dataset(tmp_path / "ds", count=1)
    code = ("import sys; from replicantface.cli import main; rc = main(['validate', sys.argv[1]]);"
            "assert 'bpy' not in sys.modules, 'bpy imported'; raise SystemExit(rc)")
    r = subprocess.run([sys.executable, "-c", code, str(ds)], check=False, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"), timeout=60)
    assert r.returncode == 0, r.stderr


def test_malformed_dataset_json_and_manifest_are_reported(tmp_path, capsys):
    cases = {
        "list": ("[1, 2]", "dataset.json holds a list, expected a JSON object"),
        "variations": ({"variations": "x"}, "dataset.json's variations is \"x\", expected"),
        "classes": ({"classes": [1, 2]}, "dataset.json's classes is [1, 2], expected"),
        "resolution": ({"resolution": "big"}, "dataset.json's resolution is \"big\", expected"),
    }
    for name, (change, message) in cases.items():
        ds = make_dataset(tmp_path / name, count=2)
        if isinstance(change, dict):
            meta = json.loads((ds / "dataset.json").read_text())
            (ds / "dataset.json").write_text(json.dumps(meta | change))
        else:
            (ds / "dataset.json").write_text(change)
        code, text = run_validate(capsys, ds)
        assert code == 1 and f"dataset: {message}" in text, (name, text)
    ds = make_dataset(tmp_path / "manifest", count=2)
    (ds / "manifest.jsonl").write_bytes(b"\xff\xfe\x00binary")
    code, text = run_validate(capsys, ds)
    assert code == 1 and "dataset: manifest.jsonl is not UTF-8 text" in text


def test_label_scalars_of_the_wrong_type_or_shape_are_reported(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds", count=5)
    rewrite_npz(ds / "face_000000.npz", index=np.array("abc"))
    rewrite_npz(ds / "face_000001.npz", variation=np.zeros(2, np.int64))
    rewrite_npz(ds / "face_000002.npz", seed=np.array("abc"), resolution=np.array(["a", "b"]))
    np.savez(ds / "face_000003.npz", index=np.array([object()], dtype=object))  # pickled
    code, text = run_validate(capsys, ds)
    assert code == 1, text
    assert "bad face_000000: index has dtype <U3, expected kind 'iu'" in text
    assert ("bad face_000001: variation has dtype int64 and shape (2,), expected an integer "
            "scalar") in text
    assert "bad face_000002: resolution has dtype <U1" in text and "seed has dtype <U3" in text
    assert "bad face_000003: npz unreadable (ValueError: Object arrays cannot be loaded" in text
    assert "face_000004" not in text


def test_negative_start_and_max_listed_are_usage_errors(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds", count=2)
    code, text = run_validate(capsys, ds, "--start", -5, "--count", 2)
    assert code == 2 and "--start must be 0 or more, got -5" in text
    code, text = run_validate(capsys, ds, "--max-listed", -1)
    assert code == 2 and "--max-listed must be 0 or more, got -1" in text
