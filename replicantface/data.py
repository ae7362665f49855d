"""PyTorch readers and label-safe augmentations (docs/training_formats.md).

``FaceDataset`` reads (a) raw replicantface dataset folders, (b) our 300W-LP-style exports (zip
or folder) and (c) the published AFLW2000-3D and 300W-LP zips (or their unzipped folders). Every
source yields the same sample dict of tensors:

- ``image``: (3, H, W) float32 RGB in 0..1.
- ``pose``: (3,) float32 [pitch, yaw, roll] radians, AFLW2000-3D convention (docs/labels.md).
- ``rotation``: (3, 3) float32 head -> camera rotation in the image frame (x right, y down,
  z into the screen): ``R = Rx(-pitch) Ry(yaw) Rz(roll)``; opentrack's head frame.
- ``landmarks_2d``: (68, 2) float32 pixels, x right / y down, origin at the top-left pixel corner.
- ``landmarks_3d``: (68, 3) float32, x, y as ``landmarks_2d``, z pixels, larger = closer, z = 0 at
  the mean of eye corners 36, 39, 42, 45 (absent for 300W-LP, which has no 3D landmarks).
- ``landmarks_visible``: (68,) bool, raw datasets only.
- ``box``: (4,) float32 [x0, y0, x1, y1] pixels, y down (face-skin box for our data, the 68
  landmarks' extent for published data).
- ``gaze``: (2, 3) float32 unit gaze of the [right, left] eye, camera frame (x right, y up,
  z toward the viewer); raw datasets only.
- ``mask``: (H, W) int64 class ids, 255 = ignore; raw datasets with ``with_mask=True`` only.
- ``name``: str, the sample name (raw: ``face_000001``; zips/folders: member path without
  extension, e.g. ``AFLW2000/image00002``).

Augmentations are frozen dataclasses called as ``t(sample, rng)`` with an explicit
``np.random.Generator``; ``FaceDataset`` derives it from (seed, epoch, index).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import scipy.io
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from replicantface import labels
from replicantface.classes import SegClass
from replicantface.dataset import load_labels, load_sample, sample_names

# Camera frame (y up, z toward the viewer) <-> image frame (y down, z into the screen).
F = labels.CAM_TO_IMG
# Image-frame mirror of x.
MIRROR_X = np.diag([-1.0, 1.0, 1.0])
_LR_CLASS_PAIRS = ((SegClass.RIGHT_EYE, SegClass.LEFT_EYE),
                   (SegClass.RIGHT_BROW, SegClass.LEFT_BROW),
                   (SegClass.RIGHT_EAR, SegClass.LEFT_EAR))
FLIP_CLASS_LUT = np.arange(256)
for _r, _l in _LR_CLASS_PAIRS:
    FLIP_CLASS_LUT[int(_r)], FLIP_CLASS_LUT[int(_l)] = int(_l), int(_r)
IGNORE = 255


# ---------------------------------------------------------------------------------------------
# Pose in the image frame


def rotation_from_pose(pose: np.ndarray) -> np.ndarray:
    """(3, 3) head -> camera rotation in the image frame for [pitch, yaw, roll] radians (AFLW)."""
    pitch, yaw, roll = np.asarray(pose, dtype=np.float64)
    return Rotation.from_euler("XYZ", [-pitch, yaw, roll]).as_matrix()


def pose_from_rotation(rot_img: np.ndarray) -> np.ndarray:
    """[pitch, yaw, roll] radians (AFLW) of a head -> camera rotation in the image frame."""
    rot = Rotation.from_matrix(np.asarray(rot_img, dtype=np.float64))
    neg_pitch, yaw, roll = rot.as_euler("XYZ")
    return np.array([-neg_pitch, yaw, roll])


def rot_z_image(angle_rad: float) -> np.ndarray:
    """Rotation about the image z axis (into the screen): clockwise on screen for angle > 0."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# ---------------------------------------------------------------------------------------------
# Building samples


def _image_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(rgb)).permute(2, 0, 1).float() / 255.0


def _f32(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _finish(sample: dict, pose: np.ndarray) -> dict:
    sample["pose"] = _f32(pose)
    sample["rotation"] = _f32(rotation_from_pose(pose))
    return sample


def landmark_box(landmarks_2d: np.ndarray) -> np.ndarray:
    """[x0, y0, x1, y1] extent of (68, 2) pixel landmarks (HopeNet's box, before its margin)."""
    pts = np.asarray(landmarks_2d, dtype=np.float64)
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)])


def sample_from_raw(raw: dict, image: np.ndarray, mask: np.ndarray | None = None,
                    name: str = "") -> dict:
    """Sample dict from the arrays of a raw ``{stem}.npz`` (see dataset.load_sample).

    image: (H, W, 3) uint8 RGB. mask: optional (H, W) uint8 class ids.
    """
    from replicantface.export_300wlp import image_space_landmarks

    box = np.asarray(raw["bbox_face"], dtype=np.float64)
    if not np.isfinite(box).all():
        box = landmark_box(raw["landmarks_2d"])
    sample = {
        "name": name,
        "image": _image_tensor(image),
        "landmarks_2d": _f32(raw["landmarks_2d"]),
        "landmarks_3d": _f32(image_space_landmarks(raw)),
        "landmarks_visible": torch.as_tensor(np.asarray(raw["landmarks_visible"], dtype=bool)),
        "box": _f32(box),
        "gaze": _f32(raw["gaze"]),
    }
    if mask is not None:
        sample["mask"] = torch.as_tensor(np.asarray(mask, dtype=np.int64))
    return _finish(sample, np.asarray(raw["pose_aflw"], dtype=np.float64))


def labels_from_mat(mat: dict, image_size: tuple[int, int]) -> dict:
    """Numpy labels of an AFLW2000-3D / 300W-LP / replicantface .mat.

    image_size: (width, height) of the paired image. Returns pose (3,) radians,
    landmarks_2d (68, 2), optional landmarks_3d (68, 3) and box (4,), all pixels y down.
    """
    _, h = image_size
    pose = np.asarray(mat["Pose_Para"], dtype=np.float64).reshape(-1)[:3]
    out = {"pose": pose}
    pt3d = mat.get("pt3d_68")
    pt2d = mat.get("pt2d")
    if pt3d is not None and np.shape(pt3d) == (3, 68):
        lm3 = labels.depth_centred_landmarks(np.asarray(pt3d, dtype=np.float64).T)
        out["landmarks_3d"] = lm3
        out["landmarks_2d"] = lm3[:, :2].copy()
    elif pt2d is not None and np.shape(pt2d) == (2, 68):
        out["landmarks_2d"] = np.asarray(pt2d, dtype=np.float64).T.copy()
    else:
        raise ValueError("the .mat has neither pt3d_68 (3, 68) nor pt2d (2, 68)")
    if "replicantface_version" in mat:
        # Ours: the face-skin box in the y-up space of tx/ty.
        x0, y0_up, x1, y1_up = np.asarray(mat["roi"], dtype=np.float64).reshape(-1)
        out["box"] = np.array([x0, h - y0_up, x1, h - y1_up])
    else:
        # The published roi is not a face box; use the landmarks' extent as HopeNet does.
        out["box"] = landmark_box(out["landmarks_2d"])
    return out


def sample_from_mat(mat: dict, image: np.ndarray, name: str = "") -> dict:
    """Sample dict from a loaded .mat and its (H, W, 3) uint8 RGB image."""
    h, w = image.shape[:2]
    lab = labels_from_mat(mat, (w, h))
    sample = {"name": name, "image": _image_tensor(image),
              "landmarks_2d": _f32(lab["landmarks_2d"]), "box": _f32(lab["box"])}
    if "landmarks_3d" in lab:
        sample["landmarks_3d"] = _f32(lab["landmarks_3d"])
    return _finish(sample, lab["pose"])


# ---------------------------------------------------------------------------------------------
# Sources


def _is_sample_jpg(path: str) -> bool:
    p = PurePosixPath(path)
    return p.suffix.lower() == ".jpg" and "landmarks" not in (s.lower() for s in p.parts[:-1])


class _MatSource:
    """``<name>.jpg`` + ``<name>.mat`` pairs in a zip or a folder tree (``landmarks/`` skipped)."""

    def __init__(self, root: Path):
        self.root = root
        self.is_zip = root.is_file()
        self._zip: zipfile.ZipFile | None = None
        self._pid = None
        if self.is_zip:
            with zipfile.ZipFile(root) as zf:
                members = set(zf.namelist())
        else:
            members = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        self.suffix = {}
        for m in members:
            if _is_sample_jpg(m):
                stem = m[: -len(PurePosixPath(m).suffix)]
                if f"{stem}.mat" in members:
                    self.suffix[stem] = m[len(stem):]
        self.names = sorted(self.suffix)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_zip"], state["_pid"] = None, None
        return state

    def _read(self, member: str) -> bytes:
        if not self.is_zip:
            return (self.root / member).read_bytes()
        if self._zip is None or self._pid != os.getpid():
            # One handle per process: DataLoader workers must not share a file position.
            self._zip, self._pid = zipfile.ZipFile(self.root), os.getpid()
        return self._zip.read(member)

    def mat(self, name: str) -> dict:
        return scipy.io.loadmat(io.BytesIO(self._read(f"{name}.mat")))

    def image_file(self, name: str) -> io.BytesIO:
        return io.BytesIO(self._read(name + self.suffix[name]))


def _is_raw_dataset(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset.json").is_file() or any(path.glob("face_*.npz")))


class FaceDataset(torch.utils.data.Dataset):
    """Face samples from a raw dataset folder, a 300W-LP-style zip/folder or AFLW2000-3D/300W-LP.

    source: a folder or a .zip. transform: ``t(sample, rng) -> sample`` (e.g. ``Compose``).
    seed: base of the per-item rng, ``default_rng([seed, epoch, index])``.
    with_mask: also return the segmentation mask (raw datasets only).
    An unreadable raw sample raises ``dataset.DatasetError`` (a ValueError) naming the file.
    """

    def __init__(self, source: str | Path, transform: Callable | None = None, seed: int = 0,
                 with_mask: bool = False):
        self.source = Path(source)
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        self.with_mask = with_mask
        if _is_raw_dataset(self.source):
            self.kind = "raw"
            self._mats = None
            self.names = sample_names(self.source)
        elif self.source.is_dir() or zipfile.is_zipfile(self.source):
            self.kind = "mat"
            self._mats = _MatSource(self.source)
            self.names = self._mats.names
        else:
            raise ValueError(f"{source} is neither a dataset folder nor a zip of .jpg/.mat pairs")
        if with_mask and self.kind != "raw":
            raise ValueError("masks exist only in raw replicantface datasets")

    def __len__(self) -> int:
        return len(self.names)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (call once per epoch)."""
        self.epoch = int(epoch)

    def load(self, index: int) -> dict:
        """The untransformed sample dict of item ``index``."""
        name = self.names[index]
        if self.kind == "raw":
            raw = load_sample(self.source, name)
            return sample_from_raw(raw, raw["image"], raw["mask"] if self.with_mask else None, name)
        image = np.asarray(Image.open(self._mats.image_file(name)).convert("RGB"))
        return sample_from_mat(self._mats.mat(name), image, name)

    def labels(self, index: int) -> dict:
        """Numpy pose (3,) rad, landmarks_2d (68, 2) px and box (4,) px of item ``index``,
        without decoding the image."""
        name = self.names[index]
        if self.kind == "raw":
            raw = load_labels(self.source, name, ("bbox_face", "landmarks_2d", "pose_aflw"))
            box, lm = raw["bbox_face"], raw["landmarks_2d"]
            return {"name": name, "pose": raw["pose_aflw"], "landmarks_2d": lm,
                    "box": box if np.isfinite(box).all() else landmark_box(lm)}
        size = Image.open(self._mats.image_file(name)).size
        lab = labels_from_mat(self._mats.mat(name), size)
        return {"name": name, **lab}

    def __getitem__(self, index: int) -> dict:
        sample = self.load(index)
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            sample = self.transform(sample, rng)
        return sample


# ---------------------------------------------------------------------------------------------
# Geometry of the augmentations (pure functions on sample dicts)


def _copy(sample: dict) -> dict:
    return {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in sample.items()}


def _size(sample: dict) -> tuple[int, int]:
    _, h, w = sample["image"].shape
    return w, h


def hflip(sample: dict) -> dict:
    """Mirror left/right: x -> W - x, iBUG-68 FLIP_PERM_68, yaw and roll negated, gaze x negated
    and the eyes swapped, left/right mask classes swapped."""
    w, _ = _size(sample)
    out = _copy(sample)
    perm = torch.as_tensor(labels.FLIP_PERM_68)
    out["image"] = torch.flip(sample["image"], dims=[2])
    for key in ("landmarks_2d", "landmarks_3d"):
        if key in sample:
            pts = sample[key][perm].clone()
            pts[:, 0] = w - pts[:, 0]
            out[key] = pts
    if "landmarks_visible" in sample:
        out["landmarks_visible"] = sample["landmarks_visible"][perm]
    x0, y0, x1, y1 = sample["box"].tolist()
    out["box"] = _f32([w - x1, y0, w - x0, y1])
    rot = MIRROR_X @ sample["rotation"].double().numpy() @ MIRROR_X
    out["rotation"] = _f32(rot)
    pitch, yaw, roll = sample["pose"].tolist()
    out["pose"] = _f32([pitch, -yaw, -roll])
    if "gaze" in sample:
        gaze = sample["gaze"][[1, 0]].clone()
        gaze[:, 0] = -gaze[:, 0]
        out["gaze"] = gaze
    if "mask" in sample:
        lut = torch.as_tensor(FLIP_CLASS_LUT)
        out["mask"] = lut[torch.flip(sample["mask"], dims=[1])]
    return out


def _warp(sample: dict, forward: np.ndarray, out_size: tuple[int, int]) -> dict:
    """Resample image (bilinear, zeros outside) and mask (nearest, 255 outside) through a (3, 3)
    affine map of pixel coordinates (input -> output, origin at the top-left pixel corner)."""
    w_in, h_in = _size(sample)
    w_out, h_out = out_size
    inv = np.linalg.inv(forward)
    xs, ys = np.meshgrid(np.arange(w_out) + 0.5, np.arange(h_out) + 0.5)
    src = np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ inv.T
    grid = np.stack([2.0 * src[..., 0] / w_in - 1.0, 2.0 * src[..., 1] / h_in - 1.0], axis=-1)
    grid_t = torch.as_tensor(grid, dtype=torch.float32)[None]
    out = _copy(sample)
    out["image"] = torch.nn.functional.grid_sample(
        sample["image"][None], grid_t, mode="bilinear", padding_mode="zeros",
        align_corners=False)[0]
    if "mask" in sample:
        shifted = (sample["mask"].double() + 1.0)[None, None]
        m = torch.nn.functional.grid_sample(shifted, grid_t.double(), mode="nearest",
                                            padding_mode="zeros", align_corners=False)[0, 0]
        out["mask"] = torch.where(m > 0, m - 1.0, float(IGNORE)).round().long()
    return out


def _map_points(forward: np.ndarray, pts: torch.Tensor, z_scale: float = 1.0) -> torch.Tensor:
    p = pts.double().numpy().copy()
    p[:, :2] = p[:, :2] @ forward[:2, :2].T + forward[:2, 2]
    if p.shape[1] == 3:
        p[:, 2] *= z_scale
    return _f32(p)


def _map_box(forward: np.ndarray, box: torch.Tensor) -> torch.Tensor:
    x0, y0, x1, y1 = box.double().tolist()
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    corners = corners @ forward[:2, :2].T + forward[:2, 2]
    return _f32(np.concatenate([corners.min(axis=0), corners.max(axis=0)]))


def rotate(sample: dict, angle_rad: float, centre_xy: Sequence[float] | None = None) -> dict:
    """Rotate the image about ``centre_xy`` (pixels; default the box centre), clockwise on screen
    for angle > 0, on the same canvas.

    Landmarks rotate with the pixels (z unchanged); the box becomes the extent of its rotated
    corners; the head rotation becomes ``Rz(angle) R`` in the image frame (a camera roll about
    its optical axis, exact under weak perspective), so roll grows by ``angle`` for a frontal
    face and pitch/yaw are re-derived in general; gaze rotates about the camera z axis.
    """
    if centre_xy is None:
        x0, y0, x1, y1 = sample["box"].double().tolist()
        centre_xy = ((x0 + x1) / 2.0, (y0 + y1) / 2.0)
    cx, cy = centre_xy
    rz = rot_z_image(angle_rad)
    forward = np.eye(3)
    forward[:2, :2] = rz[:2, :2]
    forward[:2, 2] = np.array([cx, cy]) - rz[:2, :2] @ np.array([cx, cy])
    out = _warp(sample, forward, _size(sample))
    for key in ("landmarks_2d", "landmarks_3d"):
        if key in sample:
            out[key] = _map_points(forward, sample[key])
    out["box"] = _map_box(forward, sample["box"])
    rot = rz @ sample["rotation"].double().numpy()
    out["rotation"] = _f32(rot)
    out["pose"] = _f32(pose_from_rotation(rot))
    if "gaze" in sample:
        out["gaze"] = _f32(sample["gaze"].double().numpy() @ (F @ rz @ F).T)
    return out


def crop_resize(sample: dict, centre_xy: Sequence[float], side_px: float, out_size: int) -> dict:
    """Crop the square of side ``side_px`` centred at ``centre_xy`` (pixels) and resize it to
    ``out_size`` pixels. Points map as ``(p - corner) * out_size / side_px``; landmark z is scaled
    by the same factor; pose, rotation and gaze are unchanged (weak perspective)."""
    k = out_size / float(side_px)
    cx, cy = centre_xy
    forward = np.array([[k, 0.0, -k * (cx - side_px / 2.0)],
                        [0.0, k, -k * (cy - side_px / 2.0)],
                        [0.0, 0.0, 1.0]])
    out = _warp(sample, forward, (out_size, out_size))
    for key in ("landmarks_2d", "landmarks_3d"):
        if key in sample:
            out[key] = _map_points(forward, sample[key], z_scale=k)
    out["box"] = _map_box(forward, sample["box"])
    return out


# ---------------------------------------------------------------------------------------------
# Augmentation callables: t(sample, rng) -> sample


@dataclass(frozen=True)
class Compose:
    """Apply transforms in order with the same rng."""

    transforms: tuple

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample


@dataclass(frozen=True)
class RandomHorizontalFlip:
    p: float = 0.5

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        return hflip(sample) if rng.random() < self.p else sample


@dataclass(frozen=True)
class RandomInPlaneRotation:
    """Rotate about the box centre by a uniform angle in [-max_deg, max_deg] degrees."""

    max_deg: float = 30.0

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        return rotate(sample, np.radians(rng.uniform(-self.max_deg, self.max_deg)))


@dataclass(frozen=True)
class RandomCropAroundBox:
    """Square crop of side ``scale * max(box w, h)`` (scale uniform in [scale_min, scale_max]),
    centre shifted by up to ``shift`` times the side on each axis, resized to ``out_size``."""

    out_size: int = 224
    scale_min: float = 1.2
    scale_max: float = 1.6
    shift: float = 0.1

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        x0, y0, x1, y1 = sample["box"].double().tolist()
        side = max(x1 - x0, y1 - y0, 1.0) * rng.uniform(self.scale_min, self.scale_max)
        dx, dy = rng.uniform(-self.shift, self.shift, size=2) * side
        centre = ((x0 + x1) / 2.0 + dx, (y0 + y1) / 2.0 + dy)
        return crop_resize(sample, centre, side, self.out_size)


@dataclass(frozen=True)
class ColorJitter:
    """Brightness, contrast and saturation factors uniform in [1 - a, 1 + a]; labels untouched."""

    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        amounts = (self.brightness, self.contrast, self.saturation)
        b, c, s = (rng.uniform(1 - a, 1 + a) for a in amounts)
        img = sample["image"] * b
        img = (img - _gray(img).mean()) * c + _gray(img).mean()
        g = _gray(img)
        img = ((img - g) * s + g).clamp(0.0, 1.0)
        return {**sample, "image": img}


@dataclass(frozen=True)
class RandomGrayscale:
    """With probability p replace RGB by BT.601 luma in all three channels; labels untouched."""

    p: float = 0.1

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        if rng.random() >= self.p:
            return sample
        return {**sample, "image": _gray(sample["image"]).expand(3, -1, -1).clone()}


def _gray(img: torch.Tensor) -> torch.Tensor:
    w = torch.tensor([0.299, 0.587, 0.114], dtype=img.dtype)
    return (img * w[:, None, None]).sum(dim=0, keepdim=True)


def default_train_transform(out_size: int = 224) -> Compose:
    """The face-multitask order: colour jitter, grayscale, flip, rotation, crop around the box."""
    return Compose((ColorJitter(), RandomGrayscale(), RandomHorizontalFlip(),
                    RandomInPlaneRotation(), RandomCropAroundBox(out_size=out_size)))
