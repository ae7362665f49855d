"""Dataset layout on disk. Plain file I/O, atomic writes (temp file, then rename).

Each sample is ``face_{index:06d}``: ``.jpg``, ``_mask.png`` (uint8 class ids) and ``.npz``
(labels). The ``.npz`` is written last, so its presence marks the sample complete.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

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


class DatasetError(ValueError):
    """The input is not a usable raw dataset, or the output cannot be written there."""


class SampleLabels(dict):
    """The label arrays of one ``.npz``; a missing key raises DatasetError naming the file."""

    def __init__(self, arrays: dict, path: Path):
        super().__init__(arrays)
        self.path = Path(path)

    def __missing__(self, key):
        raise DatasetError(f"{self.path}: missing label {key!r}")


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


def load_labels(out_dir: Path, name: str, keys: tuple[str, ...] | None = None) -> SampleLabels:
    """The arrays of ``{name}.npz`` (only ``keys`` if given), or DatasetError naming the file."""
    path = Path(out_dir) / f"{name}.npz"
    if not path.is_file():
        raise DatasetError(f"{path}: label file missing")
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path}: not a valid .npz file (not a zip archive: damaged or "
                           "truncated?)")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a valid .npz file ({exc})") from exc
    with npz:
        for key in keys or ():
            if key not in npz.files:
                raise DatasetError(f"{path}: missing label {key!r}")
        arrays = {}
        for key in keys or npz.files:
            try:
                arrays[key] = npz[key]
            except ValueError as exc:
                if "allow_pickle" in str(exc):
                    raise DatasetError(f"{path}: label {key!r} holds pickled objects, which are "
                                       "not loaded (plain arrays only)") from exc
                raise DatasetError(f"{path}: label {key!r} is damaged ({exc})") from exc
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise DatasetError(f"{path}: label {key!r} is damaged ({exc})") from exc
    return SampleLabels(arrays, path)


def load_image(path: Path, rgb: bool = False) -> np.ndarray:
    """An image file as a numpy array (``rgb``: converted to (H, W, 3)), or DatasetError."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: image file missing")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB") if rgb else im)
    except UnidentifiedImageError as exc:
        raise DatasetError(f"{path}: not a readable image (unknown format or damaged)") from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc})") from exc


def load_sample(out_dir: Path, name: str) -> SampleLabels:
    """Labels of one sample as a dict of numpy arrays, plus ``image`` and ``mask``.

    Any unreadable file or missing label raises DatasetError naming the file.
    """
    out_dir = Path(out_dir)
    data = load_labels(out_dir, name)
    data["image"] = load_image(out_dir / f"{name}.jpg", rgb=True)
    data["mask"] = load_image(out_dir / f"{name}_mask.png")
    return data


def make_folders(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it created, outermost first."""
    missing = []
    p = Path(folder)
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    created: list[Path] = []
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
    except BaseException:
        remove_folders(created)
        raise
    return created


def remove_folders(created: list[Path]) -> None:
    """Undo ``make_folders``: remove the folders it created, innermost first, while empty."""
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            return


def check_output_folder(folder: Path) -> None:
    """DatasetError unless ``folder`` exists or can be made, and is writable (nothing is made)."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise DatasetError(f"{probe} is a file, not a folder")
    if not os.access(probe, os.W_OK):
        raise DatasetError(f"{folder} is not writable")


def check_not_dataset_folder(folder: Path, dataset_dir: Path, out: Path) -> None:
    """DatasetError if an export would write ``out`` straight into ``folder`` = the dataset folder
    (among the samples it reads; symlinks resolved). A sub-folder of the dataset is fine."""
    if Path(folder).resolve() == Path(dataset_dir).resolve():
        raise DatasetError(f"{out} is in the dataset folder {dataset_dir} itself; write the export "
                           "elsewhere or into a sub-folder")


def sample_names(out_dir: Path) -> list[str]:
    return sorted(p.stem for p in Path(out_dir).glob("face_*.npz"))
