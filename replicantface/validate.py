"""Check a dataset folder sample by sample. numpy, Pillow and scipy only (no bpy).

Per sample: the three files are there and decode; the ``.npz`` has the label keys with the
documented shapes (docs/labels.md) and finite values; its ``index``/``seed`` agree with the file
name and ``dataset.json``; the image and mask sizes equal ``resolution``; the mask's values are
in the class table; every visible landmark inside the image falls on the head in the mask
(within one pixel, diagonals included). Over the folder: no index is missing from the expected range and none is
claimed twice.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from replicantface.classes import HEAD_CLASSES, WORN_CLASSES, class_table

N_LANDMARKS = 68
N_EXPRESSION = 52
# key -> (shape, dtype kind). None in a shape is any length; "N" must agree across keys.
SCHEMA = {
    "modelview": ((4, 4), "f"),
    "projection": ((4, 4), "f"),
    "resolution": ((2,), "iu"),
    "vertices": (("N", 3), "f"),
    "vertex_indices": (("N",), "iu"),
    "landmarks_3d": ((N_LANDMARKS, 3), "f"),
    "landmarks_2d": ((N_LANDMARKS, 2), "f"),
    "landmarks_depth": ((N_LANDMARKS,), "f"),
    "landmarks_visible": ((N_LANDMARKS,), "b"),
    "pose_aflw": ((3,), "f"),
    "bbox_face": ((4,), "f"),
    "gaze": ((2, 3), "f"),
    "expression": ((N_EXPRESSION,), "f"),
    "seed": ((), "iu"),
    "index": ((), "iu"),
    "params": ((), "U"),
}
# Keys whose values must be finite (bbox_face is NaN when no face pixel shows).
FINITE = ("modelview", "projection", "vertices", "landmarks_3d", "landmarks_2d", "pose_aflw",
          "gaze", "expression")
# A visible landmark may land on the head or on something worn over it.
LANDMARK_CLASSES = tuple(int(c) for c in HEAD_CLASSES + WORN_CLASSES)
NAME = re.compile(r"^face_(\d{6,})(?:_(\d{2}))?$")
SUFFIXES = (".jpg", "_mask.png", ".npz")


@dataclass
class ValidationResult:
    """``bad``: sample name -> problems. ``missing``/``duplicates``: sample names."""

    samples: int = 0
    bad: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    dataset_problems: list = field(default_factory=list)
    stray_temp_files: int = 0
    expected: str = ""

    @property
    def ok(self) -> bool:
        return not (self.bad or self.missing or self.duplicates or self.dataset_problems)

    def summary(self) -> str:
        text = (f"{self.samples} samples checked ({self.expected}): {len(self.bad)} bad, "
                f"{len(self.missing)} missing, {len(self.duplicates)} duplicate")
        if self.dataset_problems:
            text += f", {len(self.dataset_problems)} dataset problem(s)"
        if self.stray_temp_files:
            text += (f"; {self.stray_temp_files} temporary file(s) left by a killed writer "
                     "(harmless, safe to delete)")
        return text + (" -> OK" if self.ok else " -> FAILED")

    def problem_lines(self, max_listed: int = 50) -> list[str]:
        lines = [f"dataset: {p}" for p in self.dataset_problems]
        for name in sorted(self.bad)[:max_listed]:
            lines.append(f"bad {name}: {'; '.join(self.bad[name])}")
        if len(self.bad) > max_listed:
            lines.append(f"... and {len(self.bad) - max_listed} more bad samples")
        for label, names in (("missing", self.missing), ("duplicate", self.duplicates)):
            if names:
                shown = ", ".join(names[:max_listed])
                more = f" ... and {len(names) - max_listed} more" if len(names) > max_listed else ""
                lines.append(f"{label}: {shown}{more}")
        return lines


# Beyond this many expected samples the missing ones are not enumerated (memory).
MAX_EXPECTED_SAMPLES = 10_000_000


def parse_name(stem: str) -> tuple[int, int | None] | None:
    """(index, variation) of a sample stem like ``face_000123`` or ``face_000123_04``."""
    m = NAME.match(stem)
    if not m:
        return None
    return int(m.group(1)), None if m.group(2) is None else int(m.group(2))


def check_sample(out_dir: Path, name: str, resolution: int | None, seed: int | None,
                 class_ids: frozenset, landmarks: bool = True) -> tuple[list[str], tuple | None]:
    """Problems of one sample and the (index, variation) its label file claims."""
    out = Path(out_dir)
    problems: list[str] = []
    missing = [s for s in SUFFIXES if not (out / f"{name}{s}").is_file()]
    if missing:
        problems.append(f"missing {', '.join(name + s for s in missing)}")
    image = mask = labels = None
    if ".jpg" not in missing:
        try:
            with Image.open(out / f"{name}.jpg") as im:
                im.load()
                image = im.size
                if im.mode != "RGB":
                    problems.append(f"jpg mode {im.mode}, expected RGB")
        except Exception as exc:
            problems.append(f"jpg unreadable ({type(exc).__name__}: {exc})")
    if "_mask.png" not in missing:
        try:
            with Image.open(out / f"{name}_mask.png") as im:
                im.load()
                if im.mode != "L":
                    problems.append(f"mask mode {im.mode}, expected L (uint8 class ids)")
                mask = np.asarray(im)
        except Exception as exc:
            problems.append(f"mask unreadable ({type(exc).__name__}: {exc})")
    if ".npz" not in missing:
        try:
            with np.load(out / f"{name}.npz", allow_pickle=False) as npz:
                labels = {k: npz[k] for k in npz.files}
        except Exception as exc:
            problems.append(f"npz unreadable ({type(exc).__name__}: {exc})")
    claimed = None
    if labels is not None:
        problems += _check_labels(labels, name, seed)
        index, var = _scalar_int(labels, "index"), _scalar_int(labels, "variation")
        if index is not None:
            var = -1 if var is None else var
            claimed = (index, None if var < 0 else var)
    if mask is not None:
        values = set(np.unique(mask).tolist())
        unknown = sorted(values - class_ids)
        if unknown:
            problems.append(f"mask has class ids not in the class table: {unknown}")
    size = _resolution(labels) if labels is not None else None
    size = size or ((resolution, resolution) if resolution else None)
    if size is not None:
        if image is not None and tuple(image) != size:
            problems.append(f"jpg is {image[0]}x{image[1]}, labels say {size[0]}x{size[1]}")
        if mask is not None and mask.shape != (size[1], size[0]):
            problems.append(f"mask is {mask.shape[1]}x{mask.shape[0]}, labels say "
                            f"{size[0]}x{size[1]}")
        if resolution and size != (resolution, resolution):
            problems.append(f"resolution {size} differs from dataset.json's {resolution}")
    if landmarks and labels is not None and mask is not None and not problems:
        problems += _check_landmarks_on_mask(labels, mask)
    return problems, claimed


def _resolution(labels: dict) -> tuple[int, int] | None:
    res = labels.get("resolution")
    if res is None or np.shape(res) != (2,) or res.dtype.kind not in "iu":
        return None
    return int(res[0]), int(res[1])


def _scalar_int(labels: dict, key: str) -> int | None:
    """``labels[key]`` as an int when it is a 0-d integer array, else None."""
    arr = labels.get(key)
    if arr is None or arr.shape != () or arr.dtype.kind not in "iu":
        return None
    return int(arr)


def _check_labels(labels: dict, name: str, seed: int | None) -> list[str]:
    problems = []
    missing = [k for k in SCHEMA if k not in labels]
    if missing:
        problems.append(f"npz lacks {', '.join(missing)}")
    n_dense = None
    for key, (shape, kinds) in SCHEMA.items():
        if key not in labels:
            continue
        arr = labels[key]
        if arr.dtype.kind not in kinds:
            problems.append(f"{key} has dtype {arr.dtype}, expected kind {kinds!r}")
            continue
        if len(arr.shape) != len(shape):
            problems.append(f"{key} has shape {arr.shape}, expected {_shape_text(shape)}")
            continue
        for got, want in zip(arr.shape, shape):
            if want == "N":
                n_dense = got if n_dense is None else n_dense
                if got != n_dense or got == 0:
                    problems.append(f"{key} has {got} rows, vertices has {n_dense}")
                    break
            elif want is not None and got != want:
                problems.append(f"{key} has shape {arr.shape}, expected {_shape_text(shape)}")
                break
    for key in FINITE:
        if key in labels and labels[key].dtype.kind == "f" and not np.isfinite(labels[key]).all():
            problems.append(f"{key} has NaN or infinite values")
    if "params" in labels and labels["params"].shape == ():
        try:
            json.loads(str(labels["params"]))
        except json.JSONDecodeError:
            problems.append("params is not valid JSON")
    # variation is optional (absent before variation mode existed) but must be an int if there.
    var = _scalar_int(labels, "variation")
    if "variation" in labels and var is None:
        arr = labels["variation"]
        problems.append(f"variation has dtype {arr.dtype} and shape {arr.shape}, expected an "
                        "integer scalar")
    parsed = parse_name(name)
    index = _scalar_int(labels, "index")
    if parsed and index is not None:
        if index != parsed[0]:
            problems.append(f"label index {index} does not match the file name")
        if var is not None and (None if var < 0 else var) != parsed[1]:
            problems.append(f"label variation {var} does not match the file name")
    label_seed = _scalar_int(labels, "seed")
    if seed is not None and label_seed is not None and label_seed != seed:
        problems.append(f"seed {label_seed} differs from dataset.json's {seed}")
    return problems


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _check_landmarks_on_mask(labels: dict, mask: np.ndarray) -> list[str]:
    """Visible landmarks inside the image must lie on head pixels or on one of their 8
    neighbours: a landmark on the silhouette may project just outside the pixels whose centres
    the head covers.

    landmarks_2d: (68, 2) pixels, x right / y down, origin at the top-left pixel corner.
    """
    from scipy import ndimage

    head = np.isin(mask, LANDMARK_CLASSES)
    head = ndimage.binary_dilation(head, structure=np.ones((3, 3), bool))
    pts = np.floor(labels["landmarks_2d"]).astype(np.int64)
    h, w = mask.shape
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    check = labels["landmarks_visible"].astype(bool) & inside
    idx = np.flatnonzero(check)
    off = idx[~head[pts[idx, 1], pts[idx, 0]]]
    if len(off):
        return [f"visible landmarks {off.tolist()} are not on the head in the mask"]
    return []


def _check_one(args):
    return args[1], *check_sample(*args)


def validate_dataset(out_dir: Path, start: int = 0, count: int | None = None, jobs: int = 1,
                     landmarks: bool = True) -> ValidationResult:
    """Check every sample in ``out_dir``. With ``count``, faces ``start .. start + count - 1``
    (and all their variations in variation mode) must all be there; without it, every index
    between the smallest and the largest present one."""
    out = Path(out_dir)
    result = ValidationResult()
    meta = _read_metadata(out, result)
    resolution = meta.get("resolution")
    seed = meta.get("seed")
    variations = meta.get("variations") or 0
    table = meta.get("classes") or class_table()
    class_ids = frozenset(table.values())
    if table != class_table():
        result.dataset_problems.append("dataset.json's class table differs from this version's")

    stems: set[str] = set()
    for path in out.iterdir():
        name = path.name
        if name.startswith(".face_") and name.endswith(".tmp"):
            result.stray_temp_files += 1
            continue
        if not name.startswith("face_"):
            continue
        for suffix in SUFFIXES:
            if name.endswith(suffix):
                stems.add(name[: -len(suffix)])
                break
    names = sorted(stems)
    result.samples = len(names)
    parsed = {}
    for name in names:
        p = parse_name(name)
        if p is None:
            result.bad.setdefault(name, []).append("file name is not face_NNNNNN[_VV]")
        elif (p[1] is not None) != (variations > 0):
            result.bad.setdefault(name, []).append(
                "name does not match dataset.json's variation mode "
                f"(variations = {variations})")
        else:
            parsed[name] = p

    tasks = [(out, name, resolution, seed, class_ids, landmarks) for name in parsed]
    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            outcomes = list(pool.map(_check_one, tasks, chunksize=64))
    else:
        outcomes = [_check_one(t) for t in tasks]
    key_sets: dict[str, frozenset] = {}
    claims: dict[tuple, list[str]] = {}
    for name, problems, claimed in outcomes:
        if problems:
            result.bad.setdefault(name, []).extend(problems)
        claims.setdefault(claimed or parsed[name], []).append(name)
        if (out / f"{name}.npz").is_file() and not problems:
            key_sets[name] = _npz_keys(out / f"{name}.npz")
    _check_key_sets(key_sets, result)

    for holders in claims.values():
        if len(holders) > 1:
            result.duplicates.extend(holders)
    result.duplicates += _manifest_duplicates(out, result)
    result.duplicates = sorted(set(result.duplicates))

    present = set(parsed.values())
    if count is not None:
        indices = range(start, start + count)
        result.expected = f"faces {start}..{start + count - 1}"
    elif present:
        lo, hi = min(i for i, _ in present), max(i for i, _ in present)
        indices = range(lo, hi + 1)
        result.expected = f"faces {lo}..{hi}, the range present"
    else:
        indices = range(0)
        result.expected = "no samples"
    per_face = 1 if variations == 0 else variations + 1
    if len(indices) * per_face > MAX_EXPECTED_SAMPLES:  # a stray face_999999999999 or a huge --count
        result.dataset_problems.append(
            f"{result.expected} is more than {MAX_EXPECTED_SAMPLES:,} samples; missing ones are not "
            "listed (check a smaller range with --start and --count)")
        indices = range(0)
    wanted = [(i, v) for i in indices
              for v in ([None] if variations == 0 else range(variations + 1))]
    result.missing = [_stem(i, v) for i, v in wanted if (i, v) not in present]
    if not names and count is None:
        result.dataset_problems.append("no samples (face_*) in the folder")
    return result


def _stem(index: int, variation: int | None) -> str:
    return f"face_{index:06d}" if variation is None else f"face_{index:06d}_{variation:02d}"


def _read_metadata(out: Path, result: ValidationResult) -> dict:
    path = out / "dataset.json"
    if not path.is_file():
        result.dataset_problems.append("dataset.json is missing")
        return {}
    try:
        meta = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        result.dataset_problems.append(f"dataset.json is unreadable ({exc})")
        return {}
    if not isinstance(meta, dict):
        result.dataset_problems.append(
            f"dataset.json holds a {type(meta).__name__}, expected a JSON object")
        return {}
    # The keys validation relies on; a bad one is reported and then ignored.
    checks = {
        "resolution": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
        "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        "variations": (lambda v: _is_int(v) and 0 <= v <= 99, "an integer in [0, 99]"),
        "classes": (lambda v: isinstance(v, dict) and all(_is_int(i) for i in v.values()),
                    "an object of class name -> integer id"),
    }
    for key, (ok, wanted) in checks.items():
        if meta.get(key) is not None and not ok(meta[key]):
            value = json.dumps(meta.pop(key))
            value = value if len(value) <= 40 else value[:37] + "..."
            result.dataset_problems.append(f"dataset.json's {key} is {value}, expected {wanted}")
    return meta


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _npz_keys(path: Path) -> frozenset:
    with np.load(path, allow_pickle=False) as npz:
        return frozenset(npz.files)


def _check_key_sets(key_sets: dict, result: ValidationResult) -> None:
    """Every label file must have the same keys as the majority (extra keys are allowed
    dataset-wide, as long as every sample has them)."""
    if not key_sets:
        return
    common, _ = Counter(key_sets.values()).most_common(1)[0]
    for name, keys in key_sets.items():
        if keys != common:
            lacking, extra = sorted(common - keys), sorted(keys - common)
            text = "npz keys differ from the rest of the dataset"
            if lacking:
                text += f": lacks {', '.join(lacking)}"
            if extra:
                text += f"; extra {', '.join(extra)}"
            result.bad.setdefault(name, []).append(text)


def _manifest_duplicates(out: Path, result: ValidationResult) -> list[str]:
    """Names listed twice in ``manifest.jsonl`` (the merged manifest has one line per sample)."""
    path = out / "manifest.jsonl"
    if not path.is_file():
        return []
    try:
        text = path.read_bytes().decode()
    except UnicodeDecodeError as exc:
        result.dataset_problems.append(f"manifest.jsonl is not UTF-8 text ({exc})")
        return []
    counts: Counter = Counter()
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a torn last line of a killed writer
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            counts[entry["name"]] += 1
    return [n for n, k in counts.items() if n and k > 1]
