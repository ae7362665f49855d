"""Export a raw dataset to one HDF5 file in the spirit of the opentrack neuralnet-tracker trainer.

Frames follow the trainer: its head frame is x right, y down, z into the screen, i.e. our image
frame, so ``quats`` is ``F R F`` (``R = modelview[:3, :3]``, ``F = diag(1, -1, -1)``) as scipy
(x, y, z, w) quaternions, and keypoint z points into the screen. See docs/training_formats.md.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from replicantface import __version__, labels
from replicantface.dataset import (
    DatasetError,
    check_not_dataset_folder,
    check_output_folder,
    load_sample,
    make_folders,
    publish,
    remove_folders,
)
from replicantface.export_300wlp import (
    HEAD_RADIUS_M,
    dataset_names,
    image_space_landmarks,
    weak_perspective,
)
from replicantface.export_sequences import sequence_key

FILE_ATTRS = {
    "generator": f"replicantface {__version__}",
    "image_frame": "pixels, x right, y down, origin at the top-left corner of the top-left pixel",
    "head_frame": "opentrack: x right, y down, z into the screen for a frontal face "
                  "(identity = looking straight into the camera, upright)",
    "quats": "head -> camera rotation in the image frame, scipy order (x, y, z, w)",
    "coords": "[x, y, head radius] pixels; x, y = head origin (midway between the eyeball "
              "centres) projected; radius = head_radius_m * f_px / depth",
    "keypts": "iBUG-68 (x, y, z) pixels; z into the screen (larger = farther), weak-perspective "
              "scale, 0 at the mean of eye corners 36, 39, 42, 45",
    "rois": "[x0, y0, x1, y1] pixels, face-skin box from the mask (x1, y1 exclusive)",
    "head_radius_m": HEAD_RADIUS_M,
    "docs": "docs/training_formats.md",
}
# The trainer's field categories (trackertraincode.datasets.dshdf5pose.FieldCategory).
CATEGORY = {"quats": "q", "coords": "xys", "rois": "roi", "keypts": "pts"}


def h5_labels(sample: dict) -> dict[str, np.ndarray]:
    """Per-sample label rows (a ``dataset.load_sample`` dict)."""
    rot_img = labels.CAM_TO_IMG @ np.asarray(sample["modelview"])[:3, :3] @ labels.CAM_TO_IMG
    origin_px, scale, _ = weak_perspective(sample["modelview"], sample["projection"],
                                           sample["resolution"])
    radius = HEAD_RADIUS_M * scale
    keypts = image_space_landmarks(sample)
    keypts[:, 2] *= -1.0  # larger-closer -> into the screen
    return {
        "quats": Rotation.from_matrix(rot_img).as_quat().astype(np.float32),
        "coords": np.array([origin_px[0], origin_px[1], radius], dtype=np.float32),
        "head_size": np.float32(radius),
        "keypts": keypts.astype(np.float32),
        "rois": np.asarray(sample["bbox_face"], dtype=np.float32),
    }


@dataclass(frozen=True)
class H5Report:
    out: Path
    count: int
    sequences: int

    def lines(self) -> list[str]:
        return [f"{self.count} samples ({self.sequences} sequences) -> {self.out}"]


def export_h5(dataset_dir: Path, out: Path, progress: bool = True) -> H5Report:
    """Write every sample of a raw dataset to ``out`` (rebuilt atomically: temp file + rename).

    ``out`` may not lie in the dataset folder itself, and an existing ``out`` must be HDF5.

    Datasets: images (N, H, W, 3) uint8 RGB, quats (N, 4), coords (N, 3), head_size (N,),
    keypts (N, 68, 3), rois (N, 4), names (N,), and sequence_starts when the names carry
    variations (``face_{i}_{j}``), as the trainer's video datasets do.
    """
    import h5py
    from tqdm import tqdm

    dataset_dir, out = Path(dataset_dir), Path(out)
    names = dataset_names(dataset_dir)
    check_not_dataset_folder(out.parent, dataset_dir, out)
    if out.exists() and not out.is_file():
        raise DatasetError(f"{out} exists and is not a file")
    if out.exists() and not h5py.is_hdf5(out):
        raise DatasetError(f"{out} exists and is not an HDF5 file; not replacing it")
    check_output_folder(out.parent)
    first = load_sample(dataset_dir, names[0])
    h, w = first["image"].shape[:2]
    n = len(names)
    keys = [sequence_key(name) for name in names]
    starts = [i for i in range(n) if i == 0 or keys[i] != keys[i - 1]] + [n]
    created = make_folders(out.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
        with h5py.File(tmp, "w") as f:
            f.attrs.update(FILE_ATTRS)
            opts = {"track_times": False}
            ds = {
                "images": f.create_dataset("images", (n, h, w, 3), dtype=np.uint8,
                                           chunks=(1, h, w, 3), compression="gzip",
                                           compression_opts=1, **opts),
                "quats": f.create_dataset("quats", (n, 4), dtype=np.float32, **opts),
                "coords": f.create_dataset("coords", (n, 3), dtype=np.float32, **opts),
                "head_size": f.create_dataset("head_size", (n,), dtype=np.float32, **opts),
                "keypts": f.create_dataset("keypts", (n, 68, 3), dtype=np.float32, **opts),
                "rois": f.create_dataset("rois", (n, 4), dtype=np.float32, **opts),
            }
            for key, cat in CATEGORY.items():
                ds[key].attrs["category"] = cat
                ds[key].attrs["description"] = FILE_ATTRS[key]
            ds["head_size"].attrs["description"] = "head radius in pixels (= coords[:, 2])"
            ds["images"].attrs["description"] = "RGB, uint8, the renders decoded from JPEG"
            f.create_dataset("names", data=np.array(names, dtype=object),
                             dtype=h5py.string_dtype(), **opts)
            if len(starts) - 1 < n:
                f.create_dataset("sequence_starts", data=np.array(starts, dtype=np.int64), **opts)
            for i, name in enumerate(tqdm(names, desc="h5", unit="face", disable=not progress)):
                sample = first if i == 0 else load_sample(dataset_dir, name)
                if sample["image"].shape[:2] != (h, w):
                    raise DatasetError(f"{name} is {sample['image'].shape[1]}x"
                                       f"{sample['image'].shape[0]} px, the first sample {w}x{h}")
                ds["images"][i] = sample["image"]
                for key, value in h5_labels(sample).items():
                    ds[key][i] = value
        publish(Path(tmp), out)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        remove_folders(created)
        raise
    return H5Report(out=out, count=n, sequences=len(starts) - 1)
