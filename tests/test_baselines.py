"""replicantface.baselines: 6D rotation maths, the network, training, scoring, ONNX export.

No rendering here: the notebook that trains on generated data (notebooks/04_train_baseline.ipynb)
is executed with tiny parameters by tests/test_notebooks.py, which runs every notebook.
"""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from replicantface import data as rfdata
from replicantface.baselines import stability
from replicantface.baselines import training as bt
from replicantface.baselines.model import (
    FaceBaselineNet,
    ModelConfig,
    count_parameters,
    rotation_from_6d,
    rotation_to_6d,
)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _gram_schmidt(x):
    a1, a2 = x[:3], x[3:]
    b1 = a1 / np.linalg.norm(a1)
    b2 = a2 - b1 @ a2 * b1
    b2 /= np.linalg.norm(b2)
    return np.stack([b1, b2, np.cross(b1, b2)], axis=1)


def test_rotation_from_6d_is_gram_schmidt_and_a_rotation():
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rot = rotation_from_6d(x).numpy()
    for r, v in zip(rot, x.numpy()):
        np.testing.assert_allclose(r, _gram_schmidt(v), atol=1e-6)
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape),
                               atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-6)


def test_rotation_6d_round_trip_and_invariances():
    rots = torch.as_tensor(Rotation.random(32, random_state=1).as_matrix())
    six = rotation_to_6d(rots)
    np.testing.assert_allclose(rotation_from_6d(six).numpy(), rots.numpy(), atol=1e-6)
    # Scaling a1 and adding any multiple of a1 to a2 do not change the rotation.
    a1, a2 = six[:, :3], six[:, 3:]
    other = torch.cat([3.0 * a1, a2 + 0.7 * a1], dim=1)
    np.testing.assert_allclose(rotation_from_6d(other).numpy(), rots.numpy(), atol=1e-6)


def test_chordal_loss_is_2_sqrt2_sin_half_angle():
    angles = np.radians([0.0, 5.0, 30.0, 90.0, 170.0])
    rot = torch.as_tensor(Rotation.from_rotvec(np.outer(angles, [0, 1, 0])).as_matrix())
    eye = torch.eye(3, dtype=torch.float64).expand(len(angles), 3, 3)
    got = bt.chordal_loss(rot, eye).numpy()
    np.testing.assert_allclose(got, 2 * np.sqrt(2) * np.sin(angles / 2), atol=1e-3)


@pytest.mark.parametrize("arch,size,gaze", [("plain", 64, False), ("plain", 96, True),
                                             ("mobilenet_v1", 64, True)])
def test_model_output_shapes(arch, size, gaze):
    net = FaceBaselineNet(ModelConfig(arch=arch, width=0.5, crop_size=size, with_gaze=gaze)).eval()
    out = net(torch.rand(3, 3, size, size))
    assert out["rot6d"].shape == (3, 6)
    assert out["rotation"].shape == (3, 3, 3)
    assert out["landmarks"].shape == (3, 68, 2)
    assert ("gaze" in out) == gaze
    if gaze:
        assert out["gaze"].shape == (3, 2, 3)
        np.testing.assert_allclose(out["gaze"].norm(dim=-1).detach().numpy(), 1.0, atol=1e-5)
    # Freshly built: frontal pose and landmarks at the crop centre, no downloaded weights.
    np.testing.assert_allclose(out["rotation"].detach().numpy(),
                               np.broadcast_to(np.eye(3), (3, 3, 3)), atol=0.05)
    assert 0.5e6 <= count_parameters(net) <= 1.0e6  # MobileNet-sized
    with pytest.raises(ValueError, match="crop_size"):
        FaceBaselineNet(ModelConfig(crop_size=70))


def _synthetic_batch(n=8, size=64, seed=0):
    """Images whose content encodes the target: a bright square at the yaw-dependent place."""
    rng = np.random.default_rng(seed)
    yaw = rng.uniform(-0.8, 0.8, n)
    images = torch.zeros(n, 3, size, size)
    lms = np.zeros((n, 68, 2))
    for i, y in enumerate(yaw):
        cx = int(size / 2 + y * size / 3)
        images[i, :, 20:44, cx - 6:cx + 6] = 1.0
        lms[i] = [(cx + 0.0) / size, 0.5]
    rot = np.stack([rfdata.rotation_from_pose([0.0, y, 0.0]) for y in yaw])
    return images, torch.as_tensor(rot, dtype=torch.float32), torch.as_tensor(lms,
                                                                             dtype=torch.float32)


def _fit(net, steps=25):
    """Adam steps on the synthetic batch with the training loss; returns the losses."""
    images, rot, lms = _synthetic_batch()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        out = net(images)
        loss = bt.chordal_loss(out["rotation"], rot).mean() + 5 * (out["landmarks"] - lms).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_loss_falls_on_a_tiny_batch():
    torch.manual_seed(0)
    losses = _fit(FaceBaselineNet(ModelConfig()))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3]), losses


def test_crop_landmarks_matches_the_eval_crop():
    sample = {"name": "x", "image": torch.rand(3, 80, 100), "box": torch.tensor([30.0, 20, 60, 64]),
              "landmarks_2d": torch.tensor(np.random.default_rng(2).uniform(20, 70, (68, 2)),
                                           dtype=torch.float32),
              "rotation": torch.eye(3), "pose": torch.zeros(3)}
    cropped = bt.CropAroundBox(out_size=64, scale=1.4)(sample)
    want = bt.crop_landmarks(sample["landmarks_2d"].numpy(), sample["box"].numpy(), 1.4) * 64
    np.testing.assert_allclose(cropped["landmarks_2d"].numpy(), want, atol=1e-3)
    assert cropped["image"].shape == (3, 64, 64)


def test_mean_rotation():
    r = Rotation.from_euler("XYZ", [0.1, -0.3, 0.2]).as_matrix()
    np.testing.assert_allclose(bt.mean_rotation(np.stack([r, r, r])), r, atol=1e-12)
    pair = np.stack([rfdata.rotation_from_pose([0, a, 0]) for a in (0.5, -0.5)])
    np.testing.assert_allclose(bt.mean_rotation(pair), np.eye(3), atol=1e-12)


def _prediction_set(names, pose_gt_deg, pose_pred_deg):
    gt, pred = np.radians(pose_gt_deg), np.radians(pose_pred_deg)
    rg = np.stack([rfdata.rotation_from_pose(p) for p in gt])
    rp = np.stack([rfdata.rotation_from_pose(p) for p in pred])
    lm = np.zeros((len(names), 68, 2))
    lm[:, 36], lm[:, 45] = [10, 30], [50, 30]
    lm[:, :, 1] += np.arange(68) * 0.5
    return bt.PredictionSet(list(names), pred, gt, rp, rg, lm + 1.0, lm, None, None, 64)


def test_score_and_mean_baseline():
    gt = np.array([[0, 30, 0], [0, -10, 0], [0, 20, 0], [0, 120, 0]], dtype=float)
    pred = gt + [[1, 2, 0], [0, -2, 1], [0, 0, 0], [0, 0, 0]]
    s = bt.score(_prediction_set([f"f{i}" for i in range(4)], gt, pred))
    assert s.pose.count == 3 and s.pose.dropped == 1  # the ±99° filter
    assert s.pose.yaw == pytest.approx(4 / 3)
    assert s.landmarks.outer_eye == pytest.approx(np.sqrt(2) / np.hypot(40, 9 * 0.5))
    base = bt.MeanBaseline(np.zeros(3), np.full((68, 2), 0.5), None)
    m = bt.score_mean_baseline(base, _prediction_set([f"f{i}" for i in range(4)], gt, pred))
    assert m.pose.yaw == pytest.approx(20.0)
    assert m.pose.pitch == 0.0


def test_pose_stability_spread():
    names = [f"face_{i:06d}_{j:02d}" for i in range(2) for j in range(3)]
    gt = [[5, 20, 0]] * 3 + [[-5, -40, 3]] * 3
    pred = [[5, 21, 0], [5, 19, 0], [5, 23, 0], [-5, -40, 3], [-5, -40, 3], [-4, -40, 3]]
    res = stability.stability_from_predictions(_prediction_set(names, gt, pred))
    assert [f.face for f in res.faces] == ["face_000000", "face_000001"]
    np.testing.assert_allclose(res.faces[0].std, [0, np.std([21, 19, 23]), 0], atol=1e-9)
    np.testing.assert_allclose(res.faces[0].max_dev[1], 2.0, atol=1e-9)
    np.testing.assert_allclose(res.max_dev, [2 / 3, 2.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(res.faces[0].bias[1], 1.0, atol=1e-9)
    assert "face_000001" in stability.stability_table(res)
    with pytest.raises(ValueError, match="ground-truth pose varies"):
        bad = [[5, 20, 0], [5, 25, 0], [5, 20, 0]] + gt[3:]
        stability.stability_from_predictions(_prediction_set(names, bad, pred))
    with pytest.raises(ValueError, match="variation-set name"):
        stability.group_by_face(["face_000001"])


def test_onnx_export_matches_pytorch(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from replicantface.baselines.onnx_export import check_onnx, export_onnx

    torch.manual_seed(0)
    net = FaceBaselineNet(ModelConfig(with_gaze=True))
    _fit(net)  # trained weights, not the initial ones
    images = _synthetic_batch()[0]
    with torch.no_grad():  # settle the batch-norm running statistics
        for _ in range(40):
            net(images)
    net.eval()
    path = export_onnx(net, tmp_path / "net.onnx", 64)
    check = check_onnx(net, path, images)
    assert set(check.max_abs_diff) == {"rotation", "landmarks", "gaze"}
    assert check.ok, check.summary()
    assert check.max_abs_diff["landmarks"] <= 1e-4
    # The outputs depend on the image (not just the biases): the check is meaningful.
    with torch.no_grad():
        r = net(images)["rotation"]
    assert float((r - r[:1]).abs().max()) > 1e-2
