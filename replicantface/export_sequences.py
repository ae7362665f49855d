"""Export per-sequence ``.npz`` files in the face-multitask post's layout (YouTube Faces style).

One file per sequence: the samples ``face_{i:06d}_{j:02d}`` of one face index ``i`` (variation
mode), frames in ``j`` order; or one file per sample for ordinary datasets. Keys and frames are in
docs/training_formats.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replicantface.dataset import (
    DatasetError,
    atomic_write_bytes,
    check_not_dataset_folder,
    check_output_folder,
    encode_npz,
    load_sample,
    make_folders,
    remove_folders,
)
from replicantface.export_300wlp import dataset_names, image_space_landmarks

SEQUENCE_RE = re.compile(r"^(face_\d+)_(\d+)$")


def sequence_key(name: str) -> str:
    """``face_000003`` for ``face_000003_07``; the name itself for ``face_000003``."""
    m = SEQUENCE_RE.match(name)
    return m.group(1) if m else name


def group_sequences(names: list[str]) -> dict[str, list[str]]:
    """Sequence key -> its sample names in sorted order; keys sorted."""
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(sequence_key(name), []).append(name)
    return dict(sorted(groups.items()))


def box_corners(box: np.ndarray) -> np.ndarray:
    """(4, 2) corners [top-left, top-right, bottom-right, bottom-left] of a [x0, y0, x1, y1] box."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def frame_arrays(sample: dict) -> dict[str, np.ndarray]:
    """One frame's values for each key (a ``dataset.load_sample`` dict)."""
    pitch, yaw, roll = np.degrees(sample["pose_aflw"])
    return {
        "colorImages": sample["image"],
        "boundingBox": box_corners(sample["bbox_face"]).astype(np.float32),
        "landmarks2D": np.asarray(sample["landmarks_2d"], dtype=np.float32),
        "landmarks3D": image_space_landmarks(sample).astype(np.float32),
        "headPose": np.array([yaw, pitch, roll], dtype=np.float32),
        "gazeVector": np.asarray(sample["gaze"], dtype=np.float64).mean(axis=0).astype(np.float32),
    }


@dataclass(frozen=True)
class SequenceReport:
    out_dir: Path
    samples: int
    written: int
    already_present: int

    def lines(self) -> list[str]:
        total = self.written + self.already_present
        return [(f"{self.samples} samples in {total} sequences: {self.written} written, "
                 f"{self.already_present} already present -> {self.out_dir}")]


def export_npz_sequences(dataset_dir: Path, out_dir: Path, progress: bool = True) -> SequenceReport:
    """Write ``out_dir/<sequence>.npz`` for each sequence; existing files are kept (resume).

    ``out_dir`` may not be the dataset folder. On an error, what this run wrote is removed.
    """
    from tqdm import tqdm

    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    names = dataset_names(dataset_dir)
    check_not_dataset_folder(out_dir, dataset_dir, out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DatasetError(f"{out_dir} exists and is not a folder")
    check_output_folder(out_dir)
    groups = group_sequences(names)
    todo = {k: v for k, v in groups.items() if not (out_dir / f"{k}.npz").is_file()}
    created = make_folders(out_dir)
    written: list[Path] = []
    try:
        for key, members in tqdm(todo.items(), desc="npz-sequences", unit="seq",
                                 disable=not progress):
            frames = [frame_arrays(load_sample(dataset_dir, n)) for n in members]
            shapes = {f["colorImages"].shape for f in frames}
            if len(shapes) != 1:
                raise DatasetError(f"sequence {key} mixes image sizes {sorted(shapes)}")
            arrays = {k: np.stack([f[k] for f in frames]) for k in frames[0]}
            written.append(atomic_write_bytes(out_dir / f"{key}.npz", encode_npz(arrays)))
    except Exception:
        for path in written:
            path.unlink(missing_ok=True)
        remove_folders(created)
        raise
    return SequenceReport(out_dir=out_dir, samples=len(names), written=len(todo),
                          already_present=len(groups) - len(todo))
