"""Head-pose and landmark metrics with the AFLW2000-3D protocols. numpy only.

Pose: MAE of pitch, yaw and roll in degrees over the samples whose ground truth has every
|angle| <= 99° (FSA-Net / 6DRepNet), their mean, and the mean geodesic error
``arccos((tr(R_gt R_pred^T) - 1) / 2)`` in degrees. Landmarks: NME normalised by the outer-eye
distance (36-45), and by ``sqrt(w * h)`` of the ground-truth landmarks' box in |yaw| bins
0-30, 30-60, 60-90 (3DDFA's benchmark).

Prediction CSV (``replicantface evaluate``): a header row, then one row per sample:
``name,pitch,yaw,roll`` in degrees (AFLW convention, docs/labels.md), optionally followed by
``x0,y0,x1,y1,...,x67,y67``: the 68 predicted landmarks in pixels of the dataset image
(x right, y down, origin at the top-left pixel corner).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replicantface import labels

BENCHMARK_LIMIT_DEG = 99.0
YAW_BINS_DEG = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))
OUTER_EYE = (36, 45)
POSE_COLUMNS = ("name", "pitch", "yaw", "roll")
LANDMARK_COLUMNS = tuple(f"{a}{i}" for i in range(68) for a in ("x", "y"))


class PredictionError(ValueError):
    """A prediction file that cannot be matched to the dataset."""


def benchmark_mask(pose_gt_rad: np.ndarray, limit_deg: float = BENCHMARK_LIMIT_DEG) -> np.ndarray:
    """(N,) bool: every |angle| of the (N, 3) ground-truth [pitch, yaw, roll] (radians) <= limit."""
    return np.all(np.abs(np.degrees(np.asarray(pose_gt_rad))) <= limit_deg, axis=1)


def geodesic_deg(rot_gt: np.ndarray, rot_pred: np.ndarray) -> np.ndarray:
    """(N,) angle in degrees of ``R_gt R_pred^T`` for (N, 3, 3) rotations (any common frame)."""
    prod = np.einsum("nij,nkj->nik", rot_gt, rot_pred)
    cos = (np.trace(prod, axis1=1, axis2=2) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def rotations(pose_rad: np.ndarray) -> np.ndarray:
    """(N, 3, 3) head -> camera rotations for (N, 3) [pitch, yaw, roll] radians."""
    return np.stack([labels.rotation_from_pose_aflw(p) for p in np.asarray(pose_rad)])


@dataclass(frozen=True)
class PoseMetrics:
    """Mean absolute errors in degrees over ``count`` samples (``dropped`` by the ±99° filter)."""

    pitch: float
    yaw: float
    roll: float
    mean: float
    geodesic: float
    count: int
    dropped: int


def pose_metrics(pose_gt_rad: np.ndarray, pose_pred_rad: np.ndarray,
                 limit_deg: float | None = BENCHMARK_LIMIT_DEG) -> PoseMetrics:
    """Pose errors for (N, 3) [pitch, yaw, roll] radians; ``limit_deg=None`` keeps every sample.

    Angle errors are plain absolute differences (no wrap-around), as HopeNet and 6DRepNet report.
    """
    gt = np.asarray(pose_gt_rad, dtype=np.float64)
    pred = np.asarray(pose_pred_rad, dtype=np.float64)
    keep = benchmark_mask(gt, limit_deg) if limit_deg is not None else np.ones(len(gt), bool)
    gt, pred = gt[keep], pred[keep]
    if len(gt) == 0:
        nan = float("nan")
        return PoseMetrics(nan, nan, nan, nan, nan, 0, int((~keep).sum()))
    mae = np.degrees(np.abs(gt - pred)).mean(axis=0)
    geo = geodesic_deg(rotations(gt), rotations(pred)).mean()
    return PoseMetrics(float(mae[0]), float(mae[1]), float(mae[2]), float(mae.mean()), float(geo),
                       int(keep.sum()), int((~keep).sum()))


def nme(pred: np.ndarray, gt: np.ndarray, norm: str = "outer_eye",
        boxes: np.ndarray | None = None) -> np.ndarray:
    """(N,) mean point error / normaliser for (N, 68, 2) pixel landmarks.

    norm: ``outer_eye`` (distance of ground-truth points 36 and 45) or ``box`` (sqrt(w * h) of
    ``boxes`` (N, 4) [x0, y0, x1, y1], default the ground-truth landmarks' extent).
    """
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    err = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1).mean(axis=1)
    if norm == "outer_eye":
        d = np.linalg.norm(gt[:, OUTER_EYE[0], :2] - gt[:, OUTER_EYE[1], :2], axis=-1)
    elif norm == "box":
        if boxes is None:
            boxes = np.concatenate([gt[..., :2].min(axis=1), gt[..., :2].max(axis=1)], axis=1)
        boxes = np.asarray(boxes, dtype=np.float64)
        d = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    else:
        raise ValueError(f"norm must be 'outer_eye' or 'box', got {norm!r}")
    return err / d


def yaw_bin_index(yaw_rad: np.ndarray) -> np.ndarray:
    """(N,) index into YAW_BINS_DEG of |yaw| (0-30 closed, then (30, 60], (60, 90]); -1 beyond."""
    a = np.abs(np.degrees(np.asarray(yaw_rad, dtype=np.float64)))
    idx = np.full(a.shape, -1)
    for i, (lo, hi) in enumerate(YAW_BINS_DEG):
        idx[((a > lo) | (i == 0)) & (a <= hi) & (idx < 0)] = i
    return idx


@dataclass(frozen=True)
class LandmarkMetrics:
    """NMEs as fractions. ``box_bins``: (mean NME, count) per YAW_BINS_DEG entry."""

    outer_eye: float
    box: float
    box_bins: tuple = field(default_factory=tuple)
    box_bins_mean: float = float("nan")
    count: int = 0


def landmark_metrics(pred: np.ndarray, gt: np.ndarray, yaw_gt_rad: np.ndarray,
                     boxes: np.ndarray | None = None) -> LandmarkMetrics:
    """NME by outer-eye distance and by box size (overall and per |yaw| bin)."""
    by_eye = nme(pred, gt, "outer_eye")
    by_box = nme(pred, gt, "box", boxes)
    bins = yaw_bin_index(yaw_gt_rad)
    per_bin = tuple((float(by_box[bins == i].mean()) if (bins == i).any() else float("nan"),
                     int((bins == i).sum())) for i in range(len(YAW_BINS_DEG)))
    filled = [m for m, c in per_bin if c]
    return LandmarkMetrics(float(by_eye.mean()), float(by_box.mean()), per_bin,
                           float(np.mean(filled)) if filled else float("nan"), len(gt))


@dataclass(frozen=True)
class Predictions:
    """names (N,); pose_deg (N, 3) [pitch, yaw, roll]; landmarks (N, 68, 2) pixels or None."""

    names: tuple
    pose_deg: np.ndarray
    landmarks: np.ndarray | None


def read_predictions_csv(path: Path) -> Predictions:
    """Parse a prediction CSV (module docstring); raises PredictionError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"prediction file not found: {path}")
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise PredictionError(f"{path} is empty")
    header = tuple(c.strip() for c in rows[0])
    with_lm = header == POSE_COLUMNS + LANDMARK_COLUMNS
    if header != POSE_COLUMNS and not with_lm:
        raise PredictionError(f"{path}: header must be {','.join(POSE_COLUMNS)} optionally "
                              f"followed by x0,y0,...,x67,y67; got {','.join(header[:6])}...")
    names, values = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise PredictionError(f"{path}:{line}: {len(row)} columns, expected {len(header)}")
        try:
            values.append([float(v) for v in row[1:]])
        except ValueError as exc:
            raise PredictionError(f"{path}:{line}: {exc}") from exc
        names.append(row[0].strip())
    if not names:
        raise PredictionError(f"{path} has no prediction rows")
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise PredictionError(f"{path}: duplicate names, e.g. {min(dup)}")
    arr = np.array(values, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise PredictionError(f"{path}: non-finite values")
    lm = arr[:, 3:].reshape(-1, 68, 2) if with_lm else None
    return Predictions(tuple(names), arr[:, :3], lm)


def _cell(v: float) -> str:
    return f"{v:.2f}" if np.isfinite(v) else "n/a"


def format_pose_table(rows: list[tuple[str, PoseMetrics]]) -> str:
    """Markdown table in the original README's layout."""
    head = ["Variant", "Pitch°", "Yaw°", "Roll°", "Mean°", "Geodesic°"]
    body = [[v, _cell(m.pitch), _cell(m.yaw), _cell(m.roll), _cell(m.mean), _cell(m.geodesic)]
            for v, m in rows]
    return _markdown(head, body)


def format_landmark_table(rows: list[tuple[str, LandmarkMetrics]]) -> str:
    """Markdown table of NMEs in percent."""
    bins = [f"box {lo:g}-{hi:g}° %" for lo, hi in YAW_BINS_DEG]
    head = ["Variant", "NME eye %", "NME box %", *bins, "box bins mean %"]
    body = [[v, _cell(100 * m.outer_eye), _cell(100 * m.box)]
            + [_cell(100 * b[0]) for b in m.box_bins] + [_cell(100 * m.box_bins_mean)]
            for v, m in rows]
    return _markdown(head, body)


def _markdown(head: list[str], body: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in body)])


@dataclass(frozen=True)
class Evaluation:
    pose: PoseMetrics
    landmarks: LandmarkMetrics | None


def evaluate(pred: Predictions, dataset,
             limit_deg: float | None = BENCHMARK_LIMIT_DEG) -> Evaluation:
    """Score predictions against a ``data.FaceDataset``; every sample needs exactly one row."""
    index = {n: i for i, n in enumerate(dataset.names)}
    unknown = [n for n in pred.names if n not in index]
    if unknown:
        raise PredictionError(f"{len(unknown)} predicted names are not in the dataset, e.g. "
                              f"{unknown[0]!r} (names look like {dataset.names[0]!r})")
    missing = sorted(set(dataset.names) - set(pred.names))
    if missing:
        raise PredictionError(f"{len(missing)} dataset samples have no prediction, "
                              f"e.g. {missing[0]!r}")
    gt = [dataset.labels(index[n]) for n in pred.names]
    pose_gt = np.stack([g["pose"] for g in gt])
    pose = pose_metrics(pose_gt, np.radians(pred.pose_deg), limit_deg)
    lm = None
    if pred.landmarks is not None:
        lm_gt = np.stack([g["landmarks_2d"] for g in gt])
        lm = landmark_metrics(pred.landmarks, lm_gt, pose_gt[:, 1])
    return Evaluation(pose, lm)
