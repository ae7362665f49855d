"""Training-side exports: 300W-LP .mat pairs read the way HopeNet / 6DRepNet / 3DDFA read them,
plus the h5 and npz-sequence layouts.

The pose formulas below are written from shared/CONVENTIONS.md, not imported from the package.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from math import cos, sin
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from conftest import RAW_COUNT as COUNT
from conftest import RAW_RES as RES
from scipy.spatial.transform import Rotation

from replicantface.camera import FACE_HEIGHT_M, SENSOR_MM
from replicantface.cli import main
from replicantface.dataset import load_sample

PARENT = "replicantface"


@pytest.fixture(scope="module")
def raw(raw_dataset):
    return {f"face_{i:06d}": load_sample(raw_dataset, f"face_{i:06d}") for i in range(COUNT)}


@pytest.fixture(scope="module")
def exported(raw_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "rf.zip"
    assert main(["export", "300wlp", str(raw_dataset), str(out), "--no-progress"]) == 0
    return out


def read_mats(zip_path):
    with zipfile.ZipFile(zip_path) as zf:
        return {Path(n).stem: scipy.io.loadmat(io.BytesIO(zf.read(n)))
                for n in zf.namelist() if n.endswith(".mat")}


# --- Reading formulas from CONVENTIONS.md ----------------------------------------------------

def Rx(a):
    return np.array([[1, 0, 0], [0, cos(a), -sin(a)], [0, sin(a), cos(a)]])


def Ry(a):
    return np.array([[cos(a), 0, sin(a)], [0, 1, 0], [-sin(a), 0, cos(a)]])


def Rz(a):
    return np.array([[cos(a), -sin(a), 0], [sin(a), cos(a), 0], [0, 0, 1]])


def hopenet_ypr_from_mat(mat):
    """HopeNet's get_ypr_from_mat: the first three Pose_Para values, radians."""
    return mat["Pose_Para"][0][:3]


def r_3ddfa(pitch, yaw, roll):
    """3DDFA: R = Rx(-p) Ry(-y) Rz(-r), a y-up frame (x right, y up, z toward the viewer)."""
    return Rx(-pitch) @ Ry(-yaw) @ Rz(-roll)


def get_R_6drepnet(x, y, z):
    """6DRepNet utils.get_R(pitch, yaw, roll) = Rz . Ry . Rx."""
    return Rz(z) @ Ry(y) @ Rx(x)


def draw_axis_hopenet(yaw, pitch, roll, tdx, tdy, size=100.0):
    """HopeNet's draw_axis, degrees in; returns the x, y, z axis tips in pixels (y down)."""
    pitch = pitch * np.pi / 180
    yaw = -(yaw * np.pi / 180)
    roll = roll * np.pi / 180
    x1 = size * (cos(yaw) * cos(roll)) + tdx
    y1 = size * (cos(pitch) * sin(roll) + cos(roll) * sin(pitch) * sin(yaw)) + tdy
    x2 = size * (-cos(yaw) * sin(roll)) + tdx
    y2 = size * (cos(pitch) * cos(roll) - sin(pitch) * sin(yaw) * sin(roll)) + tdy
    x3 = size * (sin(yaw)) + tdx
    y3 = size * (-cos(yaw) * sin(pitch)) + tdy
    return np.array([[x1, y1], [x2, y2], [x3, y3]])


# --- .mat fields -----------------------------------------------------------------------------

def test_loadmat_shapes_match_the_originals(exported, raw_dataset, raw):
    mats = read_mats(exported)
    assert sorted(mats) == sorted(raw)
    for mat in mats.values():
        assert mat["Pose_Para"].shape == (1, 7)   # 300W-LP and AFLW2000-3D
        assert mat["pt2d"].shape == (2, 68)       # 300W-LP
        assert mat["pt3d_68"].shape == (3, 68)    # AFLW2000-3D
        assert mat["roi"].shape == (1, 4)
        assert mat["Pose_Para"][0][5] == 0.0      # tz
    with zipfile.ZipFile(exported) as zf:
        names = zf.namelist()
        assert names == sorted(names) and len(names) == len(set(names)) == 2 * COUNT
        assert all(n.startswith(f"{PARENT}/") for n in names)
        # The JPEG is copied byte for byte, not re-encoded.
        jpg = (raw_dataset / "face_000000.jpg").read_bytes()
        assert zf.read(f"{PARENT}/face_000000.jpg") == jpg


def test_pt3d_xy_are_the_raw_2d_landmarks(exported, raw):
    for name, mat in read_mats(exported).items():
        lm = raw[name]["landmarks_2d"]
        assert np.abs(mat["pt3d_68"][:2].T - lm).max() < 1.0
        np.testing.assert_allclose(mat["pt2d"].T, lm, atol=1e-6)


def test_pt3d_z_larger_is_closer_and_centred_on_eye_corners(exported, raw):
    for name, mat in read_mats(exported).items():
        z = mat["pt3d_68"][2]
        assert abs(z[[36, 39, 42, 45]].mean()) < 1e-9
        depth = raw[name]["landmarks_depth"]
        # Ordering of z is the reverse of the ordering of the metric depth.
        assert np.corrcoef(z, depth)[0, 1] < -0.999
        # Same pixel scale: z differences = depth differences * Pose_Para scale.
        scale = mat["Pose_Para"][0][6]
        np.testing.assert_allclose(z - z[30], (depth[30] - depth) * scale, atol=1e-6)


def test_roi_is_the_face_box_in_y_up_space(exported, raw):
    for name, mat in read_mats(exported).items():
        x0, y0, x1, y1 = raw[name]["bbox_face"]
        np.testing.assert_allclose(mat["roi"][0], [x0, RES - y0, x1, RES - y1])


# --- Pose read by the peers -----------------------------------------------------------------

def test_hopenet_6drepnet_and_3ddfa_read_the_rendered_rotation(exported, raw):
    for name, mat in read_mats(exported).items():
        pitch, yaw, roll = hopenet_ypr_from_mat(mat)
        np.testing.assert_allclose(np.degrees([pitch, yaw, roll]),
                                   np.degrees(raw[name]["pose_aflw"]), atol=1e-9)
        rot_cam = raw[name]["modelview"][:3, :3]  # head -> camera, y up: 3DDFA's frame
        np.testing.assert_allclose(r_3ddfa(pitch, yaw, roll), rot_cam, atol=1e-5)
        np.testing.assert_allclose(get_R_6drepnet(pitch, yaw, roll), rot_cam.T, atol=1e-5)


def test_round_trip_rotation_pose_para_rotation():
    from replicantface import labels
    from replicantface.export_300wlp import encode_mat, mat_fields

    rng = np.random.default_rng(0)
    proj = labels.perspective_projection(50.0, 36.0, 64, 64)
    for rot in Rotation.random(50, random_state=rng.integers(1 << 31)).as_matrix():
        mv = np.eye(4)
        mv[:3, :3], mv[:3, 3] = rot, [0.01, -0.02, -0.6]
        sample = {"modelview": mv, "projection": proj, "resolution": np.array([64, 64]),
                  "pose_aflw": labels.pose_aflw_from_rotation(rot),
                  "bbox_face": np.array([1, 2, 3, 4.0]),
                  "landmarks_2d": np.zeros((68, 2)), "landmarks_depth": np.full(68, 0.6)}
        mat = scipy.io.loadmat(io.BytesIO(encode_mat(mat_fields(sample))))
        p, y, r = hopenet_ypr_from_mat(mat)
        np.testing.assert_allclose(r_3ddfa(p, y, r), rot, atol=1e-9)
        np.testing.assert_allclose(get_R_6drepnet(p, y, r), rot.T, atol=1e-9)


def test_hopenet_draw_axis_points_the_z_axis_along_the_nose(exported, raw):
    turned = 0
    for name, mat in read_mats(exported).items():
        pitch, yaw, roll, tx, ty, _, _ = mat["Pose_Para"][0]
        tdx, tdy = tx, RES - ty  # back to y down
        tips = draw_axis_hopenet(np.degrees(yaw), np.degrees(pitch), np.degrees(roll), tdx, tdy, 30)
        lm = raw[name]["landmarks_2d"]
        nose_dx = lm[30, 0] - (lm[36, 0] + lm[45, 0]) / 2.0
        if abs(np.degrees(yaw)) > 20:
            turned += 1
            assert np.sign(tips[2, 0] - tdx) == np.sign(nose_dx), name
        if abs(np.degrees(yaw)) < 60 and abs(np.degrees(roll)) < 45:
            assert tips[0, 0] - tdx > 0, f"{name}: the red x axis must point to image-right"
    assert turned >= 1, "the fixture needs a sample with |yaw| > 20°"


def test_tx_ty_scale_are_the_true_weak_perspective(exported, raw):
    for name, mat in read_mats(exported).items():
        pitch, yaw, roll, tx, ty, tz, scale = mat["Pose_Para"][0]
        cam = json.loads(str(raw[name]["params"]))["camera"]
        # The camera looks at the head origin from distance_m: f_px / depth from the params alone.
        distance = cam["focal_mm"] / SENSOR_MM * FACE_HEIGHT_M / cam["face_fraction"]
        f_px = cam["focal_mm"] / SENSOR_MM * RES
        assert scale == pytest.approx(f_px / distance, rel=1e-5)
        # 3DDFA's weak perspective s R X + t (y up) lands near the perspective landmarks.
        pts = scale * raw[name]["landmarks_3d"] @ r_3ddfa(pitch, yaw, roll).T + [tx, ty, tz]
        px = np.column_stack([pts[:, 0], RES - pts[:, 1]])
        err = np.linalg.norm(px - raw[name]["landmarks_2d"], axis=1).mean()
        x0, y0, x1, y1 = raw[name]["bbox_face"]
        assert err < 0.05 * max(x1 - x0, y1 - y0), f"{name}: {err:.2f} px"


# --- Filters, determinism, resume, bad input ---------------------------------------------------

def _report_counts(text):
    lines = [ln for ln in text.splitlines() if ln.strip().startswith("rejected")]
    return [int(ln.split()[1]) for ln in lines]


def test_filters_are_counted(raw_dataset, raw, tmp_path, capsys):
    yaw = {n: abs(np.degrees(s["pose_aflw"][1])) for n, s in raw.items()}
    assert main(["export", "300wlp", str(raw_dataset), str(tmp_path / "a.zip"), "--no-progress",
                 "--max-yaw-deg", "30"]) == 0
    out = capsys.readouterr().out
    n_yaw = sum(v > 30 for v in yaw.values())
    assert _report_counts(out) == [0, 0, 0, n_yaw, 0]
    assert f"{COUNT - n_yaw} written" in out
    assert len(read_mats(tmp_path / "a.zip")) == COUNT - n_yaw

    assert main(["export", "300wlp", str(raw_dataset), str(tmp_path / "b.zip"), "--no-progress",
                 "--min-luminance", "255"]) == 0
    assert _report_counts(capsys.readouterr().out) == [COUNT, 0, 0, 0, 0]

    sizes = {n: min(np.diff(s["bbox_face"].reshape(2, 2), axis=0)[0]) for n, s in raw.items()}
    threshold = float(np.median(list(sizes.values())))
    assert main(["export", "300wlp", str(raw_dataset), str(tmp_path / "c"), "--no-progress",
                 "--min-face-px", str(threshold)]) == 0
    assert _report_counts(capsys.readouterr().out)[1] == sum(v < threshold for v in sizes.values())

    assert main(["export", "300wlp", str(raw_dataset), str(tmp_path / "d.zip"), "--no-progress",
                 "--max-face-frac", "0.2"]) == 0
    assert _report_counts(capsys.readouterr().out)[2] == COUNT

    assert main(["export", "300wlp", str(raw_dataset), str(tmp_path / "e.zip"), "--no-progress",
                 "--benchmark-filter"]) == 0
    out = capsys.readouterr().out
    assert "any |angle| > 99°" in out and "(off)" not in out


def test_deterministic_and_resumable_zip(raw_dataset, exported, tmp_path, capsys):
    again = tmp_path / "again.zip"
    assert main(["export", "300wlp", str(raw_dataset), str(again), "--no-progress"]) == 0
    assert again.read_bytes() == exported.read_bytes()
    mask = os.umask(0)
    os.umask(mask)
    assert again.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600

    partial = tmp_path / "partial.zip"
    assert main(["export", "300wlp", str(raw_dataset), str(partial), "--no-progress",
                 "--max-yaw-deg", "30"]) == 0
    kept = len(read_mats(partial))
    assert 0 < kept < COUNT
    capsys.readouterr()
    assert main(["export", "300wlp", str(raw_dataset), str(partial), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{COUNT - kept} written, {kept} already present" in out
    assert partial.read_bytes() == exported.read_bytes()

    before = partial.stat().st_mtime_ns
    assert main(["export", "300wlp", str(raw_dataset), str(partial), "--no-progress"]) == 0
    assert f"0 written, {COUNT} already present" in capsys.readouterr().out
    assert partial.stat().st_mtime_ns == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_folder_output_matches_zip_and_resumes(raw_dataset, exported, tmp_path, capsys):
    out = tmp_path / "folder"
    assert main(["export", "300wlp", str(raw_dataset), str(out), "--no-progress"]) == 0
    with zipfile.ZipFile(exported) as zf:
        for name in zf.namelist():
            assert (out / name).read_bytes() == zf.read(name), name
    (out / PARENT / "face_000001.mat").unlink()
    capsys.readouterr()
    assert main(["export", "300wlp", str(raw_dataset), str(out), "--no-progress"]) == 0
    assert f"1 written, {COUNT - 1} already present" in capsys.readouterr().out
    assert sorted(p.name for p in (out / PARENT).iterdir()) == sorted(
        Path(n).name for n in zipfile.ZipFile(exported).namelist())


def test_subprocess_cli_and_bad_input(raw_dataset, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "replicantface", *args], check=False,
                              capture_output=True, text=True, timeout=300)

    r = run("export", "300wlp", str(raw_dataset), str(tmp_path / "ok.zip"), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "rejected" in r.stdout

    r = run("export", "300wlp", str(tmp_path / "missing"), str(tmp_path / "x.zip"))
    assert r.returncode == 2 and "dataset folder not found" in r.stderr
    assert not (tmp_path / "x.zip").exists()

    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_text("not a zip")
    r = run("export", "300wlp", str(raw_dataset), str(bad_zip))
    assert r.returncode == 2 and "is not a zip file" in r.stderr
    assert bad_zip.read_text() == "not a zip"

    a_file = tmp_path / "file.out"
    a_file.write_text("x")
    r = run("export", "300wlp", str(raw_dataset), str(a_file))
    assert r.returncode == 2 and "is not a folder" in r.stderr

    for flags, message in ((["--max-face-frac", "1.5"], "--max-face-frac"),
                           (["--min-luminance", "-1"], "--min-luminance"),
                           (["--parent", "a/b"], "--parent")):
        r = run("export", "300wlp", str(raw_dataset), str(tmp_path / "y.zip"), *flags)
        assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "y.zip").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip", "file.out", "ok.zip"]


# --- h5 ------------------------------------------------------------------------------------------

def test_h5_layout_and_frames(raw_dataset, raw, tmp_path):
    from replicantface import labels

    out = tmp_path / "rf.h5"
    assert main(["export", "h5", str(raw_dataset), str(out), "--no-progress"]) == 0
    F = np.diag([1.0, -1.0, -1.0])
    with h5py.File(out) as f:
        assert f["images"].shape == (COUNT, RES, RES, 3) and f["images"].dtype == np.uint8
        assert f["quats"].shape == (COUNT, 4) and f["coords"].shape == (COUNT, 3)
        assert f["head_size"].shape == (COUNT,) and f["keypts"].shape == (COUNT, 68, 3)
        assert f["rois"].shape == (COUNT, 4)
        assert "sequence_starts" not in f
        assert "z into the screen" in f.attrs["head_frame"]
        assert f["quats"].attrs["category"] == "q"
        names = [n.decode() if isinstance(n, bytes) else n for n in f["names"][:]]
        assert names == sorted(raw)
        for i, name in enumerate(names):
            s = raw[name]
            np.testing.assert_array_equal(f["images"][i], s["image"])
            rot_img = Rotation.from_quat(f["quats"][i]).as_matrix()  # scipy (x, y, z, w)
            np.testing.assert_allclose(rot_img, F @ s["modelview"][:3, :3] @ F, atol=1e-5)
            # opentrack frame: +z of the head (into the screen) is the back of the head.
            assert rot_img[2, 2] > 0 or abs(np.degrees(s["pose_aflw"][1])) > 60
            origin, _ = labels.project_points(np.zeros((1, 3)), s["modelview"],
                                              s["projection"], (RES, RES))
            np.testing.assert_allclose(f["coords"][i, :2], origin[0], atol=1e-3)
            assert f["head_size"][i] == pytest.approx(f["coords"][i, 2])
            np.testing.assert_allclose(f["keypts"][i, :, :2], s["landmarks_2d"], atol=1e-3)
            # z into the screen: larger = farther.
            assert np.corrcoef(f["keypts"][i, :, 2], s["landmarks_depth"])[0, 1] > 0.999
            np.testing.assert_allclose(f["rois"][i], s["bbox_face"])


# --- npz sequences -------------------------------------------------------------------------

def _variation_dataset(raw_dataset, root):
    """Copy raw samples under variation names: face 7 gets two frames, face 8 one."""
    root.mkdir()
    shutil.copy(raw_dataset / "dataset.json", root)
    for src, dst in (("face_000000", "face_000007_00"), ("face_000001", "face_000007_01"),
                     ("face_000002", "face_000008_00")):
        for suffix in (".jpg", "_mask.png", ".npz"):
            shutil.copy(raw_dataset / f"{src}{suffix}", root / f"{dst}{suffix}")
    return root


def test_npz_sequences_per_face_index(raw_dataset, raw, tmp_path):
    ds = _variation_dataset(raw_dataset, tmp_path / "var")
    out = tmp_path / "seq"
    assert main(["export", "npz-sequences", str(ds), str(out), "--no-progress"]) == 0
    assert sorted(os.listdir(out)) == ["face_000007.npz", "face_000008.npz"]
    with np.load(out / "face_000007.npz") as z:
        assert z["colorImages"].shape == (2, RES, RES, 3) and z["colorImages"].dtype == np.uint8
        assert z["boundingBox"].shape == (2, 4, 2)
        assert z["landmarks2D"].shape == (2, 68, 2) and z["landmarks3D"].shape == (2, 68, 3)
        assert z["headPose"].shape == (2, 3) and z["gazeVector"].shape == (2, 3)
        for j, src in enumerate(("face_000000", "face_000001")):  # frames in variation order
            s = raw[src]
            np.testing.assert_array_equal(z["colorImages"][j], s["image"])
            p, y, r = np.degrees(s["pose_aflw"])
            np.testing.assert_allclose(z["headPose"][j], [y, p, r], atol=1e-4)
            np.testing.assert_allclose(z["landmarks3D"][j, :, :2], z["landmarks2D"][j])
            np.testing.assert_allclose(z["landmarks2D"][j], s["landmarks_2d"], atol=1e-4)
            np.testing.assert_allclose(z["gazeVector"][j], s["gaze"].mean(axis=0), atol=1e-6)
            x0, y0, x1, y1 = s["bbox_face"]
            corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
            np.testing.assert_allclose(z["boundingBox"][j], corners)
    with np.load(out / "face_000008.npz") as z:
        assert z["colorImages"].shape[0] == 1

    # Ordinary datasets: one file per sample; re-running keeps what exists.
    out2 = tmp_path / "seq2"
    assert main(["export", "npz-sequences", str(raw_dataset), str(out2), "--no-progress"]) == 0
    assert sorted(os.listdir(out2)) == [f"{n}.npz" for n in sorted(raw)]


# --- Bad input fails with one line and writes nothing ---------------------------------------------

BAD = "face_000001"
# kind -> (file named in the message, words of the message)
DAMAGE = {
    "junk_npz": (f"{BAD}.npz", "not a valid .npz file"),
    "truncated_npz": (f"{BAD}.npz", "not a valid .npz file"),
    "pickled_npz": (f"{BAD}.npz", "label 'pose_aflw' holds pickled objects"),
    "no_pose": (f"{BAD}.npz", "missing label 'pose_aflw'"),
    "no_box": (f"{BAD}.npz", "missing label 'bbox_face'"),
    "missing_jpg": (f"{BAD}.jpg", "image file missing"),
    "junk_jpg": (f"{BAD}.jpg", "not a readable image"),
}


def damaged_copy(raw_dataset, root: Path, kind: str) -> Path:
    """A copy of the raw dataset whose second sample is damaged in the way ``kind`` names."""
    ds = root / "ds"
    shutil.copytree(raw_dataset, ds)
    npz, jpg = ds / f"{BAD}.npz", ds / f"{BAD}.jpg"
    if kind == "junk_npz":
        npz.write_bytes(b"not an npz file\n" * 16)
    elif kind == "truncated_npz":
        npz.write_bytes(npz.read_bytes()[:300])
    elif kind in ("pickled_npz", "no_pose", "no_box"):
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
        if kind == "pickled_npz":
            arrays["pose_aflw"] = np.array([{"pitch": 0.0}, None], dtype=object)
        else:
            del arrays["pose_aflw" if kind == "no_pose" else "bbox_face"]
        np.savez(npz, **arrays)
    elif kind == "missing_jpg":
        jpg.unlink()
    else:
        jpg.write_bytes(b"\xff\xd8 not a jpeg")
    return ds


def _command(what: str, ds: Path, out_root: Path) -> list[str]:
    out = {"sheet": "sub/s.png", "300wlp": "sub/x.zip", "300wlp-folder": "sub/x",
           "h5": "sub/x.h5", "npz-sequences": "sub/x"}[what]
    out = str(out_root / out)
    if what == "sheet":
        return ["sheet", str(ds), "--out", out]
    return ["export", what.removesuffix("-folder"), str(ds), out, "--no-progress"]


@pytest.mark.parametrize("kind", sorted(DAMAGE))
@pytest.mark.parametrize("what", ["sheet", "300wlp", "300wlp-folder", "h5", "npz-sequences"])
def test_damaged_sample_is_named_and_nothing_is_left(raw_dataset, tmp_path, capsys, kind, what):
    ds = damaged_copy(raw_dataset, tmp_path, kind)
    before = {p.name: p.read_bytes() for p in ds.iterdir()}
    out_root = tmp_path / "o"
    if what == "h5" and kind == "no_pose":  # the h5 export does not read pose_aflw
        assert main(_command(what, ds, out_root)) == 0
        return
    assert main(_command(what, ds, out_root)) == 2
    err = capsys.readouterr().err.strip()
    name, words = DAMAGE[kind]
    assert "\n" not in err and name in err and words in err, err
    assert not out_root.exists()  # the sub-folders it made are gone too
    assert {p.name: p.read_bytes() for p in ds.iterdir()} == before


def test_failed_export_keeps_what_was_there(raw_dataset, tmp_path, capsys):
    ds = damaged_copy(raw_dataset, tmp_path, "no_box")
    out = tmp_path / "seq"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["export", "npz-sequences", str(ds), str(out), "--no-progress"]) == 2
    assert sorted(os.listdir(out)) == ["notes.txt"]  # face_000000.npz, written first, is gone
    assert main(["export", "300wlp", str(ds), str(out), "--no-progress"]) == 2
    assert sorted(os.listdir(out)) == ["notes.txt"]


@pytest.mark.parametrize("what", ["300wlp", "h5", "npz-sequences"])
def test_output_among_the_samples_is_refused(raw_dataset, tmp_path, capsys, what):
    ds = tmp_path / "ds"
    shutil.copytree(raw_dataset, ds)
    label = (ds / "face_000003.npz").read_bytes()
    out = {"300wlp": ds / "x.zip", "h5": ds / "face_000003.npz", "npz-sequences": ds}[what]
    assert main(["export", what, str(ds), str(out), "--no-progress"]) == 2
    assert "is in the dataset folder" in capsys.readouterr().err
    assert (ds / "face_000003.npz").read_bytes() == label
    assert sorted(os.listdir(ds)) == sorted(os.listdir(raw_dataset))
    # A sub-folder of the dataset is fine (the workbench keeps its .mat export there).
    sub = ds / "exports" / {"300wlp": "x.zip", "h5": "x.h5", "npz-sequences": "seq"}[what]
    assert main(["export", what, str(ds), str(sub), "--no-progress"]) == 0


def test_h5_does_not_replace_a_file_that_is_not_hdf5(raw_dataset, tmp_path, capsys):
    notes = tmp_path / "notes.h5"
    notes.write_text("my notes")
    assert main(["export", "h5", str(raw_dataset), str(notes), "--no-progress"]) == 2
    assert "notes.h5 exists and is not an HDF5 file" in capsys.readouterr().err
    assert notes.read_text() == "my notes"
    # An earlier export is an HDF5 file and is rebuilt.
    out = tmp_path / "rf.h5"
    assert main(["export", "h5", str(raw_dataset), str(out), "--no-progress"]) == 0
    assert main(["export", "h5", str(raw_dataset), str(out), "--no-progress"]) == 0


@pytest.mark.parametrize("what", ["sheet", "300wlp", "h5", "npz-sequences"])
def test_output_below_a_regular_file(raw_dataset, tmp_path, capsys, what):
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    assert main(_command(what, raw_dataset, a_file)) == 2
    err = capsys.readouterr().err
    assert f"{a_file} is a file, not a folder" in err and "File exists" not in err, err
    assert a_file.read_text() == "x"


def test_existing_zip_with_other_entries_is_refused(raw_dataset, tmp_path, capsys):
    mine = tmp_path / "mine.zip"
    with zipfile.ZipFile(mine, "w") as zf:
        zf.writestr("thesis/chapter1.txt", "years of work")
    data = mine.read_bytes()
    assert main(["export", "300wlp", str(raw_dataset), str(mine), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "thesis/chapter1.txt" in err and "new zip" in err
    assert mine.read_bytes() == data
    # So is an export under another --parent (a rebuild would drop it).
    other = tmp_path / "other.zip"
    assert main(["export", "300wlp", str(raw_dataset), str(other), "--no-progress",
                 "--parent", "a"]) == 0
    assert main(["export", "300wlp", str(raw_dataset), str(other), "--no-progress",
                 "--parent", "b"]) == 2
    assert "a/face_000000.jpg" in capsys.readouterr().err


def test_existing_zip_with_a_damaged_entry(raw_dataset, tmp_path, capsys):
    # One sample first, so the run over all of them has to copy its pair from the old zip.
    one = tmp_path / "one"
    one.mkdir()
    for suffix in (".jpg", "_mask.png", ".npz"):
        shutil.copy(raw_dataset / f"face_000000{suffix}", one)
    out = tmp_path / "o" / "x.zip"
    loose = ["--no-progress", "--min-luminance", "0", "--min-face-px", "0", "--max-face-frac",
             "1", "--max-yaw-deg", "180"]
    assert main(["export", "300wlp", str(one), str(out), *loose]) == 0
    with zipfile.ZipFile(out) as zf:
        info = zf.getinfo(f"{PARENT}/face_000000.jpg")
    data = bytearray(out.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 50] ^= 0xFF
    out.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["export", "300wlp", str(raw_dataset), str(out), *loose]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{out} is a damaged zip file" in err and "\n" not in err, err
    assert out.read_bytes() == bytes(data)
    assert os.listdir(out.parent) == ["x.zip"]  # no temp file left


@pytest.mark.parametrize("flag", ["--min-luminance", "--min-face-px", "--max-face-frac",
                                  "--max-yaw-deg"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_filter_options_must_be_finite(raw_dataset, tmp_path, capsys, flag, value):
    out = tmp_path / "x.zip"
    assert main(["export", "300wlp", str(raw_dataset), str(out), "--no-progress",
                 f"{flag}={value}"]) == 2
    assert f"{flag} must be a finite number" in capsys.readouterr().err
    assert not out.exists()
