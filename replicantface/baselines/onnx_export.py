"""ONNX export of a trained ``FaceBaselineNet`` (as the opentrack trainer ships its networks) and
a check of the exported graph against PyTorch with onnxruntime.

The ONNX model takes ``image``: (N, 3, S, S) float32 RGB in 0..1 (the eval crop) and returns
``rotation`` (N, 3, 3) head -> camera in the image frame, ``landmarks`` (N, 68, 2) crop units
and, with a gaze head, ``gaze`` (N, 2, 3) camera frame. The batch axis is dynamic.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from replicantface.baselines.model import ExportWrapper, FaceBaselineNet

OPSET = 17


def output_names(model: FaceBaselineNet) -> list[str]:
    names = ["rotation", "landmarks"]
    return names + ["gaze"] if model.gaze_head is not None else names


def export_onnx(model: FaceBaselineNet, path, crop_size: int) -> Path:
    """Write ``model`` (eval mode) to ``path`` as ONNX (opset 17, TorchScript exporter); the
    file is written to a temporary name beside ``path`` and renamed. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ExportWrapper(model).eval()
    dummy = torch.zeros(1, 3, crop_size, crop_size)
    names = output_names(model)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notices
            torch.onnx.export(wrapper, (dummy,), tmp, dynamo=False, opset_version=OPSET,
                              input_names=["image"], output_names=names,
                              dynamic_axes={n: {0: "batch"} for n in ["image", *names]})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        model.train(was_training)
    return path


@dataclass(frozen=True)
class OnnxCheck:
    """max_abs_diff: per output name, the largest |onnxruntime - PyTorch| over ``count`` images;
    geodesic_deg: largest angle between the two rotations; ok: every diff <= tolerance."""

    max_abs_diff: dict
    geodesic_deg: float
    count: int
    tolerance: float
    size_bytes: int

    @property
    def ok(self) -> bool:
        return all(v <= self.tolerance for v in self.max_abs_diff.values())

    def summary(self) -> str:
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in self.max_abs_diff.items())
        verdict = "PASS" if self.ok else "FAIL"
        return (f"ONNX vs PyTorch on {self.count} images: max |diff| {diffs}; rotation angle "
                f"{self.geodesic_deg:.1e}°; tolerance {self.tolerance:g}: {verdict} "
                f"({self.size_bytes / 1e6:.1f} MB)")


def check_onnx(model: FaceBaselineNet, path, images: torch.Tensor,
               tolerance: float = 1e-4) -> OnnxCheck:
    """Run the ONNX file with onnxruntime (CPU) and PyTorch on (N, 3, S, S) 0..1 ``images``."""
    import onnxruntime as ort

    model.eval()
    with torch.no_grad():
        ref = ExportWrapper(model)(images.float())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": images.float().numpy()})
    names = [o.name for o in sess.get_outputs()]
    diffs = {n: float(np.abs(g - r.numpy()).max()) for n, g, r in zip(names, got, ref)}
    # The angle from the chordal distance, |R1 - R2|_F = 2 sqrt(2) sin(angle / 2): arccos of the
    # trace loses everything below ~0.01° in float64.
    chord = np.linalg.norm(got[0].astype(np.float64) - ref[0].double().numpy(), axis=(1, 2))
    geo = float(np.degrees(2 * np.arcsin(np.clip(chord / (2 * np.sqrt(2)), 0.0, 1.0))).max())
    return OnnxCheck(diffs, geo, len(images), tolerance, Path(path).stat().st_size)
