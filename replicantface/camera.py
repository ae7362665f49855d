"""Camera optics and placement. Pure numpy.

The camera orbits the head's eye midpoint at a distance chosen so that the face fills a given
fraction of the image height, as in the original (faces fill about half the frame, which leaves
room for shift augmentation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SENSOR_MM = 36.0
# Height of the face-skin box of a bald adult head (chin to crown), used only to choose the
# distance: the face box then spans about ``face_fraction`` of the image height.
FACE_HEIGHT_M = 0.24


@dataclass(frozen=True)
class CameraConfig:
    focal_mm_choices: tuple = (35.0, 50.0, 70.0, 85.0)
    face_fraction_min: float = 0.4
    face_fraction_max: float = 0.6
    fstop_min: float = 2.8
    fstop_max: float = 11.0
    shift_max: float = 0.06
    use_dof: bool = True


@dataclass(frozen=True)
class CameraParams:
    """focal_mm on a 36 mm sensor; face_fraction of the image height; shift in units of the
    image width (Blender lens shift); fstop for depth of field focused on the eyes."""

    focal_mm: float
    face_fraction: float
    fstop: float
    shift_x: float
    shift_y: float
    use_dof: bool

    @property
    def distance_m(self) -> float:
        return self.focal_mm / SENSOR_MM * FACE_HEIGHT_M / self.face_fraction


def sample_camera(rng: np.random.Generator, cfg: CameraConfig) -> CameraParams:
    choices = np.asarray(cfg.focal_mm_choices, dtype=float)
    return CameraParams(
        focal_mm=float(choices[rng.integers(len(choices))]),
        face_fraction=float(rng.uniform(cfg.face_fraction_min, cfg.face_fraction_max)),
        fstop=float(np.exp(rng.uniform(np.log(cfg.fstop_min), np.log(cfg.fstop_max)))),
        shift_x=float(rng.uniform(-cfg.shift_max, cfg.shift_max)),
        shift_y=float(rng.uniform(-cfg.shift_max, cfg.shift_max)),
        use_dof=cfg.use_dof,
    )


def orbit_camera_to_world(target: np.ndarray, heading_deg: float, pitch_deg: float,
                          distance_m: float) -> np.ndarray:
    """(4, 4) camera-to-world matrix (Blender camera: looks along local -Z, +Y up).

    target: (3,) world point the camera looks at. At heading = pitch = 0 the camera sits in
    front of the body (at -Y). +heading orbits toward +X; +pitch lowers the camera (looking up).
    """
    h, p = np.radians(heading_deg), np.radians(pitch_deg)
    offset = np.array([np.sin(h) * np.cos(p), -np.cos(h) * np.cos(p), -np.sin(p)])
    eye = np.asarray(target, dtype=float) + distance_m * offset
    back = offset  # camera +Z points away from the target
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, back, eye
    return m


@dataclass(frozen=True)
class PostConfig:
    """Sensor noise (Gaussian, sd as a fraction of full scale) and JPEG quality variation."""

    noise_prob: float = 0.5
    noise_std_max: float = 0.025
    jpeg_quality_min: int = 70
    jpeg_quality_max: int = 95


@dataclass(frozen=True)
class PostParams:
    noise_std: float
    noise_seed: int
    jpeg_quality: int


def sample_post(rng: np.random.Generator, cfg: PostConfig) -> PostParams:
    noisy = rng.random() < cfg.noise_prob
    return PostParams(
        noise_std=float(rng.uniform(0.0, cfg.noise_std_max)) if noisy else 0.0,
        noise_seed=int(rng.integers(2**31)),
        jpeg_quality=int(rng.integers(cfg.jpeg_quality_min, cfg.jpeg_quality_max + 1)),
    )


def apply_sensor_noise(rgb: np.ndarray, params: PostParams) -> np.ndarray:
    """(H, W, 3) uint8 with Gaussian sensor noise added (deterministic from the params)."""
    if params.noise_std <= 0:
        return rgb
    rng = np.random.default_rng(params.noise_seed)
    noise = rng.normal(0.0, params.noise_std * 255.0, size=rgb.shape)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)
