"""Hair, beards, brows and eyelashes as strand curves. numpy and scipy only.

Frames: every array is in the head frame (labels.py): origin between the eyeball centres,
x toward the subject's left, y up, z out of the face; metres. Long hair hangs along the head
frame's -y, i.e. as if the head were upright.

Roots are barycentric points on mesh faces, chosen once per mesh (``HairTables``) and per sample
(``HairParams.strand_seed``), so they follow identity, face shape and expression. Scalp hair is
grown as a few hundred guide strands marched over the scalp (a flow field per style, kept
between a minimum and maximum height above the skin, gravity for long hair, pushed out of the
head, neck and shoulders), then child strands copy their neighbouring guides and clump toward
them. A thin cap mesh on the rooted scalp (and beard area) keeps skin from showing between
strands and gives the mask a solid HAIR / BEARD region. Stubble is very short dense curves
(no cap, no texture).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from replicantface.classes import SegClass
from replicantface.labels import brow_guide, vertex_normals

HAIRSTYLES = ("bald", "buzz", "short", "side_part", "curly", "long_straight", "ponytail",
              "double_tail", "bun", "bob", "fringe", "afro", "balding")
BEARDS = ("none", "stubble", "moustache", "goatee", "chin_strap", "full")
# Styles with no hair on top of the head (what a headphone band rests on).
BARE_CROWN_STYLES = ("bald", "balding")
BROW_SHAPES = ("straight", "soft_arch", "high_arch", "rounded", "thin", "bushy")

# Natural colours: name -> (melanin range, redness range) of the Principled Hair BSDF.
HAIR_COLOURS = {
    "black": ((0.93, 0.99), (0.0, 0.1)),
    "dark_brown": ((0.80, 0.92), (0.05, 0.2)),
    "brown": ((0.62, 0.80), (0.1, 0.3)),
    "light_brown": ((0.45, 0.62), (0.15, 0.35)),
    "auburn": ((0.55, 0.75), (0.6, 0.85)),
    "red": ((0.35, 0.55), (0.85, 1.0)),
    "blond": ((0.18, 0.38), (0.2, 0.45)),
    "platinum": ((0.05, 0.15), (0.1, 0.3)),
}
# Relative frequency of each colour for light skin and for dark skin (Fitzpatrick 1 and 6).
_COLOUR_WEIGHTS_LIGHT = {"black": 1.0, "dark_brown": 2.0, "brown": 2.5, "light_brown": 2.0,
                         "auburn": 0.7, "red": 0.4, "blond": 1.5, "platinum": 0.3}
_COLOUR_WEIGHTS_DARK = {"black": 6.0, "dark_brown": 3.0, "brown": 0.5}

# Default style weights (HAIRSTYLES order) for women and men; a sample mixes them by gender.
# A man's "bald" (shaved) and "balding" (male-pattern: a horseshoe of hair round the sides and
# back) weights grow with age (HairConfig.bald_age_gain), balding twice as fast.
_STYLE_WEIGHTS_FEMALE = (0.1, 0.3, 0.6, 0.6, 1.0, 2.0, 1.5, 0.5, 1.0, 1.5, 1.2, 0.4, 0.0)
_STYLE_WEIGHTS_MALE = (0.6, 1.5, 2.5, 2.0, 0.6, 0.3, 0.2, 0.02, 0.15, 0.2, 0.4, 0.4, 0.4)
_BEARD_WEIGHTS = (0.0, 2.0, 0.7, 1.0, 0.6, 1.5)  # BEARDS order; "none" comes from the probability

_CLASS = {"hair": SegClass.HAIR, "hair_cap": SegClass.HAIR, "scalp_shadow": SegClass.SKIN,
          "beard": SegClass.BEARD, "beard_cap": SegClass.BEARD, "brow_r": SegClass.RIGHT_BROW,
          "brow_l": SegClass.LEFT_BROW, "lash_r": SegClass.RIGHT_EYE, "lash_l": SegClass.LEFT_EYE}

_SCALP_POOL = 40000
_BEARD_POOL = 24000
_BROW_POOL = 3000
_DENSE_POOL = 60000
_POOL_SEED = 20240607  # fixed: the root pools are part of the mesh tables
_LO_M = 0.0015  # hair keeps at least this far above the skin
HEAD_DOWN = np.array([0.0, -1.0, 0.0])  # the head frame's own down: gravity for an upright head
_CAP_OFFSET_M = 0.0006


def class_of(key: str) -> int:
    """Segmentation class id of a strand or cap kind ("hair", "beard", "brow_r", ...)."""
    return int(_CLASS[key])


@dataclass(frozen=True)
class HairConfig:
    """Probabilities and weights of the hair sampler.

    style_weights: () for the gender-mixed defaults, else one weight per HAIRSTYLES entry.
    beard_prob_male: beard (stubble included) probability for gender 1; women get none.
    grey_age_start/full: the chance and amount of grey rise linearly between these ages.
    """

    style_weights: tuple = ()
    beard_prob_male: float = 0.35
    beard_weights: tuple = ()
    bald_age_gain: float = 2.0
    grey_age_start: float = 30.0
    grey_age_full: float = 75.0
    brow_grey_delay_years: float = 12.0
    density_min: float = 0.8
    density_max: float = 1.15

    def __post_init__(self) -> None:
        if self.style_weights and len(self.style_weights) != len(HAIRSTYLES):
            raise ValueError(f"style_weights needs {len(HAIRSTYLES)} weights ({HAIRSTYLES}), "
                             f"got {len(self.style_weights)}")
        if self.beard_weights and len(self.beard_weights) != len(BEARDS):
            raise ValueError(f"beard_weights needs {len(BEARDS)} weights ({BEARDS})")
        for key, weights in (("style_weights", self.style_weights), ("beard_weights", self.beard_weights)):
            if any(w < 0 for w in weights):
                raise ValueError(f"{key} must be >= 0, got {[float(w) for w in weights]}")
        if self.style_weights and sum(self.style_weights) <= 0:
            raise ValueError("style_weights must not all be 0")
        # A beard's kind is drawn with the "none" weight zeroed: "none" comes from beard_prob_male.
        if self.beard_weights and self.beard_prob_male > 0 and sum(self.beard_weights[1:]) <= 0:
            raise ValueError("beard_weights must not all be 0 (the first, 'none', is not drawn) "
                             "while beard_prob_male > 0")
        if not 0.0 <= self.beard_prob_male <= 1.0:
            raise ValueError(f"beard_prob_male must be in [0, 1], got {self.beard_prob_male}")


@dataclass(frozen=True)
class HairParams:
    """One sample's hair. Colours are Principled Hair BSDF melanin (0 white .. 1 black) and
    redness (pheomelanin share); grey is the fraction of white strands (0..1).

    part_x_m: head-frame x of the parting (0 = centre); length_scale multiplies style lengths;
    recession: 0..1 how far the front hairline has receded (for "balding", how low the band of
    hair round the sides and back ends); beard_length_m: typical beard strand
    length; brow_density 0..1; lash_length_m: longest upper lash.
    """

    style: str
    colour: str
    melanin: float
    redness: float
    grey: float
    length_scale: float
    density: float
    part_x_m: float
    recession: float
    curl: float
    beard: str
    beard_length_m: float
    beard_melanin: float
    beard_grey: float
    brow_shape: str
    brow_density: float
    brow_melanin: float
    brow_grey: float
    lash_length_m: float
    strand_seed: int


@dataclass(frozen=True)
class HeadCover:
    """Headwear over the scalp, head frame: points p with dot(plane_normal, p) > plane_offset
    (and above min_y) are under it, and hair there stays within max_offset_m (metres) of the
    scalp.

    sweep_back: a band over the crown (an alice band) rather than a hat: the plane is the band's,
    its normal points to the face, and min_y keeps the region to the scalp above the brows. Hair
    rooted in front of the band is combed back over it, flat, and falls only once past it; no
    hair crosses it toward the face.
    """

    plane_normal: tuple
    plane_offset: float
    max_offset_m: float
    min_y: float = -np.inf
    sweep_back: bool = False

    def holds(self, points: np.ndarray) -> np.ndarray:
        """(...,) bool: which of (..., 3) head-frame points lie under the headwear."""
        points = np.asarray(points, dtype=np.float64)
        return (points @ np.asarray(self.plane_normal, dtype=np.float64) > self.plane_offset) & (
            points[..., 1] > self.min_y)


@dataclass
class Strands:
    """One curve object's worth: points (N, P, 3) float32 head frame metres, root first;
    radius_m (P,) or (N, P) root-to-tip radius in metres."""

    points: np.ndarray
    radius_m: np.ndarray


@dataclass
class CapMesh:
    """A thin shell on the rooted skin: vertices (V, 3) float32 head frame metres, faces (F, 3)
    int32, coverage (V,) float32 in [0, 1] (0 on the hairline, so the edge fades out)."""

    vertices: np.ndarray
    faces: np.ndarray
    coverage: np.ndarray


def melanin_rgb(melanin: float, redness: float) -> tuple:
    """Approximate linear-RGB colour of a hair fibre of this melanin and redness (the inverse of
    the Principled Hair BSDF's direct-colouring map at roughness 0.3)."""
    eumelanin = np.array([0.506, 0.841, 1.653])
    pheomelanin = np.array([0.343, 0.733, 1.924])
    qty = -np.log(max(1.0 - melanin, 1e-4))
    sigma = qty * ((1.0 - redness) * eumelanin + redness * pheomelanin)
    return tuple(float(c) for c in np.exp(-np.sqrt(sigma) * 5.89))


# ----------------------------------------------------------------------------------------------
# Sampling


def _grey_amount(rng: np.random.Generator, age_years: float, start: float, full: float) -> float:
    """Fraction of white strands: none before ``start``; chance and amount grow to ``full``."""
    u = float(np.clip((age_years - start) / (full - start), 0.0, 1.0))
    chance = 0.0 if u <= 0.0 else 0.15 + 0.85 * u
    hit = rng.random() < chance
    amount = float(np.clip(u * rng.uniform(0.4, 1.3), 0.02, 1.0))
    return amount if hit else 0.0


def sample_hair(rng: np.random.Generator, cfg: HairConfig, age_years: float, gender: float,
                fitzpatrick: float | None = None) -> HairParams:
    """Random hair for a person: gender 0 female .. 1 male, age in years, optional Fitzpatrick
    skin type (1..6; darker skin makes dark hair likelier)."""
    g = float(np.clip(gender, 0.0, 1.0))
    if cfg.style_weights:
        w = np.asarray(cfg.style_weights, dtype=float)
    else:
        male = np.array(_STYLE_WEIGHTS_MALE)
        older = np.clip((age_years - 30.0) / 40.0, 0.0, 1.0)
        male[HAIRSTYLES.index("bald")] *= 1.0 + cfg.bald_age_gain * older
        male[HAIRSTYLES.index("balding")] *= 1.0 + 2.0 * cfg.bald_age_gain * older
        w = (1.0 - g) * np.array(_STYLE_WEIGHTS_FEMALE) + g * male
    style = HAIRSTYLES[rng.choice(len(HAIRSTYLES), p=w / w.sum())]

    names = list(HAIR_COLOURS)
    dark = 0.5 if fitzpatrick is None else float(np.clip((fitzpatrick - 1.0) / 5.0, 0.0, 1.0))
    cw = np.array([(1 - dark) * _COLOUR_WEIGHTS_LIGHT.get(n, 0.0) + dark * _COLOUR_WEIGHTS_DARK.get(n, 0.0)
                   for n in names])
    colour = names[rng.choice(len(names), p=cw / cw.sum())]
    (m0, m1), (r0, r1) = HAIR_COLOURS[colour]
    melanin = float(rng.uniform(m0, m1))
    redness = float(rng.uniform(r0, r1))
    grey = _grey_amount(rng, age_years, cfg.grey_age_start, cfg.grey_age_full)

    part_side = rng.choice([-1.0, 0.0, 1.0], p=[0.4, 0.2, 0.4])
    part_x = float(part_side * rng.uniform(0.02, 0.035))
    recession = float(g * np.clip((age_years - 25.0) / 45.0, 0.0, 1.0) * rng.uniform(0.0, 1.0))

    beard = "none"
    if rng.random() < cfg.beard_prob_male * np.clip((g - 0.5) / 0.3, 0.0, 1.0):
        bw = np.asarray(cfg.beard_weights or _BEARD_WEIGHTS, dtype=float)
        bw[0] = 0.0
        beard = BEARDS[rng.choice(len(BEARDS), p=bw / bw.sum())]
    beard_len = {"none": 0.0, "stubble": rng.uniform(0.0012, 0.0025),
                 "moustache": rng.uniform(0.008, 0.016), "goatee": rng.uniform(0.008, 0.025),
                 "chin_strap": rng.uniform(0.004, 0.008), "full": rng.uniform(0.008, 0.035)}[beard]
    brow_shape = BROW_SHAPES[rng.integers(len(BROW_SHAPES))]
    brow_grey_age = age_years - cfg.brow_grey_delay_years
    brow_grey = _grey_amount(rng, brow_grey_age, cfg.grey_age_start, cfg.grey_age_full) * 0.6
    return HairParams(
        style=style,
        colour=colour,
        melanin=melanin,
        redness=redness,
        grey=grey,
        length_scale=float(rng.uniform(0.85, 1.15)),
        density=float(rng.uniform(cfg.density_min, cfg.density_max)),
        part_x_m=part_x,
        recession=recession,
        curl=float(rng.uniform(0.0, 1.0)),
        beard=beard,
        beard_length_m=float(beard_len),
        beard_melanin=float(np.clip(melanin + rng.uniform(-0.08, 0.05), 0.0, 1.0)),
        beard_grey=float(np.clip(grey * rng.uniform(0.9, 1.3), 0.0, 1.0)),
        brow_shape=brow_shape,
        brow_density=float(rng.uniform(0.55, 1.0) * (1.0 - 0.25 * (1.0 - g))),
        brow_melanin=float(np.clip(melanin + rng.uniform(0.0, 0.1), 0.0, 1.0)),
        brow_grey=brow_grey,
        lash_length_m=float(rng.uniform(0.007, 0.0095) + (1.0 - g) * rng.uniform(0.0, 0.002)),
        strand_seed=int(rng.integers(0, 2**31 - 1)),
    )


# ----------------------------------------------------------------------------------------------
# Mesh tables


def _area_points(rng: np.random.Generator, verts: np.ndarray, faces: np.ndarray, face_ids: np.ndarray,
                 n: int) -> tuple[np.ndarray, np.ndarray]:
    """n area-uniform points on the given faces: (face index (n,), barycentric (n, 3))."""
    tri = verts[faces[face_ids]]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    pick = face_ids[rng.choice(len(face_ids), size=n, p=area / area.sum())]
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    return pick.astype(np.int32), np.stack([1.0 - u - v, u, v], axis=1).astype(np.float32)


@dataclass
class _Pool:
    """Root candidates: face (K,), bary (K, 3), neutral head-frame position (K, 3)."""

    face: np.ndarray
    bary: np.ndarray
    neutral: np.ndarray

    def positions(self, verts: np.ndarray, faces: np.ndarray, idx: np.ndarray) -> np.ndarray:
        tri = verts[faces[self.face[idx]]]
        return np.einsum("nk,nkd->nd", self.bary[idx], tri)


def _azimuth_deg(p: np.ndarray, z_centre: float) -> np.ndarray:
    """|angle| about the head's vertical axis, 0 at the face, 180 at the back (degrees)."""
    return np.degrees(np.abs(np.arctan2(p[:, 0], p[:, 2] - z_centre)))


# Scalp hairline: minimum neutral head-frame y by |azimuth| (degrees). The dip at 72-82 degrees
# is the sideburn in front of the ear.
_HAIRLINE_AZ = np.array([0, 30, 42, 55, 64, 70, 74, 80, 84, 92, 104, 120, 150, 180], dtype=float)
_HAIRLINE_Y = np.array([0.071, 0.069, 0.064, 0.052, 0.036, 0.018, -0.012, -0.016, 0.008, 0.014,
                        -0.012, -0.045, -0.068, -0.074])
# How much of the recession each azimuth takes (temples recede most).
_RECESSION_W = np.array([0.6, 0.9, 1.0, 1.0, 0.8, 0.4, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
_RECESSION_M = 0.035
_EAR_MARGIN_M = 0.007
_SHAVED_SHADOW = 0.45  # coverage of a shaved scalp's shadow at melanin 1 (stays < 0.5)


class HairTables:
    """Per-mesh tables, built once from a HumanModel: root pools on the scalp, the beard area
    and the brows, the eyelid rims, and the skin used for collisions."""

    def __init__(self, faces: np.ndarray, face_classes: np.ndarray, parts: np.ndarray,
                 neutral_head: np.ndarray, landmark_indices: np.ndarray) -> None:
        """neutral_head: (V, 3) the neutral mesh in its head frame."""
        rng = np.random.default_rng(_POOL_SEED)
        self.faces = np.asarray(faces, dtype=np.int32)
        self.landmark_indices = np.asarray(landmark_indices)
        v = np.asarray(neutral_head, dtype=np.float64)
        lm = v[self.landmark_indices]
        self.neutral_landmarks = lm
        cls = np.asarray(face_classes)
        head = np.asarray(parts) == "head"
        body = np.asarray(parts) == "body"
        centres = v[self.faces].mean(axis=1)
        head_verts = np.unique(self.faces[head])
        self.z_centre = float(0.5 * (v[head_verts, 2].min() + v[head_verts, 2].max()))

        # Collision skin: head and upper body (no eyes, mouth cavity, hands).
        skin_faces = (head | body) & (centres[:, 1] > -0.55) & (np.abs(centres[:, 0]) < 0.3)
        skin_faces &= np.isin(cls, [int(c) for c in (SegClass.SKIN, SegClass.NOSE, SegClass.RIGHT_EAR,
                                                      SegClass.LEFT_EAR, SegClass.NECK, SegClass.CLOTHING,
                                                      SegClass.TOP_LIP, SegClass.BOTTOM_LIP,
                                                      SegClass.RIGHT_BROW, SegClass.LEFT_BROW)])
        self.collision_faces = self.faces[skin_faces]
        self.collision_verts = np.unique(self.collision_faces)
        scalp_faces = head & np.isin(cls, [int(SegClass.SKIN), int(SegClass.NECK)])
        self.scalp_verts = np.unique(self.faces[scalp_faces & (centres[:, 1] > -0.09)])
        # Dense points on the whole head, for exact clearances under headwear.
        f, b = _area_points(rng, v, self.faces, np.flatnonzero(head & (centres[:, 1] > -0.1)), _DENSE_POOL)
        self.head_dense = _Pool(f, b, np.einsum("nk,nkd->nd", b, v[self.faces[f]]))

        # Scalp pool: anything above the lowest hairline, away from the ears.
        ears = np.unique(self.faces[np.isin(cls, [int(SegClass.RIGHT_EAR), int(SegClass.LEFT_EAR)])])
        ear_tree = cKDTree(v[ears])
        az = _azimuth_deg(centres, self.z_centre)
        low = np.interp(az, _HAIRLINE_AZ, _HAIRLINE_Y) - 0.01
        cand = np.flatnonzero(scalp_faces & (centres[:, 1] > low))
        f, b = _area_points(rng, v, self.faces, cand, _SCALP_POOL)
        pos = np.einsum("nk,nkd->nd", b, v[self.faces[f]])
        keep = ear_tree.query(pos)[0] > _EAR_MARGIN_M
        self.scalp = _Pool(f[keep], b[keep], pos[keep])
        self.scalp_azimuth = _azimuth_deg(pos[keep], self.z_centre)
        # Faces a cap may cover, with the azimuth of each vertex.
        self.cap_faces = cand
        self.vertex_azimuth = _azimuth_deg(v, self.z_centre)
        self.vertex_ear_dist = ear_tree.query(v)[0]
        self.neutral_y = v[:, 1].copy()
        self.neutral_head = v

        # Beard pool: lower face and front of the neck.
        beard_faces = head & np.isin(cls, [int(SegClass.SKIN), int(SegClass.NECK)])
        beard_faces &= (centres[:, 1] < 0.0) & (centres[:, 1] > lm[8, 1] - 0.05)
        beard_faces &= centres[:, 2] > -0.07
        cand = np.flatnonzero(beard_faces)
        f, b = _area_points(rng, v, self.faces, cand, _BEARD_POOL)
        pos = np.einsum("nk,nkd->nd", b, v[self.faces[f]])
        keep = ear_tree.query(pos)[0] > _EAR_MARGIN_M
        self.beard = _Pool(f[keep], b[keep], pos[keep])
        self.beard_faces = cand
        self.beard_masks = {kind: _beard_mask(kind, pos[keep], lm) for kind in BEARDS[1:]}
        # How far each pool point and each mesh vertex lies inside a full beard: the distance to
        # the nearest bare pool point (cheeks above the beard line, the neck below it). The
        # philtrum above the moustache does not count as an edge, so the moustache stays dense
        # up to the nose.
        bare = ~self.beard_masks["full"] & ~_philtrum(pos[keep], lm)
        bare_tree = cKDTree(pos[keep][bare])
        self.beard_depth = bare_tree.query(pos[keep])[0] * self.beard_masks["full"]
        self.beard_vertex_depth = bare_tree.query(v)[0]
        # The same for the narrow kinds, each inside its own area (a moustache thins toward the
        # nose as well as the cheeks).
        self.narrow_beard_depth, self.narrow_beard_vertex_depth = {}, {}
        for kind in NARROW_BEARDS:
            inside = self.beard_masks[kind]
            tree = cKDTree(pos[keep][~inside])
            self.narrow_beard_depth[kind] = tree.query(pos[keep])[0] * inside
            self.narrow_beard_vertex_depth[kind] = tree.query(v)[0]

        # Brow pools: skin within 12 mm of each brow's guide line, in front of the eyes.
        self.brows = {}
        front = head & np.isin(cls, [int(SegClass.SKIN), int(SegClass.RIGHT_BROW), int(SegClass.LEFT_BROW)])
        for key, side in (("brow_r", "r"), ("brow_l", "l")):
            gf, gb = _project_front(v, self.faces, np.flatnonzero(front), brow_guide(lm[:, :2], side))
            guide = _Pool(gf, gb, np.einsum("nk,nkd->nd", gb, v[self.faces[gf]]))
            line = guide.neutral  # medial -> lateral
            d, s, vv = _brow_coords(centres, line)
            near = head & (d < 0.012) & (s > -0.15) & (s < 1.15) & (centres[:, 2] > line[:, 2].min() - 0.01)
            cand = np.flatnonzero(near & np.isin(cls, [int(SegClass.SKIN), int(SegClass.RIGHT_BROW),
                                                       int(SegClass.LEFT_BROW)]))
            f, b = _area_points(rng, v, self.faces, cand, _BROW_POOL)
            pos = np.einsum("nk,nkd->nd", b, v[self.faces[f]])
            _, s, vv = _brow_coords(pos, line)
            self.brows[key] = (_Pool(f, b, pos), s, vv, guide)

        # Eyelid rims: head-skin vertices shared with the eye cavity, ordered medial -> lateral.
        self.lids = {}
        for key, side in (("lash_r", "R"), ("lash_l", "L")):
            self.lids[key] = _lid_rims(self.faces, head, np.asarray(parts) == f"eye_cavity.{side}", v)

    @classmethod
    def from_human(cls, human) -> HairTables:
        inv = np.linalg.inv(human.neutral.head_to_world)
        verts = human.neutral.vertices.astype(np.float64) @ inv[:3, :3].T + inv[:3, 3]
        return cls(human.faces, human.face_classes, np.asarray(human.part_of_face), verts,
                   human.landmark_indices)


def _project_front(verts: np.ndarray, faces: np.ndarray, cand: np.ndarray, xy: np.ndarray):
    """The frontmost point of the faces ``cand`` under each frontal (x, y): face index (K,) and
    barycentric weights (K, 3)."""
    tri = verts[faces[cand]]
    out_f, out_b = [], []
    for p in np.asarray(xy, dtype=float):
        a, b, c = tri[:, 0, :2], tri[:, 1, :2], tri[:, 2, :2]
        v0, v1, v2 = b - a, c - a, p - a
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        den = np.where(np.abs(den) < 1e-12, np.nan, den)
        w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
        w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
        w0 = 1.0 - w1 - w2
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        if not inside.any():
            raise ValueError(f"no face under the frontal point {p}")
        z = np.where(inside, w0 * tri[:, 0, 2] + w1 * tri[:, 1, 2] + w2 * tri[:, 2, 2], -np.inf)
        k = int(np.argmax(z))
        out_f.append(cand[k])
        out_b.append((w0[k], w1[k], w2[k]))
    return np.array(out_f), np.array(out_b)


def _brow_coords(points: np.ndarray, line: np.ndarray):
    """Distance to a brow polyline (K, 3) (medial -> lateral), arc parameter s (0 medial,
    1 lateral; extrapolated past the ends) and signed height v (metres, + up) of (N, 3) points."""
    seg = np.diff(line, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    cum = np.r_[0.0, np.cumsum(seg_len)]
    best = np.full(len(points), np.inf)
    s = np.zeros(len(points))
    vv = np.zeros(len(points))
    for i, (a, ab) in enumerate(zip(line[:-1], seg)):
        t = ((points - a) @ ab) / (ab @ ab)
        lo, hi = (-np.inf if i == 0 else 0.0), (np.inf if i == len(seg) - 1 else 1.0)
        tc = np.clip(t, lo, hi)
        foot = a + tc[:, None] * ab
        d = np.linalg.norm(points - foot, axis=1)
        take = d < best
        best[take] = d[take]
        s[take] = (cum[i] + tc[take] * seg_len[i]) / cum[-1]
        vv[take] = (points[take, 1] - foot[take, 1])
    return best, s, vv


def _lid_rims(faces: np.ndarray, head: np.ndarray, cavity: np.ndarray, verts: np.ndarray) -> dict:
    """Upper and lower eyelid rim vertex chains (medial -> lateral) and, per rim vertex, the
    next vertex outward on the lid skin."""
    head_v = set(np.unique(faces[head]).tolist())
    rim = np.array(sorted(head_v & set(np.unique(faces[cavity]).tolist())))
    p = verts[rim]
    centre = p.mean(axis=0)
    ang = np.arctan2(p[:, 1] - centre[1], p[:, 0] - centre[0])
    order = rim[np.argsort(ang)]
    medial = order[np.argmin(np.abs(verts[order, 0]))]
    lateral = order[np.argmax(np.abs(verts[order, 0]))]
    # Walk the loop both ways between the corners; the upper chain is the one higher up.
    k_m, k_l = int(np.flatnonzero(order == medial)[0]), int(np.flatnonzero(order == lateral)[0])
    n = len(order)
    a = [order[(k_m + i) % n] for i in range((k_l - k_m) % n + 1)]
    b = [order[(k_m - i) % n] for i in range((k_m - k_l) % n + 1)]
    upper, lower = (a, b) if verts[a, 1].mean() > verts[b, 1].mean() else (b, a)
    # Outward neighbour: the adjacent head-skin vertex farthest from the eye centre.
    hf = faces[head]
    outward = {}
    rim_set = set(rim.tolist())
    for r in rim:
        nb = np.unique(hf[(hf == r).any(axis=1)])
        nb = [x for x in nb if x not in rim_set]
        outward[int(r)] = int(nb[np.argmax(np.linalg.norm(verts[nb] - centre, axis=1))])
    return {"upper": np.array(upper), "lower": np.array(lower),
            "upper_out": np.array([outward[int(r)] for r in upper]),
            "lower_out": np.array([outward[int(r)] for r in lower])}


# ----------------------------------------------------------------------------------------------
# Geometry helpers


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


class _Surface:
    """Skin for height queries: heights are along the inverse-distance-weighted normal of the
    k nearest vertices, measured from their weighted mean position. Points farther than
    FAR_M from every vertex count as far (height FAR_M, zero normal)."""

    FAR_M = 0.04

    def __init__(self, verts: np.ndarray, normals: np.ndarray, k: int = 4) -> None:
        self.verts, self.normals, self.k = verts, normals, k
        self.tree = cKDTree(verts)

    def height(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, i = self.tree.query(p, k=self.k, distance_upper_bound=self.FAR_M)
        found = np.isfinite(d)
        i = np.where(found, i, 0)
        w = np.where(found, 1.0 / np.maximum(d, 1e-5) ** 2, 0.0)
        total = w.sum(axis=1, keepdims=True)
        w /= np.maximum(total, 1e-12)
        foot = np.einsum("nk,nkd->nd", w, self.verts[i])
        n = _unit(np.einsum("nk,nkd->nd", w, self.normals[i]))
        h = np.einsum("nd,nd->n", p - foot, n)
        far = total[:, 0] == 0.0
        h[far] = self.FAR_M
        n[far] = 0.0
        return h, n

    def clamp(self, p: np.ndarray, lo, hi) -> np.ndarray:
        """Move (N, 3) points along the skin normal so lo <= height <= hi (scalars or (N,))."""
        h, n = self.height(p)
        return p + (np.clip(h, lo, hi) - h)[:, None] * n


def _resample_to_length(points: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Resample (N, P, 3) polylines to P points over their first ``keep`` (N,) metres."""
    n, p, _ = points.shape
    seg = np.linalg.norm(np.diff(points, axis=1), axis=2)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(seg, axis=1)], axis=1)
    target = np.linspace(0.0, 1.0, p)[None, :] * np.minimum(keep, cum[:, -1])[:, None]
    j = np.clip((cum[:, None, :] < target[:, :, None]).sum(axis=2), 1, p - 1)
    rows = np.arange(n)[:, None]
    c0, c1 = cum[rows, j - 1], cum[rows, j]
    f = ((target - c0) / np.maximum(c1 - c0, 1e-12))[..., None]
    return points[rows, j - 1] * (1.0 - f) + points[rows, j] * f


def _cut_below(points: np.ndarray, y_cut: np.ndarray) -> np.ndarray:
    """Trim (N, P, 3) strands where they first drop below y_cut (N,); resampled to P points."""
    n, p, _ = points.shape
    seg = np.linalg.norm(np.diff(points, axis=1), axis=2)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(seg, axis=1)], axis=1)
    y = points[:, :, 1]
    below = y < y_cut[:, None]
    below[:, 0] = False
    first = np.where(below.any(axis=1), below.argmax(axis=1), p - 1)
    rows = np.arange(n)
    prev = np.maximum(first - 1, 0)
    # Arc length at the crossing, interpolated inside the crossing segment.
    f = np.clip((y[rows, prev] - y_cut) / np.maximum(y[rows, prev] - y[rows, first], 1e-9), 0.0, 1.0)
    keep = np.where(below.any(axis=1), cum[rows, prev] + f * (cum[rows, first] - cum[rows, prev]), cum[:, -1])
    return _resample_to_length(points, np.maximum(keep, 1e-4))


def _perp_frame(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to the (..., 3) unit tangents t."""
    ref = np.where(np.abs(t[..., 1:2]) < 0.9, np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    e1 = _unit(np.cross(t, ref))
    return e1, np.cross(t, e1)


def _add_curl(points: np.ndarray, radius: np.ndarray, period_m: np.ndarray, phase: np.ndarray,
              start: float = 0.1) -> np.ndarray:
    """Coil (N, P, 3) strands in a helix about their smoothed direction; radius (N, P) metres
    (0 where no curl is wanted), period (N,) metres, phase (N,) radians. The coil grows in
    from ``start`` of the length."""
    n, p, _ = points.shape
    smooth = points.copy()
    for _ in range(3):
        smooth[:, 1:-1] = 0.25 * smooth[:, :-2] + 0.5 * smooth[:, 1:-1] + 0.25 * smooth[:, 2:]
    tangent = _unit(np.gradient(smooth, axis=1))
    e1, e2 = _perp_frame(tangent)
    seg = np.linalg.norm(np.diff(points, axis=1), axis=2)
    arc = np.concatenate([np.zeros((n, 1)), np.cumsum(seg, axis=1)], axis=1)
    ang = 2.0 * np.pi * arc / period_m[:, None] + phase[:, None]
    ramp = np.clip((np.linspace(0.0, 1.0, p) - start) / 0.2, 0.0, 1.0)[None, :] * radius
    return points + ramp[..., None] * (np.cos(ang)[..., None] * e1 + np.sin(ang)[..., None] * e2)


def _rotate_min(vec: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotate vectors by the smallest rotation taking unit a onto unit b (broadcasting (..., 3))."""
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1, keepdims=True)
    vo = np.sum(v * vec, axis=-1, keepdims=True)
    return vec * c + np.cross(v, vec) + v * vo / np.maximum(1.0 + c, 1e-6)


# ----------------------------------------------------------------------------------------------
# Styles


@dataclass(frozen=True)
class _Style:
    """How one hairstyle grows. Lengths in metres (before HairParams.length_scale); hug_m is
    the maximum height above the scalp while the strand lies on it (the first hug_until of its
    length); gravity 0..1 takes over after that; volume_m lets tips rise further off the scalp."""

    length_m: tuple
    points: int
    flow: str  # "crown", "part", "radial", "fringe", "tie", "ties", "bun"
    hug_m: float
    hug_until: float
    gravity: float
    stiffness: float
    guides: int
    children: int
    radius_m: float
    clump: float
    curl_radius_m: float = 0.0
    curl_period_m: float = 0.02
    cut: str = ""  # "", "bob", "fringe", "neck"
    volume_m: float = 0.0
    frame_face: bool = False  # hanging hair is kept beside the face


_STYLES = {
    "buzz": _Style((0.003, 0.006), 3, "crown", 0.0025, 1.0, 0.0, 0.3, 250, 9000, 0.00012, 0.0),
    "short": _Style((0.035, 0.065), 10, "crown", 0.010, 1.0, 0.0, 0.55, 400, 6000, 0.00016, 0.35),
    "side_part": _Style((0.08, 0.12), 14, "part", 0.012, 1.0, 0.1, 0.6, 450, 6000, 0.00016, 0.4,
                        frame_face=True),
    "curly": _Style((0.12, 0.17), 36, "part", 0.03, 0.5, 0.5, 0.5, 450, 4000, 0.00022, 0.5,
                    curl_radius_m=0.006, curl_period_m=0.022, cut="neck", volume_m=0.02, frame_face=True),
    "afro": _Style((0.07, 0.09), 28, "radial", 0.06, 1.0, 0.0, 0.6, 450, 4500, 0.00025, 0.45,
                   curl_radius_m=0.005, curl_period_m=0.012, volume_m=0.06),
    "long_straight": _Style((0.34, 0.45), 28, "part", 0.012, 0.25, 0.85, 0.6, 500, 6000, 0.00016, 0.3,
                            frame_face=True),
    "ponytail": _Style((0.30, 0.36), 26, "tie", 0.004, 1.0, 0.8, 0.6, 400, 5500, 0.00016, 0.3),
    "double_tail": _Style((0.22, 0.28), 26, "ties", 0.004, 1.0, 0.8, 0.6, 400, 5500, 0.00016, 0.3),
    "bun": _Style((0.30, 0.30), 30, "bun", 0.004, 1.0, 0.0, 0.6, 400, 5500, 0.00016, 0.2),
    "bob": _Style((0.20, 0.24), 22, "part", 0.012, 0.4, 0.7, 0.6, 500, 6000, 0.00016, 0.3, cut="bob",
                  frame_face=True),
    "fringe": _Style((0.22, 0.28), 22, "fringe", 0.012, 0.4, 0.7, 0.6, 500, 6000, 0.00016, 0.3,
                     cut="fringe", frame_face=True),
    "balding": _Style((0.012, 0.03), 6, "crown", 0.005, 1.0, 0.0, 0.45, 200, 5000, 0.00015, 0.2),
}


# Male-pattern baldness keeps hair only below this line (neutral head-frame y by |azimuth|):
# none at the front and top, a band above the ears and round the back. Recession 0 raises the
# band by _BALDING_RISE_M (Norwood VI), 1 leaves the narrowest (VII).
_BALDING_AZ = np.array([0, 58, 68, 90, 130, 180], dtype=float)
_BALDING_TOP_Y = np.array([-1.0, -1.0, 0.03, 0.05, 0.055, 0.05])
_BALDING_RISE_M = 0.02


def _hair_top_y(az: np.ndarray, recession: float, style: str) -> np.ndarray:
    """Highest neutral head-frame y of the hair at each |azimuth| (degrees); inf for a full head."""
    if style != "balding":
        return np.full(np.shape(az), np.inf)
    return np.interp(az, _BALDING_AZ, _BALDING_TOP_Y) + (1.0 - recession) * _BALDING_RISE_M


def _hairline_y(az: np.ndarray, recession: float, style: str) -> np.ndarray:
    """Lowest neutral head-frame y of the hair at each |azimuth| (degrees)."""
    line = np.interp(az, _HAIRLINE_AZ, _HAIRLINE_Y)
    line = line + recession * _RECESSION_M * np.interp(az, _HAIRLINE_AZ, _RECESSION_W)
    if style in ("bun", "ponytail", "double_tail"):
        line = line + 0.004  # pulled-back hair shows a clean hairline
    return line


def _fringe_roots(az: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """Scalp roots (neutral positions) whose hair forms the fringe: the front of the top."""
    return (az < 50.0) & (neutral[:, 2] > -0.045) & (neutral[:, 1] > 0.045)


def _flow(kind: str, p: np.ndarray, roots_neutral: np.ndarray, params: HairParams,
          anchors: dict) -> np.ndarray:
    """(N, 3) desired growth direction at points p (head frame) for a flow kind."""
    down = np.array([0.0, -1.0, 0.0])
    back = np.array([0.0, 0.0, -1.0])
    if kind == "crown":
        d = p - anchors["crown"]
        d[:, 1] *= 0.3
        return _unit(d) + 0.2 * down
    if kind == "radial":
        return _unit(p - anchors["centre"])
    side = np.sign(roots_neutral[:, 0] - params.part_x_m)
    side[side == 0] = 1.0
    lateral = side[:, None] * np.array([1.0, 0.0, 0.0])
    part = lateral * 0.8 + down * 0.6 + back * (0.15 + 0.5 * np.clip((roots_neutral[:, 2] + 0.02) / 0.05,
                                                                      0.0, 1.0))[:, None]
    if kind == "part":
        return part
    if kind == "fringe":
        fr = anchors["fringe"][:, None]
        fwd = _unit(p - anchors["crown"]) + 0.6 * down
        return fr * fwd + (1.0 - fr) * part
    raise ValueError(kind)


def _face_keep_out(lm: np.ndarray):
    """A function moving (N, 3) points out of the box in front of the face (sideways), so
    hanging hair frames the face instead of covering it. lm: (68, 3) posed landmarks."""
    x_cheek = np.abs(lm[0:17, 0]).max() + 0.01
    x_temple = 0.5 * (abs(lm[17, 0]) + abs(lm[26, 0])) + 0.008
    brow_y = 0.5 * (lm[19, 1] + lm[24, 1])
    top_y = brow_y + 0.035
    z_back = lm[0, 2] + 0.01

    def keep_out(q: np.ndarray, exempt: np.ndarray | None) -> np.ndarray:
        x_lim = np.interp(q[:, 1], [brow_y - 0.01, brow_y + 0.01], [x_cheek, x_temple])
        inside = (q[:, 2] > z_back) & (q[:, 1] < top_y) & (np.abs(q[:, 0]) < x_lim)
        if exempt is not None:
            inside &= ~exempt
        out = q.copy()
        out[inside, 0] = np.where(q[inside, 0] >= 0, 1.0, -1.0) * x_lim[inside]
        return out

    return keep_out


def _march(roots: np.ndarray, normals: np.ndarray, desired, seg: np.ndarray, n_pts: int,
           surf: _Surface, style: _Style, cover: HeadCover | None = None, keep_out=None,
           hug_m: float | None = None, down: np.ndarray = HEAD_DOWN) -> tuple[np.ndarray, np.ndarray]:
    """Grow strands from (N, 3) roots: each step turns toward ``desired(p, t)`` (gravity, along
    ``down``, takes over after the hugging part), keeps above the skin and, while hugging, within
    the hug height of it; under a cover, within its clearance. seg: (N,) step length in metres.

    Returns points (N, P, 3) and the skin normal under each point (N, P, 3).
    """
    n = len(roots)
    pts = np.empty((n, n_pts, 3))
    nrm = np.empty((n, n_pts, 3))
    pts[:, 0], nrm[:, 0] = roots, normals
    hug = style.hug_m if hug_m is None else hug_m
    p, n_prev, h_prev = roots.copy(), normals.copy(), np.zeros(n)
    d = _unit(_unit(desired(p, 0.0)) + 0.5 * normals)
    for k in range(1, n_pts):
        t = k / (n_pts - 1)
        g = style.gravity * np.clip((t - style.hug_until * 0.6) / 0.4, 0.0, 1.0)
        if cover is not None and cover.sweep_back:  # the band holds the hair in front of it
            g = np.where(cover.holds(p), 0.0, g)[:, None]
        want = _unit(desired(p, t)) * (1.0 - g) + g * down
        inward = np.minimum((want * n_prev).sum(axis=1), 0.0)
        want = np.where((h_prev < 0.02)[:, None], want - inward[:, None] * n_prev, want)
        d = _unit(style.stiffness * d + (1.0 - style.stiffness) * _unit(want))
        q = p + seg[:, None] * d
        if keep_out is not None:
            q = keep_out(q)
        h, nq = surf.height(q)
        hi = np.full(n, hug + style.volume_m * t if t <= style.hug_until else np.inf)
        if cover is not None:
            hi = np.where(cover.holds(q), np.minimum(hi, cover.max_offset_m - 0.001), hi)
        lo = _LO_M + 0.002 * t
        h_new = np.clip(h, lo, hi)
        q = q + (h_new - h)[:, None] * nq
        far = ~nq.any(axis=1)
        n_prev = np.where(far[:, None], n_prev, nq)
        h_prev = h_new
        d = _unit(np.where((np.linalg.norm(q - p, axis=1) > 1e-9)[:, None], q - p, d))
        pts[:, k], nrm[:, k] = q, n_prev
        p = q
    return pts, nrm


def _children(rng: np.random.Generator, guides: np.ndarray, guide_normals: np.ndarray,
              guide_roots_n: np.ndarray, child_roots: np.ndarray, child_roots_n: np.ndarray,
              clump: float) -> np.ndarray:
    """Child strands: the blend of their 3 nearest guides (by neutral root position), offset to
    their own root with the offset turned as the skin normal turns along the nearest guide (so
    children stay at their guides' height over a curved scalp), pulled toward the nearest guide
    toward the tips (clumps)."""
    d, i = cKDTree(guide_roots_n).query(child_roots_n, k=3)
    rel = guides[i] - guides[i][:, :, :1]
    # Guides whose shape differs from the nearest one's (across a parting or a whorl) do not
    # blend: their average would cut through the head.
    differ = np.linalg.norm(rel - rel[:, :1], axis=3).max(axis=2)
    w = np.exp(-((differ / 0.01) ** 2)) / np.maximum(d, 1e-4) ** 2
    w /= w.sum(axis=1, keepdims=True)
    blend = np.einsum("nk,nkpd->npd", w, guides[i])
    near = i[:, 0]
    offset = (child_roots - blend[:, 0])[:, None, :]
    turned = _rotate_min(offset, guide_normals[near, :1], guide_normals[near])
    base = blend + turned
    t = np.linspace(0.0, 1.0, guides.shape[1])[None, :, None]
    amount = clump * rng.uniform(0.5, 1.0, size=(len(child_roots), 1, 1))
    target = guides[near] + rng.normal(0.0, 0.0012, size=(len(child_roots), 1, 3)) * t
    return base + amount * t ** 0.8 * (target - base)


# ----------------------------------------------------------------------------------------------
# Scalp hair


def _scalp_strands(params: HairParams, verts: np.ndarray, normals: np.ndarray, tables: HairTables,
                   surf: _Surface, rng: np.random.Generator, cover: HeadCover | None,
                   down: np.ndarray = HEAD_DOWN) -> tuple[Strands | None, CapMesh | None]:
    style = _STYLES.get(params.style)
    if style is None:
        return None, None
    pool = tables.scalp
    az = tables.scalp_azimuth
    y = pool.neutral[:, 1]
    active = np.flatnonzero((y > _hairline_y(az, params.recession, params.style))
                            & (y < _hair_top_y(az, params.recession, params.style)))
    n_child = int(style.children * params.density)
    g_idx = rng.choice(active, size=min(style.guides, len(active)), replace=False)
    c_idx = rng.choice(active, size=min(n_child, len(active)), replace=False)
    if style.flow == "fringe":  # bangs need to be thick
        front = active[_fringe_roots(az[active], pool.neutral[active])]
        c_idx = np.concatenate([c_idx, rng.choice(front, size=min(n_child // 4, len(front)), replace=False)])
    g_roots = pool.positions(verts, tables.faces, g_idx)
    g_norm = surf.height(g_roots)[1]
    gn = pool.neutral[g_idx]
    lm = verts[tables.landmark_indices]
    scalp = verts[tables.scalp_verts]
    top, back = scalp[:, 1].max(), scalp[:, 2].min()
    anchors = {"crown": np.array([0.0, top - 0.045, back + 0.055]),
               "centre": np.array([0.0, top - 0.09, 0.5 * (back + lm[27, 2])])}

    if style.flow in ("tie", "ties", "bun"):
        guides, g_nrm = _tied(style, params, g_roots, g_norm, gn, verts, tables, surf, rng, cover, down)
    else:
        exempt = None
        if style.flow == "fringe":
            exempt = _fringe_roots(az[g_idx], gn)
            anchors["fringe"] = exempt.astype(float)
        keep = None
        if style.frame_face:
            box = _face_keep_out(lm)

            def keep(q):
                return box(q, exempt)

        def desired(p, t):
            return _flow(style.flow, p, gn, params, anchors)

        if cover is not None and cover.sweep_back:
            desired, swept = _swept_back(desired, cover, g_roots)
            if exempt is not None:
                exempt = exempt & ~swept

        lengths = rng.uniform(*style.length_m, size=len(g_idx)) * params.length_scale
        guides, g_nrm = _march(g_roots, g_norm, desired, lengths / (style.points - 1), style.points, surf,
                               style, cover, keep, down=down)
        jitter = rng.normal(0.0, 1.0, len(g_idx))
        if style.cut == "bob":
            guides = _cut_below(guides, lm[8, 1] + 0.012 + 0.003 * jitter)
        elif style.cut == "fringe":
            y_cut = np.where(anchors["fringe"] > 0, 0.5 * (lm[19, 1] + lm[24, 1]) + 0.01, lm[8, 1] - 0.03)
            guides = _cut_below(guides, y_cut + 0.002 * jitter)
        elif style.cut == "neck":
            guides = _cut_below(guides, lm[8, 1] + 0.01 + 0.01 * jitter)

    c_roots = pool.positions(verts, tables.faces, c_idx)
    pts = _children(rng, guides, g_nrm, gn, c_roots, pool.neutral[c_idx], style.clump)
    if style.curl_radius_m > 0:
        near = cKDTree(gn).query(pool.neutral[c_idx])[1]
        phase = rng.uniform(0.0, 2.0 * np.pi, len(g_idx))[near] + rng.normal(0.0, 0.5, len(c_idx))
        curl = 0.5 + params.curl
        radius = np.repeat((style.curl_radius_m * curl * rng.uniform(0.7, 1.2, len(c_idx)))[:, None],
                           pts.shape[1], axis=1)
        if cover is not None:  # no curls under headwear
            radius[dataclasses.replace(cover, plane_offset=cover.plane_offset - 0.01).holds(pts)] = 0.0
        pts = _add_curl(pts, radius, style.curl_period_m * rng.uniform(0.8, 1.2, len(c_idx)) / curl ** 0.5,
                        phase)
    t = np.linspace(0.0, 1.0, pts.shape[1])
    strands = Strands(pts.astype(np.float32), (style.radius_m * (1.0 - 0.6 * t ** 2)).astype(np.float32))
    if cover is not None:
        dense = tables.head_dense.positions(verts, tables.faces, np.arange(len(tables.head_dense.face)))
        _apply_cover(strands, cover, surf, dense)
    return strands, _scalp_cap(params, verts, normals, tables)


def _swept_back(desired, cover: HeadCover, roots: np.ndarray):
    """A style's ``desired`` flow under a band (``cover.sweep_back``): guides rooted in front of
    it (``swept``, returned) grow straight back over it, keeping a little of their own sideways
    flow; the others may not grow toward the face once within 2 cm behind it."""
    normal = np.asarray(cover.plane_normal, dtype=np.float64)
    swept = cover.holds(roots)

    def combed(p, t):
        d = _unit(desired(p, t))
        near = (p @ normal > cover.plane_offset - 0.02)[:, None]
        d = np.where(near & ~swept[:, None], d - np.maximum(d @ normal, 0.0)[:, None] * normal, d)
        return np.where(swept[:, None], -normal + 0.3 * d * np.array([1.0, 0.0, 0.0]), d)

    return combed, swept


def _tied(style: _Style, params: HairParams, roots, normals, roots_n, verts, tables: HairTables,
          surf: _Surface, rng, cover, down: np.ndarray = HEAD_DOWN):
    """Guides of hair gathered at a tie: combed flat over the scalp to the tie, then a hanging
    tail (ponytail, two tails) or wound into a bun. Returns points and skin normals."""
    scalp = verts[tables.scalp_verts]
    top, back, half = scalp[:, 1].max(), scalp[:, 2].min(), scalp[:, 0].max()
    n = len(roots)
    if style.flow == "bun":
        ties = np.array([[0.0, top - 0.012, back + 0.045]])
    elif style.flow == "tie":
        ties = np.array([[0.0, top - 0.055, back + 0.004]])
    else:
        ties = np.array([[-half + 0.012, top - 0.075, back + 0.07], [half - 0.012, top - 0.075, back + 0.07]])
    tie_h, tie_n = surf.height(ties)
    ties = ties + (0.004 - tie_h)[:, None] * tie_n  # just above the scalp
    which = np.zeros(n, dtype=int) if len(ties) == 1 else (roots_n[:, 0] > 0).astype(int)
    tie = ties[which]
    n1 = 10
    dist = np.linalg.norm(tie - roots, axis=1) * 1.25 + 1e-3

    def desired(p, t):
        return tie - p

    path, path_n = _march(roots, normals, desired, dist / (n1 - 1), n1, surf,
                          dataclasses.replace(style, gravity=0.0, stiffness=0.3, volume_m=0.0), cover)
    path[:, -1] = tie + rng.normal(0.0, 0.002, (n, 3))
    n2 = style.points - n1
    s = np.linspace(0.0, 1.0, n2 + 1)[1:]
    if style.flow == "bun":
        r = 0.028 * params.length_scale ** 0.5
        centre = ties[0] + tie_n[0] * r * 0.9
        e1 = _unit(path[:, -1] - centre)
        e2 = _unit(np.cross(e1, rng.normal(size=(n, 3))))
        ang = s[None, :] * rng.uniform(1.2, 2.0, (n, 1)) * np.pi
        rad = r * rng.uniform(0.75, 1.05, (n, 1))
        tail = centre + rad[..., None] * (np.cos(ang)[..., None] * e1[:, None] + np.sin(ang)[..., None] * e2[:, None])
    else:
        # One centre line per tie, hanging and pushed off the head and back; strands spread around it.
        length = style.length_m[1] * params.length_scale
        centre = np.empty((len(ties), n2, 3))
        p, d = ties.copy(), _unit(tie_n + 0.3 * down)
        for k in range(n2):
            d = _unit(0.75 * d + 0.25 * down)
            p = surf.clamp(p + d * length / n2, 0.02, np.inf)
            centre[:, k] = p
        tail_len = rng.uniform(0.8, 1.0, (n, 1, 1))
        spread = rng.normal(0.0, 1.0, (n, 1, 3)) * (0.006 + 0.02 * s[None, :, None])
        tail = tie[:, None] + (centre[which] - ties[which][:, None]) * tail_len + spread
        tail = _collide(tail, surf)
    tail_n = np.repeat(path_n[:, -1:], n2, axis=1)
    return np.concatenate([path, tail], axis=1), np.concatenate([path_n, tail_n], axis=1)


def _collide(pts: np.ndarray, surf: _Surface, lo: float = _LO_M) -> np.ndarray:
    """Push (N, P, 3) points out of the skin."""
    flat = surf.clamp(pts.reshape(-1, 3), lo, np.inf)
    return flat.reshape(pts.shape)


def _cap_from_faces(verts: np.ndarray, normals: np.ndarray, faces: np.ndarray, cover: np.ndarray) -> CapMesh:
    """Shell over mesh faces (F, 3), offset along the vertex normals; cover: (V,) per mesh vertex."""
    used = np.unique(faces)
    remap = np.full(len(verts), -1, dtype=np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    v = verts[used] + _CAP_OFFSET_M * normals[used]
    return CapMesh(v.astype(np.float32), remap[faces], cover[used].astype(np.float32))


def _scalp_cap(params: HairParams, verts, normals, tables: HairTables) -> CapMesh | None:
    line = _hairline_y(tables.vertex_azimuth, params.recession, params.style)
    top = _hair_top_y(tables.vertex_azimuth, params.recession, params.style)
    # Opaque from 12 mm above the hairline, fading to nothing at it (and at a balding head's
    # upper line); clear of the ears.
    cover = np.clip((tables.neutral_y - line) / 0.012, 0.0, 1.0)
    cover *= np.clip((top - tables.neutral_y) / 0.012, 0.0, 1.0)
    cover *= np.clip((tables.vertex_ear_dist - _EAR_MARGIN_M) / 0.006, 0.0, 1.0)
    faces = tables.faces[tables.cap_faces]
    faces = faces[(cover[faces] > 0).any(axis=1)]
    if not len(faces):
        return None
    return _cap_from_faces(verts, normals, faces, cover)


def _shaved_shadow(params: HairParams, verts, normals, tables: HairTables) -> CapMesh | None:
    """A shaved scalp still shows the hair under the skin: a faint hair-coloured cap over the
    hair area (darker hair, stronger shadow; none once grey). Its class is SKIN, and its
    coverage stays below Cycles' pass alpha threshold (0.5), so the skin under it writes the mask."""
    amount = _SHAVED_SHADOW * params.melanin * (1.0 - params.grey)
    cap = _scalp_cap(params, verts, normals, tables) if amount >= 0.02 else None
    if cap is None:
        return None
    return dataclasses.replace(cap, coverage=(cap.coverage * amount).astype(np.float32))


# ----------------------------------------------------------------------------------------------
# Beards, brows, lashes


def _philtrum(pos: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Beard-pool points (neutral head frame) between the upper lip and the nose, over the
    moustache's width."""
    corner_x = 0.5 * (abs(lm[48, 0]) + abs(lm[54, 0]))
    return (np.abs(pos[:, 0]) < corner_x + 0.004) & (pos[:, 1] > lm[51, 1] - 0.002) & (pos[:, 1] < lm[33, 1] + 0.01)


def beard_edge_fade(depth_m: np.ndarray, fade_m: float | None = None) -> np.ndarray:
    """A beard's density, 0..1, at ``depth_m`` inside its edge: it thins over the outer
    ``fade_m`` (a full beard's BEARD_EDGE_FADE_M along the cheek line and the neck; the narrow
    kinds' NARROW_BEARD_FADE_M all round) (smoothstep), to BEARD_EDGE_DENSITY at the edge
    itself, as a real beard does rather than ending on a drawn line."""
    fade_m = BEARD_EDGE_FADE_M if fade_m is None else fade_m
    t = np.clip(np.asarray(depth_m, dtype=np.float64) / fade_m, 0.0, 1.0)
    return BEARD_EDGE_DENSITY + (1.0 - BEARD_EDGE_DENSITY) * t * t * (3.0 - 2.0 * t)


def _beard_mask(kind: str, pos: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Which beard-pool points (neutral head frame (N, 3); lm (68, 3) neutral landmarks) a beard
    kind covers ("stubble" covers the full-beard area)."""
    x, y, z = pos.T
    ax = np.abs(x)
    corner_x = 0.5 * (abs(lm[48, 0]) + abs(lm[54, 0]))
    nose_y, lip_top_y, lip_low_y, chin_y = lm[33, 1], lm[51, 1], lm[57, 1], lm[8, 1]
    jaw = lm[0:17]
    d_jaw = _brow_coords(pos, jaw)[0]
    jaw_y = np.interp(x, jaw[:, 0], jaw[:, 1])
    sideburn_x = abs(lm[0, 0])
    # Upper edge of a full beard: from the mouth corner up the cheek to the sideburn.
    cheek_y = np.interp(ax, [corner_x + 0.003, corner_x + 0.012, 0.055, sideburn_x - 0.005, sideburn_x + 0.02],
                        [lip_top_y + 0.004, nose_y - 0.012, lm[0, 1] - 0.04, lm[0, 1] - 0.02, lm[0, 1] - 0.008])
    neck_ok = (y > chin_y - 0.045) & ((y > jaw_y - 0.035) | (z > -0.03))
    moustache = (y < nose_y - 0.003) & (y > lip_top_y - 0.001) & (ax < corner_x + 0.006) & (z > lm[48, 2] - 0.006)
    if kind == "moustache":
        return moustache
    chin = (ax < 0.022) & (y < lip_low_y - 0.004) & (y > chin_y - 0.02) & (z > -0.02)
    ring = (ax > corner_x - 0.006) & (ax < corner_x + 0.008) & (y < lip_top_y) & (y > chin_y) & (z > -0.01)
    if kind == "goatee":
        return moustache | chin | ring
    if kind == "chin_strap":
        return (d_jaw < 0.009) & (y < lm[0, 1] + 0.01) & neck_ok
    return ((y < cheek_y) & neck_ok & (ax < sideburn_x + 0.02)) | moustache


def beard_area_weights(verts_head: np.ndarray, faces: np.ndarray, face_classes: np.ndarray,
                       lm: np.ndarray, smoothing: int = 2) -> np.ndarray:
    """(V,) float32 in [0, 1]: where a full beard grows, per vertex of the neutral mesh (head
    frame, metres; lm the neutral iBUG-68 landmarks), for the skin shader's shaved-beard shadow.

    The full beard's area (``_beard_mask``) on the skin and neck, with its edge
    softened over ``smoothing`` rings of neighbours; vertices of the lips and of anything but
    skin and neck stay 0, so the shadow never tints the vermilion.
    """
    n = len(verts_head)
    on_skin = np.isin(face_classes, [int(SegClass.SKIN), int(SegClass.NECK)])
    allowed = np.zeros(n, dtype=bool)
    allowed[faces[on_skin].ravel()] = True
    allowed[faces[~on_skin].ravel()] = False  # border vertices (lips, ears, hairline) stay bare
    weight = (_beard_mask("full", verts_head, lm) & allowed).astype(np.float64)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    keep = allowed.astype(np.float64)

    def ring_sum(values: np.ndarray) -> np.ndarray:
        total = values.copy()
        np.add.at(total, edges[:, 0], values[edges[:, 1]])
        np.add.at(total, edges[:, 1], values[edges[:, 0]])
        return total

    # Averaged over allowed neighbours only, so a narrow strip (the upper lip between nose and
    # lips) keeps its full weight and only the edge toward bare skin softens.
    count = np.maximum(ring_sum(keep), 1.0)
    for _ in range(smoothing):
        weight = ring_sum(weight * keep) / count
    return (weight * keep).astype(np.float32)


_BEARD_COUNTS = {"stubble": 9000, "moustache": 1500, "goatee": 3000, "chin_strap": 2500, "full": 6000}
# A full beard thins over its outer 12 mm to a fifth of its density at the edge; its cap (the
# opaque hair-coloured shell under the strands) fades the same way, and lets more skin through
# as the beard greys (white hair is translucent): at beard_grey 1 it covers 30 % less, which
# keeps its middle above Cycles' pass alpha threshold (0.5), so the mask still says BEARD there.
BEARD_EDGE_FADE_M = 0.012
BEARD_EDGE_DENSITY = 0.2
# A moustache, goatee or chin strap is 1-2 cm across: it thins over its outer 4 mm all round,
# and its cap greys translucent as a full beard's does.
NARROW_BEARDS = ("moustache", "goatee", "chin_strap")
NARROW_BEARD_FADE_M = 0.004
BEARD_CAP_COVER = 0.8
BEARD_CAP_GREY_DROP = 0.3


def _beard(params: HairParams, verts, normals, tables: HairTables, surf: _Surface, rng):
    if params.beard == "none":
        return None, None
    pool = tables.beard
    stubble = params.beard == "stubble"
    active = np.flatnonzero(tables.beard_masks[params.beard])
    wanted = int(_BEARD_COUNTS[params.beard] * params.density)
    if params.beard in NARROW_BEARDS:
        # Each pool point keeps a root with a chance that falls toward the edge: a narrow beard
        # wants most of its small pool (a moustache more than all of it), so a weighted choice
        # of that many points could not thin the edge.
        fade = beard_edge_fade(tables.narrow_beard_depth[params.beard][active], NARROW_BEARD_FADE_M)
        idx = active[rng.random(len(active)) < fade * min(wanted / fade.sum(), 1.0)]
    else:
        weight = None
        if params.beard == "full":
            weight = beard_edge_fade(tables.beard_depth[active])
            weight /= weight.sum()
        idx = rng.choice(active, size=min(wanted, len(active)), replace=False, p=weight)
    roots = pool.positions(verts, tables.faces, idx)
    _, n = surf.height(roots)
    lengths = params.beard_length_m * rng.uniform(0.6, 1.2, len(idx))
    down = np.array([0.0, -1.0, 0.0])
    rn = pool.neutral[idx]
    lateral = np.sign(rn[:, 0])[:, None] * np.array([1.0, 0.0, 0.0])
    in_moustache = tables.beard_masks["moustache"][idx][:, None]
    want = down + np.where(in_moustache, 0.6 * lateral, 0.0) + 0.15 * rng.normal(size=(len(idx), 3))
    tang = _unit(want - (want * n).sum(axis=1, keepdims=True) * n)
    grow = _unit(tang + (0.35 if stubble else 0.25) * n)
    npts = 3 if stubble else 6
    t = np.linspace(0.0, 1.0, npts)[None, :, None]
    if stubble:
        pts = roots[:, None] + t * lengths[:, None, None] * grow[:, None]
    else:
        # Lies along the skin, bending further down toward the tip.
        d = grow[:, None] * (1.0 - 0.5 * t) + 0.5 * t * _unit(0.5 * tang + down)[:, None]
        step = lengths[:, None, None] / (npts - 1)
        pts = roots[:, None] + np.cumsum(d * step, axis=1) - d[:, :1] * step
        pts[:, 2:] = _collide(pts[:, 2:], surf, 0.001)
    radius = (0.00004 if stubble else 0.00009) * (1.0 - 0.5 * np.linspace(0.0, 1.0, npts) ** 2)
    cap = None
    if not stubble:
        faces_used = np.unique(pool.face[active])
        faces = tables.faces[faces_used]
        # Vertices on the edge of the beard area (not all their faces bearded) are transparent.
        counts = np.bincount(faces.ravel(), minlength=len(verts))
        all_counts = np.bincount(tables.faces.ravel(), minlength=len(verts))
        cover = np.where(counts >= all_counts, BEARD_CAP_COVER, 0.0) * (1.0 - BEARD_CAP_GREY_DROP * params.beard_grey)
        if params.beard == "full":
            cover *= beard_edge_fade(tables.beard_vertex_depth)
        else:
            cover *= beard_edge_fade(tables.narrow_beard_vertex_depth[params.beard], NARROW_BEARD_FADE_M)
        cap = _cap_from_faces(verts, normals, faces, cover)
    return Strands(pts.astype(np.float32), radius.astype(np.float32)), cap


_BROW_COUNT_SCALE = 1.8
BROW_STRAND_RADIUS_M = 0.000075
_BROW_SPECS = {
    # arch (m, the middle's rise over the mean shape's), arch peak s, thickness medial / lateral (m),
    # strand count, length (m)
    "straight": (-0.0015, 0.5, 0.0085, 0.0050, 260, 0.0075),
    "soft_arch": (0.0000, 0.6, 0.0080, 0.0040, 240, 0.0075),
    "high_arch": (0.0020, 0.6, 0.0075, 0.0030, 220, 0.007),
    "rounded": (0.0010, 0.45, 0.0080, 0.0045, 240, 0.0075),
    "thin": (0.0005, 0.6, 0.0045, 0.0025, 150, 0.006),
    "bushy": (0.0000, 0.5, 0.0105, 0.0070, 340, 0.009),
}


def _brows(params: HairParams, verts, surf: _Surface, tables: HairTables, rng) -> dict:
    arch, peak, w_med, w_lat, count, length = _BROW_SPECS[params.brow_shape]
    out = {}
    for key, (pool, s, v, guide) in tables.brows.items():
        width = np.interp(s, [0.0, 0.25, 1.0], [w_med * 0.9, w_med, w_lat])
        # The guide is the brow's upper edge; the shape's arch is relative to the mean shape's.
        centre_v = arch * np.clip(1.0 - ((s - peak) / np.where(s < peak, peak, 1.0 - peak)) ** 2, -1.0, 1.0)
        centre_v -= 0.5 * width
        cand = np.flatnonzero((np.abs(v - centre_v) < 0.6 * width) & (s > -0.02) & (s < 1.05))
        n = min(int(_BROW_COUNT_SCALE * count * (0.4 + 0.6 * params.brow_density)), len(cand))
        # Roots thin out toward the brow's upper and lower margins and along its tail, so the
        # brow has no drawn outline: a few stray hairs sit just outside its band.
        rel_c = (v[cand] - centre_v[cand]) / (0.5 * width[cand])
        density = np.exp(-(np.abs(rel_c) / 0.85) ** 4) * np.interp(s[cand], [0.0, 0.7, 1.05], [0.8, 1.0, 0.3])
        idx = rng.choice(cand, size=n, replace=False, p=density / density.sum())
        roots = pool.positions(verts, tables.faces, idx)
        _, nrm = surf.height(roots)
        line = guide.positions(verts, tables.faces, np.arange(len(guide.face)))
        along = np.gradient(line, axis=0)
        si = np.clip(s[idx], 0.0, 1.0) * (len(line) - 1)
        lo = np.floor(si).astype(int).clip(0, len(line) - 2)
        f = (si - lo)[:, None]
        e_s = _unit(along[lo] * (1 - f) + along[lo + 1] * f)
        e_s = _unit(e_s - (e_s * nrm).sum(1, keepdims=True) * nrm)
        e_v = _unit(np.cross(nrm, e_s))
        e_v *= np.sign(e_v[:, 1:2] + 1e-9)
        rel = (v[idx] - centre_v[idx]) / (0.5 * width[idx])  # -1 bottom .. 1 top of the brow
        sm = s[idx][:, None]
        medial = np.clip(1.0 - sm / 0.18, 0.0, 1.0)
        # Medial hairs point up; the rest point lateral, converging on the brow's centre line.
        d = (1 - medial) * (e_s - 0.35 * rel[:, None] * e_v) + medial * (e_v + 0.3 * e_s)
        d = _unit(d + 0.1 * rng.normal(size=d.shape))
        d = _unit(d - (d * nrm).sum(1, keepdims=True) * nrm + 0.25 * nrm)
        ln = length * rng.uniform(0.6, 1.1, n) * (1.0 - 0.35 * np.clip(sm[:, 0] - 0.5, 0, 1))
        t = np.linspace(0.0, 1.0, 5)[None, :, None]
        pts = roots[:, None] + t * ln[:, None, None] * d[:, None] - (t ** 2 * 0.3 * ln[:, None, None]) * nrm[:, None]
        pts[:, 1:] = _collide(pts[:, 1:], surf, 0.0004)
        radius = BROW_STRAND_RADIUS_M * (1.0 - 0.6 * np.linspace(0, 1, 5))
        out[key] = Strands(pts.astype(np.float32), radius.astype(np.float32))
    return out


def brow_band(params: HairParams, tables: HairTables) -> dict:
    """The skin shader's brow band for one sample's brows: where its brow hairs lie on the
    neutral head (the frame of ``rf_rest``), so the skin darkens under the hairs and not beside
    them whatever the brow's shape.

    The hairs are grown on the neutral mesh with the sample's strand seed; the band's centre line
    is a quadratic y = c0 + c1 |x| + c2 x^2 through their points (both brows), x0 and x1
    the |x| of the brow's head and tail, w0 and w1 its half-width at head and tail: the spread of
    the hair points about the centre line over the medial and lateral thirds. Head frame metres.
    The line is fitted to the hairs' median height in 12 slices along the brow.
    """
    verts = tables.neutral_head
    coll = tables.collision_verts
    surf = _Surface(verts[coll], vertex_normals(verts, tables.faces)[coll])
    seeds = np.random.default_rng(params.strand_seed).integers(0, 2**31 - 1, size=4)
    brows = _brows(params, verts, surf, tables, np.random.default_rng(seeds[2]))
    pts = np.concatenate([s.points.reshape(-1, 3) for s in brows.values()])
    ax, y = np.abs(pts[:, 0]), pts[:, 1]
    x0, x1 = np.percentile(ax, [BROW_BAND_END_PCT, 100.0 - BROW_BAND_END_PCT])
    # Through the median height of the hairs in narrow slices along the brow, so the line runs
    # through their middle rather than leaning toward where most points are.
    edges = np.linspace(x0, x1, 13)
    slot = np.digitize(ax, edges[1:-1])
    mid_x = np.array([np.median(ax[slot == i]) for i in range(12)])
    mid_y = np.array([np.median(y[slot == i]) for i in range(12)])
    c2, c1, c0 = np.polyfit(mid_x, mid_y, 2)
    off = np.abs(y - np.polyval((c2, c1, c0), ax))
    third = (x1 - x0) / 3.0
    w0 = np.percentile(off[ax < x0 + third], BROW_BAND_SPREAD_PCT)
    w1 = np.percentile(off[ax > x1 - third], BROW_BAND_SPREAD_PCT)
    return {"brow_c0": float(c0), "brow_c1": float(c1), "brow_c2": float(c2), "brow_x0": float(x0),
            "brow_x1": float(x1), "brow_w0": float(w0), "brow_w1": float(w1)}


# The band runs between these percentiles of the hair points' |x| and is as wide as this
# percentile of their distance from its centre line (the stray hairs outside stay bare skin).
BROW_BAND_END_PCT = 3.0
BROW_BAND_SPREAD_PCT = 80.0


def _lashes(params: HairParams, verts, normals, tables: HairTables, rng) -> dict:
    out = {}
    for key, rims in tables.lids.items():
        strands = []
        for lid, count, scale in (("upper", 110, 1.0), ("lower", 40, 0.45)):
            chain, outward = rims[lid], rims[f"{lid}_out"]
            u = np.sort(rng.uniform(0.06, 0.97, count))
            pos = u * (len(chain) - 1)
            i0 = np.floor(pos).astype(int).clip(0, len(chain) - 2)
            f = (pos - i0)[:, None]
            rim = verts[chain[i0]] * (1 - f) + verts[chain[i0 + 1]] * f
            out_p = verts[outward[i0]] * (1 - f) + verts[outward[i0 + 1]] * f
            root = 0.6 * rim + 0.4 * out_p
            away = _unit(out_p - rim)  # across the lid, away from the eye opening
            nrm = _unit(normals[chain[i0]] * (1 - f) + normals[chain[i0 + 1]] * f)
            # Longest over the outer half of the lid.
            ln = params.lash_length_m * scale * (0.55 + 0.45 * np.sin(np.pi * np.clip(u * 1.1, 0, 1)))
            ln *= rng.uniform(0.85, 1.1, count)
            t = np.linspace(0.0, 1.0, 5)[None, :, None]
            lateral = np.sign(verts[chain[-1], 0] - verts[chain[0], 0]) * np.array([1.0, 0.0, 0.0])
            d0 = _unit(nrm - 0.15 * away + 0.15 * lateral * u[:, None])
            curl = _unit(away + 0.2 * nrm)
            strands.append(root[:, None] + ln[:, None, None] * (t * d0[:, None] + 0.55 * t ** 2 * curl[:, None]))
        radius = 0.000065 * (1.0 - 0.7 * np.linspace(0, 1, 5))
        out[key] = Strands(np.concatenate(strands).astype(np.float32), radius.astype(np.float32))
    return out


def _apply_cover(strands: Strands, cover: HeadCover, surf: _Surface, dense: np.ndarray) -> None:
    """Flatten points under the headwear to within cover.max_offset_m of the scalp.

    dense: (M, 3) points densely covering the head skin; the final clearance is measured to
    them (a point's distance to its nearest dense point bounds its distance to the skin).
    """
    flat = strands.points.astype(np.float64).reshape(-1, 3)
    under = cover.holds(flat)
    if not under.any():
        return
    top = max(cover.max_offset_m - 0.0008, 0.0)
    pts = flat[under]
    h, n = surf.height(pts)
    far = ~n.any(axis=1)
    if far.any():  # far off the skin (a bun): onto the nearest vertex
        i = surf.tree.query(pts[far])[1]
        pts[far] = surf.verts[i] + top * surf.normals[i]
    near = ~far
    pts[near] += (np.clip(h[near], 0.0, top) - h[near])[:, None] * n[near]
    d, i = cKDTree(dense).query(pts)
    over = d > top
    pts[over] = dense[i[over]] + (pts[over] - dense[i[over]]) * (top / d[over])[:, None]
    flat[under] = pts
    strands.points = flat.reshape(strands.points.shape).astype(np.float32)


def world_down_in_head(head_to_world: np.ndarray) -> np.ndarray:
    """The world's down direction (-Z, Blender's up axis is Z) in the head frame of a (4, 4)
    head-to-world transform: the direction hanging hair falls."""
    down = np.linalg.solve(np.asarray(head_to_world, dtype=np.float64)[:3, :3], [0.0, 0.0, -1.0])
    return _unit(down)


def hair_strands(params: HairParams, verts_head: np.ndarray, tables: HairTables,
                 cover: HeadCover | None = None, down=HEAD_DOWN) -> dict:
    """Strand curves (and caps) of one sample.

    verts_head: (V, 3) the sample's posed mesh in its head frame (metres). down: the world's
    down direction in the head frame (``world_down_in_head``); hanging hair falls along it.
    Returns kind -> Strands for "hair", "beard", "brow_r", "brow_l", "lash_r", "lash_l" and
    kind -> CapMesh for "hair_cap", "scalp_shadow" (a bald head's), "beard_cap"; a missing key
    means nothing of that kind.
    With a cover, hair above its plane stays within cover.max_offset_m of the scalp.
    """
    rng = np.random.default_rng(params.strand_seed)
    seeds = rng.integers(0, 2**31 - 1, size=4)
    verts = np.asarray(verts_head, dtype=np.float64)
    normals = vertex_normals(verts, tables.faces)
    coll = tables.collision_verts
    surf = _Surface(verts[coll], normals[coll])
    out: dict = {}
    down = _unit(np.asarray(down, dtype=np.float64))
    hair, cap = _scalp_strands(params, verts, normals, tables, surf, np.random.default_rng(seeds[0]), cover,
                               down)
    shadow = _shaved_shadow(params, verts, normals, tables) if params.style == "bald" else None
    beard, beard_cap = _beard(params, verts, normals, tables, surf, np.random.default_rng(seeds[1]))
    for key, item in (("hair", hair), ("hair_cap", cap), ("scalp_shadow", shadow), ("beard", beard),
                      ("beard_cap", beard_cap)):
        if item is not None:
            out[key] = item
    out.update(_brows(params, verts, surf, tables, np.random.default_rng(seeds[2])))
    out.update(_lashes(params, verts, normals, tables, np.random.default_rng(seeds[3])))
    return out
