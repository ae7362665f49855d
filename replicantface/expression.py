"""Expression: the 52 ARKit facial actions, and gaze. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# anny's facial action labels, in its order (ARKit blendshape names).
FACIAL_ACTIONS = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)

# Named expressions: action -> weight. Used by the sampler and the workbench.
PRESETS: dict[str, dict[str, float]] = {
    "neutral": {},
    "smile": {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8, "cheekSquintLeft": 0.4,
              "cheekSquintRight": 0.4, "eyeSquintLeft": 0.2, "eyeSquintRight": 0.2},
    "surprise": {"browInnerUp": 0.9, "browOuterUpLeft": 0.8, "browOuterUpRight": 0.8,
                 "eyeWideLeft": 0.7, "eyeWideRight": 0.7, "jawOpen": 0.45},
    "talking": {"jawOpen": 0.3, "mouthFunnel": 0.2, "mouthLowerDownLeft": 0.3,
                "mouthLowerDownRight": 0.3, "mouthUpperUpLeft": 0.2, "mouthUpperUpRight": 0.2},
    "eyes_closed": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "frown": {"browDownLeft": 0.8, "browDownRight": 0.8, "mouthFrownLeft": 0.7,
              "mouthFrownRight": 0.7, "noseSneerLeft": 0.3, "noseSneerRight": 0.3},
    "pucker": {"mouthPucker": 0.9, "mouthFunnel": 0.3},
    "open_mouth": {"jawOpen": 0.8, "mouthLowerDownLeft": 0.3, "mouthLowerDownRight": 0.3},
    "tongue": {"jawOpen": 0.5, "tongueOut": 0.8},
}

# How often each preset is drawn, relative to the others. Smiles lead, as in collections of
# photographed faces (AffectNet's "happy" class is the largest, about 1.8 times "neutral", and
# its "surprise" about a tenth of "happy"); speech comes next, for video-style data; wide-open
# mouths, puckers and tongues are rarer.
PRESET_WEIGHTS: dict[str, float] = {
    "smile": 6.0, "talking": 3.0, "frown": 1.5, "surprise": 1.0, "eyes_closed": 1.0,
    "open_mouth": 1.0, "pucker": 0.75, "tongue": 0.5,
}

# Gaze drives these actions so the eyelids follow the eyeballs.
_GAZE_ACTIONS = {a for a in FACIAL_ACTIONS if a.startswith("eyeLook")}
# The upper lid follows the eye up (lid-eye coordination: the levator lifts it with the cornea,
# and the lid fissure opens 2-3 mm in upgaze). anny's eyeLookUp alone does the opposite: at full
# weight (25 deg up) it lifts the upper lid 1.2 mm and the lower lid 2.3 mm, narrowing the eye by
# 1.1 mm. Upward gaze therefore adds this much eyeWide per unit of eyeLookUp: with it the upper
# lid rises 4.6 mm at 25 deg up (a 12 mm eye's cornea rises about 5 mm) and the fissure opens
# 2.5 mm. Downward gaze needs nothing: eyeLookDown lowers the upper lid 3.4 mm on its own.
UPGAZE_EYE_WIDE = 1.0
_RANDOM_ACTIONS = tuple(a for a in FACIAL_ACTIONS if a not in _GAZE_ACTIONS)
# Left/Right pairs that mirror each other (jawLeft/jawRight and mouthLeft/mouthRight move the
# jaw or the mouth sideways, so they are not mirrored: both at once would cancel out).
_SIDEWAYS = ("jawLeft", "jawRight", "mouthLeft", "mouthRight")
MIRRORED = {a: a.replace("Left", "Right") if a.endswith("Left") else a.replace("Right", "Left")
            for a in FACIAL_ACTIONS if a.endswith(("Left", "Right")) and a not in _SIDEWAYS}

# How often each action is drawn as a random extra, relative to the others. Actions that read
# as sour or strained on a face at rest (a frown, pressed, rolled or shrugged lips, a sneer, a
# lowered brow, stretched mouth corners, a jutting jaw, puffed cheeks) are drawn a quarter as
# often as the rest; they still come with the frown preset. mouthClose only makes sense with the
# jaw open (alone it pushes the lips into each other) and tongueOut only with an open mouth (the
# tongue preset), so neither is a random extra.
_STRAINED = ("mouthFrownLeft", "mouthFrownRight", "mouthPressLeft", "mouthPressRight",
             "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
             "noseSneerLeft", "noseSneerRight", "browDownLeft", "browDownRight",
             "mouthStretchLeft", "mouthStretchRight", "jawForward", "cheekPuff")
ACTION_WEIGHTS: dict[str, float] = {a: 0.0 if a in ("mouthClose", "tongueOut") else
                                    0.25 if a in _STRAINED else 1.0 for a in _RANDOM_ACTIONS}


@dataclass(frozen=True)
class ExpressionConfig:
    """neutral_prob: a face with no action; preset_prob: a scaled preset, drawn by
    ``preset_weights``; both may get up to ``extra_actions_max`` random actions on top (the rest
    of the samples get only those). A random action with a mirror image (a left one and its right
    one) is made on both sides with probability ``symmetric_prob``, the second side at 70-100 %
    of the first, so one-sided smirks and winks stay possible but faces are mostly symmetric.
    The random actions are drawn by ``action_weights`` (default ACTION_WEIGHTS)."""

    neutral_prob: float = 0.2
    preset_prob: float = 0.5
    preset_weights: dict = field(default_factory=lambda: dict(PRESET_WEIGHTS))
    action_weights: dict = field(default_factory=lambda: dict(ACTION_WEIGHTS))
    extra_actions_max: int = 2
    extra_weight_max: float = 0.6
    symmetric_prob: float = 0.8
    gaze_yaw_deg_max: float = 25.0
    gaze_pitch_deg_max: float = 18.0

    def __post_init__(self):
        if self.neutral_prob + self.preset_prob > 1.0 + 1e-9:
            raise ValueError(f"neutral_prob + preset_prob = {self.neutral_prob + self.preset_prob:g} "
                             "is more than 1")
        if self.preset_prob > 0 and sum(self.preset_weights.values()) <= 0:
            raise ValueError("preset_weights must not all be 0 while preset_prob > 0")
        if self.extra_actions_max > 0 and sum(self.action_weights.values()) <= 0:
            raise ValueError("action_weights must not all be 0 while extra_actions_max > 0")


@dataclass(frozen=True)
class ExpressionParams:
    """weights: action name -> [0, 1]; gaze yaw/pitch of both eyes relative to the head, degrees.

    +gaze_yaw_deg looks toward the subject's left, +gaze_pitch_deg looks up.
    """

    weights: dict
    gaze_yaw_deg: float
    gaze_pitch_deg: float

    def vector(self) -> np.ndarray:
        """(52,) weights in FACIAL_ACTIONS order, gaze-driven lid actions included (the
        ``eyeLook*`` actions, and the eyeWide that upward gaze adds: UPGAZE_EYE_WIDE)."""
        return np.array([self.all_weights().get(a, 0.0) for a in FACIAL_ACTIONS], dtype=np.float32)

    def all_weights(self) -> dict[str, float]:
        w = dict(self.weights)
        # ARKit eyeLook*: Left/Right are the subject's eyes; "In" is toward the nose.
        toward_left = max(self.gaze_yaw_deg, 0.0) / 30.0
        toward_right = max(-self.gaze_yaw_deg, 0.0) / 30.0
        up = max(self.gaze_pitch_deg, 0.0) / 25.0
        down = max(-self.gaze_pitch_deg, 0.0) / 25.0
        w.update(eyeLookOutLeft=toward_left, eyeLookInRight=toward_left,
                 eyeLookOutRight=toward_right, eyeLookInLeft=toward_right,
                 eyeLookUpLeft=up, eyeLookUpRight=up, eyeLookDownLeft=down, eyeLookDownRight=down)
        for wide in ("eyeWideLeft", "eyeWideRight"):  # the upper lid follows the eye up
            w[wide] = w.get(wide, 0.0) + UPGAZE_EYE_WIDE * min(up, 1.0)
        return {k: float(min(v, 1.0)) for k, v in w.items() if v > 0}


def sample_expression(rng: np.random.Generator, cfg: ExpressionConfig) -> ExpressionParams:
    """A neutral face, a scaled preset, or sparse random actions (see ExpressionConfig); plus a
    random gaze."""
    weights: dict[str, float] = {}
    u = rng.random()
    if u >= cfg.neutral_prob:
        if u < cfg.neutral_prob + cfg.preset_prob:
            names = sorted(cfg.preset_weights)
            p = np.array([cfg.preset_weights[n] for n in names], dtype=float)
            preset = PRESETS[names[rng.choice(len(names), p=p / p.sum())]]
            scale = rng.uniform(0.4, 1.0)
            weights.update({k: v * scale for k, v in preset.items()})
        actions = sorted(cfg.action_weights)
        p = np.array([cfg.action_weights[n] for n in actions], dtype=float)
        for _ in range(rng.integers(0, cfg.extra_actions_max + 1)):
            action = actions[rng.choice(len(actions), p=p / p.sum())]
            amount = rng.uniform(0.1, cfg.extra_weight_max)
            mirror_amount = amount * rng.uniform(0.7, 1.0)
            both = rng.random() < cfg.symmetric_prob
            for name, value in ((action, amount), (MIRRORED.get(action), mirror_amount)):
                if name is not None and (name == action or both):
                    weights[name] = min(1.0, weights.get(name, 0.0) + value)
    gaze_yaw = cfg.gaze_yaw_deg_max * (2.0 * rng.beta(2, 2) - 1.0)
    gaze_pitch = cfg.gaze_pitch_deg_max * (2.0 * rng.beta(2, 2) - 1.0)
    return ExpressionParams({k: round(float(v), 6) for k, v in weights.items()},
                            float(gaze_yaw), float(gaze_pitch))
