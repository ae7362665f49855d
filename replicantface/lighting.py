"""Backgrounds and lighting: HDRIs, procedural backdrops, an optional extra light. Pure numpy
and scipy apart from listing files.

HDRI brightness is normalised from each map's solid-angle-weighted mean luminance, so the
sampled ``strength`` means the same exposure for every map (no hand-tuned multipliers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

HDRI_SUFFIXES = (".exr", ".hdr")
USER_HDRI_DIR = Path(__file__).resolve().parent.parent / "assets" / "hdris"
# Mean environment luminance that strength 1.0 maps to (linear units, Cycles).
TARGET_LUMINANCE = 0.8
LUMINANCE_WEIGHTS = np.array([0.2126, 0.7152, 0.0722])  # linear Rec.709

BACKDROP_PATTERNS = ("plain", "plaster", "stone", "bricks", "tiles", "stripes", "wood", "swirl",
                     "gradient", "dots")
# Pairs of linear-RGB colours: walls, paint, wood, concrete, fabric...
BACKDROP_PALETTES = (
    ((0.60, 0.58, 0.55), (0.45, 0.43, 0.40)),
    ((0.25, 0.30, 0.35), (0.12, 0.14, 0.18)),
    ((0.55, 0.35, 0.20), (0.30, 0.17, 0.08)),
    ((0.70, 0.68, 0.62), (0.55, 0.52, 0.45)),
    ((0.15, 0.25, 0.15), (0.35, 0.45, 0.30)),
    ((0.50, 0.10, 0.08), (0.25, 0.05, 0.04)),
    ((0.05, 0.05, 0.06), (0.20, 0.20, 0.22)),
    ((0.35, 0.40, 0.55), (0.60, 0.62, 0.70)),
    ((0.65, 0.55, 0.30), (0.40, 0.30, 0.12)),
    ((0.80, 0.80, 0.80), (0.30, 0.30, 0.30)),
)
EXTRA_LIGHT_KINDS = ("AREA", "SPOT", "POINT")
# CIE XYZ to linear Rec.709 / sRGB primaries (IEC 61966-2-1), D65 white.
XYZ_TO_LINEAR_RGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415],
                              [0.0557, -0.2040, 1.0570]])
# Share of the gap (in stops) to the metering target that the face-priority exposure closes,
# when it darkens a bright face and when it lifts a dark one. Cameras protect highlights
# harder than they lift shadows (blown-out faces are rarer in photos than dark ones), and 1
# would make every face equally bright whatever its skin tone.
FACE_METERING_DOWN = 0.8
FACE_METERING_UP = 0.4
# The meter's view of the environment: an equirectangular grid of METER_MAP_ROWS x 2 rows.
METER_MAP_ROWS = 16
# Environment maps whose lamps stand at head height light the subject turned about world X by
# this many degrees: the lamps in front of the body rise as a portrait key light does (30-45
# degrees above the eyes), those behind it sink, and the background the camera sees is not
# turned. Blender's studio map holds 96 % of its light within 30 degrees of the horizon and none
# above it; unturned, it lights a face evenly from head height, flat. Keyed by file name.
LIGHT_TILT_DEG = {"studio.exr": 30.0}


def builtin_hdris() -> list[Path]:
    """The HDRIs that ship inside the bpy wheel (studiolights/world/*.exr), sorted."""
    import bpy  # only to locate the wheel's data files

    folder = Path(bpy.utils.system_resource("DATAFILES", path="studiolights/world"))
    return sorted(folder.glob("*.exr"))


def find_hdris(extra_dirs: list[Path] | tuple = ()) -> dict[str, Path]:
    """name -> path of every HDRI: Blender's 8, assets/hdris/ and any ``extra_dirs``.

    Names are file names; a later folder's file wins over an earlier one of the same name.
    """
    found = {p.name: p for p in builtin_hdris()}
    for folder in (USER_HDRI_DIR, *map(Path, extra_dirs)):
        if folder != USER_HDRI_DIR and not folder.is_dir():
            raise FileNotFoundError(f"HDRI folder not found: {folder}")
        if folder.is_dir():
            found.update({p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in HDRI_SUFFIXES})
    return found


def hdri_gain(pixels: np.ndarray) -> float:
    """Strength multiplier that brings an equirectangular map to TARGET_LUMINANCE.

    pixels: (H, W, 3 or 4) linear RGB(A), row 0 at the top; rows are weighted by cos(latitude)
    so every direction counts by its solid angle.
    """
    h = pixels.shape[0]
    lat = (0.5 - (np.arange(h) + 0.5) / h) * np.pi
    lum = pixels[..., :3] @ LUMINANCE_WEIGHTS
    w = np.cos(lat)[:, None]
    mean = float((lum * w).sum() / (w.sum() * pixels.shape[1]))
    return TARGET_LUMINANCE / max(mean, 1e-6)


def colour_map(pixels: np.ndarray, rows: int = METER_MAP_ROWS) -> np.ndarray:
    """(rows, 2 * rows, 3) block-mean linear RGB of an equirectangular map, row 0 at the top.

    pixels: (H, W, 3 or 4) linear RGB(A), row 0 at the top, H >= rows and W >= 2 * rows.
    """
    h, w = pixels.shape[:2]
    if h < rows or w < 2 * rows:
        raise ValueError(f"an environment map of {w}x{h} pixels is smaller than the "
                         f"{2 * rows}x{rows} metering grid")
    rgb = np.asarray(pixels[..., :3], dtype=np.float64)
    r_edges = np.linspace(0, h, rows + 1).astype(int)[:-1]
    c_edges = np.linspace(0, w, 2 * rows + 1).astype(int)[:-1]
    sums = np.add.reduceat(np.add.reduceat(rgb, r_edges, axis=0), c_edges, axis=1)
    counts = np.outer(np.diff(np.r_[r_edges, h]), np.diff(np.r_[c_edges, w]))
    return sums / counts[..., None]


def luminance_map(pixels: np.ndarray, rows: int = METER_MAP_ROWS) -> np.ndarray:
    """(rows, 2 * rows) block-mean luminance of an equirectangular map (see ``colour_map``)."""
    return colour_map(pixels, rows) @ LUMINANCE_WEIGHTS


def light_tilt_deg(hdri: str) -> float:
    """Degrees the map ``hdri`` (a file name or path) is turned about world X for the light it
    casts (``LIGHT_TILT_DEG``; 0 for maps not listed)."""
    return float(LIGHT_TILT_DEG.get(Path(hdri).name, 0.0))


def map_directions(shape: tuple, rotation_deg: float, tilt_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """World directions (N, 3) of the cell centres of an equirectangular grid, and their solid
    angles (N,), for a map turned by ``rotation_deg`` about world Z and then ``tilt_deg``
    about world X (``light_tilt_deg``).

    Blender's convention: a map column u in [0, 1) faces azimuth atan2(y, x) = (0.5 - u) * 2 pi,
    row 0 faces up, and the world shader's Mapping node turns the lookup direction, so a world
    direction d reads the map at Rz(rotation) Rx(tilt) d. A positive tilt raises what lies in
    front of the body (-Y) and lowers what lies behind it.
    """
    rows, cols = shape
    lat = (0.5 - (np.arange(rows) + 0.5) / rows) * np.pi
    az = (0.5 - (np.arange(cols) + 0.5) / cols) * 2.0 * np.pi - np.radians(rotation_deg)
    lat, az = np.meshgrid(lat, az, indexing="ij")
    dirs = np.stack([np.cos(lat) * np.cos(az), np.cos(lat) * np.sin(az), np.sin(lat)], axis=-1)
    solid = np.cos(lat) * (np.pi / rows) * (2.0 * np.pi / cols)
    dirs = dirs.reshape(-1, 3)
    if tilt_deg:  # d = Rx(-tilt) Rz(-rotation) m, as rows: (Rz(-rotation) m) Rx(tilt)
        dirs = dirs @ Rotation.from_euler("x", tilt_deg, degrees=True).as_matrix()
    return dirs, solid.ravel()


def face_light_ratio(lum_map: np.ndarray, rotation_deg: float, normals: np.ndarray,
                     tilt_deg: float = 0.0) -> float:
    """How brightly an environment lights a face, relative to an even sky of the same mean.

    lum_map: (rows, cols) luminance (``luminance_map``); normals: (K, 3) world unit normals of
    the face's patches. Returns the mean over the patches of E(n) / (pi * mean luminance), the
    irradiance a Lambertian patch facing n receives over what it would under a uniform sky:
    1 for an even sky, above 1 facing the sun, below 1 with the light behind the head.
    ``tilt_deg``: as in ``map_directions``.
    """
    dirs, solid = map_directions(lum_map.shape, rotation_deg, tilt_deg)
    lum = np.asarray(lum_map, dtype=float).ravel()
    mean = float(lum @ solid) / (4.0 * np.pi)
    cosines = np.clip(np.asarray(normals, dtype=float) @ dirs.T, 0.0, None)
    irradiance = cosines @ (lum * solid)
    return float(np.mean(irradiance) / (np.pi * max(mean, 1e-12)))


def face_illuminant(rgb_map: np.ndarray, rotation_deg: float, normals: np.ndarray,
                    tilt_deg: float = 0.0) -> np.ndarray:
    """(3,) linear-RGB colour of the light an environment casts on a face, at unit luminance.

    rgb_map: (rows, cols, 3) linear RGB (``colour_map``); normals: (K, 3) world unit normals of
    the face's patches. The irradiance of Lambertian patches facing ``normals``, summed: under
    a blue sky with the sun behind the head it is bluish, facing a low sun it is orange.
    ``tilt_deg``: as in ``map_directions``.
    """
    dirs, solid = map_directions(rgb_map.shape[:2], rotation_deg, tilt_deg)
    rgb = np.asarray(rgb_map, dtype=float).reshape(-1, 3)
    cosines = np.clip(np.asarray(normals, dtype=float) @ dirs.T, 0.0, None)
    irradiance = (cosines @ (rgb * solid[:, None])).sum(axis=0)
    lum = float(irradiance @ LUMINANCE_WEIGHTS)
    if lum <= 1e-12:
        return np.ones(3)
    return irradiance / lum


# The extra lamps' shapes, as the scene builds them: the area light's square side (metres).
AREA_LIGHT_SIZE_M = 0.5
SPOT_SIZE_DEG = 45.0


def lamp_direction(extra: ExtraLight) -> np.ndarray:
    """(3,) world unit vector from the head centre toward the extra lamp (Z up, the body
    facing -Y): azimuth about Z from the front, toward the subject's left, and elevation."""
    az, el = np.radians(extra.azimuth_deg), np.radians(extra.elevation_deg)
    return np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)])


def lamp_irradiance(extra: ExtraLight, normals: np.ndarray, grid: int = 8) -> float:
    """Mean luminance irradiance the extra lamp casts on Lambertian patches at the head centre
    facing ``normals`` (K, 3), in the units of Cycles' radiance (a diffuse white patch renders
    this over pi).

    Cycles' point and spot lights of P watts have an intensity of P / (4 pi) per steradian (a
    spot is a point light masked to its cone, which is aimed at the head); an area light's
    square emits P / pi per steradian along its axis, falling off with the cosine, and is
    summed here over ``grid`` x ``grid`` points of its face. Shadows are not predicted.
    """
    normals = np.asarray(normals, dtype=float)
    back = lamp_direction(extra)
    power = extra.power_w * float(np.asarray(extra.colour, dtype=float) @ LUMINANCE_WEIGHTS)
    if extra.kind != "AREA":
        cosines = np.clip(normals @ back, 0.0, None)
        return float(np.mean(cosines) * power / (4.0 * np.pi * extra.distance_m ** 2))
    right = np.cross([0.0, 0.0, 1.0], back)
    right = right / np.linalg.norm(right) if np.linalg.norm(right) > 1e-6 else np.array([1.0, 0.0, 0.0])
    up = np.cross(back, right)
    s = (np.arange(grid) + 0.5) / grid - 0.5
    a, b = (x.ravel() for x in np.meshgrid(s, s))
    points = extra.distance_m * back + AREA_LIGHT_SIZE_M * (a[:, None] * right + b[:, None] * up)
    r = np.linalg.norm(points, axis=1)
    emit = np.clip(points @ back / r, 0.0, None)  # cosine at the light's face
    cosines = np.clip(normals @ (points / r[:, None]).T, 0.0, None)  # (K, grid^2)
    return float(np.mean(cosines @ (emit / r ** 2)) * power / (np.pi * grid * grid))


def metered_light(params: LightingParams, rgb_map: np.ndarray, normals: np.ndarray) -> tuple[float, np.ndarray]:
    """What the camera's face metering and white balance see of the light on a face.

    Returns the light ratio (``face_light_ratio`` of the map, plus the extra lamp's share in the
    same units: its irradiance over that of an even sky at the map's normalised mean times
    strength and tint) and the (3,) colour of all that light at unit luminance (the map's
    ``face_illuminant`` times the tint, and the lamp's colour, weighted by their shares). A
    lamp that lights the face is metered and balanced with the rest, as a camera's
    face-priority exposure and white balance would.
    """
    tilt = light_tilt_deg(params.hdri)
    env_ratio = face_light_ratio(np.asarray(rgb_map) @ LUMINANCE_WEIGHTS, params.rotation_deg, normals, tilt)
    env = face_illuminant(rgb_map, params.rotation_deg, normals, tilt) * np.asarray(params.tint_rgb, dtype=float)
    env = env / float(env @ LUMINANCE_WEIGHTS)
    if params.extra_light is None:
        return env_ratio, env
    sky = np.pi * TARGET_LUMINANCE * params.strength * float(np.mean(params.tint_rgb))
    lamp_ratio = lamp_irradiance(params.extra_light, normals) / max(sky, 1e-12)
    lamp = np.asarray(params.extra_light.colour, dtype=float)
    lamp = lamp / max(float(lamp @ LUMINANCE_WEIGHTS), 1e-12)
    colour = env * env_ratio + lamp * lamp_ratio
    return env_ratio + lamp_ratio, colour / max(float(colour @ LUMINANCE_WEIGHTS), 1e-12)


def white_balance_gains(illuminant_rgb, amount: float) -> np.ndarray:
    """(3,) per-channel gains of a camera's white balance on linear RGB, at unit luminance.

    illuminant_rgb: (3,) colour of the light on the subject (``face_illuminant`` times the
    tint); ``amount`` in [0, 1] is how much of its cast the camera removes: 0 leaves the image
    alone, 1 renders a grey card under that light grey. The gains keep a grey card's luminance,
    so the face metering's exposure still holds.
    """
    light = np.clip(np.asarray(illuminant_rgb, dtype=float), 1e-6, None)
    light = light / float(light @ LUMINANCE_WEIGHTS)
    gains = light ** -float(amount)
    return gains / float((light * gains) @ LUMINANCE_WEIGHTS)


@dataclass(frozen=True)
class LightingConfig:
    strength_min: float = 0.7
    strength_max: float = 1.5
    background_strength_min: float = 0.6
    background_strength_max: float = 1.2
    tint_max: float = 0.08
    backdrop_prob: float = 0.35
    extra_light_prob: float = 0.05
    # The extra lamp's colour: a colour temperature from warm-white bulbs to daylight LEDs,
    # and a green-magenta tint off the black-body locus within the LED tolerance (ANSI C78.377).
    extra_light_kelvin_min: float = 2700.0
    extra_light_kelvin_max: float = 6500.0
    extra_light_duv_max: float = 0.006
    min_face_luminance: float = 35.0
    max_attempts: int = 3
    face_exposure_min: float = 0.14
    face_exposure_max: float = 0.3
    exposure_max_ev: float = 1.5
    # Share of the light's colour cast on the face that the camera's white balance removes.
    # Cameras correct most of it (a face in blue shade or in a low orange sun is rendered
    # closer to its own colour) but seldom all: some warmth of a sunset is kept.
    white_balance_min: float = 0.6
    white_balance_max: float = 1.0


@dataclass(frozen=True)
class Backdrop:
    """A procedural wall behind the head, facing the camera. Distances in metres."""

    pattern: str
    colour_a: tuple
    colour_b: tuple
    scale: float
    distance_m: float
    tilt_deg: float


@dataclass(frozen=True)
class ExtraLight:
    """An extra lamp: direction from the head (azimuth about world Z from the front, elevation),
    distance in metres, power in watts, linear-RGB colour."""

    kind: str
    azimuth_deg: float
    elevation_deg: float
    distance_m: float
    power_w: float
    colour: tuple


@dataclass(frozen=True)
class LightingParams:
    """hdri: file name; rotation about world Z in degrees; strength multiplies the normalised
    lighting, background_strength what the camera sees of the map; tint multiplies both.
    face_exposure: the linear face luminance the camera's face-priority metering aims at
    (see ``exposure_ev``; 0 turns it off). white_balance: the share of the light's colour cast
    on the face that the camera removes (``white_balance_gains``; 0 turns it off)."""

    hdri: str
    rotation_deg: float
    strength: float
    background_strength: float
    tint_rgb: tuple
    backdrop: Backdrop | None
    extra_light: ExtraLight | None
    face_exposure: float = 0.0
    white_balance: float = 0.0


def planckian_uv(kelvin) -> tuple[np.ndarray, np.ndarray]:
    """CIE 1960 (u, v) of a black body at ``kelvin`` (Krystek's rational approximation, good
    to about 1e-4 in u and v over 1000-15000 K)."""
    t = np.asarray(kelvin, dtype=float)
    u = (0.860117757 + 1.54118254e-4 * t + 1.28641212e-7 * t ** 2) / (1.0 + 8.42420235e-4 * t + 7.08145163e-7 * t ** 2)
    v = (0.317398726 + 4.22806245e-5 * t + 4.20481691e-8 * t ** 2) / (1.0 - 2.89741816e-5 * t + 1.61456053e-7 * t ** 2)
    return u, v


def lamp_xy(kelvin: float, duv: float = 0.0) -> tuple[float, float]:
    """CIE 1931 (x, y) of a lamp of correlated colour temperature ``kelvin``, ``duv`` off the
    Planckian locus in CIE 1960 (u, v): positive toward green, negative toward magenta."""
    u, v = (float(c) for c in planckian_uv(kelvin))
    u1, v1 = (float(c) for c in planckian_uv(kelvin + 1.0))
    normal = np.array([v1 - v, u - u1])  # perpendicular to the locus, pointing to larger v
    normal = normal / np.linalg.norm(normal) * (1.0 if normal[1] > 0 else -1.0)
    u, v = np.array([u, v]) + duv * normal
    d = 2.0 * u - 8.0 * v + 4.0
    return float(3.0 * u / d), float(2.0 * v / d)


def lamp_rgb(kelvin: float, duv: float = 0.0) -> tuple:
    """Linear-RGB colour of unit luminance of a lamp (see ``lamp_xy``); the light's power sets
    its brightness."""
    x, y = lamp_xy(kelvin, duv)
    rgb = np.clip(XYZ_TO_LINEAR_RGB @ np.array([x / y, 1.0, (1.0 - x - y) / y]), 0.0, None)
    return tuple(float(c) for c in rgb / float(rgb @ LUMINANCE_WEIGHTS))


def lamp_duv_limit(kelvin: float) -> float:
    """The greenest tint (largest Duv, at most 0.05) whose lamp colour at ``kelvin`` lies inside
    the renderer's linear-RGB gamut: below about 2500 K a green tint needs negative blue, which
    ``lamp_rgb`` would clip to another colour. 0 below 1900 K, where the locus itself leaves it."""
    def inside(duv):
        x, y = lamp_xy(kelvin, duv)
        return bool((XYZ_TO_LINEAR_RGB @ np.array([x / y, 1.0, (1.0 - x - y) / y])).min() >= 0.0)

    if inside(0.05):
        return 0.05
    if not inside(0.0):
        return 0.0
    lo, hi = 0.0, 0.05
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if inside(mid) else (lo, mid)
    return lo


def lamp_kelvin_duv(rgb) -> tuple[float, float]:
    """The inverse of ``lamp_rgb``: the correlated colour temperature (kelvin, 1000-25000) and
    the signed Duv of a linear-RGB lamp colour (its brightness does not matter). Colours the
    black-body locus never reaches (a saturated green, say) get the nearest point's kelvin and
    their distance as Duv."""
    from scipy.optimize import minimize_scalar

    rgb = np.asarray(rgb, dtype=float)
    if rgb.shape != (3,) or not np.all(np.isfinite(rgb)) or rgb.min() < 0.0 or rgb.max() <= 0.0:
        raise ValueError(f"a lamp colour is three finite non-negative numbers, not all 0; got {rgb.tolist()}")
    xyz = np.linalg.solve(XYZ_TO_LINEAR_RGB, rgb)
    d = xyz[0] + 15.0 * xyz[1] + 3.0 * xyz[2]
    uv = np.array([4.0 * xyz[0], 6.0 * xyz[1]]) / d

    def dist2(mired):
        u, v = planckian_uv(1e6 / mired)
        return float((u - uv[0]) ** 2 + (v - uv[1]) ** 2)

    mired = float(minimize_scalar(dist2, bounds=(40.0, 1000.0), method="bounded",
                                  options={"xatol": 1e-7}).x)
    kelvin = 1e6 / mired
    u, v = (float(c) for c in planckian_uv(kelvin))
    u1, v1 = (float(c) for c in planckian_uv(kelvin + 1.0))
    normal = np.array([v1 - v, u - u1])  # as in lamp_xy: toward larger v (green)
    normal = normal / np.linalg.norm(normal) * (1.0 if normal[1] > 0 else -1.0)
    return kelvin, float((uv - np.array([u, v])) @ normal)


def background_settings(n_hdris: int) -> int:
    """Number of visually distinct background settings: every HDRI, plus every backdrop
    pattern in every palette (before rotation, strength, tint and scale variation)."""
    return n_hdris + len(BACKDROP_PATTERNS) * len(BACKDROP_PALETTES)


def _lamp_colour(u: np.ndarray, cfg: LightingConfig) -> tuple:
    """A real lamp's colour from three uniform numbers: a colour temperature uniform in mired
    (reciprocal kelvin, so warm and cool lamps are spread as the eye sees them) between
    ``extra_light_kelvin_min`` and ``_max``, and a green-magenta tint within
    ``extra_light_duv_max`` of the Planckian locus. The third number is not used: the colour
    takes three, so the draws after it are the same whatever the colour model."""
    lo, hi = 1e6 / cfg.extra_light_kelvin_max, 1e6 / cfg.extra_light_kelvin_min
    kelvin = 1e6 / (lo + (hi - lo) * float(u[0]))
    return lamp_rgb(kelvin, cfg.extra_light_duv_max * (2.0 * float(u[1]) - 1.0))


def sample_lighting(rng: np.random.Generator, cfg: LightingConfig, hdri_names: list[str]) -> LightingParams:
    tint = 1.0 + rng.uniform(-cfg.tint_max, cfg.tint_max, size=3)
    backdrop = None
    if rng.random() < cfg.backdrop_prob:
        pal = BACKDROP_PALETTES[rng.integers(len(BACKDROP_PALETTES))]
        a, b = (pal if rng.random() < 0.5 else pal[::-1])
        backdrop = Backdrop(
            pattern=BACKDROP_PATTERNS[rng.integers(len(BACKDROP_PATTERNS))],
            colour_a=tuple(float(c) for c in np.clip(np.array(a) * rng.uniform(0.8, 1.2, 3), 0, 1)),
            colour_b=tuple(float(c) for c in np.clip(np.array(b) * rng.uniform(0.8, 1.2, 3), 0, 1)),
            scale=float(np.exp(rng.uniform(np.log(0.5), np.log(4.0)))),
            distance_m=float(rng.uniform(0.6, 2.5)),
            tilt_deg=float(rng.uniform(-20.0, 20.0)),
        )
    extra = None
    if rng.random() < cfg.extra_light_prob:
        extra = ExtraLight(
            kind=EXTRA_LIGHT_KINDS[rng.integers(len(EXTRA_LIGHT_KINDS))],
            azimuth_deg=float(rng.uniform(-150.0, 150.0)),
            elevation_deg=float(rng.uniform(-20.0, 60.0)),
            distance_m=float(rng.uniform(0.8, 2.5)),
            power_w=float(np.exp(rng.uniform(np.log(10.0), np.log(150.0)))),
            colour=_lamp_colour(rng.uniform(0.0, 1.0, 3), cfg),
        )
    return LightingParams(
        hdri=hdri_names[rng.integers(len(hdri_names))],
        rotation_deg=float(rng.uniform(0.0, 360.0)),
        strength=float(rng.uniform(cfg.strength_min, cfg.strength_max)),
        background_strength=float(rng.uniform(cfg.background_strength_min, cfg.background_strength_max)),
        tint_rgb=tuple(float(t) for t in tint),
        backdrop=backdrop,
        extra_light=extra,
        face_exposure=float(rng.uniform(cfg.face_exposure_min, cfg.face_exposure_max)),
        white_balance=float(rng.uniform(cfg.white_balance_min, cfg.white_balance_max)),
    )


def exposure_ev(params: LightingParams, skin_rgb, max_ev: float, light_ratio: float = 1.0) -> float:
    """Exposure correction in stops of a face-priority auto-exposure, as phones and cameras meter.

    The face's linear luminance is predicted from the lighting (skin albedo x the normalised
    environment luminance x strength x tint x ``light_ratio``, the face's share of the light
    from ``face_light_ratio``: below 1 when the light comes from behind the head), and the
    exposure closes FACE_METERING_DOWN (darkening) or FACE_METERING_UP (lifting) of the gap in
    stops to ``params.face_exposure``, within ``±max_ev``: a fair face in strong light is not
    blown out, a dark or backlit face is lifted, and skin tones stay apart. Shadows cast on the
    face by the head, hair and headwear are not predicted, as a meter's error would miss them.
    """
    if params.face_exposure <= 0.0:
        return 0.0
    albedo = float(np.asarray(skin_rgb, dtype=float) @ LUMINANCE_WEIGHTS)
    predicted = (albedo * TARGET_LUMINANCE * params.strength * float(np.mean(params.tint_rgb))
                 * float(light_ratio))
    gap = float(np.log2(params.face_exposure / max(predicted, 1e-6)))
    ev = gap * (FACE_METERING_DOWN if gap < 0.0 else FACE_METERING_UP)
    return float(np.clip(ev, -max_ev, max_ev))


def face_luminance(rgb: np.ndarray, mask: np.ndarray, classes: tuple[int, ...]) -> float:
    """Mean luma (0-255, Rec.709 weights on the sRGB values) of the pixels of ``classes``."""
    sel = np.isin(mask, classes)
    if not sel.any():
        return 0.0
    return float((rgb[sel].astype(np.float64) @ LUMINANCE_WEIGHTS).mean())
