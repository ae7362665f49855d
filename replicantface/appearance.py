"""Skin, eyes, brows and clothing colours. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Linear-RGB albedo anchors for Fitzpatrick types I..VI (measured skin reflectance, roughly).
FITZPATRICK_ALBEDO = np.array(
    [
        [0.80, 0.62, 0.53],
        [0.72, 0.52, 0.42],
        [0.60, 0.41, 0.30],
        [0.45, 0.29, 0.19],
        [0.28, 0.16, 0.10],
        [0.14, 0.08, 0.05],
    ]
)
IRIS_COLOURS = {
    "brown": (0.18, 0.07, 0.02),
    "dark_brown": (0.07, 0.03, 0.01),
    "hazel": (0.25, 0.16, 0.05),
    "green": (0.12, 0.22, 0.08),
    "blue": (0.10, 0.22, 0.45),
    "grey": (0.25, 0.28, 0.30),
}
HAIR_COLOURS = {
    "black": (0.01, 0.008, 0.006),
    "dark_brown": (0.04, 0.02, 0.01),
    "brown": (0.10, 0.05, 0.02),
    "auburn": (0.20, 0.06, 0.02),
    "blond": (0.45, 0.30, 0.14),
    "grey": (0.20, 0.19, 0.18),
}


@dataclass(frozen=True)
class AppearanceConfig:
    """Fitzpatrick types are sampled evenly by default."""

    fitzpatrick_weights: tuple = (1, 1, 1, 1, 1, 1)


@dataclass(frozen=True)
class AppearanceParams:
    """Colours are linear RGB in [0, 1]; fitzpatrick is the continuous type in [1, 6]."""

    fitzpatrick: float
    skin_rgb: tuple
    redness: float
    roughness: float
    iris_name: str
    iris_rgb: tuple
    brow_rgb: tuple
    clothing_rgb: tuple


def skin_albedo(fitzpatrick: float) -> np.ndarray:
    """Linear-RGB albedo for a continuous Fitzpatrick type in [1, 6]."""
    t = np.clip(fitzpatrick, 1.0, 6.0) - 1.0
    lo = int(min(np.floor(t), 4))
    return FITZPATRICK_ALBEDO[lo] * (1 - (t - lo)) + FITZPATRICK_ALBEDO[lo + 1] * (t - lo)


def sample_appearance(rng: np.random.Generator, cfg: AppearanceConfig, age_years: float) -> AppearanceParams:
    w = np.asarray(cfg.fitzpatrick_weights, dtype=float)
    ftype = rng.choice(6, p=w / w.sum()) + 1
    fitz = float(np.clip(ftype + rng.uniform(-0.5, 0.5), 1.0, 6.0))
    skin = skin_albedo(fitz) * rng.uniform(0.92, 1.08, size=3)
    iris_names = sorted(IRIS_COLOURS)
    if fitz >= 4:  # darker skin: mostly brown irises
        iris = ["brown", "dark_brown", "hazel"][rng.integers(3)]
    else:
        iris = iris_names[rng.integers(len(iris_names))]
    hair_names = sorted(HAIR_COLOURS)
    grey_prob = np.clip((age_years - 40.0) / 40.0, 0.0, 0.9)
    hair = "grey" if rng.random() < grey_prob else hair_names[rng.integers(len(hair_names))]
    clothing = rng.uniform(0.02, 0.7, size=3) * rng.uniform(0.3, 1.0)
    return AppearanceParams(
        fitzpatrick=fitz,
        skin_rgb=tuple(float(c) for c in skin.clip(0, 1)),
        redness=float(rng.uniform(0.0, 0.3)),
        roughness=float(rng.uniform(0.35, 0.55)),
        iris_name=iris,
        iris_rgb=IRIS_COLOURS[iris],
        brow_rgb=HAIR_COLOURS[hair],
        clothing_rgb=tuple(float(c) for c in clothing),
    )
