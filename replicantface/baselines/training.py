"""Train and score the baseline network on generated datasets (CPU, minutes).

Data comes through ``replicantface.data.FaceDataset`` and its label-safe augmentations; the
network sees square crops around the face box resized to ``crop_size`` pixels. Metrics are the
project's (``replicantface.metrics``): pitch/yaw/roll MAE in degrees after the ±99° filter, their
mean, the geodesic error, and NME by outer-eye distance and by box size. Landmark NMEs are
computed in crop pixels; both normalisers scale with the crop, so they equal the NMEs in the
dataset image.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from replicantface import data as rfdata
from replicantface import metrics
from replicantface.baselines.model import FaceBaselineNet, ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on.

    train_dir/test_dir: raw dataset folders (``replicantface generate``). max_train: use only
    the first N training samples (None: all). landmark_weight: weight of the auxiliary landmark
    L1 loss (crop units); 0 trains pose alone ("wo/ LMK"). crop_scale: range of the crop side
    as a multiple of the face box's longer side; eval_crop_scale: the fixed test-time crop.
    rotate_deg: in-plane rotation augmentation (the pose label rotates with it).
    threads: torch CPU threads. 1 by default: on 2 cores shared with other processes, two
    OpenMP threads ran a training step about 10x slower than one (they spin waiting for each
    other whenever one is descheduled).
    """

    train_dir: str
    test_dir: str | None = None
    max_train: int | None = None
    crop_size: int = 64
    arch: str = "plain"
    width: float = 0.5
    with_gaze: bool = False
    epochs: int = 12
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    landmark_weight: float = 5.0
    gaze_weight: float = 0.5
    flip: bool = True
    rotate_deg: float = 10.0
    crop_scale: tuple[float, float] = (1.3, 1.5)
    crop_shift: float = 0.05
    eval_crop_scale: float = 1.4
    color_jitter: float = 0.2
    blur_sigma_px: float = 1.0
    seed: int = 0
    threads: int = 1
    eval_every: int = 1
    cache: bool = True

    def model_config(self) -> ModelConfig:
        return ModelConfig(arch=self.arch, width=self.width, crop_size=self.crop_size,
                           with_gaze=self.with_gaze)


# ---------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class CropAroundBox:
    """Deterministic test-time crop: square of side ``scale * max(box w, h)`` centred on the
    face box, resized to ``out_size`` pixels."""

    out_size: int = 64
    scale: float = 1.4

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        x0, y0, x1, y1 = sample["box"].double().tolist()
        side = max(x1 - x0, y1 - y0, 1.0) * self.scale
        return rfdata.crop_resize(sample, ((x0 + x1) / 2, (y0 + y1) / 2), side, self.out_size)


@dataclass(frozen=True)
class GaussianBlur:
    """Blur the whole image with a Gaussian of ``sigma_px`` pixels; labels untouched.

    The ``test``-quality renders (4 samples per pixel, no denoiser) carry strong Monte-Carlo
    noise, and ``crop_resize`` samples bilinearly without low-pass filtering; this prefilter
    stands in for the missing anti-aliasing so the network sees faces, not speckle.
    """

    sigma_px: float = 1.0

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        if self.sigma_px <= 0:
            return sample
        r = max(1, int(np.ceil(2.5 * self.sigma_px)))
        x = torch.arange(-r, r + 1, dtype=torch.float32)
        k = torch.exp(-0.5 * (x / self.sigma_px) ** 2)
        k = k / k.sum()
        img = sample["image"][:, None]  # (3, 1, H, W): one channel at a time
        img = torch.nn.functional.pad(img, (r, r, r, r), mode="replicate")
        img = torch.nn.functional.conv2d(img, k.view(1, 1, 1, -1))
        img = torch.nn.functional.conv2d(img, k.view(1, 1, -1, 1))
        return {**sample, "image": img[:, 0]}


def crop_landmarks(landmarks_2d: np.ndarray, box: np.ndarray, scale: float) -> np.ndarray:
    """(68, 2) crop units (0..1) of ``CropAroundBox(scale=scale)`` for (68, 2) image pixels and
    the (4,) [x0, y0, x1, y1] pixel face box (the same map as ``data.crop_resize``)."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    side = max(x1 - x0, y1 - y0, 1.0) * scale
    corner = np.array([(x0 + x1 - side) / 2, (y0 + y1 - side) / 2])
    return (np.asarray(landmarks_2d, dtype=np.float64) - corner) / side


class CachedFaceDataset(rfdata.FaceDataset):
    """``FaceDataset`` that keeps decoded, untransformed samples in memory (the augmentations
    copy before they change anything) and optionally only its first ``limit`` samples."""

    _DROP = ("landmarks_3d", "landmarks_visible")

    def __init__(self, source, transform=None, seed: int = 0, limit: int | None = None,
                 cache: bool = True):
        super().__init__(source, transform=transform, seed=seed)
        if limit is not None:
            self.names = self.names[: int(limit)]
        self._cache: dict[int, dict] | None = {} if cache else None

    def load(self, index: int) -> dict:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        sample = super().load(index)
        for key in self._DROP:
            sample.pop(key, None)
        if self._cache is not None:
            self._cache[index] = sample
        return sample


def train_transform(cfg: TrainConfig) -> rfdata.Compose:
    """Blur prefilter, colour jitter, grayscale, flip, in-plane rotation, random crop around
    the box."""
    a = cfg.color_jitter
    steps = [GaussianBlur(cfg.blur_sigma_px), rfdata.ColorJitter(a, a, a),
             rfdata.RandomGrayscale(0.1)]
    if cfg.flip:
        steps.append(rfdata.RandomHorizontalFlip(0.5))
    if cfg.rotate_deg > 0:
        steps.append(rfdata.RandomInPlaneRotation(cfg.rotate_deg))
    steps.append(rfdata.RandomCropAroundBox(cfg.crop_size, cfg.crop_scale[0], cfg.crop_scale[1],
                                            cfg.crop_shift))
    return rfdata.Compose(tuple(steps))


def eval_transform(cfg: TrainConfig) -> rfdata.Compose:
    """The same prefilter as in training, then the fixed crop around the face box."""
    return rfdata.Compose((GaussianBlur(cfg.blur_sigma_px),
                           CropAroundBox(cfg.crop_size, cfg.eval_crop_scale)))


def eval_dataset(source, cfg: TrainConfig, limit: int | None = None) -> CachedFaceDataset:
    return CachedFaceDataset(source, transform=eval_transform(cfg), limit=limit, cache=cfg.cache)


def _collate(items: list[dict]) -> dict:
    keys = ("image", "rotation", "pose", "landmarks_2d", "gaze", "box")
    out = {k: torch.stack([it[k] for it in items]) for k in keys if k in items[0]}
    out["name"] = [it["name"] for it in items]
    return out


# ---------------------------------------------------------------------------------------------
# Losses


def chordal_loss(rot_pred: torch.Tensor, rot_gt: torch.Tensor) -> torch.Tensor:
    """(N,) Frobenius distance ``|R_pred - R_gt|_F = 2 sqrt(2) sin(angle / 2)``: linear in the
    angle near 0, unlike its square, and without arccos's infinite slope."""
    return torch.sqrt(((rot_pred - rot_gt) ** 2).sum(dim=(1, 2)) + 1e-8)


def gaze_angle_deg(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) mean over both eyes of the angle in degrees between (N, 2, 3) gaze vectors."""
    p = pred / np.linalg.norm(pred, axis=-1, keepdims=True)
    g = gt / np.linalg.norm(gt, axis=-1, keepdims=True)
    cos = np.clip((p * g).sum(axis=-1), -1.0, 1.0)
    return np.degrees(np.arccos(cos)).mean(axis=1)


# ---------------------------------------------------------------------------------------------
# Prediction and scoring


@dataclass
class PredictionSet:
    """Predictions and ground truth of one dataset, in the eval crop.

    pose_*: (N, 3) [pitch, yaw, roll] radians (AFLW); rotation_*: (N, 3, 3) image frame;
    landmarks_*: (N, 68, 2) crop pixels (x right, y down); gaze_*: (N, 2, 3) camera frame or
    None.
    """

    names: list
    pose_pred: np.ndarray
    pose_gt: np.ndarray
    rotation_pred: np.ndarray
    rotation_gt: np.ndarray
    landmarks_pred: np.ndarray
    landmarks_gt: np.ndarray
    gaze_pred: np.ndarray | None
    gaze_gt: np.ndarray | None
    crop_px: int = 0


@torch.no_grad()
def predict(model: FaceBaselineNet, dataset, batch_size: int = 64) -> PredictionSet:
    """Run ``model`` over every item of an eval-cropped ``dataset``."""
    model.eval()
    crop = None
    acc = defaultdict(list)
    for start in range(0, len(dataset), batch_size):
        batch = _collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        crop = batch["image"].shape[-1]
        out = model(batch["image"])
        acc["names"] += batch["name"]
        acc["rotation_pred"].append(out["rotation"].double().numpy())
        acc["rotation_gt"].append(batch["rotation"].double().numpy())
        acc["pose_gt"].append(batch["pose"].double().numpy())
        acc["landmarks_pred"].append(out["landmarks"].double().numpy() * crop)
        acc["landmarks_gt"].append(batch["landmarks_2d"].double().numpy())
        if "gaze" in out and "gaze" in batch:
            acc["gaze_pred"].append(out["gaze"].double().numpy())
            acc["gaze_gt"].append(batch["gaze"].double().numpy())
    cat = {k: np.concatenate(v) for k, v in acc.items() if k != "names"}
    pose_pred = np.stack([rfdata.pose_from_rotation(r) for r in cat["rotation_pred"]])
    return PredictionSet(acc["names"], pose_pred, cat["pose_gt"], cat["rotation_pred"],
                         cat["rotation_gt"], cat["landmarks_pred"], cat["landmarks_gt"],
                         cat.get("gaze_pred"), cat.get("gaze_gt"), int(crop or 0))


@dataclass(frozen=True)
class Scores:
    """pose: MAE table row; landmarks: NMEs (None if the model was not trained on them);
    gaze_deg: mean angular gaze error (None without a gaze head)."""

    pose: metrics.PoseMetrics
    landmarks: metrics.LandmarkMetrics | None = None
    gaze_deg: float | None = None


def score(pred: PredictionSet, with_landmarks: bool = True,
          limit_deg: float | None = metrics.BENCHMARK_LIMIT_DEG) -> Scores:
    """The project's metrics for a ``PredictionSet``."""
    pose = metrics.pose_metrics(pred.pose_gt, pred.pose_pred, limit_deg)
    lm = (metrics.landmark_metrics(pred.landmarks_pred, pred.landmarks_gt, pred.pose_gt[:, 1])
          if with_landmarks else None)
    gaze = (float(gaze_angle_deg(pred.gaze_pred, pred.gaze_gt).mean())
            if pred.gaze_pred is not None else None)
    return Scores(pose, lm, gaze)


def evaluate(model: FaceBaselineNet, test_dir, cfg: TrainConfig,
             with_landmarks: bool | None = None) -> tuple[Scores, PredictionSet]:
    """Scores and predictions of ``model`` on the raw dataset ``test_dir`` (eval crop)."""
    pred = predict(model, eval_dataset(test_dir, cfg))
    lm = cfg.landmark_weight > 0 if with_landmarks is None else with_landmarks
    return score(pred, with_landmarks=lm), pred


def mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """(3, 3) chordal L2 mean of (N, 3, 3) rotations: the mean matrix projected onto SO(3)."""
    u, _, vt = np.linalg.svd(np.mean(rotations, axis=0))
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


@dataclass(frozen=True)
class MeanBaseline:
    """The constant predictor fitted on a training set: mean pose (chordal mean rotation, as
    AFLW angles in radians), mean landmarks (crop units) and mean gaze (unit, camera frame)."""

    pose: np.ndarray
    landmarks: np.ndarray
    gaze: np.ndarray | None


def fit_mean_baseline(train_dir, cfg: TrainConfig) -> MeanBaseline:
    """Mean labels of the (un-augmented) training set, read without decoding images."""
    ds = rfdata.FaceDataset(train_dir)
    n = len(ds) if cfg.max_train is None else min(len(ds), cfg.max_train)
    rots, lms, gazes = [], [], []
    for i in range(n):
        lab = ds.labels(i)
        rots.append(rfdata.rotation_from_pose(lab["pose"]))
        lms.append(crop_landmarks(lab["landmarks_2d"], lab["box"], cfg.eval_crop_scale))
        if ds.kind == "raw":
            with np.load(ds.source / f"{ds.names[i]}.npz") as npz:
                gazes.append(npz["gaze"])
    gaze = None
    if gazes:
        g = np.mean(gazes, axis=0)
        gaze = g / np.linalg.norm(g, axis=-1, keepdims=True)
    return MeanBaseline(rfdata.pose_from_rotation(mean_rotation(np.stack(rots))),
                        np.mean(lms, axis=0), gaze)


def score_mean_baseline(base: MeanBaseline, test: PredictionSet) -> Scores:
    """Scores of predicting ``base`` for every sample of ``test`` (its ground truth is used)."""
    n = len(test.names)
    const = PredictionSet(
        test.names, np.repeat(base.pose[None], n, 0), test.pose_gt,
        np.repeat(rfdata.rotation_from_pose(base.pose)[None], n, 0), test.rotation_gt,
        np.repeat(base.landmarks[None], n, 0) * test.crop_px, test.landmarks_gt,
        None if base.gaze is None or test.gaze_gt is None else np.repeat(base.gaze[None], n, 0),
        test.gaze_gt, test.crop_px)
    return score(const, with_landmarks=True)


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainResult:
    """model: trained, in eval mode. history: one dict per epoch (losses, lr, seconds and, when
    a test set is given, held-out yaw/mean/geodesic MAE in degrees and NME eye in %)."""

    config: TrainConfig
    model: FaceBaselineNet
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    train_count: int = 0
    parameters: int = 0

    def losses(self, key: str = "loss") -> list[float]:
        return [h[key] for h in self.history]


def seed_everything(seed: int, threads: int) -> torch.Generator:
    """Seed torch's global state (weight init, dropout) and return the shuffling generator."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    return torch.Generator().manual_seed(seed)


def train(cfg: TrainConfig, progress: bool = False, log=print) -> TrainResult:
    """Train a ``FaceBaselineNet`` from scratch on ``cfg.train_dir``."""
    # The human model switches autograd off process-wide when it loads (human.py).
    with torch.enable_grad():
        return _train(cfg, progress, log)


def _train(cfg: TrainConfig, progress: bool, log) -> TrainResult:
    gen = seed_everything(cfg.seed, cfg.threads)
    model = FaceBaselineNet(cfg.model_config())
    ds = CachedFaceDataset(cfg.train_dir, transform=train_transform(cfg), seed=cfg.seed,
                           limit=cfg.max_train, cache=cfg.cache)
    if len(ds) == 0:
        raise ValueError(f"no samples in {cfg.train_dir}")
    test = eval_dataset(cfg.test_dir, cfg) if cfg.test_dir else None
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=True,
                                         generator=gen, collate_fn=_collate, drop_last=False)
    steps = cfg.epochs * len(loader)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps,
                                                pct_start=0.15)
    result = TrainResult(cfg, model, train_count=len(ds),
                         parameters=sum(p.numel() for p in model.parameters()))
    t_run = time.perf_counter()
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        ds.set_epoch(epoch)
        model.train()
        sums, count = defaultdict(float), 0
        for batch in loader:
            out = model(batch["image"])
            losses = {"pose": chordal_loss(out["rotation"], batch["rotation"]).mean()}
            lm_gt = batch["landmarks_2d"] / cfg.crop_size
            losses["landmarks"] = (out["landmarks"] - lm_gt).abs().mean()
            total = losses["pose"] + cfg.landmark_weight * losses["landmarks"]
            if cfg.with_gaze:
                cos = (out["gaze"] * batch["gaze"]).sum(dim=-1)
                losses["gaze"] = (1.0 - cos).mean()
                total = total + cfg.gaze_weight * losses["gaze"]
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            sched.step()
            b = len(batch["name"])
            count += b
            sums["loss"] += float(total.detach()) * b
            for k, v in losses.items():
                sums[f"loss_{k}"] += float(v.detach()) * b
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"],
               **{k: v / count for k, v in sums.items()}}
        row["train_seconds"] = time.perf_counter() - t0
        if test is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            s = score(predict(model, test), with_landmarks=True)
            row.update(test_pitch=s.pose.pitch, test_yaw=s.pose.yaw, test_roll=s.pose.roll,
                       test_mean=s.pose.mean, test_geodesic=s.pose.geodesic,
                       test_nme_eye=100 * s.landmarks.outer_eye)
            if s.gaze_deg is not None:
                row["test_gaze_deg"] = s.gaze_deg
        result.history.append(row)
        if progress:
            log(_format_row(row))
    result.train_seconds = time.perf_counter() - t_run
    model.eval()
    return result


def _format_row(row: dict) -> str:
    parts = [f"epoch {row['epoch']:3d}", f"loss {row['loss']:.4f}",
             f"pose {row['loss_pose']:.4f}", f"lmk {row['loss_landmarks']:.4f}"]
    if "test_yaw" in row:
        parts += [f"test yaw {row['test_yaw']:.2f}°", f"geodesic {row['test_geodesic']:.2f}°"]
    parts.append(f"{row['train_seconds']:.0f} s")
    return "  ".join(parts)



def assert_loss_falls(result: TrainResult, key: str = "loss", window: int = 2) -> None:
    """Raise AssertionError unless the mean training loss of the last ``window`` epochs is below
    that of the first ``window`` (epoch means are noisy on tiny sets: each epoch draws new
    augmentations)."""
    values = [h[key] for h in result.history]
    w = max(1, min(window, len(values) // 2))
    first, last = float(np.mean(values[:w])), float(np.mean(values[-w:]))
    if not last < first:
        raise AssertionError(f"training {key} did not fall: first {w} epochs {first:.4f}, "
                             f"last {w} epochs {last:.4f} ({values})")


def cross_evaluate(runs: dict[str, TrainResult], tests: dict[str, str | Path],
                   with_landmarks: bool = True) -> dict[tuple[str, str], Scores]:
    """Scores of every trained run on every test split: ``{(run name, test name): Scores}``."""
    out = {}
    for run_name, run in runs.items():
        for test_name, test_dir in tests.items():
            lm = with_landmarks and run.config.landmark_weight > 0
            out[(run_name, test_name)] = evaluate(run.model, test_dir, run.config, lm)[0]
    return out


# ---------------------------------------------------------------------------------------------
# Generating the data inside the notebook


def generate_dataset(out_dir, count: int, seed: int, preset: str = "default",
                     quality: str = "test", resolution: int | None = 96, variations: int = 0,
                     use_gpu: bool = True) -> Path:
    """Render faces ``0 .. count - 1`` of ``(seed, preset)`` into ``out_dir`` (skipping complete
    ones) with this process's warm Blender generator; returns the folder."""
    from replicantface import batch

    report = batch.run_shard(out_dir, 0, count, seed=seed, preset=preset, quality=quality,
                             resolution=resolution, variations=variations, use_gpu=use_gpu)
    if report.failures:
        raise RuntimeError(f"{len(report.failures)} samples failed in {out_dir}: "
                           f"{report.failures[0]}")
    return Path(out_dir)


def dataset_summary(datasets: dict[str, str | Path]) -> list[list[str]]:
    """Rows [name, folder, samples, preset, resolution, label pitch/yaw/roll mean ± std°]."""
    import json

    rows = []
    for name, folder in datasets.items():
        ds = rfdata.FaceDataset(folder)
        poses = np.degrees(np.stack([ds.labels(i)["pose"] for i in range(len(ds))]))
        meta_path = Path(folder) / "dataset.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        preset = (meta.get("config") or {}).get("preset", "")
        stats = " / ".join(f"{m:+.1f} ± {s:.1f}" for m, s in zip(poses.mean(0), poses.std(0)))
        rows.append([name, str(folder), str(len(ds)), str(preset),
                     str(meta.get("resolution", "")), stats])
    return rows

