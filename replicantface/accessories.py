"""Head accessories built by code: glasses, hats, helmets, headphones, masks, scarves, earrings.
numpy and scipy only.

Every accessory is rebuilt per sample from the sample's posed mesh in the head frame (x subject's
left, y up, z out of the face, metres), so it fits that identity and expression, and is then
placed with ``head_to_world``, i.e. carried by the head bone.

- Shells (beanies, caps, hood, headband, helmets, masks, scarves) follow a radial height map of
  the skin around a centre: per direction, the largest skin radius, dilated with a cone (so
  fabric drapes in tents over the nose or ears instead of following every fold), smoothed, and
  never below the raw maximum. The inner surface sits ``gap`` above it, so skin cannot poke
  through.
- Rigid parts (frames, temples, straps, ear cups, earbuds, earrings) are tubes, slabs and
  ellipsoids placed from landmarks and ear / eye vertices, then pushed out along a chosen
  direction until they clear the skin and the accessories built before them.

Segmentation classes (``pass_index`` of the materials):

- glasses, sunglasses, reading glasses: frames GLASSES (16); dark sunglass lenses are opaque,
  GLASSES; clear lenses are mostly transparent (alpha below the view layer's pass alpha
  threshold), so the pixel keeps the class behind them.
- hats, caps, beanies, hood, headbands, helmets, headphones, earbuds, earrings: HEADWEAR (17).
- face masks: FACEWEAR (18).
- scarf, neck gaiter: CLOTHING (15).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from replicantface.classes import SegClass
from replicantface.hair import HeadCover

CATEGORIES = ("glasses", "hat", "headphones", "mask", "scarf", "earrings")
DEFAULT_PROBABILITIES = {"glasses": 0.2, "hat": 0.1, "headphones": 0.02, "mask": 0.02, "scarf": 0.02,
                         "earrings": 0.05}
PATTERNS = ("plain", "stripes", "check")
# Material kinds the scene layer knows; clear lenses write no class of their own.
MATERIAL_KINDS = ("plastic", "metal", "lens_clear", "lens_dark", "lens_mirror", "fabric", "knit", "rubber",
                  "leather", "straw", "shell")
# Build order: later items clear the earlier ones (glasses over a mask, hat over glasses).
_BUILD_ORDER = ("scarf", "mask", "glasses", "headphones", "earrings", "hat")

GLASSES = int(SegClass.GLASSES)
HEADWEAR = int(SegClass.HEADWEAR)
FACEWEAR = int(SegClass.FACEWEAR)
CLOTHING = int(SegClass.CLOTHING)

# Clearances, metres.
SKIN_CLEARANCE_M = 0.0012
HAIR_ALLOWANCE_M = 0.006  # hair under snug headwear is flattened to this thickness


@dataclass(frozen=True)
class AccessorySpec:
    """category: one of CATEGORIES; seg_classes: classes its opaque parts write; builder: the
    geometry function's key; palette: colour family; options: builder settings (JSON-like)."""

    name: str
    category: str
    seg_classes: tuple
    builder: str
    palette: str
    options: dict = field(default_factory=dict)


def _spec(name, category, seg_classes, builder, palette, **options) -> AccessorySpec:
    return AccessorySpec(name, category, tuple(seg_classes), builder, palette, options)


ACCESSORIES: dict[str, AccessorySpec] = {s.name: s for s in (
    _spec("glasses_round", "glasses", [GLASSES], "glasses", "frame", shape="round", rim=0.0012),
    _spec("glasses_rectangular", "glasses", [GLASSES], "glasses", "frame", shape="rect", rim=0.0013),
    _spec("glasses_aviator", "glasses", [GLASSES], "glasses", "metal", shape="aviator", rim=0.0008,
          double_bridge=True),
    _spec("glasses_cat_eye", "glasses", [GLASSES], "glasses", "frame", shape="cat_eye", rim=0.0018),
    _spec("glasses_thick_rim", "glasses", [GLASSES], "glasses", "frame", shape="rect", rim=0.0028),
    _spec("glasses_browline", "glasses", [GLASSES], "glasses", "frame", shape="browline", rim=0.0010),
    _spec("glasses_rimless", "glasses", [GLASSES], "glasses", "metal", shape="rimless", rim=0.0),
    _spec("sunglasses_wayfarer", "glasses", [GLASSES], "glasses", "frame", shape="wayfarer", rim=0.0025,
          dark=True),
    _spec("sunglasses_aviator", "glasses", [GLASSES], "glasses", "metal", shape="aviator", rim=0.0008,
          dark=True, double_bridge=True),
    _spec("sunglasses_round", "glasses", [GLASSES], "glasses", "metal", shape="round", rim=0.0009,
          dark=True),
    _spec("sunglasses_sport_wrap", "glasses", [GLASSES], "sport_glasses", "frame"),
    _spec("reading_glasses_half_moon", "glasses", [GLASSES], "glasses", "frame", shape="half_moon",
          rim=0.0010, low=True),
    _spec("cap_forward", "hat", [HEADWEAR], "cap", "fabric", backward=False),
    _spec("cap_backward", "hat", [HEADWEAR], "cap", "fabric", backward=True),
    _spec("beanie", "hat", [HEADWEAR], "beanie", "knit"),
    _spec("beanie_cuffed", "hat", [HEADWEAR], "beanie", "knit", cuff=True),
    _spec("beanie_pompom", "hat", [HEADWEAR], "beanie", "knit", cuff=True, pompom=True),
    _spec("fedora", "hat", [HEADWEAR], "brimmed", "felt", crown_h=0.045, brim=0.050, droop=6.0,
          dent=0.012, band=True),
    _spec("bucket_hat", "hat", [HEADWEAR], "brimmed", "fabric", crown_h=0.03, brim=0.045, droop=35.0,
          dent=0.0, band=False),
    _spec("sun_hat", "hat", [HEADWEAR], "brimmed", "straw", crown_h=0.035, brim=0.085, droop=14.0,
          dent=0.0, band=True),
    _spec("hood", "hat", [HEADWEAR], "hood", "fabric"),
    _spec("bike_helmet", "hat", [HEADWEAR], "helmet", "bright", kind="bike"),
    _spec("hard_hat", "hat", [HEADWEAR], "helmet", "safety", kind="hard"),
    _spec("headband", "hat", [HEADWEAR], "headband", "fabric"),
    _spec("hairband", "hat", [HEADWEAR], "hairband", "frame"),
    _spec("headphones_over_ear", "headphones", [HEADWEAR], "headphones", "device", cup_r=0.045,
          over_ear=True),
    _spec("headphones_on_ear", "headphones", [HEADWEAR], "headphones", "device", cup_r=0.033,
          over_ear=False),
    _spec("earbuds", "headphones", [HEADWEAR], "earbuds", "device"),
    _spec("mask_surgical", "mask", [FACEWEAR], "mask", "surgical", style="surgical"),
    _spec("mask_cloth", "mask", [FACEWEAR], "mask", "fabric", style="cloth"),
    _spec("mask_ffp2", "mask", [FACEWEAR], "mask", "ffp2", style="ffp2"),
    _spec("scarf", "scarf", [CLOTHING], "scarf", "knit", gaiter=False),
    _spec("neck_gaiter", "scarf", [CLOTHING], "scarf", "fabric", gaiter=True),
    _spec("earrings_studs", "earrings", [HEADWEAR], "earrings", "jewel", style="stud"),
    _spec("earrings_hoops", "earrings", [HEADWEAR], "earrings", "jewel", style="hoop"),
    _spec("earrings_drops", "earrings", [HEADWEAR], "earrings", "jewel", style="drop"),
)}

# Pairs that cannot be worn together (geometry would interpenetrate or it makes no sense).
# Over-ear and on-ear headphones pass over the crown and cover the ears: no hat, no earrings.
_EARS_COVERED = ("headphones_over_ear", "headphones_on_ear")
EXCLUSIONS: frozenset = frozenset(
    {frozenset((a, b)) for a in _EARS_COVERED for b in ACCESSORIES
     if ACCESSORIES[b].category in ("hat", "earrings")}
    | {frozenset(("earbuds", "hood")), frozenset(("earbuds", "bike_helmet")),
       frozenset(("earbuds", "hard_hat")),
       frozenset(("neck_gaiter", "hood")), frozenset(("scarf", "hood")),
       frozenset(("neck_gaiter", "mask_surgical")), frozenset(("neck_gaiter", "mask_cloth")),
       frozenset(("neck_gaiter", "mask_ffp2")),
       frozenset(("earrings_hoops", "hood")), frozenset(("earrings_drops", "hood")),
       frozenset(("earrings_hoops", "bike_helmet")), frozenset(("earrings_drops", "bike_helmet")),
       frozenset(("earrings_hoops", "scarf")), frozenset(("earrings_drops", "scarf")),
       frozenset(("earrings_hoops", "neck_gaiter")), frozenset(("earrings_drops", "neck_gaiter")),
       frozenset(("sunglasses_sport_wrap", "mask_ffp2"))}
)

# Colour families, linear RGB.
PALETTES = {
    "frame": ((0.01, 0.01, 0.01), (0.06, 0.03, 0.015), (0.15, 0.07, 0.03), (0.02, 0.03, 0.08),
              (0.25, 0.02, 0.02), (0.35, 0.35, 0.36), (0.5, 0.35, 0.2)),
    "metal": ((0.75, 0.55, 0.25), (0.7, 0.7, 0.72), (0.2, 0.2, 0.22), (0.6, 0.45, 0.35)),
    "fabric": ((0.02, 0.02, 0.025), (0.7, 0.7, 0.7), (0.03, 0.06, 0.2), (0.3, 0.02, 0.02),
               (0.05, 0.15, 0.05), (0.35, 0.25, 0.12), (0.45, 0.4, 0.05), (0.15, 0.15, 0.17),
               (0.5, 0.12, 0.25)),
    "knit": ((0.02, 0.02, 0.025), (0.55, 0.55, 0.55), (0.25, 0.03, 0.03), (0.03, 0.05, 0.18),
             (0.35, 0.2, 0.06), (0.08, 0.15, 0.08), (0.5, 0.35, 0.05), (0.4, 0.1, 0.25)),
    "felt": ((0.03, 0.025, 0.02), (0.12, 0.07, 0.04), (0.07, 0.07, 0.08), (0.25, 0.2, 0.14),
             (0.03, 0.04, 0.08)),
    "straw": ((0.6, 0.45, 0.22), (0.7, 0.6, 0.4), (0.45, 0.3, 0.12), (0.75, 0.72, 0.65)),
    "bright": ((0.8, 0.8, 0.8), (0.02, 0.02, 0.02), (0.7, 0.05, 0.02), (0.02, 0.15, 0.6),
               (0.1, 0.5, 0.05), (0.8, 0.4, 0.02)),
    "safety": ((0.85, 0.6, 0.02), (0.85, 0.85, 0.82), (0.85, 0.25, 0.02), (0.7, 0.05, 0.03),
               (0.03, 0.15, 0.6)),
    "device": ((0.015, 0.015, 0.015), (0.8, 0.8, 0.8), (0.3, 0.3, 0.32), (0.05, 0.07, 0.2),
               (0.45, 0.35, 0.28)),
    "surgical": ((0.35, 0.55, 0.75), (0.8, 0.82, 0.85), (0.3, 0.6, 0.55), (0.02, 0.02, 0.025),
                 (0.7, 0.45, 0.55)),
    "ffp2": ((0.82, 0.82, 0.8), (0.75, 0.74, 0.7), (0.02, 0.02, 0.02)),
    "jewel": ((0.8, 0.6, 0.25), (0.75, 0.75, 0.78), (0.7, 0.45, 0.35)),
}
# Patterns apply to fabric and knit only; hard items are plain.
_PATTERNED = ("fabric", "knit")


@dataclass(frozen=True)
class AccessoryConfig:
    """probabilities: category -> chance per sample; weights: accessory name -> relative weight
    within its category (missing names weigh 1, 0 disables one)."""

    probabilities: dict = field(default_factory=lambda: dict(DEFAULT_PROBABILITIES))
    weights: dict = field(default_factory=dict)
    pattern_prob: float = 0.3

    @staticmethod
    def allowed_names(key: str) -> tuple:
        """Names a config table may use: categories for probabilities, accessories for weights."""
        return CATEGORIES if key == "probabilities" else tuple(ACCESSORIES)

    def __post_init__(self) -> None:
        for key, value in self.probabilities.items():
            if key not in CATEGORIES:
                raise ValueError(f"accessories.probabilities: unknown category {key!r}; "
                                 f"allowed {', '.join(CATEGORIES)}")
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"accessories.probabilities.{key}={value} is outside [0, 1]")
        for key, value in self.weights.items():
            if key not in ACCESSORIES:
                raise ValueError(f"accessories.weights: unknown accessory {key!r}")
            if float(value) < 0.0:
                raise ValueError(f"accessories.weights.{key}={value} must be >= 0")
        if not 0.0 <= self.pattern_prob <= 1.0:
            raise ValueError(f"accessories.pattern_prob={self.pattern_prob} is outside [0, 1]")


@dataclass(frozen=True)
class AccessoryChoice:
    """One worn accessory: colours are linear RGB; pattern one of PATTERNS; variant in [0, 1]
    scales sizes and shapes within the accessory's range."""

    name: str
    colour_rgb: tuple
    secondary_rgb: tuple
    pattern: str
    variant: float


@dataclass(frozen=True)
class AccessoryParams:
    """At most one accessory per category, in CATEGORIES order; never an excluded pair."""

    items: tuple = ()

    @property
    def names(self) -> tuple:
        return tuple(item.name for item in self.items)


def compatible(names) -> bool:
    """True when no two of ``names`` are an excluded pair and no category appears twice."""
    names = list(names)
    cats = [ACCESSORIES[n].category for n in names]
    if len(set(cats)) != len(cats):
        return False
    return not any(frozenset((a, b)) in EXCLUSIONS for i, a in enumerate(names) for b in names[i + 1:])


def _colour(rng: np.random.Generator, palette: str) -> tuple:
    options = PALETTES[palette]
    base = np.asarray(options[rng.integers(len(options))])
    return tuple(float(c) for c in np.clip(base * rng.uniform(0.85, 1.15, 3), 0.0, 1.0))


def sample_accessories(rng: np.random.Generator, cfg: AccessoryConfig) -> AccessoryParams:
    """Draw the worn accessories. Every category draws the same numbers whatever happens, so one
    category's outcome does not shift another's; a draw that would clash with an earlier
    category is replaced by the same draw among the compatible names, or dropped."""
    items = []
    for cat in CATEGORIES:
        present = rng.random() < float(cfg.probabilities.get(cat, 0.0))
        pick = rng.random()
        colour_key, secondary_key = rng.integers(1 << 30), rng.integers(1 << 30)
        pattern_draw, pattern_key, variant = rng.random(), rng.integers(len(PATTERNS) - 1), rng.random()
        if not present:
            continue
        chosen = [item.name for item in items]
        names = [n for n, s in ACCESSORIES.items() if s.category == cat
                 and float(cfg.weights.get(n, 1.0)) > 0.0 and compatible(chosen + [n])]
        if not names:
            continue
        w = np.array([float(cfg.weights.get(n, 1.0)) for n in names])
        name = names[int(np.searchsorted(np.cumsum(w) / w.sum(), pick, side="right").clip(0, len(names) - 1))]
        spec = ACCESSORIES[name]
        colour = _colour(np.random.default_rng(colour_key), spec.palette)
        second_palette = "fabric" if spec.palette in ("felt", "straw", "safety", "bright") else spec.palette
        secondary = _colour(np.random.default_rng(secondary_key), second_palette)
        pattern = "plain"
        if spec.palette in _PATTERNED and pattern_draw < cfg.pattern_prob:
            pattern = PATTERNS[1 + int(pattern_key)]
        items.append(AccessoryChoice(name, colour, secondary, pattern, float(variant)))
    return AccessoryParams(tuple(items))


NONE = AccessoryParams()


def choice_for(name: str, rng: np.random.Generator, pattern_prob: float = 0.3) -> AccessoryChoice:
    """``name`` with colours, pattern and variant drawn from ``rng`` (for a chosen accessory)."""
    if name not in ACCESSORIES:
        raise ValueError(f"unknown accessory {name!r}; known: {', '.join(ACCESSORIES)}")
    spec = ACCESSORIES[name]
    colour = _colour(rng, spec.palette)
    secondary = _colour(rng, "fabric" if spec.palette in ("felt", "straw", "safety", "bright")
                        else spec.palette)
    pattern = "plain"
    if spec.palette in _PATTERNED and rng.random() < pattern_prob:
        pattern = PATTERNS[1 + int(rng.integers(len(PATTERNS) - 1))]
    return AccessoryChoice(name, colour, secondary, pattern, float(rng.random()))


def wear(params: AccessoryParams, item: AccessoryChoice) -> AccessoryParams:
    """``params`` with ``item`` in its category's place; what cannot go with it comes off."""
    cat = ACCESSORIES[item.name].category
    kept = [i for i in params.items if ACCESSORIES[i.name].category != cat
            and compatible([i.name, item.name])]
    kept.append(item)
    kept.sort(key=lambda i: CATEGORIES.index(ACCESSORIES[i.name].category))
    return AccessoryParams(tuple(kept))


def take_off(params: AccessoryParams, category: str) -> AccessoryParams:
    """``params`` without its accessory of ``category``."""
    return AccessoryParams(tuple(i for i in params.items if ACCESSORIES[i.name].category != category))


def by_category() -> dict[str, list[str]]:
    """Category -> accessory names, in CATEGORIES order."""
    return {cat: [n for n, s in ACCESSORIES.items() if s.category == cat] for cat in CATEGORIES}


# ----------------------------------------------------------------------------------------------
# Tables


class AccessoryTables:
    """Vertex sets of the anny mesh that fitting needs, decided once on the neutral mesh.

    obstacle_indices: vertices accessories must clear (head, neck, shoulders; no hands);
    obstacle_faces: faces among them (their centroids densify the obstacles);
    ear_r/ear_l, eye_r/eye_l: vertex ids; neck_top/neck_bottom: rings whose centroids give the
    neck axis; landmark_indices: (68,) iBUG-68 vertex ids.
    """

    def __init__(self, faces, face_classes, part_of_face, landmark_indices, neutral_head) -> None:
        faces = np.asarray(faces)
        v = np.asarray(neutral_head, dtype=np.float64)
        parts = np.asarray(part_of_face).astype(str)
        self.landmark_indices = np.asarray(landmark_indices, dtype=np.int64)
        near = np.linalg.norm(v - np.array([0.0, -0.03, -0.06]), axis=1) < 0.26
        hands = np.isin(parts, ["hand.L", "hand.R"])
        keep_face = ~hands & near[faces].all(axis=1)
        self.obstacle_faces = faces[keep_face]
        self.obstacle_indices = np.unique(self.obstacle_faces)
        for side, cls in (("r", SegClass.RIGHT_EAR), ("l", SegClass.LEFT_EAR)):
            setattr(self, f"ear_{side}", np.unique(faces[face_classes == cls]))
        self.eye_r = np.unique(faces[parts == "eye_front.R"])
        self.eye_l = np.unique(faces[parts == "eye_front.L"])
        neck_like = np.isin(face_classes, [SegClass.NECK, SegClass.SKIN, SegClass.CLOTHING])
        neck_v = np.unique(faces[neck_like])
        nv = v[neck_v]
        central = (np.abs(nv[:, 0]) < 0.075) & (nv[:, 2] < -0.03) & (nv[:, 2] > -0.16)
        self.neck_top = neck_v[central & (np.abs(nv[:, 1] + 0.12) < 0.006)]
        self.neck_bottom = neck_v[central & (np.abs(nv[:, 1] + 0.145) < 0.006)]

    @classmethod
    def from_human(cls, human) -> AccessoryTables:
        from replicantface import labels

        head = labels.transform_points(np.linalg.inv(human.neutral.head_to_world), human.neutral.vertices)
        return cls(human.faces, human.face_classes, human.part_of_face, human.landmark_indices, head)


# ----------------------------------------------------------------------------------------------
# Mesh assembly


@dataclass
class AccessoryMesh:
    """One accessory, head frame: vertices (N, 3) float metres; faces (M, 3) int; face_material
    (M,) index into materials; materials: (kind, seg_class, rgb) per slot."""

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    face_material: np.ndarray
    materials: tuple
    pattern: str = "plain"
    secondary_rgb: tuple = (0.5, 0.5, 0.5)


class _Builder:
    def __init__(self) -> None:
        self.verts, self.faces, self.mats, self.slots = [], [], [], []
        self.count = 0

    def slot(self, kind: str, seg_class: int, rgb) -> int:
        key = (kind, int(seg_class), tuple(float(c) for c in rgb))
        if key not in self.slots:
            self.slots.append(key)
        return self.slots.index(key)

    def add(self, verts: np.ndarray, faces: np.ndarray, slot) -> None:
        faces = np.asarray(faces, dtype=np.int64)
        self.verts.append(np.asarray(verts, dtype=np.float64).reshape(-1, 3))
        self.faces.append(faces + self.count)
        self.mats.append(np.broadcast_to(np.asarray(slot, dtype=np.int32), (len(faces),)))
        self.count += len(self.verts[-1])

    def mesh(self, name: str, choice: AccessoryChoice) -> AccessoryMesh:
        return AccessoryMesh(name, np.vstack(self.verts).astype(np.float32), np.vstack(self.faces).astype(np.int32),
                             np.concatenate(self.mats).astype(np.int32), tuple(self.slots), choice.pattern,
                             choice.secondary_rgb)

    def all_vertices(self) -> np.ndarray:
        return np.vstack(self.verts) if self.verts else np.zeros((0, 3))


def _grid_faces(nu: int, nv: int, wrap_u: bool) -> np.ndarray:
    """Two triangles per cell of an (nu, nv) vertex grid, row-major (u slow)."""
    us = np.arange(nu if wrap_u else nu - 1)
    vs = np.arange(nv - 1)
    u, v = np.meshgrid(us, vs, indexing="ij")
    u, v = u.ravel(), v.ravel()
    u1 = (u + 1) % nu
    a, b, c, d = u * nv + v, u1 * nv + v, u1 * nv + v + 1, u * nv + v + 1
    return np.concatenate([np.c_[a, b, c], np.c_[a, c, d]])


def _grid_solid(inner: np.ndarray, outer: np.ndarray, wrap_u: bool) -> tuple[np.ndarray, np.ndarray]:
    """Closed solid between two (nu, nv, 3) grids: both surfaces plus the side walls."""
    nu, nv = inner.shape[:2]
    n = nu * nv
    verts = np.vstack([inner.reshape(-1, 3), outer.reshape(-1, 3)])
    f = _grid_faces(nu, nv, wrap_u)
    return verts, np.vstack([f[:, ::-1], f + n, _grid_border(nu, nv, wrap_u)])


def _grid_border(nu: int, nv: int, wrap_u: bool) -> np.ndarray:
    """The side walls of _grid_solid: along the grid's border, from inner (vertex i) to outer
    (vertex nu * nv + i)."""
    n = nu * nv
    idx = np.arange(n).reshape(nu, nv)
    edges = [idx[:, 0], idx[:, -1][::-1]]
    if not wrap_u:
        edges = [np.r_[idx[:, 0], idx[-1, 1:], idx[::-1, -1][1:], idx[0, ::-1][1:-1]]]
    faces = []
    for loop in edges:
        closed = wrap_u or len(edges) == 1
        a = loop
        b = np.roll(loop, -1)
        if not closed:
            a, b = a[:-1], b[:-1]
        faces.append(np.c_[a, b, b + n])
        faces.append(np.c_[a, b + n, a + n])
    return np.vstack(faces)


def _grid_solid_with_holes(inner: np.ndarray, outer: np.ndarray, value: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """_grid_solid (u wrapped) with holes cut where ``value`` (nu, nv) > 0, along its zero
    level interpolated linearly on each triangle, so a hole's edge is smooth whatever the grid.
    Returns (verts, faces of the solid, faces of the walls lining the holes); the holes must keep
    off the grid's first and last rows."""
    nu, nv = inner.shape[:2]
    n = nu * nv
    value = np.asarray(value, dtype=np.float64).ravel()
    if (value.reshape(nu, nv)[:, [0, -1]] > 0).any():
        raise ValueError("holes must keep off the first and the last row of the grid")
    pts_in, pts_out = list(inner.reshape(-1, 3)), list(outer.reshape(-1, 3))
    made: dict = {}

    def cross(i, j):  # the zero of the value on edge (i, j), one end inside and one outside
        key = (min(i, j), max(i, j))
        if key not in made:
            t = value[i] / (value[i] - value[j])
            pts_in.append(pts_in[i] + t * (pts_in[j] - pts_in[i]))
            pts_out.append(pts_out[i] + t * (pts_out[j] - pts_out[i]))
            made[key] = len(pts_in) - 1
        return made[key]

    tris = _grid_faces(nu, nv, True)
    inside = value > 0
    count = inside[tris].sum(1)
    kept, segments = [tris[count == 0]], []
    for tri in tris[(count == 1) | (count == 2)]:
        lone = inside[tri] if inside[tri].sum() == 1 else ~inside[tri]
        k = int(np.argmax(lone))
        p, q, r = tri[k], tri[(k + 1) % 3], tri[(k + 2) % 3]  # p alone on its side; order kept
        pq, rp = cross(p, q), cross(r, p)
        if inside[p]:  # cut the corner at p: the quad q, r, rp, pq is kept
            kept.append(np.array([[pq, q, r], [pq, r, rp]]))
            segments.append((rp, pq))
        else:  # only the corner at p is kept
            kept.append(np.array([[p, pq, rp]]))
            segments.append((pq, rp))
    m = len(pts_in)
    verts = np.vstack([np.array(pts_in), np.array(pts_out)])
    f = np.vstack(kept)
    border = _grid_border(nu, nv, True)
    border = np.where(border >= n, border - n + m, border)
    solid = np.vstack([f[:, ::-1], f + m, border])
    walls = np.zeros((0, 3), dtype=np.int64)
    if segments:
        # A segment runs the way its kept triangle's outer face runs; the wall runs back along
        # it outside and forward inside, as the solid's faces do (every edge once each way).
        a, b = np.array(segments).T
        walls = np.vstack([np.c_[a, b, b + m], np.c_[a, b + m, a + m]])
    used, remap = np.unique(np.r_[solid.ravel(), walls.ravel()], return_inverse=True)
    return verts[used], remap[:solid.size].reshape(-1, 3), remap[solid.size:].reshape(-1, 3)


def _tube(path: np.ndarray, radius, sides: int = 8, ref=(0.0, 1.0, 0.0), closed: bool = False,
          aspect: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A closed tube along (K, 3) ``path``; radius scalar or (K,); ``aspect`` (scalar or (K,))
    stretches the section along the reference direction (flat bands); closed=True joins the ends
    (a ring)."""
    path = np.asarray(path, dtype=np.float64)
    k = len(path)
    r = np.broadcast_to(np.asarray(radius, dtype=np.float64), (k,))
    if closed:
        t = np.roll(path, -1, 0) - np.roll(path, 1, 0)
    else:
        t = np.gradient(path, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True) + 1e-12
    ref = np.broadcast_to(np.asarray(ref, dtype=np.float64), (k, 3))
    n = ref - (ref * t).sum(1, keepdims=True) * t
    bad = np.linalg.norm(n, axis=1) < 1e-6
    if bad.any():
        alt = np.cross(t[bad], [1.0, 0.0, 0.0])
        n[bad] = alt
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    b = np.cross(t, n)
    ang = np.linspace(0, 2 * np.pi, sides, endpoint=False) + np.pi / sides
    aspect = np.broadcast_to(np.asarray(aspect, dtype=np.float64), (k,))[:, None, None]
    ring = (np.cos(ang)[None, :, None] * n[:, None] * aspect + np.sin(ang)[None, :, None] * b[:, None])
    verts = path[:, None] + r[:, None, None] * ring
    # Rings along the path (joined end to start when closed), each section a closed loop.
    ks = np.arange(k if closed else k - 1)
    s = np.arange(sides)
    kk, ss = np.meshgrid(ks, s, indexing="ij")
    kk, ss = kk.ravel(), ss.ravel()
    k1, s1 = (kk + 1) % k, (ss + 1) % sides
    a, bb, c, d = kk * sides + ss, k1 * sides + ss, k1 * sides + s1, kk * sides + s1
    faces = np.concatenate([np.c_[a, bb, c], np.c_[a, c, d]])
    verts = verts.reshape(-1, 3)
    if not closed:
        caps = np.array([path[0], path[-1]])
        i0, i1 = len(verts), len(verts) + 1
        verts = np.vstack([verts, caps])
        s_next = (s + 1) % sides
        last = (k - 1) * sides
        faces = np.vstack([faces, np.c_[np.full(sides, i0), s_next, s],
                           np.c_[np.full(sides, i1), last + s, last + s_next]])
    return verts, faces


def _ellipsoid(centre, radii, axes=None, nu: int = 14, nv: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A UV ellipsoid; axes rows are its local x, y, z in the head frame (default: identity)."""
    axes = np.eye(3) if axes is None else axes
    th = np.linspace(0, np.pi, nv + 1)[1:-1]
    ph = np.linspace(0, 2 * np.pi, nu, endpoint=False)
    tt, pp = np.meshgrid(th, ph, indexing="ij")
    local = np.stack([np.sin(tt) * np.cos(pp), np.sin(tt) * np.sin(pp), np.cos(tt)], -1).reshape(-1, 3)
    local = np.vstack([local, [[0, 0, 1], [0, 0, -1]]]) * np.asarray(radii)
    verts = np.asarray(centre) + local @ np.asarray(axes)
    rows = nv - 1
    faces = []
    for i in range(rows - 1):
        for j in range(nu):
            a, b = i * nu + j, i * nu + (j + 1) % nu
            c, d = a + nu, b + nu
            faces += [[a, b, d], [a, d, c]]
    top, bot = rows * nu, rows * nu + 1
    for j in range(nu):
        faces.append([top, (j + 1) % nu, j])
        last = (rows - 1) * nu
        faces.append([bot, last + j, last + (j + 1) % nu])
    return verts, np.asarray(faces)


def _slab(outline: np.ndarray, origin, e1, e2, thickness: float, bend=None) -> tuple[np.ndarray, np.ndarray]:
    """A thin closed plate from a star-shaped 2D outline (K, 2) in the plane (origin, e1, e2);
    ``bend(x, y) -> offset`` along the plane normal curves it (wrap lenses)."""
    origin, e1, e2 = (np.asarray(a, dtype=np.float64) for a in (origin, e1, e2))
    e3 = np.cross(e1, e2)
    k = len(outline)
    pts2 = np.vstack([outline, outline.mean(0)])
    off = np.zeros(len(pts2)) if bend is None else bend(pts2[:, 0], pts2[:, 1])
    base = origin + pts2[:, :1] * e1 + pts2[:, 1:] * e2 + off[:, None] * e3
    verts = np.vstack([base + 0.5 * thickness * e3, base - 0.5 * thickness * e3])
    n = k + 1
    i = np.arange(k)
    j = (i + 1) % k
    faces = [np.c_[np.full(k, k), i, j], np.c_[np.full(k, k) + n, j + n, i + n],
             np.c_[i, i + n, j + n], np.c_[i, j + n, j]]
    return verts, np.vstack(faces)


def _catmull(points: np.ndarray, n: int) -> np.ndarray:
    """(n, 3) samples of a Catmull-Rom spline through (K, 3) points."""
    p = np.asarray(points, dtype=np.float64)
    ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    seg = len(p) - 1
    t = np.linspace(0, seg, n)
    i = np.minimum(t.astype(int), seg - 1)
    u = (t - i)[:, None]
    p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
    return 0.5 * ((2 * p1) + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u ** 2
                  + (-p0 + 3 * p1 - 3 * p2 + p3) * u ** 3)


def _push_out(points: np.ndarray, directions: np.ndarray, obstacles: np.ndarray, clearance,
              tree=None, reach: float = 0.05) -> np.ndarray:
    """Shift (K,) that moves each point along its unit direction until every obstacle within
    ``reach`` ahead of it is at least ``clearance`` (scalar or per point) away."""
    from scipy.spatial import cKDTree

    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    d = np.broadcast_to(np.asarray(directions, dtype=np.float64), points.shape)
    cl = np.broadcast_to(np.asarray(clearance, dtype=np.float64), (len(points),))
    shifts = np.zeros(len(points))
    if len(obstacles) == 0:
        return shifts
    tree = cKDTree(obstacles) if tree is None else tree
    lists = tree.query_ball_point(points + 0.5 * reach * d, 0.5 * reach + cl)
    for k, idx in enumerate(lists):
        if not idx:
            continue
        w = obstacles[idx] - points[k]
        along = w @ d[k]
        lat2 = np.einsum("ij,ij->i", w, w) - along ** 2
        hit = lat2 < cl[k] ** 2
        if hit.any():
            shifts[k] = max(0.0, float((along[hit] + np.sqrt(cl[k] ** 2 - lat2[hit])).max()))
    return shifts


def _clear_path(path: np.ndarray, directions, obstacles: np.ndarray, clearance, tree=None) -> np.ndarray:
    """The path pushed out of the obstacles, with the shifts spread to neighbours (no kinks)."""
    d = np.broadcast_to(np.asarray(directions, dtype=np.float64), path.shape)
    shift = _push_out(path, d, obstacles, clearance, tree)
    shift = ndimage.maximum_filter1d(shift, 3, mode="nearest")
    shift = np.maximum(ndimage.gaussian_filter1d(shift, 1.5, mode="nearest"), shift * 0.999)
    out = path + shift[:, None] * d
    extra = _push_out(out, d, obstacles, clearance, tree)  # a second pass for what the spread moved
    return out + extra[:, None] * d


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-12)


# ----------------------------------------------------------------------------------------------
# Radial height maps


class _RadialMap:
    """Largest obstacle radius per direction around ``centre``.

    Directions use a latitude-longitude grid whose poles lie on the frame's local x (the ears for
    the head frame), so the crown and the face are far from the poles. rot: (3, 3) rows are the
    local axes in the head frame.
    """

    def __init__(self, centre, points: np.ndarray, step_deg: float = 3.0, rot=None,
                 max_radius: float = 0.2) -> None:
        self.centre = np.asarray(centre, dtype=np.float64)
        self.rot = np.eye(3) if rot is None else np.asarray(rot, dtype=np.float64)
        self.step = np.radians(step_deg)
        self.na = int(round(2 * np.pi / self.step))
        self.nb = int(round(np.pi / self.step)) + 1
        a, b, r = self._coords(points)
        keep = r < max_radius
        a, b, r = a[keep], b[keep], r[keep]
        ia = np.floor((a + np.pi) / self.step).astype(int) % self.na
        ib = np.clip(np.floor((b + np.pi / 2) / self.step).astype(int), 0, self.nb - 2)
        cells = np.zeros((self.na, self.nb - 1))
        np.maximum.at(cells, (ia, ib), r)
        # A node takes the largest of its four cells.
        padded = np.concatenate([cells[-1:], cells], 0)
        nodes = np.zeros((self.na, self.nb))
        nodes[:, :-1] = np.maximum(padded[1:], padded[:-1])
        nodes[:, 1:] = np.maximum(nodes[:, 1:], np.maximum(padded[1:], padded[:-1]))
        self.raw = nodes

    def _coords(self, points):
        q = (np.asarray(points, dtype=np.float64) - self.centre) @ self.rot.T
        r = np.linalg.norm(q, axis=1) + 1e-12
        return np.arctan2(q[:, 1], q[:, 2]), np.arcsin(np.clip(q[:, 0] / r, -1, 1)), r

    def field(self, slope: float, reach_deg: float, sigma_deg: float, ref_radius: float = 0.1) -> _Field:
        """The draped radius: cone dilation (fabric falls ``slope`` m per m away from a peak,
        within ``reach_deg``), Gaussian smoothing, never below the raw maxima of the neighbours."""
        k = max(1, int(round(np.radians(reach_deg) / self.step)))
        drop = slope * self.step * ref_radius
        cone = _cone_dilate(self.raw, drop, drop, k)
        s = max(np.radians(sigma_deg) / self.step, 1e-3)
        smooth = ndimage.gaussian_filter(cone, s, mode=("wrap", "nearest"))
        floor = ndimage.maximum_filter(self.raw, size=5, mode=("wrap", "nearest"))
        return _Field(self, np.maximum(smooth, floor))


def _cone_dilate(x: np.ndarray, drop_a: float, drop_b: float, iters: int) -> np.ndarray:
    """Grey dilation by a cone (chamfer metric): value falls drop_a / drop_b per cell along the
    wrapped first axis / the clamped second axis, out to ``iters`` cells."""
    diag = float(np.hypot(drop_a, drop_b))
    for _ in range(iters):
        p = np.pad(x, ((1, 1), (0, 0)), mode="wrap")
        p = np.pad(p, ((0, 0), (1, 1)), mode="edge")
        best = x.copy()
        for da in (-1, 0, 1):
            for db in (-1, 0, 1):
                if da == 0 and db == 0:
                    continue
                drop = diag if da and db else (drop_a if da else drop_b)
                shifted = p[1 + da:p.shape[0] - 1 + da, 1 + db:p.shape[1] - 1 + db]
                np.maximum(best, shifted - drop, out=best)
        x = best
    return x


class _Field:
    def __init__(self, rmap: _RadialMap, values: np.ndarray) -> None:
        self.map = rmap
        self.values = values

    def radius(self, dirs: np.ndarray) -> np.ndarray:
        """Bilinear radius at (..., 3) unit directions in the head frame."""
        m = self.map
        q = np.asarray(dirs) @ m.rot.T
        a = np.arctan2(q[..., 1], q[..., 2])
        b = np.arcsin(np.clip(q[..., 0], -1, 1))
        fa = (a + np.pi) / m.step
        fb = np.clip((b + np.pi / 2) / m.step, 0, m.nb - 1 - 1e-9)
        i0 = np.floor(fa).astype(int) % m.na
        j0 = np.floor(fb).astype(int)
        ta, tb = fa - np.floor(fa), fb - j0
        i1, j1 = (i0 + 1) % m.na, np.minimum(j0 + 1, m.nb - 1)
        v = self.values
        return ((1 - ta) * (1 - tb) * v[i0, j0] + ta * (1 - tb) * v[i1, j0]
                + (1 - ta) * tb * v[i0, j1] + ta * tb * v[i1, j1])

    def points(self, dirs: np.ndarray, offset) -> np.ndarray:
        return self.map.centre + (self.radius(dirs) + offset)[..., None] * dirs


class _CylMap:
    """Largest obstacle distance from an axis, per (angle about the axis, height along it)."""

    def __init__(self, origin, axis, forward, points, h_range, step_deg=4.0, step_h=0.004,
                 max_radius=0.12) -> None:
        self.origin = np.asarray(origin, dtype=np.float64)
        self.u = _unit(axis)
        self.e1 = _unit(np.asarray(forward) - np.dot(forward, self.u) * self.u)
        self.e2 = np.cross(self.u, self.e1)
        self.step, self.step_h = np.radians(step_deg), step_h
        self.h0 = h_range[0]
        self.na = int(round(2 * np.pi / self.step))
        self.nh = int(np.ceil((h_range[1] - h_range[0]) / step_h)) + 1
        q = np.asarray(points) - self.origin
        h = q @ self.u
        x, y = q @ self.e1, q @ self.e2
        r = np.hypot(x, y)
        keep = (r < max_radius) & (h > h_range[0] - 2 * step_h) & (h < h_range[1] + 2 * step_h)
        a = np.arctan2(y[keep], x[keep])
        ia = np.floor((a + np.pi) / self.step).astype(int) % self.na
        ih = np.clip(np.round((h[keep] - self.h0) / step_h).astype(int), 0, self.nh - 1)
        raw = np.zeros((self.na, self.nh))
        np.maximum.at(raw, (ia, ih), r[keep])
        raw = np.maximum(raw, np.roll(raw, 1, 0))
        self.raw = ndimage.maximum_filter(raw, size=(3, 3), mode=("wrap", "nearest"))

    def field(self, slope: float, reach: int, sigma: float) -> np.ndarray:
        cone = _cone_dilate(self.raw, slope * self.step * 0.06, slope * self.step_h, reach)
        smooth = ndimage.gaussian_filter(cone, sigma, mode=("wrap", "nearest"))
        return np.maximum(smooth, self.raw)

    def point(self, a, h, r) -> np.ndarray:
        a, h, r = np.broadcast_arrays(a, h, r)
        return (self.origin + h[..., None] * self.u
                + r[..., None] * (np.cos(a)[..., None] * self.e1 + np.sin(a)[..., None] * self.e2))


# ----------------------------------------------------------------------------------------------
# Per-sample fitting context


class _Head:
    """What the builders read from one posed mesh (head frame)."""

    def __init__(self, verts: np.ndarray, tables: AccessoryTables, bare_crown: bool = False) -> None:
        v = np.asarray(verts, dtype=np.float64)
        self.v = v
        self.bare_crown = bool(bare_crown)
        self.lm = v[tables.landmark_indices]
        tri = v[tables.obstacle_faces]
        self.skin = np.vstack([v[tables.obstacle_indices], tri.mean(1)])
        self.obstacles = self.skin
        self.ear = {"r": v[tables.ear_r], "l": v[tables.ear_l]}
        self.eye = {"r": v[tables.eye_r], "l": v[tables.eye_l]}
        self.neck_top = v[tables.neck_top].mean(0)
        self.neck_bottom = v[tables.neck_bottom].mean(0)
        ears = np.vstack([self.ear["r"].mean(0), self.ear["l"].mean(0)])
        self.ear_mid = ears.mean(0)
        # The skull centre: between the ears, a little up and forward.
        self.centre = np.array([0.5 * (ears[0, 0] + ears[1, 0]), self.ear_mid[1] + 0.03, self.ear_mid[2] + 0.01])
        self.top_y = float(self.skin[np.linalg.norm(self.skin[:, [0, 2]] - self.centre[[0, 2]], axis=1) < 0.05, 1].max())
        self._maps = {}

    @property
    def brow_y(self) -> float:
        return float(self.lm[17:27, 1].max())

    @property
    def ear_top_y(self) -> float:
        return float(max(self.ear["r"][:, 1].max(), self.ear["l"][:, 1].max()))

    def head_map(self) -> _RadialMap:
        if "head" not in self._maps:
            self._maps["head"] = _RadialMap(self.centre, self.obstacles, step_deg=3.0, max_radius=0.19)
        return self._maps["head"]

    def add_obstacles(self, points: np.ndarray) -> None:
        self.obstacles = np.vstack([self.obstacles, points])
        self._maps.clear()
        self._tree = None

    @property
    def tree(self):
        from scipy.spatial import cKDTree

        if getattr(self, "_tree", None) is None:
            self._tree = cKDTree(self.obstacles)
        return self._tree

    def push_out(self, points, directions, clearance) -> np.ndarray:
        return _push_out(points, directions, self.obstacles, clearance, self.tree)

    def clear_path(self, path, directions, clearance) -> np.ndarray:
        return _clear_path(path, directions, self.obstacles, clearance, self.tree)


def _hat_frame(head: _Head, front_y: float, back_y: float):
    """Rim plane through (0, front_y, front z) and (0, back_y, back z); returns (n, offset, e1, e2)."""
    zf, zb = float(head.lm[27, 2]), float(head.skin[:, 2].min())
    dy, dz = front_y - back_y, zf - zb
    n = _unit([0.0, dz, -dy])
    offset = float(n @ np.array([0.0, front_y, zf]))
    e1 = _unit(np.array([0.0, 0.0, 1.0]) - n[2] * n)
    e2 = np.cross(n, e1)
    return n, offset, e1, e2


def _dirs(n, e1, e2, omega, psi) -> np.ndarray:
    omega, psi = np.broadcast_arrays(omega, psi)
    return (np.cos(psi)[..., None] * n + np.sin(psi)[..., None]
            * (np.cos(omega)[..., None] * e1 + np.sin(omega)[..., None] * e2))


def _rim_psi(fld: _Field, centre, n, e1, e2, offset: float, omega: np.ndarray, gap: float,
             psi_max: float = np.radians(165), shape=None) -> np.ndarray:
    """Per omega, the polar angle where the shell (radius + gap, reshaped) crosses the rim plane."""
    psi = np.linspace(0.0, psi_max, 120)
    d = _dirs(n, e1, e2, omega[:, None], psi[None, :])
    r = fld.radius(d) + gap
    if shape is not None:
        r = np.maximum(r, shape(d, r))
    p = fld.map.centre + r[..., None] * d
    h = p @ n - offset
    below = h < 0
    first = np.where(below.any(1), below.argmax(1), len(psi) - 1)
    first = np.maximum(first, 1)
    rows = np.arange(len(omega))
    h0, h1 = h[rows, first - 1], h[rows, first]
    t = np.clip(h0 / np.where(np.abs(h0 - h1) < 1e-12, 1e-12, h0 - h1), 0, 1)
    return psi[first - 1] + t * (psi[first] - psi[first - 1])


def _dome(head: _Head, fld: _Field, frame, gap, thickness, psi_rim: np.ndarray, omega: np.ndarray,
          nv: int = 22, shape=None, psi_start=None):
    """(inner, outer) (nu, nv, 3) grids of a shell from the pole to ``psi_rim`` per omega."""
    n, _, e1, e2 = frame
    t = np.linspace(0.0, 1.0, nv)
    start = np.zeros_like(psi_rim) if psi_start is None else psi_start
    psi = start[:, None] + (psi_rim - start)[:, None] * t[None, :]
    d = _dirs(n, e1, e2, omega[:, None], psi)
    r = fld.radius(d) + gap
    if shape is not None:
        r = np.maximum(r, shape(d, r))
    inner = head.centre + r[..., None] * d
    outer = head.centre + (r + thickness)[..., None] * d
    return inner, outer, d, r


# ----------------------------------------------------------------------------------------------
# Builders. Each takes (head, choice, spec, builder) and adds geometry.


def _lens_outline(shape: str, w: float, h: float, n: int = 40) -> np.ndarray:
    """(n, 2) lens outline, x toward the temple, y up, centred on the pupil."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)

    def superellipse(p, a, b):
        return np.c_[a * np.sign(c) * np.abs(c) ** (2 / p), b * np.sign(s) * np.abs(s) ** (2 / p)]

    if shape in ("round",):
        return superellipse(2.0, w / 2, h / 2)
    if shape in ("rect", "rimless"):
        return superellipse(4.5, w / 2, h / 2)
    if shape == "wayfarer":
        pts = superellipse(4.0, w / 2, h / 2)
        pts[:, 0] *= 1.0 + 0.12 * (pts[:, 1] / (h / 2))  # wider at the top
        return pts
    if shape == "browline":
        return superellipse(3.5, w / 2, h / 2)
    if shape == "aviator":
        pts = superellipse(2.4, w / 2, h / 2)
        low = pts[:, 1] < 0
        pts[low, 1] *= 1.0 + 0.35 * np.clip(-pts[low, 0] / (w / 2), 0, 1)  # teardrop toward the nose
        pts[:, 1] += 0.1 * h
        return pts
    if shape == "cat_eye":
        pts = superellipse(3.0, w / 2, h / 2)
        up = pts[:, 1] > 0
        pts[up, 1] += 0.35 * h * np.clip(pts[up, 0] / (w / 2), 0, 1) ** 3
        return pts
    if shape == "half_moon":
        pts = superellipse(2.5, w / 2, h / 2)
        pts[:, 1] = np.minimum(pts[:, 1], 0.0)  # flat top at the centre line
        return pts
    raise ValueError(f"unknown lens shape {shape!r}")


# A clear lens's reflectance head on (the colour of its "lens_clear" slot; the scene layer
# raises it toward 1 at a glance, after Schlick): bare glass or CR-39 (n = 1.5) reflects 4 %
# at each face; an anti-reflection coating, on most spectacle lenses, leaves under 1 % with
# the green cast of its residual reflection. COATED_LENS_SHARE of clear glasses are coated.
UNCOATED_LENS_F0 = (0.04, 0.04, 0.04)
COATED_LENS_F0 = (0.004, 0.009, 0.005)
COATED_LENS_SHARE = 0.7


def clear_lens_reflectance(variant: float) -> tuple:
    """A pair of clear glasses' head-on reflectance (RGB) from its accessory ``variant`` (0-1):
    coated for COATED_LENS_SHARE of the variants, spread over the range (the variant also
    sizes the frame)."""
    return COATED_LENS_F0 if (variant * 10.0) % 1.0 < COATED_LENS_SHARE else UNCOATED_LENS_F0


def _build_glasses(head: _Head, ch: AccessoryChoice, spec: AccessorySpec, b: _Builder) -> None:
    o = spec.options
    shape = o["shape"]
    var = ch.variant
    pupils = {s: head.eye[s][np.argmax(head.eye[s][:, 2])] for s in "rl"}
    ipd_half = 0.5 * (pupils["l"][0] - pupils["r"][0])
    w = {"round": 0.044, "aviator": 0.054, "half_moon": 0.048, "wayfarer": 0.052}.get(shape, 0.05)
    w *= 0.95 + 0.1 * var
    h = {"round": 0.042, "aviator": 0.048, "half_moon": 0.032, "cat_eye": 0.034}.get(shape, 0.037)
    h *= 0.92 + 0.16 * (1 - var)
    low = o.get("low", False)
    centre_y = float(0.5 * (pupils["l"][1] + pupils["r"][1])) - (0.017 if low else 0.002)
    rim = float(o["rim"])
    tube_r = max(rim, 0.0009)
    outline = _lens_outline(shape, w, h)
    # Lens centres sit at the pupils, nudged so a wide lens keeps a bridge over the nose.
    cx = max(ipd_half, w / 2 + 0.008)
    tilt = np.radians(8.0)  # pantoscopic tilt: the bottom leans toward the cheeks
    wrap = np.radians(5.0)
    frame_mat = b.slot("metal" if spec.palette == "metal" else "plastic", GLASSES, ch.colour_rgb)
    lens_rgb = clear_lens_reflectance(ch.variant)
    lens_mat = b.slot("lens_dark", GLASSES, (0.02, 0.02, 0.025)) if o.get("dark") else \
        b.slot("lens_clear", GLASSES, lens_rgb)

    def lens_axes(side: float):
        e1 = np.array([np.cos(wrap) * side, 0.0, -np.sin(wrap)])  # toward the temple
        e2 = np.array([0.0, np.cos(tilt), np.sin(tilt)])
        e2 = _unit(e2 - (e2 @ e1) * e1)
        return e1, e2

    def front_points(z: float):
        """Lens outlines (3D) for a frame plane at depth z."""
        out = {}
        for s, side in (("r", -1.0), ("l", 1.0)):
            e1, e2 = lens_axes(side)
            c = np.array([side * cx, centre_y, z])
            out[s] = (c, e1, e2, c + outline[:, :1] * e1 + outline[:, 1:] * e2)
        return out

    # Depth: the nearest depth where lenses (filled discs) and the bridge clear the face.
    z0 = float(max(pupils["r"][2], pupils["l"][2])) + (0.017 if low else 0.011)
    fp = front_points(z0)
    samples = []
    for s in "rl":
        c, e1, e2, ring = fp[s]
        for f in (1.0, 0.66, 0.33):
            samples.append(c + f * (ring - c))
        samples.append(c[None])
    inner_x = cx - w / 2
    bridge_y = centre_y + (0.25 * h if shape != "half_moon" else -0.004)
    bridge = _catmull(np.array([[-inner_x, bridge_y, z0], [0.0, bridge_y + 0.003, z0 + 0.002],
                                [inner_x, bridge_y, z0]]), 15)
    samples.append(bridge)
    pts = np.vstack(samples)
    clear = tube_r + 0.0015 + 0.0015
    dz = head.push_out(pts, np.array([0.0, 0.0, 1.0]), clear).max()
    z = z0 + dz
    fp = front_points(z)
    bridge[:, 2] += dz
    # Lenses.
    for s in "rl":
        c, e1, e2, ring = fp[s]
        verts, faces = _slab(outline * (0.985 if rim > 0 else 1.0), c, e1, e2, 0.0015)
        b.add(verts, faces, lens_mat)
        if rim > 0:
            if shape == "browline":
                top = outline[:, 1] > 0.1 * h
                idx = np.where(top)[0]
                path = c + outline[idx, :1] * e1 + outline[idx, 1:] * e2
                path = path[np.argsort(outline[idx, 0] * (1 if s == "l" else -1))]
                v, f = _tube(path, 0.0026, 8, ref=e2, aspect=1.0)
                b.add(v, f, frame_mat)
                v, f = _tube(ring, 0.0007, 6, ref=e1 * 0 + np.cross(e1, e2), closed=True)
                b.add(v, f, b.slot("metal", GLASSES, (0.7, 0.7, 0.72)))
            else:
                v, f = _tube(ring, rim, 8, ref=np.cross(e1, e2), closed=True,
                             aspect=1.6 if rim > 0.002 else 1.0)
                b.add(v, f, frame_mat)
    # Bridge (and the aviator's brow bar), nose pads.
    v, f = _tube(bridge, tube_r, 6, ref=(0.0, 0.0, 1.0))
    b.add(v, f, frame_mat)
    if o.get("double_bridge"):
        top_y = centre_y + 0.42 * h
        bar = np.array([[-cx, top_y + 0.004, z], [0.0, top_y + 0.006, z + 0.002], [cx, top_y + 0.004, z]])
        v, f = _tube(_catmull(bar, 20), 0.0009, 6, ref=(0.0, 0.0, 1.0))
        b.add(v, f, frame_mat)
    for side in (-1.0, 1.0):
        pad = np.array([side * 0.0085, centre_y - 0.004, z - 0.006])
        pad = pad + head.push_out(pad[None], np.array([side * 0.5, 0.0, 0.87]), 0.0035)[0] * \
            np.array([side * 0.5, 0.0, 0.87])
        v, f = _ellipsoid(pad, (0.0012, 0.0045, 0.0025), nu=8, nv=5)
        b.add(v, f, b.slot("lens_clear", GLASSES, lens_rgb) if rim > 0 else frame_mat)
    # End pieces and temples: from the lens's outer edge back over the ear to behind it.
    for s, side in (("r", -1.0), ("l", 1.0)):
        c, e1, e2, ring = fp[s]
        outer = ring[np.argmax(ring[:, 0] * side)] if shape != "browline" else \
            c + e1 * (w / 2) + e2 * (0.25 * h)
        hinge = outer + np.array([side * 0.004, 0.25 * h if shape == "half_moon" else 0.003, -0.004])
        ear = head.ear[s]
        top = ear[np.argmax(ear[:, 1])]
        over = np.array([top[0] - side * 0.004, top[1] + 0.003, top[2] + 0.004])
        behind = np.array([top[0] - side * 0.006, top[1] - 0.022, top[2] - 0.016])
        ctrl = np.array([hinge, hinge + np.array([side * 0.002, 0.0, -0.02]), over, behind])
        path = _catmull(ctrl, 40)
        dirs = np.tile([side, 0.0, 0.0], (len(path), 1))
        path = head.clear_path(path, dirs, tube_r * 1.3 + 0.0015)
        v, f = _tube(path, np.linspace(tube_r * 1.3, tube_r, len(path)), 6, ref=(0.0, 1.0, 0.0),
                     aspect=1.8)
        b.add(v, f, frame_mat)
        piece = _catmull(np.array([outer, 0.5 * (outer + path[0]) + np.array([0, 0, 0.001]), path[0]]), 8)
        v, f = _tube(piece, tube_r * 1.3, 6, ref=(0.0, 1.0, 0.0), aspect=1.5)
        b.add(v, f, frame_mat)


# The sport lens's outline, millimetres from the lens's centre line (x) against millimetres above
# the pupils (y): an upper edge that runs at the brows and drops at the temples, and a lower edge
# that dips under each eye and rises into a nose cut-out, as on wrap-around sports sunglasses.
_SPORT_X_MM = (0.0, 5.0, 10.0, 16.0, 24.0, 34.0, 46.0, 56.0, 64.0, 70.0)
_SPORT_TOP_MM = (15.0, 16.0, 18.0, 20.0, 21.0, 21.0, 20.0, 18.0, 15.0, 11.0)
_SPORT_BOTTOM_MM = (-2.0, -5.0, -11.0, -17.0, -21.0, -23.0, -21.0, -15.0, -8.0, -1.0)


def _build_sport_glasses(head: _Head, ch: AccessoryChoice, spec: AccessorySpec, b: _Builder) -> None:
    """A single wrap-around shield lens with a nose cut-out, a top bar and temples."""
    pupils = {s: head.eye[s][np.argmax(head.eye[s][:, 2])] for s in "rl"}
    cy = float(0.5 * (pupils["l"][1] + pupils["r"][1]))
    scale = 1.0 + 0.08 * ch.variant
    half_w = 0.001 * _SPORT_X_MM[-1] * scale
    radius = 0.1  # wrap about a vertical axis
    z_base = float(max(pupils["r"][2], pupils["l"][2])) + 0.012
    nu, nv = 48, 10
    u = np.linspace(-1, 1, nu)
    v = np.linspace(0, 1, nv)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    ang = uu * half_w / radius
    xs = np.abs(uu) * _SPORT_X_MM[-1]
    top = 0.001 * scale * np.interp(xs, _SPORT_X_MM, _SPORT_TOP_MM)
    bottom = 0.001 * scale * np.interp(xs, _SPORT_X_MM, _SPORT_BOTTOM_MM)
    yy = cy + bottom + (top - bottom) * vv

    def surface(z):
        return np.stack([radius * np.sin(ang), yy, z - radius * (1 - np.cos(ang))], -1)

    base = surface(z_base)
    clear = 0.003
    dz = head.push_out(base.reshape(-1, 3), np.array([0.0, 0.0, 1.0]), clear).max()
    lens_inner, lens_outer = surface(z_base + dz), surface(z_base + dz + 0.002)
    verts, faces = _grid_solid(lens_inner, lens_outer, wrap_u=False)
    # A dark lens, or (40 %) a mirrored one whose coating reflects in the secondary colour.
    b.add(verts, faces, b.slot("lens_mirror", GLASSES, ch.secondary_rgb) if ch.variant > 0.6
          else b.slot("lens_dark", GLASSES, (0.02, 0.02, 0.03)))
    frame_mat = b.slot("plastic", GLASSES, ch.colour_rgb)
    top = lens_outer[:, -1] + np.array([0, 0.002, -0.001])
    v_, f_ = _tube(top, 0.0022, 8, ref=(0.0, 0.0, 1.0), aspect=1.4)
    b.add(v_, f_, frame_mat)
    for s, side, end in (("r", -1.0, 0), ("l", 1.0, -1)):
        hinge = top[end]
        ear = head.ear[s]
        t = ear[np.argmax(ear[:, 1])]
        ctrl = np.array([hinge, [t[0] - side * 0.003, t[1] + 0.004, t[2] + 0.01],
                         [t[0] - side * 0.006, t[1] - 0.018, t[2] - 0.014]])
        path = head.clear_path(_catmull(ctrl, 30), np.tile([side, 0, 0], (30, 1)), 0.004)
        v_, f_ = _tube(path, 0.0025, 6, ref=(0.0, 1.0, 0.0), aspect=1.8)
        b.add(v_, f_, frame_mat)


def _hat_rim_heights(head: _Head, spec: AccessorySpec, var: float) -> tuple[float, float]:
    """(front, back) rim heights of a hat, head frame y."""
    brow, ear_top = head.brow_y, head.ear_top_y
    table = {
        "beanie": (brow + 0.022 + 0.01 * var, ear_top + 0.004),
        "cap": (brow + 0.028, ear_top + 0.012),
        "brimmed": (brow + 0.03, ear_top + 0.02),
        "helmet": (brow + 0.026, ear_top + 0.012),
        "headband": (brow + 0.012 + 0.012 * var, ear_top + 0.03),
        "hood": (brow + 0.05, -0.1),
    }
    return table[spec.builder]


def _build_shell_hat(head, ch, spec, b, gap, thickness, mat, nu=96, nv=22, slope=0.25, reach=12,
                     sigma=4.0, shape=None, holes=None, wall_mat=None):
    """A crown shell over the head. ``holes``: optional function of the shell's (..., 3) unit
    directions in the hat frame (up along n, forward along e1, sideways along e2), > 0 where the
    shell is cut through (vents); the walls lining the cuts take ``wall_mat``."""
    front_y, back_y = _hat_rim_heights(head, spec, ch.variant)
    frame = _hat_frame(head, front_y, back_y)
    fld = head.head_map().field(slope, reach, sigma)
    omega = np.linspace(-np.pi, np.pi, nu, endpoint=False)
    psi_rim = _rim_psi(fld, head.centre, frame[0], frame[2], frame[3], frame[1], omega, gap, shape=shape)
    inner, outer, d, r = _dome(head, fld, frame, gap, thickness, psi_rim, omega, nv=nv, shape=shape)
    if holes is None:
        b.add(*_grid_solid(inner, outer, wrap_u=True), mat)
    else:
        n, _, e1, e2 = frame
        value = holes(np.stack([d @ n, d @ e1, d @ e2], axis=-1))
        value[:, [0, -1]] = np.minimum(value[:, [0, -1]], -1e-3)
        verts, solid, walls = _grid_solid_with_holes(inner, outer, value)
        b.add(verts, np.vstack([solid, walls]),
              np.r_[np.full(len(solid), mat), np.full(len(walls), mat if wall_mat is None else wall_mat)])
    return frame, fld, omega, psi_rim, inner, outer, d, r


def _build_beanie(head, ch, spec, b) -> None:
    mat = b.slot("knit", HEADWEAR, ch.colour_rgb)
    gap, th = HAIR_ALLOWANCE_M + 0.002, 0.005
    frame, fld, omega, psi_rim, inner, outer, d, r = _build_shell_hat(
        head, ch, spec, b, gap, th, mat, shape=lambda d, r: r + 0.012 * np.clip(d[..., 1], 0, 1) ** 2)
    if spec.options.get("cuff"):
        band = np.radians(16.0)
        _, _, di, ri = _dome(head, fld, frame, gap + th * 0.5, th, psi_rim, omega, nv=6,
                             psi_start=psi_rim - band)
        cuff_in = head.centre + (ri + 0.0)[..., None] * di
        cuff_out = head.centre + (ri + th * 1.6)[..., None] * di
        # The cuff's lower edge stays level with the rim.
        verts, faces = _grid_solid(cuff_in, cuff_out, wrap_u=True)
        b.add(verts, faces, b.slot("knit", HEADWEAR, ch.colour_rgb))
    if spec.options.get("pompom"):
        n = frame[0]
        top = head.centre + (fld.radius(n[None])[0] + gap + th) * n
        rad = 0.026 + 0.01 * ch.variant
        verts, faces = _ellipsoid(top + n * rad * 0.8, (rad, rad, rad * 0.9), nu=16, nv=10)
        b.add(verts, faces, b.slot("knit", HEADWEAR, ch.secondary_rgb))


def _brim(head, ch, frame, fld, omega, psi_rim, gap, th, width, droop_deg, mat, b, nu_keep=None):
    """A brim ring (or partial brim) from the crown's rim outward; width, droop per omega."""
    n, _, e1, e2 = frame
    sel = slice(None) if nu_keep is None else nu_keep
    om, ps = omega[sel], psi_rim[sel]
    d = _dirs(n, e1, e2, om, ps)
    base = fld.points(d, gap + th * 0.5)
    radial = _unit(d - (d @ n)[:, None] * n)
    width = np.broadcast_to(width, om.shape)
    droop = np.radians(np.broadcast_to(droop_deg, om.shape))
    s = np.linspace(0.0, 1.0, 7)
    out_dir = np.cos(droop)[:, None] * radial - np.sin(droop)[:, None] * n
    # The brim curls: droop grows toward the edge.
    curl = 0.15 * (s ** 2)[None, :, None] * width[:, None, None] * (-n)
    mid = base[:, None] + (width[:, None] * s[None])[..., None] * out_dir[:, None] + curl
    lift = head.push_out((mid - 0.5 * th * n).reshape(-1, 3), n, 0.002).reshape(mid.shape[:2]).max(1)
    lift = np.maximum(ndimage.gaussian_filter1d(lift, 2.0, mode="nearest"), lift)
    mid = mid + lift[:, None, None] * n
    top, bottom = mid + 0.5 * th * n, mid - 0.5 * th * n
    verts, faces = _grid_solid(bottom, top, wrap_u=nu_keep is None)
    b.add(verts, faces, mat)


def _build_cap(head, ch, spec, b) -> None:
    mat = b.slot("fabric", HEADWEAR, ch.colour_rgb)
    gap, th = HAIR_ALLOWANCE_M + 0.0015, 0.003
    frame, fld, omega, psi_rim, inner, outer, d, r = _build_shell_hat(
        head, ch, spec, b, gap, th, mat, slope=0.2, sigma=5.0,
        shape=lambda d, r: r + 0.008 * np.clip(d @ np.array([0.0, 1.0, 0.0]), 0, 1))
    front = 0.0 if not spec.options.get("backward") else np.pi
    rel = np.angle(np.exp(1j * (omega - front)))
    keep = np.abs(rel) < np.radians(62)
    width = 0.07 * np.sqrt(np.clip(1 - (rel[keep] / np.radians(64)) ** 2, 0.02, 1))
    droop = 10.0 + 35.0 * (rel[keep] / np.radians(62)) ** 2
    order = np.argsort(rel[keep])
    idx = np.where(keep)[0][order]
    _brim(head, ch, frame, fld, omega[idx], psi_rim[idx], gap, 0.003, width[order], droop[order],
          b.slot("fabric", HEADWEAR, ch.secondary_rgb if ch.variant > 0.5 else ch.colour_rgb), b,
          nu_keep=slice(None))
    n = frame[0]
    top = head.centre + (fld.radius(n[None])[0] + gap + 0.008 + th) * n
    v, f = _ellipsoid(top, (0.006, 0.006, 0.003), axes=np.array([frame[2], frame[3], n]), nu=10, nv=5)
    b.add(v, f, mat)


def _build_brimmed(head, ch, spec, b) -> None:
    o = spec.options
    mat = b.slot("straw" if spec.palette == "straw" else "fabric", HEADWEAR, ch.colour_rgb)
    gap, th = HAIR_ALLOWANCE_M + 0.003, 0.004
    front_y, back_y = _hat_rim_heights(head, spec, ch.variant)
    frame = _hat_frame(head, front_y, back_y)
    n, offset, e1, e2 = frame
    fld = head.head_map().field(0.3, 12, 5.0)
    c = head.centre
    apex = float(fld.radius(n[None])[0]) + gap
    crown_top = apex + o["crown_h"] * (0.85 + 0.3 * ch.variant)
    # A rounded-box crown around the hat axis, never below the draped head + gap.
    side = fld.radius(_dirs(n, e1, e2, np.linspace(-np.pi, np.pi, 36), np.full(36, np.radians(80)))).max() + gap

    def crown(d, r):
        dh = d @ n
        dx, dy = d @ e1, d @ e2
        a, bb = side * 1.08, side * 0.95
        p = 3.5
        horiz = (np.abs(dx / a) ** p + np.abs(dy / bb) ** p)
        rim_ring = np.hypot(dx, dy)
        dent = o["dent"] * np.exp(-(rim_ring / 0.35) ** 2)
        vert = np.where(dh > 0, np.abs(dh / (crown_top - dent)) ** p, 0.0)
        return (horiz + vert) ** (-1.0 / p)

    frame_, fld_, omega, psi_rim, inner, outer, d, r = _build_shell_hat(
        head, ch, spec, b, gap, th, mat, slope=0.3, sigma=5.0, shape=crown)
    width = o["brim"] * (0.9 + 0.2 * ch.variant) * (1.0 + 0.15 * np.cos(omega) ** 2)
    droop = o["droop"] * np.ones_like(omega)
    if spec.name == "fedora":
        droop = droop * np.cos(omega) - 10.0 * np.sin(omega) ** 2  # snap brim: down front, up sides
    # The brim starts from the crown's outer rim.
    rim_pts = outer[:, -1]
    radial = _unit(rim_pts - c - ((rim_pts - c) @ n)[:, None] * n)
    s = np.linspace(0, 1, 8)
    dr = np.radians(droop)
    out_dir = np.cos(dr)[:, None] * radial - np.sin(dr)[:, None] * n
    mid = rim_pts[:, None] - 0.002 * radial[:, None] + (width[:, None] * s)[..., None] * out_dir[:, None]
    mid = mid - (0.12 * width[:, None] * s ** 2)[..., None] * n * (1 if spec.name != "fedora" else 0)
    verts, faces = _grid_solid(mid - 0.002 * n, mid + 0.002 * n, wrap_u=True)
    b.add(verts, faces, mat)
    if o.get("band"):
        band = np.radians(12)
        inner_b, outer_b, _, _ = _dome(head, fld_, frame, gap + th * 0.6, 0.0025, psi_rim, omega, nv=4,
                                       shape=crown, psi_start=psi_rim - band)
        verts, faces = _grid_solid(inner_b, outer_b, wrap_u=True)
        b.add(verts, faces, b.slot("fabric", HEADWEAR, ch.secondary_rgb))


def _build_hood(head, ch, spec, b) -> None:
    mat = b.slot("fabric", HEADWEAR, ch.colour_rgb)
    gap = 0.018 + 0.012 * ch.variant
    th = 0.006
    n = _unit([0.0, 1.0, -0.15])
    e1 = _unit(np.array([0.0, 0.0, 1.0]) - n[2] * n)
    e2 = np.cross(n, e1)
    frame = (n, 0.0, e1, e2)
    fld = _RadialMap(head.centre, head.obstacles, step_deg=3.0, max_radius=0.26).field(0.45, 18, 7.0)
    nu = 96
    omega = np.linspace(-np.pi, np.pi, nu, endpoint=False)
    face = ((1 + np.cos(omega)) / 2) ** 2.5
    psi_rim = np.radians(128.0) + (np.radians(42.0) - np.radians(128.0)) * face
    inner, outer, d, r = _dome(head, fld, frame, gap, th, psi_rim, omega, nv=26)
    verts, faces = _grid_solid(inner, outer, wrap_u=True)
    b.add(verts, faces, mat)
    # A thick hem around the opening.
    rim = 0.5 * (inner[:, -1] + outer[:, -1])
    v, f = _tube(np.vstack([rim, rim[:1]]), 0.006, 8, ref=d[:, -1].mean(0))
    b.add(v, f, mat)


# A bike helmet's vents: slots running front to back, in a front and a back row with a bridge
# across the crown between them. In the helmet frame's unit directions: the slots' sideways
# centres and half widths, and each row's (start, end) along the forward axis, which the outer
# slots take 20 % shorter.
_BIKE_VENT_SIDES = (-0.44, -0.22, 0.0, 0.22, 0.44)
_BIKE_VENT_HALF_WIDTHS = (0.05, 0.05, 0.04, 0.05, 0.05)
_BIKE_VENT_ROWS = ((0.1, 0.8), (-0.8, -0.14))


def _bike_vents(c: np.ndarray) -> np.ndarray:
    """Signed closeness to the bike helmet's vents, from (..., 3) unit directions as (up,
    forward, sideways) in the helmet frame: > 0 inside a slot, < 0 outside, 0 on its edge."""
    fwd, side = c[..., 1], c[..., 2]
    slots = []
    for x, half in zip(_BIKE_VENT_SIDES, _BIKE_VENT_HALF_WIDTHS):
        shorter = 1.0 - 0.2 * abs(x) / max(_BIKE_VENT_SIDES)
        for lo, hi in _BIKE_VENT_ROWS:
            slots.append(np.minimum(half - np.abs(side - x),
                                    np.minimum(fwd - lo * shorter, hi * shorter - fwd)))
    return np.max(slots, axis=0)


# A hard hat's shell carries a ridge down the middle (HARD_HAT_RIDGE_M high) and a lower rib
# either side at HARD_HAT_RIB_SIDE (the sideways component of the unit direction from the head's
# centre), as moulded safety helmets do.
HARD_HAT_RIDGE_M = 0.006
HARD_HAT_RIB_M = 0.0035
HARD_HAT_RIB_SIDE = 0.38


def _build_helmet(head, ch, spec, b) -> None:
    hard = spec.options["kind"] == "hard"
    # A hard hat is moulded polyethylene (satin, worn: the "shell" material); a bike helmet's
    # in-mould polycarbonate skin is glossy.
    mat = b.slot("shell" if hard else "plastic", HEADWEAR, ch.colour_rgb)
    gap = 0.022 if hard else 0.012
    th = 0.006 if hard else 0.02
    front_y, back_y = _hat_rim_heights(head, spec, ch.variant)
    frame = _hat_frame(head, front_y, back_y)
    n, _, e1, e2 = frame

    def shape(d, r):
        if hard:  # a ridge along the midline and a lower rib either side of it
            side = d @ e2
            ridge = HARD_HAT_RIDGE_M * np.exp(-(side / 0.12) ** 2)
            ribs = HARD_HAT_RIB_M * (np.exp(-((side - HARD_HAT_RIB_SIDE) / 0.06) ** 2)
                                     + np.exp(-((side + HARD_HAT_RIB_SIDE) / 0.06) ** 2))
            return r + (ridge + ribs) * np.clip(d @ n, 0, 1)
        back = np.clip(-(d @ e1), 0, 1) ** 2 * 0.02  # tail
        return r + back

    vent = None if hard else b.slot("plastic", HEADWEAR, (0.01, 0.01, 0.01))
    frame, fld, omega, psi_rim, inner, outer, d, r = _build_shell_hat(
        head, ch, spec, b, gap, th, mat, nv=22 if hard else 44, slope=0.15 if hard else 0.25, reach=18,
        sigma=8.0, shape=shape, holes=None if hard else _bike_vents, wall_mat=vent)
    if hard:
        width = 0.016 + 0.03 * np.clip(np.cos(omega), 0, 1) ** 3
        _brim(head, ch, frame, fld, omega, psi_rim, gap + th, 0.004, width, 15.0, mat, b)
    else:
        front_idx = np.where(np.abs(omega) < np.radians(55))[0]
        _brim(head, ch, frame, fld, omega[front_idx], psi_rim[front_idx], gap + th * 0.5, 0.003,
              0.025 * np.cos(omega[front_idx] * 1.5) ** 2 + 0.004, 25.0, vent, b, nu_keep=slice(None))
        strap = b.slot("fabric", HEADWEAR, (0.02, 0.02, 0.02))
        chin = head.lm[8] + np.array([0.0, -0.012, -0.015])
        for side in (-1.0, 1.0):
            k = np.argmin(np.abs(omega - side * np.radians(95)))
            start = inner[k, -1]
            ear = head.ear["l" if side > 0 else "r"]
            front_of_ear = np.array([ear[:, 0].mean() - side * 0.004, ear[:, 1].min() - 0.004,
                                     ear[:, 2].max() + 0.01])
            path = _catmull(np.array([start, front_of_ear, chin + np.array([side * 0.01, 0, 0])]), 30)
            dirs = _unit(path - np.array([0.0, path[:, 1].mean(), -0.05]) * np.array([1, 0, 1]))
            dirs[:, 1] = 0.0
            path = head.clear_path(path, _unit(dirs + np.array([0, -0.3, 0])), 0.004)
            v, f = _tube(path, 0.0035, 6, ref=dirs.mean(0) + 1e-3, aspect=0.4)
            b.add(v, f, strap)


def _build_headband(head, ch, spec, b) -> None:
    mat = b.slot("fabric", HEADWEAR, ch.colour_rgb)
    gap, th = 0.003, 0.005
    front_y, back_y = _hat_rim_heights(head, spec, ch.variant)
    frame = _hat_frame(head, front_y, back_y)
    fld = head.head_map().field(0.25, 10, 4.0)
    omega = np.linspace(-np.pi, np.pi, 96, endpoint=False)
    psi_rim = _rim_psi(fld, head.centre, frame[0], frame[2], frame[3], frame[1], omega, gap)
    band = np.radians(14.0 + 8.0 * ch.variant)
    inner, outer, d, r = _dome(head, fld, frame, gap, th, psi_rim, omega, nv=6, psi_start=psi_rim - band)
    verts, faces = _grid_solid(inner, outer, wrap_u=True)
    b.add(verts, faces, mat)


# Hair combed back under an alice band lies within this height of the scalp in front of it.
HAIRBAND_FLAT_M = 0.005


def _hairband_tilt(variant: float) -> float:
    """How far (radians) an alice band leans forward from upright over the crown."""
    return float(np.radians(15 + 10 * variant))


def _build_hairband(head, ch, spec, b) -> None:
    """An alice band from behind one ear over the crown to the other."""
    mat = b.slot("plastic", HEADWEAR, ch.colour_rgb)
    tilt = _hairband_tilt(ch.variant)
    a = np.linspace(-np.radians(100), np.radians(100), 50)
    d = _unit(np.stack([np.sin(a), np.cos(a) * np.cos(tilt), np.cos(a) * np.sin(tilt)], -1))
    fld = head.head_map().field(0.3, 10, 4.0)
    path = fld.points(d, 0.004)
    path = head.clear_path(path, d, 0.0055)
    v, f = _tube(path, 0.0045, 8, ref=d, aspect=0.35)
    b.add(v, f, mat)


_CUP_ASPECT = 1.12  # ear cups are this much taller than wide
_CUSHION_INNER = 0.62  # an over-ear cushion's opening, as a share of the cup radius (at least)
_CUSHION_GIVE = 0.02  # how much deeper than its seat a cushion's foam may follow the head (m)
_CUSHION_MIN_WIDTH = 0.012  # an over-ear cushion's ring is at least this wide (m)
_CUP_REACH = 0.045  # obstacles further out from the ear's centre than this are not the head (m)


def _cup_axis(rel: np.ndarray, axis: np.ndarray, cup_r: float, max_tilt_deg: float = 25.0) -> np.ndarray:
    """An over-ear cup's outward axis, tilted to lie flat on the side of the head round the ear.

    rel: (N, 3) obstacle points relative to the ear's centre (head frame); axis: the straight
    outward axis (+-x). The outermost point of each of 16 sectors of the ring the cushion covers
    is taken; a plane fitted through them gives the axis, at most max_tilt_deg from straight.
    """
    out = rel @ axis
    y, z = rel[:, 1] / _CUP_ASPECT, rel[:, 2]
    radial = np.hypot(y, z)
    ring = (out > -0.03) & (radial > _CUSHION_INNER * cup_r) & (radial < cup_r)
    sector = np.floor((np.arctan2(z, y) + np.pi) / (2.0 * np.pi) * 16).astype(int) % 16
    top = []
    for k in range(16):
        idx = np.flatnonzero(ring & (sector == k))
        if len(idx):
            top.append(rel[idx[np.argmax(out[idx])]])
    if len(top) < 6:
        return axis
    top = np.array(top)
    # out = c0 + c1 y + c2 z, least squares; the plane's normal points outward.
    coef, *_ = np.linalg.lstsq(np.c_[np.ones(len(top)), top[:, 1], top[:, 2]], top @ axis, rcond=None)
    n = _unit(axis - coef[1] * np.array([0.0, 1.0, 0.0]) - coef[2] * np.array([0.0, 0.0, 1.0]))
    tilt = np.degrees(np.arccos(np.clip(n @ axis, -1.0, 1.0)))
    if tilt > max_tilt_deg:
        n = _unit(axis + (n - axis) * (max_tilt_deg / tilt))
    return n


# Headphone band centreline to skin: over hair (flattened under the band), or on a bare crown
# (the band is 8 mm thick, so 1.5 mm of air is left under it). The band is 2 x 4 mm thick and
# 2 x 12.8 mm wide.
_BAND_CLEARANCE_HAIR, _BAND_CLEARANCE_BARE = 0.012, 0.0055
_BAND_HALF_THICK, _BAND_ASPECT = 0.004, 3.2


def _build_headphones(head, ch, spec, b) -> None:
    o = spec.options
    body = b.slot("plastic", HEADWEAR, ch.colour_rgb)
    cushion = b.slot("leather", HEADWEAR, (0.02, 0.02, 0.02) if ch.variant < 0.7 else ch.secondary_rgb)
    cup_r = o["cup_r"] * (0.95 + 0.1 * ch.variant)
    frames = {}
    for s, side in (("r", -1.0), ("l", 1.0)):
        ear = head.ear[s]
        centre = ear.mean(0)
        axis = np.array([side, 0.0, 0.0])
        # Only the head can hold a cup: a shoulder further out than _CUP_REACH is left alone.
        obst = head.obstacles[(head.obstacles - centre) @ axis < _CUP_REACH]
        if o["over_ear"]:
            # A ring cushion round the whole ear, seated on the head and tilted to its side.
            centre[1:] = 0.5 * (ear[:, 1:].min(0) + ear[:, 1:].max(0))
            axis = _cup_axis(obst - centre, axis, cup_r)
        up = _unit(np.array([0.0, 1.0, 0.0]) - axis[1] * axis)
        fwd = np.cross(axis, up) * side
        e = ear - centre
        frames[s] = (centre, axis, up, fwd, obst, float(np.hypot((e @ up) / _CUP_ASPECT, e @ fwd).max()))
    if o["over_ear"]:
        # Both cups alike, grown (up to 25 %) until the opening clears a large ear.
        ear_radial = max(f[-1] for f in frames.values())
        cup_r = float(np.clip(ear_radial + 0.002 + _CUSHION_MIN_WIDTH, cup_r, 1.25 * cup_r))
        inner = float(np.clip(ear_radial + 0.002, _CUSHION_INNER * cup_r, cup_r - _CUSHION_MIN_WIDTH))
    tops = {}
    for s, (centre, axis, up, fwd, obst, _) in frames.items():
        rel = obst - centre
        out = rel @ axis
        radial = np.hypot((rel @ up) / _CUP_ASPECT, rel @ fwd)
        near = out > -0.03  # this side of the head
        if o["over_ear"]:
            band = near & (radial > inner) & (radial < cup_r + 0.003)
            seat = float(out[band].max(initial=0.0)) + 0.0015
            ear_out = float(out[near & (radial <= inner)].max(initial=seat))
            cush_len = max(0.016, ear_out + 0.004 - seat)
            face_c = centre + axis * seat
            # The foam follows the head: round the ring, its inner face reaches down to the head
            # (up to _CUSHION_GIVE deeper than where it is seated), its outer face stays flat.
            a = np.linspace(0.0, 2.0 * np.pi, 40, endpoint=False)
            ang = np.arctan2(rel @ fwd, (rel @ up) / _CUP_ASPECT)
            local = np.full(len(a), seat - _CUSHION_GIVE)
            for k, ak in enumerate(a):
                sel = band & (np.abs(np.angle(np.exp(1j * (ang - ak)))) < np.radians(14.0))
                local[k] = max(local[k], float(out[sel].max(initial=-1.0)) + 0.0015)
            smooth = np.convolve(np.r_[local[-2:], local, local[:2]], np.ones(5) / 5, "valid")
            local = np.maximum(local, smooth)
            depth = seat + cush_len - local
            half_w = 0.5 * (cup_r - inner)
            loop = (centre + axis * (local + 0.5 * depth)[:, None] + (0.5 * (cup_r + inner))
                    * (np.cos(a)[:, None] * up * _CUP_ASPECT + np.sin(a)[:, None] * fwd))
            v, f = _tube(loop, half_w, 14, ref=axis, closed=True, aspect=0.5 * depth / half_w)
            b.add(v, f, cushion)
            shell_x0 = 0.75 * cush_len  # the shell closes the ring beyond the ear
        else:
            # On-ear: the pad rests on the ear itself.
            face_c = centre + axis * (max(0.0, float(out[radial < cup_r + 0.003].max(initial=0.0))) + 0.003)
            cush_len = 0.014
            v, f = _tube(np.linspace(face_c, face_c + axis * cush_len, 4), cup_r, 28, ref=up,
                         aspect=_CUP_ASPECT)
            b.add(v, f, cushion)
            shell_x0 = cush_len
        shell_len = 0.016
        path = np.linspace(face_c + axis * shell_x0, face_c + axis * (shell_x0 + shell_len), 4)
        rad = np.full(4, cup_r * 0.96)
        rad[-1] *= 0.88
        v, f = _tube(path, rad, 28, ref=up, aspect=_CUP_ASPECT)
        b.add(v, f, body)
        tops[s] = face_c + axis * (shell_x0 + 0.5 * shell_len) + up * cup_r * _CUP_ASPECT
    # Headband over the crown, in the plane of the cups.
    zc = 0.5 * (tops["r"][2] + tops["l"][2])
    a = np.linspace(-np.radians(80), np.radians(80), 41)
    d = np.stack([np.sin(a), np.cos(a), np.zeros_like(a)], -1)
    centre = np.array([head.centre[0], head.centre[1] - 0.01, zc])
    fld_pts = centre + 0.12 * d
    clearance = _BAND_CLEARANCE_BARE if head.bare_crown else _BAND_CLEARANCE_HAIR
    arc = head.clear_path(fld_pts - 0.05 * d, d, clearance)
    path = _catmull(np.vstack([tops["r"], arc[6:-6:4], tops["l"]]), 60)
    radial = _unit(path - centre)
    path = head.clear_path(path, radial, clearance)
    # The band is wide along z: where it crosses a slope, its edges need room too.
    tangent = _unit(np.gradient(path, axis=0))
    across = _unit(np.array([0.0, 0.0, 1.0]) - tangent[:, 2:3] * tangent)
    need = np.zeros(len(path))
    for sign in (-1.0, 1.0):
        edge = path + sign * _BAND_HALF_THICK * _BAND_ASPECT * across
        need = np.maximum(need, head.push_out(edge, radial, clearance - _BAND_HALF_THICK + 0.0015))
    need = np.maximum(ndimage.gaussian_filter1d(ndimage.maximum_filter1d(need, 9), 2.0), need)
    path = path + need[:, None] * radial
    v, f = _tube(path, _BAND_HALF_THICK, 8, ref=(0.0, 0.0, 1.0), aspect=_BAND_ASPECT)  # flat, wide along z
    b.add(v, f, body)


def _build_earbuds(head, ch, spec, b) -> None:
    mat = b.slot("plastic", HEADWEAR, ch.colour_rgb)
    for s, side in (("r", -1.0), ("l", 1.0)):
        ear = head.ear[s]
        c = ear.mean(0)
        near = ear[(np.abs(ear[:, 1] - c[1]) < 0.008) & (ear[:, 2] > c[2] - 0.002)]
        deep = near[np.argmin(near[:, 0] * side)] if len(near) else c
        axis = np.array([side, 0.0, 0.0])
        bud_r = 0.0085
        centre = np.array([deep[0], deep[1], deep[2]]) + axis * bud_r
        shift = head.push_out(centre[None], axis, bud_r + 0.001)[0]
        centre = centre + axis * shift
        v, f = _ellipsoid(centre, (bud_r, bud_r * 0.9, bud_r), nu=12, nv=8)
        b.add(v, f, mat)
        stem = np.linspace(centre + np.array([0.0, -0.004, 0.002]), centre + np.array([side * 0.002, -0.03, 0.008]), 6)
        stem = head.clear_path(stem, np.tile(axis, (6, 1)), 0.0035)
        v, f = _tube(stem, 0.0028, 8, ref=(1.0, 0.0, 0.0))
        b.add(v, f, mat)


def _build_earrings(head, ch, spec, b) -> None:
    style = spec.options["style"]
    mat = b.slot("metal", HEADWEAR, ch.colour_rgb)
    for s, side in (("r", -1.0), ("l", 1.0)):
        ear = head.ear[s]
        low = ear[ear[:, 1] < ear[:, 1].min() + 0.007]
        lobe = low.mean(0) + np.array([0.0, 0.0015, 0.0])
        axis = np.array([side, 0.0, 0.0])
        if style == "stud":
            r = 0.0032 + 0.002 * ch.variant
            c = lobe + axis * r
            c = c + axis * head.push_out(c[None], axis, r + 0.0006)[0]
            v, f = _ellipsoid(c, (r * 0.6, r, r), nu=10, nv=6)
            b.add(v, f, b.slot("metal", HEADWEAR, ch.colour_rgb))
            continue
        if style == "hoop":
            rr = 0.007 + 0.008 * ch.variant
            a = np.linspace(0, 2 * np.pi, 40, endpoint=False)
            tilt = np.radians(25.0)
            plane_u = np.array([side * np.sin(tilt), 0.0, np.cos(tilt)])
            ring = lobe + rr * (np.cos(a)[:, None] * plane_u + (np.sin(a)[:, None] - 1) * np.array([0, 1.0, 0]))
            # Swing the hoop outward until it clears everything but the piercing.
            others = head.obstacles[np.linalg.norm(head.obstacles - lobe, axis=1) > 0.005]
            shift = _push_out(ring, axis, others, 0.0012)
            shift[np.linalg.norm(ring - lobe, axis=1) < 0.004] = 0
            ring = ring + shift.max() * axis * (np.linalg.norm(ring - lobe, axis=1) > 0.004)[:, None]
            v, f = _tube(ring, 0.0009, 6, ref=np.cross(plane_u, [0, 1.0, 0]), closed=True)
            b.add(v, f, mat)
            continue
        # Drop: a chain of 1.5-4 cm and a bead.
        length = 0.015 + 0.025 * ch.variant
        chain = np.linspace(lobe, lobe + np.array([side * 0.003, -length, 0.0]), 6)
        chain = _clear_path(chain, np.tile(axis, (6, 1)), head.obstacles[np.linalg.norm(head.obstacles - lobe, axis=1) > 0.004], 0.0015)
        v, f = _tube(chain, 0.0006, 6, ref=(1.0, 0, 0))
        b.add(v, f, mat)
        r = 0.0035 + 0.0025 * ch.variant
        c = chain[-1] + np.array([0.0, -r, 0.0])
        c = c + axis * head.push_out(c[None], axis, r * 1.3 + 0.0008)[0]
        v, f = _ellipsoid(c, (r, r * 1.3, r), nu=10, nv=7)
        b.add(v, f, b.slot("metal", HEADWEAR, ch.secondary_rgb if ch.variant > 0.5 else ch.colour_rgb))


_MASK_NECK_DEPTH = 0.02  # m below the jaw line (head frame) that the mask's shape reads


# A cloth mask's gathered side folds (count over its height, depth) and its hem's radius.
CLOTH_MASK_FOLDS = 3.0
CLOTH_MASK_FOLD_M = 0.003
CLOTH_MASK_HEM_M = 0.0014


def _build_mask(head, ch, spec, b) -> None:
    style = spec.options["style"]
    lm = head.lm
    kind = "fabric"
    mat = b.slot(kind, FACEWEAR, ch.colour_rgb)
    c = np.array([0.0, float(lm[33, 1]), float(lm[0, 2]) + 0.005])
    # Only the head and the neck just under the jaw line shape the mask: with the head turned, the
    # side of the neck, the shoulder and the chest fall in the directions under the jaw, and the
    # fabric would drape down to them.
    order = np.argsort(lm[:17, 0])
    jaw_y = np.interp(head.obstacles[:, 0], lm[:17, 0][order], lm[:17, 1][order])
    near = head.obstacles[head.obstacles[:, 1] > jaw_y - _MASK_NECK_DEPTH]
    rmap = _RadialMap(c, near, step_deg=2.5, max_radius=0.16)
    slope = {"surgical": 0.2, "cloth": 0.35, "ffp2": 0.25}[style]
    fld = rmap.field(slope, 16, 3.0, ref_radius=0.09)

    def dir_to(p):
        return _unit(np.asarray(p) - c)

    def ang(p):
        d = dir_to(p)
        return np.arctan2(d[..., 1], d[..., 2]), np.arcsin(d[..., 0])

    # The nose wire sits on the bridge between iBUG points 28 and 29; from there the top edge
    # falls off the nose and crosses the cheeks two centimetres under the lower lids.
    a_bridge, _ = ang(0.5 * (lm[28] + lm[29]) + np.array([0, 0.002 if style == "ffp2" else 0.0, 0]))
    a_cheek, _ = ang(np.array([lm[41, 0], lm[41, 1] - 0.02, lm[41, 2]]))
    a_chin, _ = ang(lm[8] + np.array([0.0, -0.012, -0.012]))
    a_jaw, b_jaw = ang(lm[4])
    b_max = min(abs(b_jaw) + np.radians(4), np.radians(62))
    nu, nv = 41, 26
    u = np.linspace(-1, 1, nu)
    v = np.linspace(0, 1, nv)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    top = a_bridge + (a_cheek - a_bridge) * np.abs(uu) ** (1.2 if style != "surgical" else 1.0)
    bottom = a_chin + (a_jaw + np.radians(6) - a_chin) * np.abs(uu) ** 2.2
    if style == "surgical":
        bottom = a_chin + (a_jaw + np.radians(4) - a_chin) * np.abs(uu) ** 3
    alpha = bottom + (top - bottom) * vv
    beta = uu * b_max
    d = np.stack([np.sin(beta), np.cos(beta) * np.sin(alpha), np.cos(beta) * np.cos(alpha)], -1)
    r = fld.radius(d) + 0.0025
    bump = np.zeros_like(r)
    if style == "surgical":
        # Three folded pleats: each rises toward its fold and steps back under the next one.
        bump += 0.003 * np.mod(vv * 3.5, 1.0) * np.clip((0.9 - np.abs(uu)) / 0.1, 0, 1)
        bump += 0.004 * np.exp(-((uu) / 0.5) ** 2) * np.sin(np.pi * vv)
    elif style == "cloth":
        bump += 0.004 * np.exp(-(uu / 0.06) ** 2) * np.sin(np.pi * vv) ** 0.5
        # The ear loops gather the fabric at the sides into a few soft horizontal folds.
        side = np.clip((np.abs(uu) - 0.5) / 0.5, 0.0, 1.0) ** 1.5
        bump += CLOTH_MASK_FOLD_M * side * np.sin(np.pi * vv) * (
            0.5 + 0.5 * np.cos(2 * np.pi * (CLOTH_MASK_FOLDS * vv + ch.variant)))
    else:
        bump += 0.012 * np.clip(1 - np.abs(vv - 0.5) / 0.5, 0, 1) ** 1.5 * np.cos(uu * np.pi / 2) ** 0.6
    inner = c + (r + bump)[..., None] * d
    outer = c + (r + bump + 0.0018)[..., None] * d
    verts, faces = _grid_solid(inner, outer, wrap_u=False)
    b.add(verts, faces, mat)
    if style == "ffp2":
        seam = outer[:, nv // 2] + 0.0006 * d[:, nv // 2]
        v_, f_ = _tube(seam, 0.0007, 5, ref=(0.0, 1.0, 0.0))
        b.add(v_, f_, mat)
    if style == "cloth":
        # A sewn mask: the centre seam down the front and a turned hem along both edges.
        seam = outer[nu // 2]
        v_, f_ = _tube(seam, 0.0011, 8, ref=(1.0, 0.0, 0.0), aspect=1.8)
        b.add(v_, f_, mat)
        for row in (0, nv - 1):
            hem = outer[:, row] - CLOTH_MASK_HEM_M * 0.4 * d[:, row]
            v_, f_ = _tube(hem, CLOTH_MASK_HEM_M, 6, ref=d[nu // 2, row], aspect=0.6)
            b.add(v_, f_, mat)
    # Ear loops (or the FFP2's head straps) around the ears.
    loop_mat = b.slot("fabric", FACEWEAR, (0.8, 0.8, 0.8) if style != "cloth" else ch.colour_rgb)
    for s, side, col in (("r", -1.0, 0), ("l", 1.0, nu - 1)):
        ear = head.ear[s]
        top_pt = ear[np.argmax(ear[:, 1])]
        back = ear[np.argmin(ear[:, 2])]
        lobe = ear[np.argmin(ear[:, 1])]
        corner_top = outer[col, int(nv * 0.85)]
        corner_bot = outer[col, int(nv * 0.15)]
        ctrl = np.array([corner_top, top_pt + np.array([-side * 0.003, 0.004, 0.006]),
                         np.array([back[0] - side * 0.004, 0.5 * (top_pt[1] + lobe[1]), back[2] - 0.004]),
                         lobe + np.array([0.0, -0.005, 0.0]), corner_bot])
        path = _catmull(ctrl, 60)
        axis_pt = np.array([0.0, 0.0, ear[:, 2].mean()])
        dirs = path - axis_pt
        dirs[:, 1] *= 0.3
        path = head.clear_path(path, _unit(dirs), 0.0018)
        v_, f_ = _tube(path, 0.0011, 6, ref=(1.0, 0.0, 0.0))
        b.add(v_, f_, loop_mat)


def _build_scarf(head, ch, spec, b) -> None:
    gaiter = spec.options["gaiter"]
    mat = b.slot("knit" if not gaiter else "fabric", CLOTHING, ch.colour_rgb)
    axis = _unit(head.neck_top - head.neck_bottom)
    origin = head.neck_bottom
    chin_h = float((head.lm[8] - origin) @ axis)
    h_lo = -0.012
    h_hi = chin_h - 0.004
    cmap = _CylMap(origin, axis, np.array([0.0, 0.0, 1.0]), head.obstacles, (h_lo - 0.01, h_hi + 0.06),
                   max_radius=0.13)
    gap = 0.003 if gaiter else 0.008
    th = 0.004 if gaiter else 0.014
    fld = cmap.field(0.6 if not gaiter else 0.3, 4, 1.5)
    na = cmap.na
    a = -np.pi + np.arange(na) * cmap.step
    # The upper edge follows the jaw: under the chin in front, below the occiput at the back
    # (head-frame heights, since the neck leans forward).
    nv = 14
    front = (1 + np.cos(a)) / 2
    y_top = (float(head.lm[8, 1]) - 0.006) * front + (-0.085 + (0.01 if gaiter else 0.0)) * (1 - front)
    radial_y = np.cos(a) * cmap.e1[1] + np.sin(a) * cmap.e2[1]
    r_mid = fld.max(axis=1)
    top_h = (y_top - origin[1] - r_mid * radial_y) / max(axis[1], 0.3)
    top_h = np.clip(top_h, h_lo + 0.02, cmap.h0 + (cmap.nh - 1) * cmap.step_h)
    # The lower edge rests where the shoulders would reach into the scarf.
    wide = _CylMap(origin, axis, np.array([0.0, 0.0, 1.0]), head.obstacles, (cmap.h0, h_hi + 0.06),
                   max_radius=0.17).raw
    reach = fld + gap + th + 0.01
    h_rows = cmap.h0 + np.arange(cmap.nh) * cmap.step_h
    blocked = (wide > reach) & (h_rows[None] < 0.5 * (h_lo + top_h[:, None]))
    last = np.where(blocked.any(1), cmap.nh - 1 - np.argmax(blocked[:, ::-1], axis=1), -1)
    low = np.where(last >= 0, h_rows[np.clip(last + 1, 0, cmap.nh - 1)] + cmap.step_h, h_lo)
    low = ndimage.maximum_filter1d(np.maximum(low, h_lo), 5, mode="wrap")
    low = np.minimum(low, top_h - 0.015)
    t = np.linspace(0, 1, nv)
    hh = low[:, None] + (top_h - low)[:, None] * t[None]
    ih = np.clip((hh - cmap.h0) / cmap.step_h, 0, cmap.nh - 1)
    i0 = np.floor(ih).astype(int)
    i1 = np.minimum(i0 + 1, cmap.nh - 1)
    f = ih - i0
    rows = np.arange(na)[:, None]
    base = fld[rows, i0] * (1 - f) + fld[rows, i1] * f
    base = np.maximum(base, np.maximum(fld[rows, i0], fld[rows, i1]))
    roll = 0.0 if gaiter else 0.006 * np.sin(np.pi * t)[None] ** 0.7
    r_in = base + gap + roll
    inner = cmap.point(a[:, None], hh, r_in)
    outer = cmap.point(a[:, None], hh, r_in + th)
    verts, faces = _grid_solid(inner, outer, wrap_u=True)
    b.add(verts, faces, mat)
    if not gaiter:
        k = int(np.argmin(np.abs(a)))
        knot_c = cmap.point(a[k], low[k] + 0.012, r_in[k, 2] + th + 0.008)
        v_, f_ = _ellipsoid(knot_c, (0.022, 0.018, 0.012), axes=np.array([cmap.e2, axis, cmap.e1]), nu=12, nv=8)
        b.add(v_, f_, mat)


_BUILDERS = {
    "glasses": _build_glasses,
    "sport_glasses": _build_sport_glasses,
    "beanie": _build_beanie,
    "cap": _build_cap,
    "brimmed": _build_brimmed,
    "hood": _build_hood,
    "helmet": _build_helmet,
    "headband": _build_headband,
    "hairband": _build_hairband,
    "headphones": _build_headphones,
    "earbuds": _build_earbuds,
    "earrings": _build_earrings,
    "mask": _build_mask,
    "scarf": _build_scarf,
}


def build_accessories(params: AccessoryParams, verts_head: np.ndarray, tables: AccessoryTables,
                      bare_crown: bool = False) -> list[AccessoryMesh]:
    """Meshes of the worn accessories, fitted to this posed mesh.

    verts_head: (V, 3) the sample's posed anny vertices in the head frame, metres.
    bare_crown: no hair on top of the head (hair.BARE_CROWN_STYLES), so a headphone band rests
    on the scalp instead of leaving room for hair.
    Returns one AccessoryMesh per item (head frame), in build order.
    """
    if not params.items:
        return []
    head = _Head(verts_head, tables, bare_crown)
    by_cat = {ACCESSORIES[item.name].category: item for item in params.items}
    meshes = []
    for cat in _BUILD_ORDER:
        item = by_cat.get(cat)
        if item is None:
            continue
        spec = ACCESSORIES[item.name]
        builder = _Builder()
        _BUILDERS[spec.builder](head, item, spec, builder)
        mesh = builder.mesh(item.name, item)
        meshes.append(mesh)
        head.add_obstacles(mesh.vertices.astype(np.float64))
    return meshes


def hair_cover(params: AccessoryParams, verts_head: np.ndarray, tables: AccessoryTables) -> HeadCover | None:
    """The scalp region a worn hat, hood or helmet holds hair down on, or None. An alice band
    (hairband) gives a ``sweep_back`` cover: the hair in front of it is combed back under it.

    verts_head: (V, 3) posed vertices in the head frame. The plane sits a little below the rim so
    no hair under the headwear is missed.
    """
    hats = [item for item in params.items if ACCESSORIES[item.name].category == "hat"]
    if not hats:
        return None
    spec = ACCESSORIES[hats[0].name]
    head = _Head(verts_head, tables)
    if spec.builder == "hairband":
        # The band's plane (_build_hairband: it leans forward by ``tilt`` over the crown, through
        # the head's centre); hair in front of it and above the brows is combed back under it.
        tilt = _hairband_tilt(hats[0].variant)
        n = np.array([0.0, -np.sin(tilt), np.cos(tilt)])
        return HeadCover(tuple(float(x) for x in n), float(n @ head.centre), HAIRBAND_FLAT_M,
                         min_y=float(head.brow_y + 0.01), sweep_back=True)
    front_y, back_y = _hat_rim_heights(head, spec, hats[0].variant)
    n, offset, _, _ = _hat_frame(head, front_y, back_y)
    allowance = {"hood": 0.015, "helmet": 0.01, "headband": 0.002}.get(spec.builder, HAIR_ALLOWANCE_M - 0.001)
    if spec.builder == "hood":
        n, offset = np.array([0.0, 1.0, 0.0]), float(head.brow_y + 0.02)
    return HeadCover(tuple(float(x) for x in n), float(offset - 0.004), float(allowance))


@functools.lru_cache(maxsize=1)
def accessory_names() -> tuple:
    return tuple(ACCESSORIES)
