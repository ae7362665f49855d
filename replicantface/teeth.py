"""Teeth built by code: two arches of box-shaped teeth placed behind the lips. numpy only.

The upper arch moves rigidly with the head; the lower arch follows the jaw, estimated as the
best rigid fit (Kabsch) of the chin's jaw landmarks between the identity's neutral face and the
current one.
"""

from __future__ import annotations

import numpy as np

TEETH_PER_ARCH = 12
# Tooth widths from the midline outward (incisors, canine, premolars, molars), metres.
_HALF_WIDTHS = np.array([0.0085, 0.0065, 0.0075, 0.007, 0.007, 0.009]) * 0.5
JAW_FIT_LANDMARKS = (5, 6, 7, 8, 9, 10, 11)


def _arch(centre: np.ndarray, half_span: float, depth: float, top: float, bottom: float,
          thickness: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes along a parabolic arch in the head frame (x left, y up, z forward)."""
    widths = np.r_[_HALF_WIDTHS[::-1], _HALF_WIDTHS] * 2.0
    edges = np.r_[0.0, np.cumsum(widths)]
    edges = (edges / edges[-1] * 2.0 - 1.0) * half_span
    verts, faces = [], []
    box = np.array([[0, 1, 2, 3], [7, 6, 5, 4], [0, 4, 5, 1], [1, 5, 6, 2], [2, 6, 7, 3], [3, 7, 4, 0]])
    for i in range(len(widths)):
        x0, x1 = edges[i] + 0.0004, edges[i + 1] - 0.0004
        corners = []
        for y in (bottom, top):
            for x, inward in ((x0, 0.0), (x1, 0.0), (x1, thickness), (x0, thickness)):
                t = x / half_span
                z = centre[2] - depth * t * t - inward
                corners.append([centre[0] + x, y, z])
        base = len(verts)
        verts.extend(corners)
        # Quads: bottom ring 0-3, top ring 4-7.
        for q in box:
            faces.append([base + q[0], base + q[1], base + q[2], base + q[3]])
    return np.asarray(verts), np.asarray(faces)


def teeth_in_head_frame(landmarks_head: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(N, 3) vertices, (M, 4) quads and the number of upper-arch vertices, head frame.

    landmarks_head: (68, 3) landmarks of the neutral face in its head frame.
    """
    lm = landmarks_head
    half_span = 0.42 * abs(lm[54, 0] - lm[48, 0])
    depth = 0.45 * half_span
    upper_c = lm[62] + np.array([0.0, 0.0, -0.0045])
    lower_c = lm[66] + np.array([0.0, 0.0, -0.0060])
    mid = 0.5 * (lm[62, 1] + lm[66, 1])
    up_v, up_f = _arch(upper_c, half_span, depth, top=mid + 0.010, bottom=mid - 0.0015, thickness=0.006)
    lo_v, lo_f = _arch(lower_c, half_span * 0.93, depth, top=mid - 0.0005, bottom=mid - 0.011,
                       thickness=0.006)
    return np.vstack([up_v, lo_v]), np.vstack([up_f, lo_f + len(up_v)]), len(up_v)


def kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(4, 4) rigid transform minimising |R src + t - dst|^2 for (N, 3) point sets."""
    cs, cd = src.mean(axis=0), dst.mean(axis=0)
    u, _, vt = np.linalg.svd((src - cs).T @ (dst - cd))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = cd - rot @ cs
    return m
