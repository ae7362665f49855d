"""Head-pose and camera-orbit distributions. Pure numpy.

Formulas follow the original project (CONVENTIONS.md): ``b(a)`` is a symmetric Beta(a, a)
sample mapped to [-1, 1]. The head turns relative to the body (neck and head bones share the
rotation) and the camera orbits the head; the label is always the head's rotation relative to
the camera, measured on the posed rig, never the sum of the sampled angles.

A pose distribution is a mixture of components (the published set is 75 % of the original
default and 25 % of the pitch-bias correction). Each angle is ``amplitude * u + offset`` with
``u`` either ``b(beta_a)`` or uniform on [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from replicantface import labels
from replicantface.camera import orbit_camera_to_world
from replicantface.human import HEAD_BASIS_WORLD

DISTRIBUTIONS = ("beta", "uniform")
ANGLES = ("head_yaw", "head_pitch", "head_roll", "camera_heading", "camera_pitch")


def beta_11(rng: np.random.Generator, a: float, size=None):
    """Symmetric Beta(a, a) sample mapped to [-1, 1]."""
    return 2.0 * rng.beta(a, a, size=size) - 1.0


@dataclass(frozen=True)
class PoseComponent:
    """One mixture component. Amplitudes and offsets in degrees.

    Head angles are in the AFLW sense for a camera straight in front of the body; the camera
    orbit's +heading moves it toward the subject's left, +pitch lowers it (looking up), which
    raises the face's label pitch.
    """

    weight: float = 1.0
    distribution: str = "beta"
    head_beta_a: float = 3.0
    camera_beta_a: float = 3.0
    head_yaw_deg: float = 70.0
    head_pitch_deg: float = 45.0
    head_roll_deg: float = 30.0
    head_yaw_offset_deg: float = 0.0
    head_pitch_offset_deg: float = 0.0
    head_roll_offset_deg: float = 0.0
    camera_heading_deg: float = 100.0
    camera_pitch_deg: float = 30.0
    camera_heading_offset_deg: float = 0.0
    camera_pitch_offset_deg: float = 0.0

    def amplitude(self, angle: str) -> float:
        return getattr(self, f"{angle}_deg")

    def offset(self, angle: str) -> float:
        return getattr(self, f"{angle}_offset_deg")

    def beta_a(self, angle: str) -> float:
        return self.head_beta_a if angle.startswith("head") else self.camera_beta_a


@dataclass(frozen=True)
class PoseConfig:
    components: tuple = field(default_factory=lambda: (PoseComponent(),))


@dataclass(frozen=True)
class PoseParams:
    """Sampled angles in degrees (see PoseComponent for the signs) and the mixture component."""

    head_yaw_deg: float
    head_pitch_deg: float
    head_roll_deg: float
    camera_heading_deg: float
    camera_pitch_deg: float
    component: int = 0


def _unit(rng: np.random.Generator, comp: PoseComponent, angle: str, size=None):
    if comp.distribution == "uniform":
        return rng.uniform(-1.0, 1.0, size=size)
    return beta_11(rng, comp.beta_a(angle), size=size)


def sample_pose(rng: np.random.Generator, cfg: PoseConfig) -> PoseParams:
    weights = np.array([c.weight for c in cfg.components], dtype=float)
    k = int(rng.choice(len(weights), p=weights / weights.sum()))
    comp = cfg.components[k]
    values = {a: float(comp.amplitude(a) * _unit(rng, comp, a) + comp.offset(a)) for a in ANGLES}
    return PoseParams(*(values[a] for a in ANGLES), component=k)


def analytic_moments(cfg: PoseConfig) -> dict[str, tuple[float, float]]:
    """(mean, variance) in degrees of every sampled angle under the mixture.

    Var of b(a) is 1 / (2a + 1); of U(-1, 1) it is 1/3.
    """
    w = np.array([c.weight for c in cfg.components], dtype=float)
    w /= w.sum()
    out = {}
    for angle in ANGLES:
        means = np.array([c.offset(angle) for c in cfg.components])
        unit_var = np.array([1.0 / 3.0 if c.distribution == "uniform" else 1.0 / (2 * c.beta_a(angle) + 1)
                             for c in cfg.components])
        var = np.array([c.amplitude(angle) ** 2 for c in cfg.components]) * unit_var
        mean = float(w @ means)
        out[angle] = (mean, float(w @ (var + means**2) - mean**2))
    return out


def head_rotation_body(pose: PoseParams) -> np.ndarray:
    """(3, 3) head rotation relative to the body, in the head's rest frame."""
    return labels.rotation_from_pose_aflw(np.radians([pose.head_pitch_deg, pose.head_yaw_deg,
                                                      pose.head_roll_deg]))


def label_pose(pose: PoseParams) -> np.ndarray:
    """[pitch, yaw, roll] radians (AFLW) that the rendered sample will carry, without rendering.

    The rig turns the head frame by ``head_rotation_body`` in world-aligned axes and the camera
    orbits the head; this composes the two exactly as the scene does.
    """
    head_world = HEAD_BASIS_WORLD @ head_rotation_body(pose)
    cam = orbit_camera_to_world(np.zeros(3), pose.camera_heading_deg, pose.camera_pitch_deg, 1.0)
    return labels.pose_aflw_from_rotation(cam[:3, :3].T @ head_world)
