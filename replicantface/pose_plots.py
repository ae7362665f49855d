"""Pose and face-size distributions of a preset, without rendering (numpy + matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from replicantface import labels
from replicantface.config import GeneratorConfig
from replicantface.human import HEAD_BASIS_WORLD
from replicantface.pose import ANGLES, PoseConfig, beta_11


def sample_pose_arrays(rng: np.random.Generator, cfg: PoseConfig, n: int) -> dict[str, np.ndarray]:
    """n samples of every angle (degrees), drawn from the same mixture as ``sample_pose``."""
    weights = np.array([c.weight for c in cfg.components], dtype=float)
    comp = rng.choice(len(weights), size=n, p=weights / weights.sum())
    out = {a: np.empty(n) for a in ANGLES}
    for k, c in enumerate(cfg.components):
        sel = comp == k
        for a in ANGLES:
            u = (rng.uniform(-1, 1, sel.sum()) if c.distribution == "uniform"
                 else beta_11(rng, c.beta_a(a), sel.sum()))
            out[a][sel] = c.amplitude(a) * u + c.offset(a)
    return out


def label_poses(angles: dict[str, np.ndarray]) -> np.ndarray:
    """(n, 3) [pitch, yaw, roll] radians of the labels these sampled angles produce.

    Vectorised ``replicantface.pose.label_pose``: head rotation in world-aligned axes composed
    with the orbiting camera, read in the AFLW convention.
    """
    f = labels.CAM_TO_IMG
    head = Rotation.from_euler("XYZ", np.radians(np.c_[-angles["head_pitch"], angles["head_yaw"],
                                                        angles["head_roll"]])).as_matrix()
    head_world = HEAD_BASIS_WORLD @ (f @ head @ f)
    h, p = np.radians(angles["camera_heading"]), np.radians(angles["camera_pitch"])
    back = np.stack([np.sin(h) * np.cos(p), -np.cos(h) * np.cos(p), -np.sin(p)], axis=1)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    up = np.cross(back, right)
    cam = np.stack([right, up, back], axis=2)  # columns: camera axes in world
    rot_cam = np.transpose(cam, (0, 2, 1)) @ head_world
    euler = Rotation.from_matrix(f @ rot_cam @ f).as_euler("XYZ")
    return np.c_[-euler[:, 0], euler[:, 1], euler[:, 2]]


def plot_pose_histograms(cfg: GeneratorConfig, count: int, out_path: Path, seed: int = 0,
                         resolution: int = 640) -> dict:
    """Histogram figure of label pitch/yaw/roll and face-box height; returns summary stats."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    angles = sample_pose_arrays(rng, cfg.pose, count)
    pose = np.degrees(label_poses(angles))
    cam = cfg.camera
    box_px = rng.uniform(cam.face_fraction_min, cam.face_fraction_max, count) * resolution
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, values, name in zip(axes, pose.T, ("pitch", "yaw", "roll")):
        ax.hist(values, bins=np.arange(-180, 181, 4), color="tab:blue", alpha=0.85)
        ax.set_xlabel(f"label {name} (deg, AFLW)")
        ax.set_title(f"{name}: mean {values.mean():+.1f}, sd {values.std():.1f}")
        ax.axvline(0, color="k", lw=0.5)
    axes[3].hist(box_px, bins=40, color="tab:orange")
    axes[3].set_xlabel(f"face-box height (px at {resolution}², approx.)")
    axes[3].set_title(f"box: {box_px.mean():.0f} ± {box_px.std():.0f} px")
    fig.suptitle(f"preset {cfg.preset!r}: {count} samples (no rendering)")
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=90)
    plt.close(fig)
    over = (np.abs(pose) > 99).any(axis=1).mean()
    return {"mean_deg": pose.mean(0).tolist(), "sd_deg": pose.std(0).tolist(),
            "share_over_99deg": float(over), "box_px_mean": float(box_px.mean())}
