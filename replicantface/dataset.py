"""Dataset layout on disk. Plain file I/O, atomic writes (temp file, then rename).

Each sample is ``face_{index:06d}``: ``.jpg``, ``_mask.png`` (uint8 class ids) and ``.npz``
(labels). The ``.npz`` is written last, so its presence marks the sample complete.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from replicantface import __version__
from replicantface.classes import class_table

JPEG_QUALITY = 95
LANDMARK_SCHEME = {
    "name": "ibug68",
    "count": 68,
    "source": "assets/landmarks/ibug68_anny.json",
    "flip_permutation": "replicantface.labels.FLIP_PERM_68",
}


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def stem(index: int, variation: int | None = None) -> str:
    return f"face_{index:06d}" if variation is None else f"face_{index:06d}_{variation:02d}"


def sample_jobs(start: int, count: int, variations: int = 0) -> list[tuple[int, int | None]]:
    """(index, variation) pairs of a run; variation is None unless variation mode is on."""
    if variations <= 0:
        return [(i, None) for i in range(start, start + count)]
    return [(i, j) for i in range(start, start + count) for j in range(variations + 1)]


def publish(tmp: Path, path: Path) -> Path:
    """Give a finished temp file the usual permissions (mkstemp makes 0600) and rename it."""
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)
    return Path(path)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder, then rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return publish(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def encode_png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def encode_npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def write_sample(out_dir: Path, name: str, rgb: np.ndarray, mask: np.ndarray, labels: dict) -> list[Path]:
    """Write one sample; the label file comes last and marks it complete. Returns the paths."""
    out_dir = Path(out_dir)
    quality = int(labels.get("jpeg_quality", JPEG_QUALITY))
    paths = [
        atomic_write_bytes(out_dir / f"{name}.jpg", encode_jpeg(rgb, quality)),
        atomic_write_bytes(out_dir / f"{name}_mask.png", encode_png(mask)),
        atomic_write_bytes(out_dir / f"{name}.npz", encode_npz(labels)),
    ]
    return paths


def is_complete(out_dir: Path, name: str) -> bool:
    out_dir = Path(out_dir)
    return all((out_dir / f"{name}{suffix}").is_file() for suffix in (".npz", ".jpg", "_mask.png"))


def dataset_metadata(config: dict, quality: str, resolution: int, seed: int,
                     variations: int = 0) -> dict:
    return {
        "variations": variations,
        "generator": "replicantface",
        "version": __version__,
        "seed": seed,
        "quality": quality,
        "resolution": resolution,
        "config": config,
        "classes": class_table(),
        "landmarks": LANDMARK_SCHEME,
        "frames": "docs/labels.md",
    }


def write_metadata(out_dir: Path, meta: dict) -> Path:
    """Write dataset.json; an existing one must describe the same generation settings."""
    path = Path(out_dir) / "dataset.json"
    meta = json.loads(json.dumps(meta))  # tuples -> lists, as they read back
    if path.exists():
        old = json.loads(path.read_text())
        keys = ("config", "quality", "resolution", "seed", "variations")
        if any(old.get(k) != meta.get(k) for k in keys):
            raise FileExistsError(
                f"{path} was written with other settings (config, quality, resolution, seed or variations); "
                "use a new --out folder or the same settings to resume")
        return path
    return atomic_write_bytes(path, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())


def load_sample(out_dir: Path, name: str) -> dict:
    """Labels of one sample as a dict of numpy arrays, plus ``image`` and ``mask``."""
    out_dir = Path(out_dir)
    with np.load(out_dir / f"{name}.npz") as npz:
        data = {k: npz[k] for k in npz.files}
    data["image"] = np.asarray(Image.open(out_dir / f"{name}.jpg").convert("RGB"))
    data["mask"] = np.asarray(Image.open(out_dir / f"{name}_mask.png"))
    return data


def sample_names(out_dir: Path) -> list[str]:
    return sorted(p.stem for p in Path(out_dir).glob("face_*.npz"))
