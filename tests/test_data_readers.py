"""FaceDataset readers (raw, our 300W-LP export, published AFLW2000-3D / 300W-LP zips) and the
exact geometry of the label-safe augmentations."""

import dataclasses
import io
import json
import re
import shutil
import zipfile
from math import cos, sin
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from conftest import RAW_COUNT as COUNT
from conftest import RAW_RES as RES
from PIL import Image

from replicantface import data
from replicantface.classes import SegClass
from replicantface.cli import main
from replicantface.dataset import load_sample

F = np.diag([1.0, -1.0, -1.0])  # camera (y up) <-> image (y down) frame


@pytest.fixture(scope="module")
def exported_zip(raw_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("readers") / "rf.zip"
    assert main(["export", "300wlp", str(raw_dataset), str(out), "--no-progress"]) == 0
    return out


def Rx(a):
    return np.array([[1, 0, 0], [0, cos(a), -sin(a)], [0, sin(a), cos(a)]])


def Ry(a):
    return np.array([[cos(a), 0, sin(a)], [0, 1, 0], [-sin(a), 0, cos(a)]])


def Rz(a):
    return np.array([[cos(a), -sin(a), 0], [sin(a), cos(a), 0], [0, 0, 1]])


def _jpeg(rng, w, h):
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _mat(fields):
    buf = io.BytesIO()
    scipy.io.savemat(buf, fields)
    return buf.getvalue()


def _landmarks(rng, w, h):
    pts = np.stack([rng.uniform(0.3 * w, 0.7 * w, 68), rng.uniform(0.3 * h, 0.7 * h, 68)])
    pts[0, 36], pts[0, 45] = 0.35 * w, 0.65 * w
    return pts


def make_aflw2000_zip(path, rng, poses, w=120, h=120):
    """AFLW2000-3D.zip as published: AFLW2000/imageNNNNN.jpg + .mat with the real field shapes."""
    truth = {}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("AFLW2000/", b"")
        for k, pose in enumerate(poses):
            stem = f"AFLW2000/image{k * 7 + 2:05d}"
            pt2 = _landmarks(rng, w, h)
            pt3 = np.vstack([pt2, rng.normal(0, 10, 68) + 40.0])  # arbitrary z offset
            fields = {"Pose_Para": np.array([[*pose, 60.0, 50.0, 0.0, 1.5e-3]], dtype=np.float32),
                      "pt3d_68": pt3, "pt2d": rng.uniform(0, w, (2, 21)),
                      "roi": np.array([[-10.0, 52.0, 409.0, 471.0]]),
                      "Shape_Para": rng.normal(size=(199, 1)), "Exp_Para": rng.normal(size=(29, 1))}
            zf.writestr(f"{stem}.jpg", _jpeg(rng, w, h))
            zf.writestr(f"{stem}.mat", _mat(fields))
            truth[stem] = fields
    return truth


def make_300wlp_zip(path, rng, w=120, h=120):
    """300W_LP.zip as published: per-subset folders of .jpg + .mat, plus landmarks/ to ignore."""
    truth = {}
    with zipfile.ZipFile(path, "w") as zf:
        stems = ["300W_LP/AFW/AFW_1051618982_1_0", "300W_LP/AFW_Flip/AFW_1051618982_1_0",
                 "300W_LP/HELEN/HELEN_232194_1_0"]
        for k, stem in enumerate(stems):
            fields = {"Pose_Para": np.array([[0.1 * k, -0.3 + 0.2 * k, 0.05, 200, 210, 0, 1e-3]]),
                      "pt2d": _landmarks(rng, w, h), "roi": np.array([[1.0, 2.0, 3.0, 4.0]]),
                      "Shape_Para": rng.normal(size=(199, 1)), "Exp_Para": rng.normal(size=(29, 1)),
                      "Illum_Para": rng.normal(size=(1, 10)), "Color_Para": rng.normal(size=(1, 7)),
                      "Tex_Para": rng.normal(size=(40, 1))}
            zf.writestr(f"{stem}.jpg", _jpeg(rng, w, h))
            zf.writestr(f"{stem}.mat", _mat(fields))
            truth[stem] = fields
        zf.writestr("300W_LP/landmarks/AFW/AFW_1051618982_1_0_pts.mat",
                    _mat({"pts_2d": rng.uniform(size=(68, 2)),
                          "pts_3d": rng.uniform(size=(68, 2))}))
        zf.writestr("300W_LP/Code/ModelGeneration/readme.txt", b"x")
    return truth


# --- Sources -----------------------------------------------------------------------------------

def _labels_doc_section(heading: str) -> str:
    text = (Path(data.__file__).parents[1] / "docs" / "labels.md").read_text()
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def test_docs_list_every_label_key_and_no_other(raw_dataset):
    """docs/labels.md's table of .npz keys is what a generated sample holds, key for key."""
    table = [line.split("|")[1] for line in _labels_doc_section("## `{stem}.npz`").splitlines()
             if line.startswith("| `")]
    documented = {name for cell in table for name in re.findall(r"`([^`]+)`", cell)}
    with np.load(raw_dataset / "face_000000.npz") as npz:
        assert set(npz.files) == documented


def test_docs_list_every_dataset_json_key(raw_dataset):
    paragraph = _labels_doc_section("## `dataset.json`").split("\n\n")[1]
    documented = set(re.findall(r"`([a-z_]+)`", paragraph))
    written = set(json.loads((raw_dataset / "dataset.json").read_text()))
    assert written <= documented, written - documented


def test_raw_dataset_frames(raw_dataset):
    ds = data.FaceDataset(raw_dataset)
    assert ds.kind == "raw" and len(ds) == COUNT
    for i, name in enumerate(ds.names):
        s, raw = ds[i], load_sample(raw_dataset, name)
        assert s["name"] == name
        assert s["image"].shape == (3, RES, RES) and s["image"].dtype == torch.float32
        assert 0.0 <= s["image"].min() and s["image"].max() <= 1.0
        rgb = s["image"].permute(1, 2, 0).numpy() * 255
        np.testing.assert_allclose(rgb, raw["image"], atol=1e-3)
        np.testing.assert_allclose(s["pose"], raw["pose_aflw"], atol=1e-6)
        # rotation: head -> camera in the image frame (x right, y down, z into the screen).
        np.testing.assert_allclose(s["rotation"], F @ raw["modelview"][:3, :3] @ F, atol=1e-5)
        p, y, r = raw["pose_aflw"]
        np.testing.assert_allclose(s["rotation"], Rx(-p) @ Ry(y) @ Rz(r), atol=1e-5)
        np.testing.assert_allclose(s["landmarks_2d"], raw["landmarks_2d"], atol=1e-4)
        np.testing.assert_allclose(s["landmarks_3d"][:, :2], raw["landmarks_2d"], atol=1e-4)
        np.testing.assert_allclose(s["box"], raw["bbox_face"])
        np.testing.assert_allclose(s["gaze"], raw["gaze"], atol=1e-6)


def test_our_export_reads_back_like_the_raw_dataset(raw_dataset, exported_zip, tmp_path):
    folder = tmp_path / "folder"
    assert main(["export", "300wlp", str(raw_dataset), str(folder), "--no-progress"]) == 0
    raw = data.FaceDataset(raw_dataset)
    for source in (exported_zip, folder):
        ds = data.FaceDataset(source)
        assert ds.kind == "mat"
        assert ds.names == [f"replicantface/{n}" for n in raw.names]
        for i in range(len(ds)):
            a, b = raw[i], ds[i]
            for key in ("pose", "rotation", "landmarks_2d", "landmarks_3d", "box"):
                np.testing.assert_allclose(b[key], a[key], atol=1e-4, err_msg=key)
            assert torch.equal(a["image"], b["image"])  # same JPEG bytes
            assert "gaze" not in b
            lab = ds.labels(i)
            np.testing.assert_allclose(lab["box"], a["box"], atol=1e-6)


def test_published_aflw2000_zip(tmp_path):
    rng = np.random.default_rng(1)
    poses = [(0.1, -0.4, 0.2), (-0.3, 1.2, -0.1), (0.0, 0.0, 0.0)]
    truth = make_aflw2000_zip(tmp_path / "AFLW2000-3D.zip", rng, poses)
    ds = data.FaceDataset(tmp_path / "AFLW2000-3D.zip")
    assert ds.names == sorted(truth)
    for i, name in enumerate(ds.names):
        s, mat = ds[i], truth[name]
        p, y, r = mat["Pose_Para"][0][:3].astype(np.float64)
        np.testing.assert_allclose(s["pose"], [p, y, r], atol=1e-7)
        # 3DDFA's R (y-up frame) seen in the image frame.
        np.testing.assert_allclose(s["rotation"], F @ (Rx(-p) @ Ry(-y) @ Rz(-r)) @ F, atol=1e-6)
        # 68 points come from pt3d_68 (pt2d has only 21 in AFLW2000).
        np.testing.assert_allclose(s["landmarks_2d"], mat["pt3d_68"][:2].T, atol=1e-4)
        z = s["landmarks_3d"][:, 2].numpy()
        assert abs(z[[36, 39, 42, 45]].mean()) < 1e-4
        np.testing.assert_allclose(z - z[0], mat["pt3d_68"][2] - mat["pt3d_68"][2][0], atol=1e-4)
        pts = mat["pt3d_68"][:2]
        np.testing.assert_allclose(s["box"], [*pts.min(axis=1), *pts.max(axis=1)], atol=1e-4)
        assert s["image"].shape == (3, 120, 120) and "gaze" not in s


def test_published_300wlp_zip_ignores_landmark_folders(tmp_path):
    truth = make_300wlp_zip(tmp_path / "300W_LP.zip", np.random.default_rng(2))
    ds = data.FaceDataset(tmp_path / "300W_LP.zip")
    assert ds.names == sorted(truth)
    for i, name in enumerate(ds.names):
        s = ds[i]
        np.testing.assert_allclose(s["landmarks_2d"], truth[name]["pt2d"].T, atol=1e-4)
        np.testing.assert_allclose(s["pose"], truth[name]["Pose_Para"][0][:3], atol=1e-7)
        assert "landmarks_3d" not in s
    loader = torch.utils.data.DataLoader(
        data.FaceDataset(tmp_path / "300W_LP.zip",
                         transform=data.Compose((data.RandomHorizontalFlip(),
                                                 data.RandomCropAroundBox(out_size=64)))),
        batch_size=3)
    batch = next(iter(loader))
    assert batch["image"].shape == (3, 3, 64, 64) and batch["landmarks_2d"].shape == (3, 68, 2)
    assert len(batch["name"]) == 3
    # Worker processes open their own zip handle (the parent's is already open here).
    workers = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2)
    assert [b["name"][0] for b in workers] == ds.names


def test_unreadable_source(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="neither"):
        data.FaceDataset(tmp_path / "x.txt")


# --- Flip ----------------------------------------------------------------------------------------

def test_flip_twice_is_identity(raw_dataset):
    s = data.FaceDataset(raw_dataset, with_mask=True)[0]
    ff = data.hflip(data.hflip(s))
    for key, value in s.items():
        if isinstance(value, torch.Tensor):
            if value.is_floating_point():
                np.testing.assert_allclose(ff[key], value, atol=1e-5, err_msg=key)
            else:
                assert torch.equal(ff[key], value), key


def test_flip_geometry(raw_dataset):
    s = data.FaceDataset(raw_dataset)[1]
    f = data.hflip(s)
    perm = [16 - i for i in range(17)] + [26 - i for i in range(10)] + [27, 28, 29, 30] \
        + [35, 34, 33, 32, 31] + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40] \
        + [54 - i for i in range(7)] + [59 - i for i in range(5)] + [64 - i for i in range(5)] \
        + [67, 66, 65]
    lm = s["landmarks_2d"].numpy()
    np.testing.assert_allclose(f["landmarks_2d"][:, 0], RES - lm[perm, 0], atol=1e-5)
    np.testing.assert_allclose(f["landmarks_2d"][:, 1], lm[perm, 1])
    np.testing.assert_allclose(f["landmarks_3d"][:, 2], s["landmarks_3d"][perm, 2])
    p, y, r = s["pose"].tolist()
    np.testing.assert_allclose(f["pose"], [p, -y, -r])
    np.testing.assert_allclose(f["rotation"], Rx(-p) @ Ry(-y) @ Rz(-r), atol=1e-5)
    x0, y0, x1, y1 = s["box"].tolist()
    np.testing.assert_allclose(f["box"], [RES - x1, y0, RES - x0, y1])
    # Mirrored eyes: the new right eye's gaze is the old left eye's, x negated.
    np.testing.assert_allclose(f["gaze"][0], s["gaze"][1] * torch.tensor([-1.0, 1, 1]))
    np.testing.assert_allclose(f["gaze"][1], s["gaze"][0] * torch.tensor([-1.0, 1, 1]))
    assert torch.equal(f["image"], torch.flip(s["image"], dims=[2]))


def _eye_columns(mask):
    m = mask.numpy()
    return {c: np.nonzero(m == c)[1].mean() for c in (SegClass.RIGHT_EYE, SegClass.LEFT_EYE)}


def test_flip_of_a_dataset_sample_swaps_eye_class_sides(raw_dataset):
    ds = data.FaceDataset(raw_dataset, with_mask=True)
    i = int(np.argmin([abs(ds[k]["pose"][1]) for k in range(len(ds))]))  # the most frontal
    s = ds[i]
    before = _eye_columns(s["mask"])
    assert before[SegClass.RIGHT_EYE] < before[SegClass.LEFT_EYE]  # subject's right = image-left
    mirrored_only = _eye_columns(torch.flip(s["mask"], dims=[1]))
    assert mirrored_only[SegClass.RIGHT_EYE] > mirrored_only[SegClass.LEFT_EYE]  # sides swapped
    f = data.hflip(s)
    after = _eye_columns(f["mask"])
    assert after[SegClass.RIGHT_EYE] < after[SegClass.LEFT_EYE]  # ids swapped back to convention
    # The flipped right-eye landmarks (36-41) sit on the RIGHT_EYE pixels' side, and vice versa.
    lm = f["landmarks_2d"].numpy()
    for cls, idx in ((SegClass.RIGHT_EYE, slice(36, 42)), (SegClass.LEFT_EYE, slice(42, 48))):
        other = SegClass.LEFT_EYE if cls == SegClass.RIGHT_EYE else SegClass.RIGHT_EYE
        x = lm[idx, 0].mean()
        assert abs(x - after[cls]) < abs(x - after[other]), cls.name


# --- Rotation and crop: exact geometry -------------------------------------------------------

DOTS = (8, 30, 36, 45, 48, 54)


def _dot_sample(w=80, h=72, pose=(0.0, 0.0, 0.0)):
    """Black image with one white pixel at each of a few landmarks (placed on pixel centres)."""
    rng = np.random.default_rng(5)
    lm = np.column_stack([rng.uniform(20, w - 20, 68), rng.uniform(20, h - 20, 68)])
    lm = np.floor(lm) + 0.5
    # Dots far apart, so each one's centroid window holds only it.
    lm[list(DOTS)] = [[25.5, 25.5], [55.5, 25.5], [25.5, 50.5], [55.5, 50.5], [40.5, 38.5],
                      [47.5, 60.5]]
    img = np.zeros((h, w, 3), np.uint8)
    for k in DOTS:
        img[int(lm[k, 1]), int(lm[k, 0])] = 255
    raw = {"bbox_face": np.array([20.0, 18.0, 60.0, 58.0]), "landmarks_2d": lm,
           "landmarks_visible": np.ones(68, bool), "pose_aflw": np.asarray(pose),
           "gaze": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
           "modelview": np.eye(4), "projection": np.diag([2.0, 2.0, -1.0, 0.0]),
           "resolution": np.array([w, h]), "landmarks_depth": rng.uniform(0.5, 0.6, 68)}
    raw["modelview"][2, 3] = -0.55
    raw["projection"][3, 2] = -1.0
    return data.sample_from_raw(raw, img)


def _centroid(image, near, radius=4):
    g = image.sum(dim=0).numpy()
    h, w = g.shape
    x0, x1 = max(int(near[0]) - radius, 0), min(int(near[0]) + radius + 1, w)
    y0, y1 = max(int(near[1]) - radius, 0), min(int(near[1]) + radius + 1, h)
    win = g[y0:y1, x0:x1]
    ys, xs = np.mgrid[y0:y1, x0:x1] + 0.5
    return np.array([(xs * win).sum(), (ys * win).sum()]) / win.sum()


def test_rotation_moves_pixels_and_labels_together():
    s = _dot_sample()
    angle = np.radians(25.0)
    r = data.rotate(s, angle)
    cx, cy = (20 + 60) / 2, (18 + 58) / 2
    q = np.array([[cos(angle), -sin(angle)], [sin(angle), cos(angle)]])
    expected = (s["landmarks_2d"].double().numpy() - [cx, cy]) @ q.T + [cx, cy]
    np.testing.assert_allclose(r["landmarks_2d"], expected, atol=1e-4)
    for k in DOTS:
        np.testing.assert_allclose(_centroid(r["image"], expected[k]), expected[k], atol=0.35)
    # Clockwise on screen (y down): the point right of the centre moves down, as +roll does.
    probe = dict(s, landmarks_2d=torch.tensor([[cx + 10.0, cy]] * 68))
    moved = data.rotate(probe, angle)["landmarks_2d"][0]
    assert moved[1] > cy and moved[0] < cx + 10.0
    # Frontal face: roll grows by the angle, pitch and yaw stay 0; box = extent of rotated corners.
    np.testing.assert_allclose(r["pose"], [0.0, 0.0, angle], atol=1e-6)
    corners = (np.array([[20, 18], [60, 18], [60, 58], [20, 58]]) - [cx, cy]) @ q.T + [cx, cy]
    np.testing.assert_allclose(r["box"], [*corners.min(0), *corners.max(0)], atol=1e-4)
    # Camera-frame gaze (y up) turns the other way round: image-right -> (cos, -sin, 0).
    np.testing.assert_allclose(r["gaze"][0], [cos(angle), -sin(angle), 0.0], atol=1e-6)
    np.testing.assert_allclose(r["gaze"][1], [0.0, 0.0, 1.0], atol=1e-6)


def test_rotation_of_a_turned_head_composes_rotations():
    pose = (0.3, -0.6, 0.2)
    s = _dot_sample(pose=pose)
    angle = np.radians(-15.0)
    r = data.rotate(s, angle, centre_xy=(40.0, 36.0))
    expected = Rz(angle) @ (Rx(-pose[0]) @ Ry(pose[1]) @ Rz(pose[2]))
    np.testing.assert_allclose(r["rotation"], expected, atol=1e-6)
    p, y, rr = r["pose"].double().numpy()
    np.testing.assert_allclose(Rx(-p) @ Ry(y) @ Rz(rr), expected, atol=1e-6)


def test_crop_resize_geometry():
    s = _dot_sample()
    centre, side, out = (41.0, 37.5), 48.0, 96
    c = data.crop_resize(s, centre, side, out)
    k = out / side
    corner = np.array(centre) - side / 2
    expected = (s["landmarks_2d"].double().numpy() - corner) * k
    assert c["image"].shape == (3, out, out)
    np.testing.assert_allclose(c["landmarks_2d"], expected, atol=1e-4)
    np.testing.assert_allclose(c["landmarks_3d"][:, :2], expected, atol=1e-4)
    np.testing.assert_allclose(c["landmarks_3d"][:, 2], s["landmarks_3d"][:, 2] * k, atol=1e-4)
    np.testing.assert_allclose(c["box"], [(20 - corner[0]) * k, (18 - corner[1]) * k,
                                          (60 - corner[0]) * k, (58 - corner[1]) * k], atol=1e-4)
    for key in ("pose", "rotation", "gaze"):
        assert torch.equal(c[key], s[key]), key
    for kk in DOTS:
        np.testing.assert_allclose(_centroid(c["image"], expected[kk], 6), expected[kk], atol=0.35)


def test_crop_and_rotation_warp_the_mask_nearest_with_ignore_outside(raw_dataset):
    s = data.FaceDataset(raw_dataset, with_mask=True)[0]
    c = data.crop_resize(s, (10.0, 10.0), 40.0, 40)  # half outside the image
    m = c["mask"].numpy()
    assert set(np.unique(m)) <= set(np.unique(s["mask"].numpy())) | {255}
    assert (m[:10, :10] == 255).all() and (m[-5:, -5:] != 255).all()
    same = data.rotate(s, 0.0)
    assert torch.equal(same["mask"], s["mask"])
    np.testing.assert_allclose(same["image"], s["image"], atol=1e-5)


def test_colour_augmentations_leave_labels_alone(raw_dataset):
    s = data.FaceDataset(raw_dataset)[0]
    rng = np.random.default_rng(0)
    j = data.ColorJitter(0.5, 0.5, 0.5)(s, rng)
    g = data.RandomGrayscale(p=1.0)(s, rng)
    for out in (j, g):
        assert 0.0 <= out["image"].min() and out["image"].max() <= 1.0
        for key in ("pose", "rotation", "landmarks_2d", "box", "gaze"):
            assert torch.equal(out[key], s[key])
    assert not torch.equal(j["image"], s["image"])
    assert torch.equal(g["image"][0], g["image"][1]) and torch.equal(g["image"][1], g["image"][2])


def test_dataset_augmentation_is_deterministic_per_seed_epoch_index(raw_dataset):
    tf = data.default_train_transform(out_size=48)
    a, b = data.FaceDataset(raw_dataset, tf, seed=3), data.FaceDataset(raw_dataset, tf, seed=3)
    assert torch.equal(a[1]["image"], b[1]["image"]) and torch.equal(a[1]["pose"], b[1]["pose"])
    draws = set()
    for epoch in range(4):
        a.set_epoch(epoch)
        draws.add(tuple(a[1]["landmarks_2d"][0].tolist()))
    assert len(draws) == 4


# --- Rendered mirror pair ------------------------------------------------------------------------

def _symmetric(generator, yaw_deg):
    from replicantface.expression import ExpressionParams
    from replicantface.pose import PoseParams

    params = generator.params(21, 0)
    ident = dataclasses.replace(params.identity,
                                local_changes={k: 0.0 for k in params.identity.local_changes})
    pose = PoseParams(head_yaw_deg=yaw_deg, head_pitch_deg=0.0, head_roll_deg=0.0,
                      camera_heading_deg=0.0, camera_pitch_deg=0.0)
    cam = dataclasses.replace(params.camera, shift_x=0.0, shift_y=0.0, use_dof=False)
    return dataclasses.replace(params, identity=ident, expression=ExpressionParams({}, 0.0, 0.0),
                               pose=pose, camera=cam)


def test_rendered_yaw_pair_agrees_after_flipping_one(generator):
    left = generator.render(_symmetric(generator, 20.0))
    right = generator.render(_symmetric(generator, -20.0))
    a = data.hflip(data.sample_from_raw(left.labels, left.rgb, left.mask))
    b = data.sample_from_raw(right.labels, right.rgb, right.mask)
    assert np.degrees(b["pose"][1]) == pytest.approx(-20.0, abs=0.5)
    np.testing.assert_allclose(np.degrees(a["pose"]), np.degrees(b["pose"]), atol=0.5)
    err = np.linalg.norm(a["landmarks_2d"] - b["landmarks_2d"], axis=1)
    assert err.max() < 1.5, f"max landmark disagreement {err.max():.2f} px"
    np.testing.assert_allclose(a["landmarks_3d"], b["landmarks_3d"], atol=1.5)
    np.testing.assert_allclose(a["gaze"], b["gaze"], atol=0.02)
    # The mirrored mask's (class-swapped) eyes sit where the other render's eyes are.
    for cls in (SegClass.RIGHT_EYE, SegClass.LEFT_EYE):
        ca = np.argwhere(a["mask"].numpy() == cls).mean(axis=0)
        cb = np.argwhere(b["mask"].numpy() == cls).mean(axis=0)
        assert np.linalg.norm(ca - cb) < 2.0, cls.name


# --- Damaged raw samples -------------------------------------------------------------------------

def _damage(raw_dataset, root, kind):
    ds = root / "ds"
    shutil.copytree(raw_dataset, ds)
    npz = ds / "face_000001.npz"
    if kind == "truncated":
        npz.write_bytes(npz.read_bytes()[:300])
    else:
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files if k != "pose_aflw"}
        np.savez(npz, **arrays)
    return ds


@pytest.mark.parametrize("kind, words", [("truncated", "not a valid .npz file"),
                                         ("no_pose", "missing label 'pose_aflw'")])
def test_damaged_sample_raises_a_dataset_error_naming_the_file(raw_dataset, tmp_path, capsys,
                                                                kind, words):
    from replicantface.dataset import DatasetError

    ds = _damage(raw_dataset, tmp_path, kind)
    reader = data.FaceDataset(ds)
    for read in (reader.labels, reader.load):
        with pytest.raises(DatasetError, match=re.escape(f"face_000001.npz: {words}")):
            read(1)
    pred = tmp_path / "pred.csv"
    pred.write_text("name,pitch,yaw,roll\n" + "".join(f"{n},0,0,0\n" for n in reader.names))
    assert main(["evaluate", str(pred), str(ds)]) == 2
    err = capsys.readouterr().err.strip()
    assert "face_000001.npz" in err and words in err and "\n" not in err, err


@pytest.mark.parametrize("content", [b"\xff\xfe\x00binary\x00\x81", b"name,pitch\xe9,yaw\n"])
def test_binary_prediction_file_is_named(raw_dataset, tmp_path, capsys, content):
    pred = tmp_path / "pred.csv"
    pred.write_bytes(content)
    assert main(["evaluate", str(pred), str(raw_dataset)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(pred) in err and "\n" not in err, err
