"""Head-pose and camera-orbit distributions. Pure numpy.

Formulas follow the original project (CONVENTIONS.md): ``b(a)`` is a symmetric Beta(a, a)
sample mapped to [-1, 1]. The head turns relative to the body (neck and head bones share the
rotation) and the camera orbits the head; the label is always the head's rotation relative to
the camera, measured on the posed rig, never the sum of the sampled angles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def beta_11(rng: np.random.Generator, a: float) -> float:
    """Symmetric Beta(a, a) sample mapped to [-1, 1]."""
    return float(2.0 * rng.beta(a, a) - 1.0)


@dataclass(frozen=True)
class PoseConfig:
    """Amplitudes in degrees; each angle is ``amplitude * b(beta_a) + offset``."""

    head_yaw_deg: float = 70.0
    head_pitch_deg: float = 45.0
    head_roll_deg: float = 30.0
    head_pitch_offset_deg: float = 0.0
    head_beta_a: float = 3.0
    camera_heading_deg: float = 100.0
    camera_pitch_deg: float = 30.0
    camera_pitch_offset_deg: float = 0.0
    camera_beta_a: float = 3.0


@dataclass(frozen=True)
class PoseParams:
    """Head rotation relative to the body, in the AFLW sense for a camera straight in front
    (+yaw nose toward the subject's right, +pitch face up, +roll head top toward the subject's
    left); camera orbit around the head: +heading moves the camera toward the subject's left,
    +pitch moves it below the face, looking up."""

    head_yaw_deg: float
    head_pitch_deg: float
    head_roll_deg: float
    camera_heading_deg: float
    camera_pitch_deg: float


def sample_pose(rng: np.random.Generator, cfg: PoseConfig) -> PoseParams:
    return PoseParams(
        head_yaw_deg=cfg.head_yaw_deg * beta_11(rng, cfg.head_beta_a),
        head_pitch_deg=cfg.head_pitch_deg * beta_11(rng, cfg.head_beta_a) + cfg.head_pitch_offset_deg,
        head_roll_deg=cfg.head_roll_deg * beta_11(rng, cfg.head_beta_a),
        camera_heading_deg=cfg.camera_heading_deg * beta_11(rng, cfg.camera_beta_a),
        camera_pitch_deg=cfg.camera_pitch_deg * beta_11(rng, cfg.camera_beta_a)
        + cfg.camera_pitch_offset_deg,
    )
