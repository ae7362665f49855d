"""Pose and landmark metrics, the prediction CSV and ``replicantface evaluate``."""

import io
import zipfile
from math import cos, sin

import numpy as np
import pytest
import scipy.io
from PIL import Image
from scipy.spatial.transform import Rotation

from replicantface import metrics
from replicantface.cli import main

HEADER = "| Variant | Pitch° | Yaw° | Roll° | Mean° | Geodesic° |"


def get_R_6drepnet(x, y, z):
    """6DRepNet utils.get_R(pitch, yaw, roll) = Rz . Ry . Rx (CONVENTIONS.md)."""
    rx = np.array([[1, 0, 0], [0, cos(x), -sin(x)], [0, sin(x), cos(x)]])
    ry = np.array([[cos(y), 0, sin(y)], [0, 1, 0], [-sin(y), 0, cos(y)]])
    rz = np.array([[cos(z), -sin(z), 0], [sin(z), cos(z), 0], [0, 0, 1]])
    return rz @ ry @ rx


# --- Geodesic and MAE -------------------------------------------------------------------------

def test_geodesic_angle_of_a_known_rotation():
    rng = np.random.default_rng(0)
    gt = Rotation.random(20, random_state=1).as_matrix()
    axes = rng.normal(size=(20, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    delta = Rotation.from_rotvec(axes * np.radians(10.0)).as_matrix()
    np.testing.assert_allclose(metrics.geodesic_deg(gt, gt @ delta), 10.0, atol=1e-6)
    np.testing.assert_allclose(metrics.geodesic_deg(gt, gt), 0.0, atol=1e-5)
    flip = Rotation.from_rotvec(axes * np.pi).as_matrix()
    np.testing.assert_allclose(metrics.geodesic_deg(gt, flip @ gt), 180.0, atol=1e-4)
    # The same in any frame: conjugating both by F = diag(1, -1, -1) changes nothing.
    F = np.diag([1.0, -1.0, -1.0])
    conj = metrics.geodesic_deg(F @ gt @ F, F @ (gt @ delta) @ F)
    np.testing.assert_allclose(conj, 10.0, atol=1e-6)


def test_geodesic_matches_the_6drepnet_rotation():
    gt = np.radians([[10.0, -30.0, 5.0], [-20.0, 60.0, 15.0]])
    pred = gt + np.radians([[2.0, 0.0, 0.0], [0.0, -3.0, 1.0]])
    m = metrics.pose_metrics(gt, pred)
    ours = []
    for g, p in zip(gt, pred):
        r = get_R_6drepnet(*g) @ get_R_6drepnet(*p).T
        ours.append(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))))
    assert m.geodesic == pytest.approx(np.mean(ours), abs=1e-6)


def test_mae_and_the_99_degree_protocol():
    gt = np.radians([[10.0, 20.0, 30.0], [0.0, -98.0, 0.0], [0.0, 120.0, 0.0], [-100.0, 0.0, 5.0]])
    pred = gt + np.radians([1.0, -2.0, 3.0])
    m = metrics.pose_metrics(gt, pred)
    assert (m.count, m.dropped) == (2, 2)
    assert (m.pitch, m.yaw, m.roll, m.mean) == pytest.approx((1.0, 2.0, 3.0, 2.0))
    assert metrics.pose_metrics(gt, pred, limit_deg=None).count == 4
    np.testing.assert_array_equal(metrics.benchmark_mask(gt), [True, True, False, False])
    empty = metrics.pose_metrics(gt[2:], pred[2:])
    assert empty.count == 0 and np.isnan(empty.mean)


# --- NME -----------------------------------------------------------------------------------------

def _face(n=3):
    rng = np.random.default_rng(2)
    gt = rng.uniform(10, 80, size=(n, 68, 2))
    gt[:, 36], gt[:, 45] = [20.0, 40.0], [60.0, 40.0]  # outer-eye distance 40
    gt[:, 0], gt[:, 1] = [5.0, 5.0], [95.0, 85.0]      # landmark box 90 x 80
    return gt


def test_nme_outer_eye_and_box():
    gt = _face()
    pred = gt + [3.0, 4.0]  # every point 5 px off
    np.testing.assert_allclose(metrics.nme(pred, gt, "outer_eye"), 5.0 / 40.0)
    np.testing.assert_allclose(metrics.nme(pred, gt, "box"), 5.0 / np.sqrt(90.0 * 80.0))
    boxes = np.tile([0.0, 0.0, 50.0, 200.0], (3, 1))
    np.testing.assert_allclose(metrics.nme(pred, gt, "box", boxes), 5.0 / 100.0)
    with pytest.raises(ValueError, match="norm"):
        metrics.nme(pred, gt, "iod")


def test_yaw_bins():
    yaw = np.radians([0.0, -30.0, 30.001, 60.0, -75.0, 90.0, 95.0])
    np.testing.assert_array_equal(metrics.yaw_bin_index(yaw), [0, 0, 1, 1, 2, 2, -1])
    gt = _face(7)
    pred = gt.copy()
    pred[:, :, 0] += np.arange(7)[:, None]  # sample i is i px off
    lm = metrics.landmark_metrics(pred, gt, yaw)
    d = np.sqrt(90.0 * 80.0)
    assert [c for _, c in lm.box_bins] == [2, 2, 2]
    np.testing.assert_allclose([m for m, _ in lm.box_bins], [0.5 / d, 2.5 / d, 4.5 / d])
    assert lm.box_bins_mean == pytest.approx(2.5 / d)
    assert lm.outer_eye == pytest.approx(3.0 / 40.0)


# --- CSV and the evaluate command ------------------------------------------------------------

def _aflw_zip(path, poses_deg, w=100, h=100):
    """A published-layout AFLW2000-3D zip with known poses and landmarks."""
    rng = np.random.default_rng(3)
    lms = {}
    with zipfile.ZipFile(path, "w") as zf:
        for k, pose in enumerate(poses_deg):
            stem = f"AFLW2000/image{k:05d}"
            pts = _face(1)[0].T
            pt3d = np.vstack([pts, rng.normal(size=68)])
            buf = io.BytesIO()
            Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(buf, format="JPEG")
            mat = io.BytesIO()
            scipy.io.savemat(mat, {"Pose_Para": np.array([[*np.radians(pose), 50, 50, 0, 1e-3]]),
                                   "pt3d_68": pt3d, "pt2d": np.zeros((2, 21)),
                                   "roi": np.zeros((1, 4)), "Shape_Para": np.zeros((199, 1)),
                                   "Exp_Para": np.zeros((29, 1))})
            zf.writestr(f"{stem}.jpg", buf.getvalue())
            zf.writestr(f"{stem}.mat", mat.getvalue())
            lms[stem] = pts.T
    return lms


POSES = [(10.0, 20.0, -5.0), (-15.0, -40.0, 8.0), (5.0, 70.0, 0.0), (0.0, 120.0, 0.0)]


def _write_csv(path, lms, offset_deg=(1.0, 2.0, -3.0), lm_offset=None, rows=None):
    lm_cols = "".join(f",x{i},y{i}" for i in range(68)) if lm_offset else ""
    lines = ["name,pitch,yaw,roll" + lm_cols]
    for (name, lm), pose in zip(lms.items(), POSES):
        vals = list(np.add(pose, offset_deg))
        if lm_offset:
            vals += list((lm + lm_offset).reshape(-1))
        lines.append(",".join([name, *(f"{v:.6f}" for v in vals)]))
    path.write_text("\n".join(lines[: rows] if rows else lines) + "\n")


def test_evaluate_prints_the_original_table(tmp_path, capsys):
    lms = _aflw_zip(tmp_path / "AFLW2000-3D.zip", POSES)
    _write_csv(tmp_path / "preds.csv", lms)
    assert main(["evaluate", str(tmp_path / "preds.csv"), str(tmp_path / "AFLW2000-3D.zip"),
                 "--variant", "w/ RF"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == HEADER
    cells = [c.strip() for c in out[2].strip("|").split("|")]
    assert cells[:5] == ["w/ RF", "1.00", "2.00", "3.00", "2.00"]
    gt = np.radians(POSES[:3])
    geo = np.mean([np.degrees(np.arccos(np.clip((np.trace(
        get_R_6drepnet(*g) @ get_R_6drepnet(*(g + np.radians([1, 2, -3]))).T) - 1) / 2, -1, 1)))
        for g in gt])
    assert float(cells[5]) == pytest.approx(geo, abs=0.006)
    assert any("3 samples (1 dropped by the ±99° filter)" in line for line in out)


def test_evaluate_with_landmarks(tmp_path, capsys):
    lms = _aflw_zip(tmp_path / "a.zip", POSES)
    _write_csv(tmp_path / "p.csv", lms, lm_offset=(3.0, 4.0))
    assert main(["evaluate", str(tmp_path / "p.csv"), str(tmp_path / "a.zip")]) == 0
    out = capsys.readouterr().out
    assert "NME eye %" in out
    row = [ln for ln in out.splitlines() if ln.startswith("| p ") and "12.50" in ln]
    assert row, out  # 5 px / 40 px outer-eye distance = 12.50 %


def test_evaluate_bad_input_exits_2(tmp_path, capsys):
    lms = _aflw_zip(tmp_path / "a.zip", POSES)
    ds = str(tmp_path / "a.zip")
    _write_csv(tmp_path / "short.csv", lms, rows=3)
    assert main(["evaluate", str(tmp_path / "short.csv"), ds]) == 2
    assert "have no prediction" in capsys.readouterr().err
    (tmp_path / "hdr.csv").write_text("file,yaw,pitch,roll\nx,1,2,3\n")
    assert main(["evaluate", str(tmp_path / "hdr.csv"), ds]) == 2
    assert "header must be name,pitch,yaw,roll" in capsys.readouterr().err
    (tmp_path / "unk.csv").write_text("name,pitch,yaw,roll\nimage99999,1,2,3\n")
    assert main(["evaluate", str(tmp_path / "unk.csv"), ds]) == 2
    assert "not in the dataset" in capsys.readouterr().err
    (tmp_path / "nan.csv").write_text("name,pitch,yaw,roll\nAFLW2000/image00000,1,x,3\n")
    assert main(["evaluate", str(tmp_path / "nan.csv"), ds]) == 2
    assert "nan.csv:2" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.csv"), ds]) == 2
    assert main(["evaluate", str(tmp_path / "hdr.csv"), str(tmp_path / "nothing")]) == 2
