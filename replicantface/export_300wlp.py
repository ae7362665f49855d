"""Export a raw dataset to the AFLW2000-3D / 300W-LP layout: ``<parent>/<name>.jpg`` + ``.mat``.

Read by HopeNet, 6DRepNet, FSA-Net and 3DDFA tooling (docs/training_formats.md). The output is
a zip (``OUT.zip``) or a folder that mirrors the unzipped layout (``OUT/<parent>/...``). Samples
are written in sorted order with fixed zip timestamps and a fixed .mat header, so the same
dataset and settings give byte-identical output. A re-run adds only the missing pairs; the zip
is rebuilt into a temporary file and renamed, folders get one atomic rename per file.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

from replicantface import __version__, labels
from replicantface.classes import FACE_SKIN_CLASSES
from replicantface.dataset import (
    DatasetError,
    atomic_write_bytes,
    check_not_dataset_folder,
    check_output_folder,
    load_sample,
    make_folders,
    publish,
    remove_folders,
    sample_names,
)

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
MAT_HEADER = f"MATLAB 5.0 MAT-file, written by replicantface {__version__}".encode()
# Nominal head radius (metres) for the head size in pixels (opentrack trainer convention).
HEAD_RADIUS_M = 0.1
# ITU-R BT.601 luma weights.
LUMA = np.array([0.299, 0.587, 0.114])
BENCHMARK_LIMIT_DEG = 99.0

REJECT_REASONS = ("too_dark", "face_too_small", "face_too_large", "yaw_too_large", "benchmark")


@dataclass(frozen=True)
class ExportFilter:
    """Which samples to drop. Luminance is 0..255 (BT.601) over the face-skin pixels.

    A face box whose width or height is below ``min_face_px`` or above ``max_face_frac`` of the
    image side is dropped (the opentrack trainer's rule); so is |yaw| above ``max_yaw_deg`` and,
    with ``benchmark``, any |angle| above 99° (FSA-Net / 6DRepNet protocol).
    """

    min_luminance: float = 20.0
    min_face_px: float = 32.0
    max_face_frac: float = 2.0 / 3.0
    max_yaw_deg: float = 90.0
    benchmark: bool = False

    def reject_reason(self, sample: dict) -> str | None:
        """The first failing rule for a ``dataset.load_sample`` dict, or None to keep it."""
        if face_luminance(sample["image"], sample["mask"]) < self.min_luminance:
            return "too_dark"
        w, h = (int(v) for v in sample["resolution"])
        box = np.asarray(sample["bbox_face"], dtype=float)
        bw, bh = box[2] - box[0], box[3] - box[1]
        if not np.isfinite(box).all() or bw < self.min_face_px or bh < self.min_face_px:
            return "face_too_small"
        if bw > self.max_face_frac * w or bh > self.max_face_frac * h:
            return "face_too_large"
        pose_deg = np.degrees(sample["pose_aflw"])
        if abs(pose_deg[1]) > self.max_yaw_deg:
            return "yaw_too_large"
        if self.benchmark and np.any(np.abs(pose_deg) > BENCHMARK_LIMIT_DEG):
            return "benchmark"
        return None

    def describe(self) -> dict[str, str]:
        """Human-readable rule per reject reason, for the report."""
        return {
            "too_dark": f"face luminance < {self.min_luminance:g}",
            "face_too_small": f"face box < {self.min_face_px:g} px",
            "face_too_large": f"face box > {self.max_face_frac:.3g} of the image",
            "yaw_too_large": f"|yaw| > {self.max_yaw_deg:g}°",
            "benchmark": f"any |angle| > {BENCHMARK_LIMIT_DEG:g}°"
            + ("" if self.benchmark else " (off)"),
        }


@dataclass(frozen=True)
class ExportReport:
    """What an export did. ``rejected`` counts each dropped sample under its first failing rule."""

    out: Path
    total: int
    written: int
    already_present: int
    rejected: dict = field(default_factory=dict)
    rules: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [(f"{self.total} samples: {self.written} written, {self.already_present} already "
                f"present, {sum(self.rejected.values())} rejected -> {self.out}")]
        for reason in REJECT_REASONS:
            count, rule = self.rejected.get(reason, 0), self.rules.get(reason, reason)
            out.append(f"  rejected {count:>6}  {rule}")
        return out


def face_luminance(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean BT.601 luma (0..255) of the face-skin pixels, or of the whole image if there are none.

    image: (H, W, 3) uint8 RGB. mask: (H, W) uint8 class ids.
    """
    luma = np.asarray(image, dtype=np.float64) @ LUMA
    face = np.isin(mask, [int(c) for c in FACE_SKIN_CLASSES])
    return float(luma[face].mean() if face.any() else luma.mean())


def weak_perspective(modelview: np.ndarray, projection: np.ndarray,
                     resolution: tuple[int, int]) -> tuple[np.ndarray, float, float]:
    """Head origin in pixels, the weak-perspective scale and the origin's depth.

    modelview: (4, 4) head -> camera (x right, y up, z toward the viewer), metres.
    projection: (4, 4) OpenGL-style. resolution: (width, height) pixels.
    Returns ((2,) pixels x right / y down, scale in pixels per metre = f_px / depth, depth in m).
    """
    width, height = (int(v) for v in resolution)
    origin_px, depth = labels.project_points(np.zeros((1, 3)), modelview, projection,
                                             (width, height))
    focal_px = float(projection[1, 1]) * height / 2.0  # equals projection[0, 0] * width / 2
    return origin_px[0], focal_px / float(depth[0]), float(depth[0])


def image_space_landmarks(sample: dict) -> np.ndarray:
    """(68, 3) landmarks: x, y pixels (y down); z pixels, larger = closer, 0 at the eye corners.

    z is the depth in metres times the weak-perspective scale, centred on landmarks 36, 39, 42, 45.
    """
    _, scale, _ = weak_perspective(sample["modelview"], sample["projection"], sample["resolution"])
    pts = np.column_stack([sample["landmarks_2d"], -np.asarray(sample["landmarks_depth"]) * scale])
    return labels.depth_centred_landmarks(pts)


def mat_fields(sample: dict) -> dict[str, np.ndarray]:
    """The .mat variables of one raw sample (shapes as in AFLW2000-3D).

    Pose_Para (1, 7): [pitch, yaw, roll] rad (AFLW), tx, ty = head origin in pixels with
    ty = h - row (y up), tz = 0, scale = pixels per metre at the head origin's depth.
    pt3d_68 (3, 68): ``image_space_landmarks``; pt2d (2, 68): pixels, y down;
    roi (1, 4): face-skin box [x0, h - y0, x1, h - y1] (y up, like tx/ty).
    """
    w, h = (int(v) for v in sample["resolution"])
    origin_px, scale, _ = weak_perspective(sample["modelview"], sample["projection"], (w, h))
    pitch, yaw, roll = np.asarray(sample["pose_aflw"], dtype=np.float64)
    x0, y0, x1, y1 = np.asarray(sample["bbox_face"], dtype=np.float64)
    return {
        "Pose_Para": np.array([[pitch, yaw, roll, origin_px[0], h - origin_px[1], 0.0, scale]]),
        "pt3d_68": image_space_landmarks(sample).T.copy(),
        "pt2d": np.asarray(sample["landmarks_2d"], dtype=np.float64).T.copy(),
        "roi": np.array([[x0, h - y0, x1, h - y1]]),
        "replicantface_version": np.array(__version__),
    }


def encode_mat(fields: dict) -> bytes:
    """MATLAB 5 bytes with a fixed header (scipy writes the creation time there)."""
    buf = io.BytesIO()
    scipy.io.savemat(buf, fields, do_compression=False, oned_as="row")
    data = bytearray(buf.getvalue())
    data[:116] = MAT_HEADER.ljust(116, b" ")
    return bytes(data)


def dataset_names(dataset_dir: Path) -> list[str]:
    """Sorted sample names of a raw dataset folder, or DatasetError."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise DatasetError(f"dataset folder not found: {dataset_dir}")
    names = sample_names(dataset_dir)
    if not names:
        raise DatasetError(f"no samples (face_*.npz) in {dataset_dir}")
    return names


def _zip_info(name: str, stored: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.create_system = 3  # unix, whatever the host
    return info


def _existing_zip_members(path: Path) -> set[str]:
    if not path.exists():
        return set()
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path} exists and is not a zip file")
    try:
        with zipfile.ZipFile(path) as zf:
            return set(zf.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{path} is a damaged zip file ({exc})") from exc


def _pairs_present(members: set[str], parent: str, names: Iterable[str]) -> set[str]:
    return {n for n in names if f"{parent}/{n}.jpg" in members and f"{parent}/{n}.mat" in members}


def check_output(out: Path, parent: str, dataset_dir: Path | None = None) -> None:
    """Raise DatasetError for an output that cannot be written (before anything is written)."""
    if not parent or "/" in parent or "\\" in parent or parent in (".", ".."):
        raise DatasetError(f"--parent must be a plain folder name, got {parent!r}")
    out = Path(out)
    if out.suffix.lower() == ".zip":
        if out.exists() and not out.is_file():
            raise DatasetError(f"{out} exists and is not a file")
        _existing_zip_members(out)
        folder = out.parent
    else:
        if out.exists() and not out.is_dir():
            raise DatasetError(f"{out} exists and is not a folder (name a .zip to write a zip)")
        folder = out
    if dataset_dir is not None:
        check_not_dataset_folder(folder, dataset_dir, out)
    check_output_folder(folder)


def export_300wlp(dataset_dir: Path, out: Path, parent: str = "replicantface",
                  filt: ExportFilter = ExportFilter(), progress: bool = True) -> ExportReport:
    """Write ``<parent>/<name>.jpg`` + ``<name>.mat`` for each kept sample into a zip or folder.

    out: ``*.zip`` for a zip file, anything else for a folder. Existing pairs are kept and not
    re-examined; only missing ones are filtered and added. An existing zip must hold only this
    export's pairs (it is rebuilt, so anything else would be lost). On an error, what this run
    wrote is removed. Returns the report.
    """
    dataset_dir, out = Path(dataset_dir), Path(out)
    names = dataset_names(dataset_dir)
    check_output(out, parent, dataset_dir)
    as_zip = out.suffix.lower() == ".zip"
    if as_zip:
        members = _existing_zip_members(out)
        expected = {f"{parent}/{n}{ext}" for n in names for ext in (".jpg", ".mat")}
        foreign = sorted(members - expected)
        if foreign:
            more = f" and {len(foreign) - 1} other entries" if len(foreign) > 1 else ""
            raise DatasetError(f"{out} already holds {foreign[0]}{more}, which this export did "
                               "not write and would drop; write to a new zip")
        present = _pairs_present(members, parent, names)
    else:
        present = {n for n in names if (out / parent / f"{n}.mat").is_file()
                   and (out / parent / f"{n}.jpg").is_file()}
    rejected = dict.fromkeys(REJECT_REASONS, 0)
    todo = [n for n in names if n not in present]

    def convert(name: str) -> bytes | None:
        """The .mat bytes of a kept sample; None (and counted) for a rejected one."""
        sample = load_sample(dataset_dir, name)
        reason = filt.reject_reason(sample)
        if reason is not None:
            rejected[reason] += 1
            return None
        return encode_mat(mat_fields(sample))

    if as_zip:
        if todo or not out.exists():
            _rebuild_zip(out, parent, present, todo, dataset_dir, convert, progress)
    else:
        _write_folder(out / parent, todo, dataset_dir, convert, progress)
    return ExportReport(out=out, total=len(names), written=len(todo) - sum(rejected.values()),
                        already_present=len(present), rejected=rejected, rules=filt.describe())


def _write_folder(folder: Path, todo: list[str], dataset_dir: Path, convert,
                  progress: bool) -> None:
    """Write the pairs of ``todo`` into ``folder``; on an error remove what this call wrote."""
    from tqdm import tqdm

    created: list[Path] = []
    written: list[Path] = []
    try:
        for name in tqdm(todo, desc="300wlp", unit="face", disable=not progress):
            mat = convert(name)
            if mat is None:
                continue
            if not folder.is_dir():
                created = make_folders(folder)
            # The .mat comes last: its presence marks the pair complete.
            jpg = (dataset_dir / f"{name}.jpg").read_bytes()
            for path, data in ((folder / f"{name}.jpg", jpg), (folder / f"{name}.mat", mat)):
                existed = path.exists()
                atomic_write_bytes(path, data)
                if not existed:
                    written.append(path)
    except Exception:
        for path in written:
            path.unlink(missing_ok=True)
        remove_folders(created)
        raise


def _rebuild_zip(out: Path, parent: str, present: set[str], todo: list[str], dataset_dir: Path,
                 convert, progress: bool) -> None:
    """Write the present pairs plus the converted new ones, all in sorted member order, to a temp
    file beside ``out``; then rename it over ``out``. ``convert(name)`` gives .mat bytes or None."""
    from tqdm import tqdm

    created = make_folders(out.parent)
    new = set(todo)
    stems = sorted(present | new)
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except BaseException:
        remove_folders(created)
        raise
    os.close(fd)
    try:
        old = zipfile.ZipFile(out) if present else None
        try:
            with zipfile.ZipFile(tmp, "w") as zf:
                for stem in tqdm(stems, desc="300wlp", unit="face", disable=not progress):
                    jpg_name, mat_name = f"{parent}/{stem}.jpg", f"{parent}/{stem}.mat"
                    if stem in new:
                        mat = convert(stem)
                        if mat is None:
                            continue
                        jpg = (dataset_dir / f"{stem}.jpg").read_bytes()
                    else:
                        try:
                            jpg, mat = old.read(jpg_name), old.read(mat_name)
                        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                            raise DatasetError(f"{out} is a damaged zip file ({exc}); delete it "
                                               "or write to a new zip") from exc
                    zf.writestr(_zip_info(jpg_name, stored=True), jpg)
                    zf.writestr(_zip_info(mat_name, stored=False), mat)
        finally:
            if old is not None:
                old.close()
        publish(Path(tmp), out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        remove_folders(created)
        raise
