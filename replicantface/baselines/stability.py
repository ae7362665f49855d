"""Pose stability on a variation set: does the prediction stay still when only expression,
background and lighting change?

A variation set (``replicantface generate --variations M``) holds faces ``face_{i:06d}_{j:02d}``
whose identity, head pose and camera are fixed per ``i``; ``j = 0`` is the neutral expression and
``j = 1..M`` redraw expression, lighting and background. The ground-truth pose is the same for
every ``j`` (tested to 0.01° in the generator's tests), so any spread of the predictions is the
network reacting to appearance.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from replicantface.baselines.training import PredictionSet, TrainConfig, eval_dataset, predict

ANGLES = ("pitch", "yaw", "roll")


def markdown_table(head: list[str], body: list[list[str]]) -> str:
    """A padded markdown table."""
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in body)])


@dataclass(frozen=True)
class FaceStability:
    """One face's predictions over its variations, degrees.

    gt: (3,) [pitch, yaw, roll]; pred: (M + 1, 3) per variation; std: (3,) population std of
    pred; max_dev: (3,) largest |pred - mean(pred)|; bias: (3,) mean(pred) - gt.
    """

    face: str
    names: tuple
    gt: np.ndarray
    pred: np.ndarray

    @property
    def std(self) -> np.ndarray:
        return self.pred.std(axis=0)

    @property
    def max_dev(self) -> np.ndarray:
        return np.abs(self.pred - self.pred.mean(axis=0)).max(axis=0)

    @property
    def bias(self) -> np.ndarray:
        return self.pred.mean(axis=0) - self.gt


@dataclass(frozen=True)
class StabilityResult:
    faces: tuple

    @property
    def mean_std(self) -> np.ndarray:
        """(3,) mean over faces of the per-face std, degrees."""
        return np.mean([f.std for f in self.faces], axis=0)

    @property
    def max_dev(self) -> np.ndarray:
        """(3,) largest per-face deviation over all faces, degrees."""
        return np.max([f.max_dev for f in self.faces], axis=0)


def group_by_face(names: list[str]) -> dict[str, list[int]]:
    """Indices of ``face_{i:06d}_{j:02d}`` names grouped by ``face_{i:06d}``."""
    groups: dict[str, list[int]] = defaultdict(list)
    for k, name in enumerate(names):
        stem = name.rsplit("/", 1)[-1]
        parts = stem.split("_")
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"{name!r} is not a variation-set name face_IIIIII_JJ; generate the "
                             "set with --variations M")
        groups["_".join(parts[:2])].append(k)
    return dict(sorted(groups.items()))


def stability_from_predictions(pred: PredictionSet) -> StabilityResult:
    """Per-face spread of the predicted [pitch, yaw, roll] of a variation set's predictions."""
    faces = []
    pose_pred = np.degrees(pred.pose_pred)
    pose_gt = np.degrees(pred.pose_gt)
    for face, idx in group_by_face(pred.names).items():
        gt = pose_gt[idx]
        spread = float(np.ptp(gt, axis=0).max())
        if spread > 0.05:
            raise ValueError(f"{face}: the ground-truth pose varies by {spread:.3f}° across its "
                             "variations; this is not a variation set")
        faces.append(FaceStability(face, tuple(pred.names[i] for i in idx), gt[0], pose_pred[idx]))
    return StabilityResult(tuple(faces))


def pose_stability(model, variation_dir, cfg: TrainConfig) -> StabilityResult:
    """Predict every sample of a variation set (eval crop around its own face box) and measure
    the spread per face."""
    return stability_from_predictions(predict(model, eval_dataset(variation_dir, cfg)))


def stability_table(result: StabilityResult) -> str:
    """Markdown: one row per face (GT, std, max |dev| per angle, degrees) and a summary row."""
    head = ["Face", "n", "GT pitch/yaw/roll°", "std pitch°", "std yaw°", "std roll°",
            "max dev pitch°", "max dev yaw°", "max dev roll°", "bias yaw°"]

    def fmt(v):
        return f"{v:.2f}"

    body = []
    for f in result.faces:
        body.append([f.face, str(len(f.names)), "/".join(f"{a:+.1f}" for a in f.gt),
                     *map(fmt, f.std), *map(fmt, f.max_dev), f"{f.bias[1]:+.2f}"])
    mean_bias = np.mean([abs(f.bias[1]) for f in result.faces])
    body.append(["**all faces**", str(sum(len(f.names) for f in result.faces)), "",
                 *(f"**{fmt(v)}** (mean)" for v in result.mean_std),
                 *(f"**{fmt(v)}** (max)" for v in result.max_dev), f"{mean_bias:.2f} (mean abs)"])
    return markdown_table(head, body)


def plot_stability(result: StabilityResult, path=None, title: str = "Pose stability"):
    """Three panels (pitch, yaw, roll): each variation's prediction minus the face's mean
    prediction (the spread that appearance alone causes), per face; tick labels give the face's
    ground truth and the bias of its mean prediction. Returns the figure; saves it if ``path``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    x = np.arange(len(result.faces))
    for a, ax in enumerate(axes):
        for i, f in enumerate(result.faces):
            dev = f.pred[:, a] - f.pred[:, a].mean()
            ax.scatter(np.full(len(dev), i) + np.linspace(-0.2, 0.2, len(dev)), dev, s=16,
                       color="C0", alpha=0.85, zorder=3)
            ax.scatter([i - 0.2], [dev[0]], s=46, facecolors="none", edgecolors="C3", zorder=4,
                       label="neutral expression (j = 0)" if i == 0 else None)
            ax.vlines(i, dev.min(), dev.max(), color="C0", lw=1, alpha=0.5)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xticks(x, [f"{f.face[-3:]}\nGT {f.gt[a]:+.0f}°\nbias {f.bias[a]:+.0f}°"
                          for f in result.faces], fontsize=6.5)
        ax.set_title(f"{ANGLES[a]}: mean std {result.mean_std[a]:.2f}°, "
                     f"max dev {result.max_dev[a]:.2f}°", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("prediction - face's mean prediction (°)")
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
