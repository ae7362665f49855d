"""Background and lighting: HDRI environment maps. Pure numpy apart from listing files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def builtin_hdris() -> list[Path]:
    """The HDRIs that ship inside the bpy wheel (studiolights/world/*.exr), sorted."""
    import bpy  # only to locate the wheel's data files

    folder = Path(bpy.utils.system_resource("DATAFILES", path="studiolights/world"))
    return sorted(folder.glob("*.exr"))


@dataclass(frozen=True)
class LightingConfig:
    strength_min: float = 0.7
    strength_max: float = 1.6
    background_strength_min: float = 0.6
    background_strength_max: float = 1.2


@dataclass(frozen=True)
class LightingParams:
    """hdri: file name within the HDRI list; rotation about world Z in degrees; strengths are
    multipliers on the environment's lighting and on its visible background."""

    hdri: str
    rotation_deg: float
    strength: float
    background_strength: float


def sample_lighting(rng: np.random.Generator, cfg: LightingConfig, hdri_names: list[str]) -> LightingParams:
    return LightingParams(
        hdri=hdri_names[rng.integers(len(hdri_names))],
        rotation_deg=float(rng.uniform(0.0, 360.0)),
        strength=float(rng.uniform(cfg.strength_min, cfg.strength_max)),
        background_strength=float(rng.uniform(cfg.background_strength_min, cfg.background_strength_max)),
    )
