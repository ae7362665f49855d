"""Identity: anny phenotypes and local face-shape changes. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from replicantface.human import age_param_from_years

# Local changes of the face and head (anny labels, each in [-1, 1]); body changes stay 0.
FACE_CHANGE_PREFIXES = ("head-", "chin-", "nose-", "mouth-", "l-eye-", "r-eye-", "eyebrows-",
                        "l-ear-", "r-ear-", "l-cheek-", "r-cheek-", "forehead-", "neck-")


@dataclass(frozen=True)
class IdentityConfig:
    age_years_min: float = 18.0
    age_years_max: float = 80.0
    face_change_std: float = 0.15
    face_change_max: float = 0.5
    symmetric_change_prob: float = 0.8


@dataclass(frozen=True)
class IdentityParams:
    """gender 0 female .. 1 male; age in years; other phenotypes in [0, 1]; local changes in [-1, 1]."""

    gender: float
    age_years: float
    muscle: float
    weight: float
    height: float
    proportions: float
    local_changes: dict = field(default_factory=dict)

    def phenotype_kwargs(self) -> dict[str, float]:
        return dict(gender=self.gender, age=age_param_from_years(self.age_years), muscle=self.muscle,
                    weight=self.weight, height=self.height, proportions=self.proportions)


def face_change_labels(all_labels: list[str]) -> list[str]:
    return [label for label in all_labels if label.startswith(FACE_CHANGE_PREFIXES)]


def sample_identity(rng: np.random.Generator, cfg: IdentityConfig, change_labels: list[str]) -> IdentityParams:
    """Random phenotypes plus mostly-symmetric local face changes (clipped Gaussian)."""
    values = rng.normal(0.0, cfg.face_change_std, size=len(change_labels))
    values = values.clip(-cfg.face_change_max, cfg.face_change_max)
    changes = dict(zip(change_labels, values))
    if rng.random() < cfg.symmetric_change_prob:
        for label in change_labels:
            if label.startswith("l-"):
                twin = "r-" + label[2:]
                if twin in changes:
                    changes[twin] = changes[label]
    return IdentityParams(
        gender=float(rng.random()),
        age_years=float(rng.uniform(cfg.age_years_min, cfg.age_years_max)),
        muscle=float(rng.beta(2, 2)),
        weight=float(rng.beta(2, 2)),
        height=float(rng.beta(2, 2)),
        proportions=float(rng.beta(2, 2)),
        local_changes={k: round(float(v), 6) for k, v in changes.items()},
    )
