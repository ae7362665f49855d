"""Tables and figures of a baseline run: training curves, the results tables in the original
Replicantface README's layout, and the markdown report written to docs/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from replicantface import metrics
from replicantface.baselines.stability import markdown_table
from replicantface.baselines.training import Scores, TrainResult


def plot_curves(runs: dict[str, TrainResult], path=None, reference: Scores | None = None,
                reference_label: str = "train mean (constant)"):
    """Training loss (total and pose) and held-out yaw MAE / geodesic error per epoch for each
    named run; ``reference`` (e.g. the constant mean-pose predictor) is drawn dashed. Returns
    the figure; saves it if ``path``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    for k, (label, run) in enumerate(runs.items()):
        h = run.history
        ep = [r["epoch"] for r in h]
        c = f"C{k}"
        axes[0].plot(ep, [r["loss"] for r in h], color=c, label=label)
        axes[1].plot(ep, [r["loss_pose"] for r in h], color=c, label=label)
        if run.config.landmark_weight > 0:
            axes[1].plot(ep, [r["loss_landmarks"] for r in h], color=c, ls=":")
        tested = [r for r in h if "test_yaw" in r]
        if tested:
            axes[2].plot([r["epoch"] for r in tested], [r["test_yaw"] for r in tested],
                         color=c, marker="o", ms=3, label=label)
            axes[3].plot([r["epoch"] for r in tested], [r["test_geodesic"] for r in tested],
                         color=c, marker="o", ms=3, label=label)
    if reference is not None:
        for ax, v in ((axes[2], reference.pose.yaw), (axes[3], reference.pose.geodesic)):
            ax.axhline(v, color="k", ls="--", lw=1, label=reference_label)
        axes[2].set_ylim(bottom=0)
        axes[3].set_ylim(bottom=0)
    titles = ("training loss (total)", "pose loss (chordal, solid); landmark L1 (dotted)",
              "held-out yaw MAE (°)", "held-out geodesic error (°)")
    for ax, t in zip(axes, titles):
        ax.set_title(t, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def pose_table(rows: list[tuple[str, Scores]]) -> str:
    """| Variant | Pitch° | Yaw° | Roll° | Mean° | Geodesic° | (the original README's layout)."""
    return metrics.format_pose_table([(name, s.pose) for name, s in rows])


def landmark_table(rows: list[tuple[str, Scores]]) -> str:
    """NME (%) rows for the variants that predict landmarks."""
    return metrics.format_landmark_table([(n, s.landmarks) for n, s in rows
                                          if s.landmarks is not None])


def gaze_table(rows: list[tuple[str, Scores]]) -> str:
    body = [[n, f"{s.gaze_deg:.2f}"] for n, s in rows if s.gaze_deg is not None]
    return markdown_table(["Variant", "Gaze error° (mean of both eyes)"], body) if body else ""


def counts_line(scores: Scores) -> str:
    p = scores.pose
    return (f"{p.count} held-out samples scored, {p.dropped} dropped by the ±99° filter "
            "(FSA-Net / 6DRepNet protocol)")


def yaw_ratio(model: Scores, baseline: Scores) -> float:
    """How many times smaller the model's yaw MAE is than the baseline's."""
    return baseline.pose.yaw / model.pose.yaw if model.pose.yaw > 0 else float("inf")


def write_text(path, text: str) -> Path:
    """Atomic text write (temporary file beside ``path``, then rename)."""
    from replicantface.dataset import atomic_write_bytes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, text.encode())


def fmt_deg(v) -> str:
    return "/".join(f"{x:.2f}" for x in np.atleast_1d(v))


def report_markdown(title: str, intro: str, sections: list[tuple[str, str]]) -> str:
    """``# title``, an intro paragraph, then one ``## heading`` per (heading, markdown) section."""
    parts = [f"# {title}", intro.strip()]
    for heading, body in sections:
        parts += [f"## {heading}", body.strip()]
    return "\n\n".join(parts) + "\n"


def dataset_table(rows: list[list[str]]) -> str:
    return markdown_table(["Split", "Folder", "Samples", "Preset", "Resolution px",
                           "Label pitch / yaw / roll, mean ± std°"], rows)


def cross_tables(cross: dict, baselines: dict[str, dict[str, Scores]]) -> str:
    """One pose table per test split: the mean-pose baselines, then every trained run.

    cross: ``{(run, test): Scores}``; baselines: ``{test: {baseline name: Scores}}``.
    """
    tests = list(dict.fromkeys(t for _, t in cross))
    runs = list(dict.fromkeys(r for r, _ in cross))
    out = []
    for t in tests:
        rows = list(baselines.get(t, {}).items()) + [(r, cross[(r, t)]) for r in runs]
        out.append(f"Test split **{t}** ({counts_line(cross[(runs[0], t)])}):\n\n"
                   + pose_table(rows))
    return "\n\n".join(out)


def run_intro(command: str, wall_s: float, cfg, main: TrainResult) -> str:
    """The report's opening: how it was made, the network and the training settings."""
    cmd = f"```bash\n{command.strip()}\n```\n\n" if command.strip() else ""
    return (
        "Written by `notebooks/04_train_baseline.ipynb` (logic in `replicantface.baselines`).\n\n"
        f"{cmd}Notebook time: {wall_s / 60:.1f} min on this machine's CPU "
        f"(torch threads: {cfg.threads}), data generation excluded when the sets were given.\n\n"
        f"Network: `{cfg.arch}`, width {cfg.width}, {main.parameters:,} parameters, "
        f"from scratch (no downloaded weights); input a {cfg.crop_size}×{cfg.crop_size} crop "
        f"around the face-skin box (×{cfg.crop_scale[0]}–{cfg.crop_scale[1]} in training, "
        f"×{cfg.eval_crop_scale} at test time, ground-truth box as in the AFLW2000-3D "
        "protocols); heads: 6D rotation (Zhou et al.) → rotation matrix → AFLW pitch/yaw/roll, "
        f"68 landmarks{', gaze' if cfg.with_gaze else ''}. Training: {main.train_count} samples, "
        f"{cfg.epochs} epochs, batch {cfg.batch_size}, AdamW, one-cycle lr {cfg.lr:g}, "
        f"landmark weight {cfg.landmark_weight:g}, augmentations: colour jitter, grayscale, "
        f"flip, in-plane rotation ±{cfg.rotate_deg:g}°, random crop; "
        f"{main.train_seconds / 60:.1f} min for the main run.")
