"""Skin, eyes, brows, makeup and clothing: colours, detail amounts and skin-region maps. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from replicantface.labels import brow_guide, distance_to_polyline

# Skin colour of Fitzpatrick types I..VI in CIELAB (D65): the centres of the individual typology
# angle classes that dermatology grades constitutive skin colour by, ITA = atan((L* - 50) / b*):
# very light > 55 deg, light 41-55, intermediate 28-41, tan 10-28, brown -30-10, dark < -30.
# Lightness stays within what colorimetric surveys of faces measure (L* about 30-70), with
# a* 8-11 (the shader adds the cheeks' and nose's own flush on top).
FITZPATRICK_LAB = np.array(
    [
        [69.0, 8.0, 11.0],
        [65.0, 9.0, 14.0],
        [61.0, 10.0, 16.0],
        [56.0, 10.5, 17.5],
        [47.0, 11.0, 18.0],
        [35.0, 9.0, 14.0],
    ]
)
ITA_CLASSES_DEG = ((55.0, 90.0), (41.0, 55.0), (28.0, 41.0), (10.0, 28.0), (-30.0, 10.0), (-90.0, -30.0))
_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])


def lab_to_linear_rgb(lab) -> np.ndarray:
    """CIELAB (D65) -> linear sRGB, for one colour or an (..., 3) array; not clipped."""
    lab = np.asarray(lab, dtype=float)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    t = np.where(f > 6.0 / 29.0, f ** 3, 3.0 * (6.0 / 29.0) ** 2 * (f - 4.0 / 29.0))
    return (t * _D65_WHITE) @ np.linalg.inv(_SRGB_TO_XYZ).T


def linear_rgb_to_lab(rgb) -> np.ndarray:
    """Linear sRGB -> CIELAB (D65), for one colour or an (..., 3) array."""
    t = (np.asarray(rgb, dtype=float) @ _SRGB_TO_XYZ.T) / _D65_WHITE
    f = np.where(t > (6.0 / 29.0) ** 3, np.cbrt(t), t / (3.0 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                     200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def individual_typology_angle(rgb) -> np.ndarray:
    """ITA in degrees, atan2(L* - 50, b*), of linear-sRGB colours: higher is lighter skin."""
    lab = linear_rgb_to_lab(rgb)
    return np.degrees(np.arctan2(lab[..., 0] - 50.0, lab[..., 2]))


# Linear-RGB albedo anchors of the six types (the subsurface shader's base colour).
FITZPATRICK_ALBEDO = lab_to_linear_rgb(FITZPATRICK_LAB)
# The lips' colour is set in CIELAB relative to the skin's. Measured against the perioral skin
# under diffuse light (Baras et al., L'Oreal, 914 women of four groups), the vermilion's hue is
# strongly redder than the skin's (the skin's is more yellow), its chroma differs little, and
# it is darker, except in African American women. So the lips take the skin's colour with a*
# raised by LIP_MORE_RED_A (less with age, as lips dull), b* lowered by LIP_LESS_YELLOW_B, and
# L* lowered by LIP_DARKER_L on the fairest skin, by LIP_DARKER_L_DARKEST on the darkest.
LIP_MORE_RED_A = (5.0, 11.0)
LIP_LESS_YELLOW_B = (1.0, 6.0)
LIP_DARKER_L = (5.0, 11.0)
LIP_DARKER_L_DARKEST = (-2.0, 2.0)
LIP_RED_AGE_LOSS = 0.3
# The yellow taken away stops where the lips' hue angle (atan(b*/a*)) would fall below this:
# on the coolest fair skin the full range left them purple, near 4 degrees (about 1 face in
# 120 fell below 10).
LIP_MIN_HUE_DEG = 10.0


def lip_albedo(skin_rgb, lightness: float, age: float, u) -> np.ndarray:
    """Linear-RGB albedo of the lips for a skin albedo.

    lightness: 1 for Fitzpatrick type I .. 0 for type VI; age: 0 at 20 years .. 1 at 80;
    u: three numbers in [0, 1) that place the lips' darkening, added red and lost yellow
    within their ranges (LIP_DARKER_L, LIP_MORE_RED_A, LIP_LESS_YELLOW_B).
    """
    u = np.asarray(u, dtype=float)
    skin = linear_rgb_to_lab(skin_rgb)
    darker = lightness * np.interp(u[0], [0, 1], LIP_DARKER_L) + \
        (1.0 - lightness) * np.interp(u[0], [0, 1], LIP_DARKER_L_DARKEST)
    redder = np.interp(u[1], [0, 1], LIP_MORE_RED_A) * (1.0 - LIP_RED_AGE_LOSS * age)
    less_yellow = np.interp(u[2], [0, 1], LIP_LESS_YELLOW_B)
    return _lips_from_lab(skin[0] - darker, skin[1] + redder, skin[2] - less_yellow, skin[2])


def _lips_from_lab(lightness: float, a: float, b: float, skin_b: float) -> np.ndarray:
    """Linear RGB of lips at (L*, a*, b*), b* raised (never above the skin's) to keep the hue
    angle at LIP_MIN_HUE_DEG or more."""
    floor = min(a * np.tan(np.radians(LIP_MIN_HUE_DEG)), skin_b)
    return lab_to_linear_rgb([lightness, a, max(b, floor)])


def _lip_darkening_range(lightness: float) -> np.ndarray:
    return lightness * np.array(LIP_DARKER_L) + (1.0 - lightness) * np.array(LIP_DARKER_L_DARKEST)


def with_skin(appearance: AppearanceParams, fitzpatrick: float, skin_rgb=None) -> AppearanceParams:
    """The same face with another skin type (``skin_rgb`` defaults to the type's palette albedo).

    The lips move with the skin: they stay as much redder and less yellow than it as they were,
    and take the new type's darkening at the same place within its range (LIP_DARKER_L ..
    LIP_DARKER_L_DARKEST), so they are not left with the old skin's colour.
    """
    skin_rgb = skin_albedo(fitzpatrick) if skin_rgb is None else np.asarray(skin_rgb, dtype=float)
    old_skin, old_lip = linear_rgb_to_lab(appearance.skin_rgb), linear_rgb_to_lab(appearance.lip_rgb)
    lo, hi = _lip_darkening_range((6.0 - np.clip(appearance.fitzpatrick, 1.0, 6.0)) / 5.0)
    u = np.clip((old_skin[0] - old_lip[0] - lo) / (hi - lo), 0.0, 1.0)
    lo, hi = _lip_darkening_range((6.0 - np.clip(fitzpatrick, 1.0, 6.0)) / 5.0)
    new_skin = linear_rgb_to_lab(skin_rgb)
    lip = _lips_from_lab(new_skin[0] - (lo + u * (hi - lo)), new_skin[1] + old_lip[1] - old_skin[1],
                         new_skin[2] + old_lip[2] - old_skin[2], new_skin[2])
    return replace(appearance, fitzpatrick=float(fitzpatrick), skin_rgb=_rgb(skin_rgb), lip_rgb=_rgb(lip))
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
# Necklines of the top; "crew" is the cut the static face classes (regions.classify_faces) use.
CLOTHING_CUTS = ("crew", "v_neck", "scoop", "turtleneck", "collared")
CLOTHING_PATTERNS = ("solid", "stripes", "checks", "dots", "knit", "print")
WRINKLES = ("forehead", "crows_feet", "nasolabial", "under_eye")
MAKEUP = ("lipstick", "eyeshadow", "eyeliner", "blush")
LIPSTICK_COLOURS = ((0.45, 0.03, 0.05), (0.30, 0.02, 0.06), (0.55, 0.12, 0.14), (0.40, 0.10, 0.12),
                    (0.22, 0.05, 0.04), (0.60, 0.20, 0.22), (0.15, 0.02, 0.04))
EYESHADOW_COLOURS = ((0.20, 0.12, 0.08), (0.10, 0.06, 0.05), (0.25, 0.18, 0.20), (0.12, 0.10, 0.16),
                     (0.30, 0.20, 0.12), (0.08, 0.10, 0.14))
BLUSH_COLOURS = ((0.75, 0.30, 0.30), (0.70, 0.35, 0.28), (0.60, 0.22, 0.25))


@dataclass(frozen=True)
class AppearanceConfig:
    """Fitzpatrick types are sampled evenly by default; probabilities are per sample.

    makeup_prob is the rate for gender 0 (female), makeup_prob_male for gender 1; in between
    it is interpolated. freckle_prob is the rate on the lightest skin (type I); it falls
    linearly to 40 % of that on type VI. Weights follow CLOTHING_CUTS and CLOTHING_PATTERNS.
    """

    fitzpatrick_weights: tuple = (1, 1, 1, 1, 1, 1)
    freckle_prob: float = 0.25
    mole_prob: float = 0.5
    blemish_prob: float = 0.3
    makeup_prob: float = 0.45
    makeup_prob_male: float = 0.03
    wrinkle_scale: float = 1.0
    clothing_cut_weights: tuple = (1, 1, 1, 1, 1)
    clothing_pattern_weights: tuple = (3, 1, 1, 1, 1, 1)

    def __post_init__(self) -> None:
        for name, weights, options in (("fitzpatrick_weights", self.fitzpatrick_weights, range(6)),
                                       ("clothing_cut_weights", self.clothing_cut_weights, CLOTHING_CUTS),
                                       ("clothing_pattern_weights", self.clothing_pattern_weights,
                                        CLOTHING_PATTERNS)):
            w = np.asarray(weights, dtype=float)
            if w.shape != (len(options),) or (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"{name} needs {len(options)} weights >= 0, not all 0, got "
                                 f"{list(weights)}")


@dataclass(frozen=True)
class AppearanceParams:
    """Colours are linear RGB in [0, 1]; fitzpatrick is the continuous type in [1, 6].

    Amounts (redness, flush, freckles, ...) are in [0, 1]; 0 means none. ``wrinkles`` maps
    WRINKLES names to depth, ``makeup`` maps MAKEUP names to amount and ``makeup_rgb`` gives
    their colours. ``detail_offset`` shifts the procedural skin textures (metres), so freckles,
    moles and pores sit differently on every face. ``under_eye_dark`` darkens the skin round
    the eyes: below the lower lid, and the upper lid up to the brow at 0.8 of it
    (``scene.UPPER_LID_DARK``). ``beard_shadow`` is a shaved beard's shadow: the hair stubs in
    the skin of the beard area take up to BEARD_SHADOW_COVER of its albedo at 1, in the beard
    hairs' colour ``beard_shadow_rgb`` (so it shows with dark hair on fair skin, and hardly with
    fair or grey hair or on dark skin); 0 for women. ``sheen_stipple`` breaks the skin's
    highlight into millimetre-scale glints (``scene.SKIN_SHEEN_*``): 1 by default, 0 for one
    smooth lobe; it is not drawn.
    """

    fitzpatrick: float
    skin_rgb: tuple
    redness: float
    roughness: float
    iris_name: str
    iris_rgb: tuple
    brow_rgb: tuple
    clothing_rgb: tuple
    undertone: float = 0.0
    flush: float = 0.3
    mottling: float = 0.12
    pores: float = 0.5
    oiliness: float = 0.3
    freckles: float = 0.0
    moles: float = 0.0
    blemishes: float = 0.0
    under_eye_dark: float = 0.2
    detail_offset: tuple = (0.0, 0.0, 0.0)
    wrinkles: dict | None = None
    lip_rgb: tuple = (0.36, 0.17, 0.15)
    makeup: dict | None = None
    makeup_rgb: dict | None = None
    iris_minor_rgb: tuple = (0.0, 0.0, 0.0)
    iris_detail: float = 17.0
    iris_swirl: float = 3.5
    pupil_size: float = 0.3
    sclera_rgb: tuple = (0.95, 0.93, 0.90)
    sclera_redness: float = 0.1
    eye_wetness: float = 0.6
    brow_darkening: float = 0.3
    lash_line: float = 0.6
    clothing_cut: str = "crew"
    clothing_pattern: str = "solid"
    clothing_rgb2: tuple = (0.5, 0.5, 0.5)
    clothing_scale_m: float = 0.02
    beard_shadow: float = 0.0
    beard_shadow_rgb: tuple = (0.02, 0.015, 0.012)
    sheen_stipple: float = 1.0


# A shaved beard's shadow: the hair stubs under and just above the skin of the beard area cover
# up to this share of it (a day's regrowth on a dense beard). The amount drawn for a man runs
# from BEARD_SHADOW_MIN (a close shave) to 1.
BEARD_SHADOW_COVER = 0.22
BEARD_SHADOW_MIN = 0.2
# The skin over the stubs scatters blue light back before it reaches them, so dark stubs read
# blue-grey through it, as veins do: a channel of the shadow's colour darker than the hairs'
# colour taken BEARD_SHADOW_BLUE_SHARE of the way toward BEARD_SHADOW_BLUE is lifted to it.
# Fair stubs are lighter than that already and keep their colour.
BEARD_SHADOW_BLUE = (0.10, 0.12, 0.16)
BEARD_SHADOW_BLUE_SHARE = 0.4


def beard_shadow_rgb(hair_rgb) -> tuple:
    """Linear-RGB colour a shaved beard's stubs of this hair colour give the skin."""
    hair = np.asarray(hair_rgb, dtype=float)
    toned = hair + BEARD_SHADOW_BLUE_SHARE * (np.asarray(BEARD_SHADOW_BLUE) - hair)
    return _rgb(np.maximum(hair, toned))


def skin_albedo(fitzpatrick: float) -> np.ndarray:
    """Linear-RGB albedo for a continuous Fitzpatrick type in [1, 6]."""
    t = np.clip(fitzpatrick, 1.0, 6.0) - 1.0
    lo = int(min(np.floor(t), 4))
    return FITZPATRICK_ALBEDO[lo] * (1 - (t - lo)) + FITZPATRICK_ALBEDO[lo + 1] * (t - lo)


def _choice(rng: np.random.Generator, names: tuple, weights) -> str:
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(names),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights {tuple(weights)} must be {len(names)} non-negative numbers for {names}")
    return names[rng.choice(len(names), p=w / w.sum())]


def _rgb(values) -> tuple:
    return tuple(float(c) for c in np.clip(values, 0.0, 1.0))


def _garment_colour(rng: np.random.Generator) -> np.ndarray:
    """A fabric colour: muted most of the time, sometimes saturated, sometimes near grey."""
    hue = rng.random()
    sat = rng.choice([rng.uniform(0.0, 0.15), rng.uniform(0.2, 0.6), rng.uniform(0.6, 0.95)], p=[0.35, 0.4, 0.25])
    val = rng.uniform(0.03, 0.75) ** 1.3
    k = (np.array([0.0, 2.0 / 3.0, 1.0 / 3.0]) + hue) % 1.0
    ramp = np.clip(np.abs(k * 6.0 - 3.0) - 1.0, 0.0, 1.0)
    return val * (1.0 - sat + sat * ramp)


# The skin's base roughness (Principled GGX, whose alpha is roughness squared): a broad specular
# lobe, as measured faces show, so a face sheens and does not shine like lacquer. The oily T-zone
# goes smoother by scene.T_ZONE_OIL_ROUGHNESS, down to scene.SKIN_MIN_ROUGHNESS.
SKIN_ROUGHNESS = (0.48, 0.66)


def sample_appearance(rng: np.random.Generator, cfg: AppearanceConfig, age_years: float,
                      gender: float = 0.5) -> AppearanceParams:
    """Skin, eye, makeup and clothing parameters; age drives wrinkles and greying, gender makeup."""
    w = np.asarray(cfg.fitzpatrick_weights, dtype=float)
    ftype = rng.choice(6, p=w / w.sum()) + 1
    fitz = float(np.clip(ftype + rng.uniform(-0.5, 0.5), 1.0, 6.0))
    # Undertone: -1 cool/pink (more red and blue) .. +1 warm/olive (more yellow-green).
    undertone = float(rng.uniform(-1.0, 1.0))
    tone = np.array([1.0 - 0.02 * undertone, 1.0 + 0.05 * undertone, 1.0 - 0.09 * undertone])
    if undertone < 0:
        tone *= np.array([1.0 - 0.04 * undertone, 1.0, 1.0])
    skin = skin_albedo(fitz) * tone * rng.uniform(0.9, 1.1)
    iris_names = sorted(IRIS_COLOURS)
    if fitz >= 4:  # darker skin: mostly brown irises
        iris = ["brown", "dark_brown", "hazel"][rng.integers(3)]
    else:
        iris = iris_names[rng.integers(len(iris_names))]
    iris_rgb = np.asarray(IRIS_COLOURS[iris]) * rng.uniform(0.75, 1.3, size=3)
    iris_minor = iris_rgb * rng.uniform(0.25, 0.6) + rng.uniform(0.0, 0.06, size=3) * (iris in ("green", "hazel"))
    hair_names = sorted(HAIR_COLOURS)
    grey_prob = np.clip((age_years - 40.0) / 40.0, 0.0, 0.9)
    hair = "grey" if rng.random() < grey_prob else hair_names[rng.integers(len(hair_names))]

    lightness = (6.0 - fitz) / 5.0  # 1 for type I, 0 for type VI
    age = float(np.clip((age_years - 20.0) / 60.0, 0.0, 1.0))  # 0 at 20 y, 1 at 80 y
    wrinkle_gain = cfg.wrinkle_scale * rng.uniform(0.6, 1.3)
    wrinkles = {
        "forehead": age ** 0.8 * rng.uniform(0.3, 1.0),
        "crows_feet": age ** 0.9 * rng.uniform(0.4, 1.0),
        "nasolabial": min(1.0, 0.15 + age) * rng.uniform(0.4, 1.0),
        "under_eye": age ** 0.7 * rng.uniform(0.3, 1.0),
    }
    wrinkles = {k: float(np.clip(v * wrinkle_gain, 0.0, 1.0)) for k, v in wrinkles.items()}

    freckles = float(rng.uniform(0.25, 1.0)) * (rng.random() < cfg.freckle_prob * (0.4 + 0.6 * lightness))
    moles = float(rng.uniform(0.2, 1.0)) * (rng.random() < cfg.mole_prob)
    blemishes = float(rng.uniform(0.2, 1.0)) * (rng.random() < cfg.blemish_prob)

    g = float(np.clip(gender, 0.0, 1.0))
    makeup_prob = cfg.makeup_prob * (1.0 - g) + cfg.makeup_prob_male * g
    makeup = {name: 0.0 for name in MAKEUP}
    makeup_rgb = {
        "lipstick": _rgb(LIPSTICK_COLOURS[rng.integers(len(LIPSTICK_COLOURS))]),
        "eyeshadow": _rgb(EYESHADOW_COLOURS[rng.integers(len(EYESHADOW_COLOURS))]),
        "eyeliner": (0.015, 0.012, 0.012),
        "blush": _rgb(BLUSH_COLOURS[rng.integers(len(BLUSH_COLOURS))]),
    }
    if rng.random() < makeup_prob:
        amounts = {"lipstick": rng.uniform(0.4, 0.9), "eyeshadow": rng.uniform(0.3, 0.8),
                   "eyeliner": rng.uniform(0.4, 1.0), "blush": rng.uniform(0.2, 0.6)}
        chosen = rng.random(len(MAKEUP)) < 0.6
        chosen[rng.integers(len(MAKEUP))] = True  # made up means at least one product
        makeup = {name: float(amounts[name]) * bool(c) for name, c in zip(MAKEUP, chosen)}

    lip = lip_albedo(skin, lightness, age, rng.random(3))
    sclera = np.array([0.80, 0.78, 0.74]) * rng.uniform(0.9, 1.0) - np.array([0.0, 0.03, 0.06]) * age
    clothing = _garment_colour(rng)
    clothing2 = _garment_colour(rng) if rng.random() < 0.7 else clothing * rng.uniform(0.2, 0.5)
    return AppearanceParams(
        fitzpatrick=fitz,
        skin_rgb=_rgb(skin),
        redness=float(rng.uniform(0.0, 0.3)),
        roughness=float(rng.uniform(*SKIN_ROUGHNESS)),
        iris_name=iris,
        iris_rgb=_rgb(iris_rgb),
        brow_rgb=HAIR_COLOURS[hair],
        clothing_rgb=_rgb(clothing),
        undertone=undertone,
        flush=float(rng.uniform(0.1, 0.8) * (0.5 + 0.5 * lightness)),
        mottling=float(rng.uniform(0.05, 0.3)),
        pores=float(rng.uniform(0.3, 1.0)),
        oiliness=float(rng.uniform(0.0, 1.0)),
        freckles=freckles,
        moles=moles,
        blemishes=blemishes,
        under_eye_dark=float(rng.uniform(0.05, 0.45) + 0.2 * age),
        detail_offset=tuple(float(v) for v in rng.uniform(-10.0, 10.0, size=3)),
        wrinkles=wrinkles,
        lip_rgb=_rgb(lip),
        makeup=makeup,
        makeup_rgb=makeup_rgb,
        iris_minor_rgb=_rgb(iris_minor),
        iris_detail=float(rng.uniform(10.0, 24.0)),
        iris_swirl=float(rng.uniform(1.0, 5.0)),
        pupil_size=float(rng.uniform(0.2, 0.42)),
        sclera_rgb=_rgb(sclera),
        sclera_redness=float(rng.beta(1.2, 5.0)),
        eye_wetness=float(rng.uniform(0.4, 1.0)),
        brow_darkening=float(rng.uniform(0.5, 0.85)),
        clothing_cut=_choice(rng, CLOTHING_CUTS, cfg.clothing_cut_weights),
        clothing_pattern=_choice(rng, CLOTHING_PATTERNS, cfg.clothing_pattern_weights),
        clothing_rgb2=_rgb(clothing2),
        clothing_scale_m=float(rng.uniform(0.006, 0.04)),
        lash_line=float(rng.uniform(0.45, 0.85)),
        # Drawn last and for everyone, so it changes none of the draws above; men only.
        beard_shadow=float(rng.uniform(BEARD_SHADOW_MIN, 1.0)) * float(np.clip((g - 0.5) / 0.3, 0.0, 1.0)),
    )


# ----------------------------------------------------------------------------------------------
# Skin-region maps (per vertex, decided once on the neutral mesh)


def brow_band(landmarks: np.ndarray, drop_m: float = 0.0035) -> dict:
    """Shape of the skin shader's brow band before any sample's brows are known (the scene's
    default; each sample's band follows its brow hairs: ``hair.brow_band``), from the neutral
    head's iBUG-68 landmarks (head frame, metres): the centre line y = c0 + c1 |x| + c2 x^2 (a
    quadratic through both brows' upper edges, ``labels.brow_guide``, lowered by ``drop_m`` to a
    typical brow's middle) and the |x| of the brow's head (x0) and tail (x1). Evaluated per pixel
    on ``rf_rest``, so the band is as sharp as the render, not the mesh.
    """
    lm = np.asarray(landmarks, dtype=float)
    brows = np.vstack([brow_guide(lm[:, :2], side) for side in ("r", "l")])
    ax = np.abs(brows[:, 0])
    c2, c1, c0 = np.polyfit(ax, brows[:, 1] - drop_m, 2)
    return {"brow_c0": float(c0), "brow_c1": float(c1), "brow_c2": float(c2),
            "brow_x0": float(ax.min()), "brow_x1": float(ax.max())}


# Crow's feet (skin_region_maps): the fan's centre angle (radians from level, + up), and its
# half-width: whole within the first, gone beyond the second.
CROWS_FEET_FAN_RAD = (-0.15, 0.35, 0.6)
# The neck zone (skin_region_maps): from this far below the jaw line (metres) it starts, and
# from this far it is whole.
NECK_BELOW_JAW_M = (0.004, 0.024)


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _falloff(dist: np.ndarray, inner: float, outer: float) -> np.ndarray:
    """1 inside ``inner``, smoothly 0 at ``outer`` (metres)."""
    return _smooth((outer - dist) / (outer - inner))


def skin_region_maps(verts_head: np.ndarray, landmarks: np.ndarray, head_vertex: np.ndarray,
                     ear_vertex: np.ndarray, beard_area: np.ndarray | None = None) -> dict:
    """Per-vertex maps that place wrinkles, redness and makeup on the skin.

    verts_head: (V, 3) neutral mesh in the head frame (metres; x subject's left, y up, z out);
    landmarks: (68, 3) iBUG-68 in the same frame; head_vertex, ear_vertex: (V,) bool.
    Returns name -> (V, 3) float32, written as colour attributes on the mesh:
      rf_rest: the position itself (textures stay on the skin whatever the pose);
      rf_zone_a: (cheek, nose, ear) redness weights;
      rf_zone_b: (forehead, crow's-feet, under-eye) wrinkle weights;
      rf_zone_c: (eyelid, eyeliner line, natural lash line) weights: the eyeliner line runs past
        the outer corner, the natural one follows the lid margins (lower lid at 0.45);
      rf_lines: (crow's-feet angle in rad, nasolabial distance, under-eye crease distance) in metres;
      rf_zone_d: (beard area, neck, 0): ``beard_area`` (V,) in [0, 1], where a full beard grows
        (hair.beard_area_weights; 0 everywhere when it is not given); neck: 1 from
        NECK_BELOW_JAW_M[1] below the jaw line (landmarks 3-13) down, 0 above NECK_BELOW_JAW_M[0].
    """
    lm = landmarks
    x, y, z = verts_head.T
    xy = verts_head[:, :2]
    front = _smooth((z + 0.01) / 0.02) * head_vertex
    n = len(verts_head)
    cheek = np.zeros(n)
    crow = np.zeros(n)
    crow_angle = np.zeros(n)
    naso = np.full(n, 0.05)
    under = np.full(n, 0.05)
    under_zone = np.zeros(n)
    eyelid = np.zeros(n)
    lash = np.zeros(n)
    lash_upper = np.zeros(n)
    lash_lower = np.zeros(n)
    for s in (-1.0, 1.0):  # -1: subject's right (landmarks 36-41, 31, 48), +1: left
        if s < 0:
            outer, upper, lower, wing, corner = lm[36], lm[36:40], lm[[36, 41, 40, 39]], lm[31], lm[48]
        else:
            outer, upper, lower, wing, corner = lm[45], lm[42:46][::-1], lm[[45, 46, 47, 42]], lm[35], lm[54]
        side = (s * x) > 0
        cheek_c = np.array([s * 0.040, -0.038])
        cheek = np.maximum(cheek, _falloff(np.linalg.norm((xy - cheek_c) * [1.0, 1.3], axis=1), 0.003, 0.036) * side)
        d_corner = np.linalg.norm(xy - outer[:2], axis=1)
        lateral = _smooth((s * (x - outer[0]) + 0.004) / 0.006)
        ang = np.arctan2(y - outer[1], s * (x - outer[0]))  # 0: level and lateral, pi/2: up
        # Crow's feet fan out from the outer corner over the temple and the top of the cheek, not
        # up over the lid toward the brow's tail: only rays within CROWS_FEET_FAN_RAD of level.
        fan = _falloff(np.abs(ang - CROWS_FEET_FAN_RAD[0]), *CROWS_FEET_FAN_RAD[1:])
        crow = np.maximum(crow, _falloff(np.abs(d_corner - 0.016), 0.004, 0.011) * lateral * fan * side)
        crow_angle = np.where(side, ang, crow_angle)
        # Nasolabial fold: from above the nose wing, past the mouth corner.
        fold = np.array([wing[:2] + [s * 0.006, 0.004], corner[:2] + [s * 0.008, -0.002],
                         corner[:2] + [s * 0.010, -0.014]])
        naso = np.where(side, distance_to_polyline(xy, fold), naso)
        # Under-eye crease: an arc ~8 mm below the lower lid.
        arc = lower[:, :2] + [0.0, -0.008]
        arc[0] += [s * 0.004, 0.003]
        arc[-1] += [-s * 0.001, 0.002]
        under = np.where(side, distance_to_polyline(xy, arc), under)
        below_lid = (y < np.interp(s * x, np.sort(s * lower[:, 0]), lower[np.argsort(s * lower[:, 0]), 1]))
        under_zone = np.maximum(under_zone, _falloff(distance_to_polyline(xy, lower[:, :2] + [0, -0.005]), 0.003, 0.012)
                                * below_lid * side)
        # Eyelid (eyeshadow): above the upper lid up to below the brow; lash line along the lid.
        lid_top = np.interp(s * x, np.sort(s * upper[:, 0]), upper[np.argsort(s * upper[:, 0]), 1])
        above = y - lid_top
        eyelid = np.maximum(eyelid, _smooth(above / 0.002) * _falloff(above, 0.006, 0.013)
                            * _falloff(distance_to_polyline(xy, upper[:, :2]), 0.012, 0.02) * side)
        wing_line = np.vstack([upper[:, :2], outer[:2] + [s * 0.006, 0.003]])
        lash = np.maximum(lash, _falloff(distance_to_polyline(xy, wing_line), 0.0012, 0.003) * (above > -0.0015) * side)
        # Natural lash lines: the lid margins, darker on the upper lid.
        lash_upper = np.maximum(lash_upper, _falloff(distance_to_polyline(xy, upper[:, :2]), 0.0008, 0.0026)
                                * (above > -0.001) * side)
        lash_lower = np.maximum(lash_lower, _falloff(distance_to_polyline(xy, lower[:, :2]), 0.0005, 0.0018)
                                * below_lid * side)
    nose_line = lm[[27, 28, 29, 30]][:, :2]
    nose = _falloff(distance_to_polyline(xy, nose_line), 0.006, 0.018) * (0.5 + 0.5 * _smooth((0.0 - y) / 0.04))
    brow_top = lm[17:27, 1].max()
    forehead = (_smooth((y - brow_top - 0.008) / 0.012) * _falloff(y - brow_top, 0.045, 0.07)
                * _falloff(np.abs(x), 0.035, 0.06))
    # Neck: below the jaw line, from one angle of the jaw round the chin to the other (landmarks
    # 3-13, whose x rises monotonically), and level with the angles beyond them: the contour's
    # upper points (0-2, 14-16) run up the cheek in front of the ear.
    jaw = lm[3:14]
    jaw_y = np.interp(x, jaw[:, 0], jaw[:, 1])
    below = jaw_y - y
    neck = _smooth((below - NECK_BELOW_JAW_M[0]) / (NECK_BELOW_JAW_M[1] - NECK_BELOW_JAW_M[0]))
    ear = ear_vertex.astype(float)
    maps = {
        "rf_rest": verts_head,
        "rf_zone_a": np.c_[cheek * front, nose * front, ear],
        "rf_zone_b": np.c_[forehead * front, crow * front, under_zone * front],
        "rf_zone_c": np.c_[eyelid * front, lash * front, np.maximum(lash_upper, 0.45 * lash_lower) * front],
        "rf_lines": np.c_[crow_angle, naso + 0.05 * (1.0 - front), under + 0.05 * (1.0 - front)],
        "rf_zone_d": np.c_[np.zeros(n) if beard_area is None else beard_area, neck, np.zeros(n)],
    }
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in maps.items()}
