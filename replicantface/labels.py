"""Label maths: frames, projection and head-pose conventions. numpy and scipy only.

Frames (all right-handed, metres unless stated):

- world: Blender's, Z up. At rest the body faces -Y.
- camera (``modelview``'s target): Blender/OpenGL camera, x right, y up, z toward the viewer;
  the camera looks along -z.
- head: origin between the eyeball centres, x toward the subject's left (image-right in a
  frontal view), y up, z out of the face. A face looking straight into the camera, upright,
  has ``modelview[:3, :3] == I``.
- image: x right, y down, z into the screen (AFLW/300W-LP tooling); pixel coordinates have
  their origin at the top-left corner of the top-left pixel, so pixel centres sit at +0.5.

Head pose follows AFLW2000-3D / 300W-LP (see docs/labels.md): with ``R_img = F R_cam F``,
``F = diag(1, -1, -1)``, ``R_img = Rx(-pitch) Ry(yaw) Rz(roll)``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

# Camera frame (x right, y up, z toward viewer) <-> image frame (x right, y down, z into screen).
CAM_TO_IMG = np.diag([1.0, -1.0, -1.0])

# iBUG-68 horizontal flip: new index i takes old index FLIP_PERM_68[i].
FLIP_PERM_68 = np.array(
    list(range(16, -1, -1))
    + list(range(26, 16, -1))
    + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46]
    + [39, 38, 37, 36, 41, 40]
    + list(range(54, 47, -1))
    + list(range(59, 54, -1))
    + list(range(64, 59, -1))
    + [67, 66, 65]
)

EYE_CORNERS_68 = (36, 39, 42, 45)


def pose_aflw_from_rotation(rot_cam: np.ndarray) -> np.ndarray:
    """[pitch, yaw, roll] in radians (AFLW convention) of a head-to-camera rotation.

    rot_cam: (3, 3) rotation from the head frame to the camera frame (x right, y up, z back).
    """
    rot_img = CAM_TO_IMG @ np.asarray(rot_cam, dtype=np.float64) @ CAM_TO_IMG
    neg_pitch, yaw, roll = Rotation.from_matrix(rot_img).as_euler("XYZ")
    return np.array([-neg_pitch, yaw, roll])


def rotation_from_pose_aflw(pose: np.ndarray) -> np.ndarray:
    """(3, 3) head-to-camera rotation (camera frame x right, y up, z back) for [pitch, yaw, roll] rad."""
    pitch, yaw, roll = np.asarray(pose, dtype=np.float64)
    rot_img = Rotation.from_euler("XYZ", [-pitch, yaw, roll]).as_matrix()
    return CAM_TO_IMG @ rot_img @ CAM_TO_IMG


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) rigid or projective transform to (N, 3) points; returns (N, 3)."""
    pts = np.asarray(points, dtype=np.float64)
    hom = pts @ matrix[:3, :3].T + matrix[:3, 3]
    if np.allclose(matrix[3], [0, 0, 0, 1]):
        return hom
    w = pts @ matrix[3, :3] + matrix[3, 3]
    return hom / w[:, None]


def perspective_projection(
    focal_mm: float,
    sensor_mm: float,
    width: int,
    height: int,
    near: float = 0.01,
    far: float = 100.0,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
) -> np.ndarray:
    """OpenGL-style (4, 4) projection for a Blender camera with sensor fit AUTO.

    The sensor size applies to the larger image side, as Blender does. shift_x/shift_y are
    Blender's lens shift in units of the larger side.
    """
    larger = max(width, height)
    fx = 2.0 * focal_mm / sensor_mm * larger / width
    fy = 2.0 * focal_mm / sensor_mm * larger / height
    proj = np.zeros((4, 4))
    proj[0, 0] = fx
    proj[1, 1] = fy
    proj[0, 2] = 2.0 * shift_x * larger / width
    proj[1, 2] = 2.0 * shift_y * larger / height
    proj[2, 2] = -(far + near) / (far - near)
    proj[2, 3] = -2.0 * far * near / (far - near)
    proj[3, 2] = -1.0
    return proj


def project_points(
    points_head: np.ndarray,
    modelview: np.ndarray,
    projection: np.ndarray,
    resolution: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Project head-frame points to pixels.

    points_head: (N, 3) metres in the head frame.
    resolution: (width, height) in pixels.
    Returns (N, 2) pixels (x right, y down, origin at the top-left pixel corner) and (N,) depth
    in metres along the viewing direction (positive in front of the camera).
    """
    width, height = resolution
    cam = transform_points(modelview, points_head)
    clip = cam @ projection[:3, :3].T + projection[:3, 3]
    w = cam @ projection[3, :3] + projection[3, 3]
    ndc = clip[:, :2] / w[:, None]
    px = np.empty((len(cam), 2))
    px[:, 0] = (ndc[:, 0] + 1.0) * 0.5 * width
    px[:, 1] = (1.0 - ndc[:, 1]) * 0.5 * height
    return px, -cam[:, 2]


def bbox_from_mask(mask: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """[x0, y0, x1, y1] pixel box (x1/y1 exclusive) of the pixels whose class is in ``classes``.

    mask: (H, W) uint8 class ids. Returns NaNs when no pixel matches.
    """
    hit = np.isin(mask, classes)
    if not hit.any():
        return np.full(4, np.nan)
    rows = np.flatnonzero(hit.any(axis=1))
    cols = np.flatnonzero(hit.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)


def depth_centred_landmarks(landmarks_img: np.ndarray) -> np.ndarray:
    """(68, 3) image-space landmarks with z centred on the mean of the four eye corners.

    landmarks_img: (68, 3) with x, y in pixels and z in pixels, larger z closer to the camera.
    """
    out = np.array(landmarks_img, dtype=np.float64, copy=True)
    out[:, 2] -= out[list(EYE_CORNERS_68), 2].mean()
    return out


# The brow's upper edge, as the iBUG-68 mean shape places brow points 17-21 (lateral -> medial)
# relative to the eye's corners: u along the outer -> inner corner axis (0 outer, 1 inner corner),
# w the height above that axis, both in eye widths.
IBUG_BROW_UW = ((-0.61, 0.51), (-0.27, 0.82), (0.21, 0.93), (0.71, 0.87), (1.19, 0.71))


def brow_guide(frontal: np.ndarray, side: str) -> np.ndarray:
    """(5, 2) points along one brow's upper edge, medial -> lateral, at ``IBUG_BROW_UW`` from
    the eye corners of ``frontal``: the 68 landmarks in a frontal plane (N, 2), second
    coordinate up. side: "r" (subject's right) or "l"."""
    frontal = np.asarray(frontal, dtype=float)
    outer, inner = (36, 39) if side == "r" else (45, 42)
    o = frontal[outer]
    ax = frontal[inner] - o
    up = np.array([-ax[1], ax[0]])
    up *= np.sign(up[1])
    return np.array([o + u * ax + w * up for u, w in IBUG_BROW_UW])[::-1]


def distance_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(N,) distance of points (N, D) to the polyline through line (K, D), any dimension D."""
    best = np.full(len(points), np.inf)
    for a, b in zip(line[:-1], line[1:]):
        ab = b - a
        t = np.clip(((points - a) @ ab) / (ab @ ab), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(points - (a + t[:, None] * ab), axis=1))
    return best


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals of a triangle mesh (outward for CCW faces)."""
    tri = verts[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = np.zeros_like(verts, dtype=np.float64)
    for k in range(3):
        for d in range(3):
            n[:, d] += np.bincount(faces[:, k], weights=fn[:, d], minlength=len(verts))
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
