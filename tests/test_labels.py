"""Label conventions (CONVENTIONS.md) on the pure maths, independent of rendering."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from replicantface import labels

NOSE_HEAD = np.array([0.0, 0.0, 0.1])  # head frame: z out of the face
TOP_HEAD = np.array([0.0, 0.1, 0.0])


def _image_dir(rot_cam, v):
    """Direction of a head-frame vector in the image frame (x right, y down)."""
    return labels.CAM_TO_IMG @ (rot_cam @ v)


@pytest.mark.parametrize("pose", [[0.1, -0.4, 0.2], [-0.5, 1.2, -0.3], [0.0, 0.0, 0.0], [0.3, 0.2, 1.0]])
def test_pose_round_trip(pose):
    rot = labels.rotation_from_pose_aflw(pose)
    np.testing.assert_allclose(labels.pose_aflw_from_rotation(rot), pose, atol=1e-9)


def test_identity_is_frontal():
    np.testing.assert_allclose(labels.pose_aflw_from_rotation(np.eye(3)), 0, atol=1e-12)


def test_positive_yaw_turns_nose_image_left():
    rot = labels.rotation_from_pose_aflw([0.0, 0.3, 0.0])
    assert _image_dir(rot, NOSE_HEAD)[0] < 0


def test_positive_pitch_turns_face_up():
    rot = labels.rotation_from_pose_aflw([0.3, 0.0, 0.0])
    assert _image_dir(rot, NOSE_HEAD)[1] < 0  # y down: negative is up


def test_positive_roll_tilts_head_top_image_right():
    rot = labels.rotation_from_pose_aflw([0.0, 0.0, 0.3])
    assert _image_dir(rot, TOP_HEAD)[0] > 0


def test_blender_turn_about_world_z_gives_negative_yaw():
    # Camera at -Y looking +Y, Z up: camera frame = (X, Z, -Y). Head frame at rest is the same.
    basis = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # columns: head axes in world
    theta = 0.4
    rz = Rotation.from_euler("z", theta).as_matrix()
    rot_cam = basis.T @ rz @ basis  # head->world->camera, camera axes equal the rest head axes
    assert labels.pose_aflw_from_rotation(rot_cam)[1] == pytest.approx(-theta)


def test_scipy_xyz_reading_matches_convention():
    pitch, yaw, roll = 0.2, -0.5, 0.1
    rot_img = labels.CAM_TO_IMG @ labels.rotation_from_pose_aflw([pitch, yaw, roll]) @ labels.CAM_TO_IMG
    expect = (Rotation.from_euler("x", -pitch) * Rotation.from_euler("y", yaw)
              * Rotation.from_euler("z", roll)).as_matrix()
    np.testing.assert_allclose(rot_img, expect, atol=1e-12)


def test_flip_permutation_is_an_involution_and_swaps_sides():
    perm = labels.FLIP_PERM_68
    assert sorted(perm) == list(range(68))
    np.testing.assert_array_equal(perm[perm], np.arange(68))
    assert perm[36] == 45 and perm[0] == 16 and perm[48] == 54 and perm[30] == 30


def test_projection_matches_pinhole():
    w = h = 200
    proj = labels.perspective_projection(50.0, 36.0, w, h)
    mv = np.eye(4)
    mv[2, 3] = -1.0  # head 1 m in front of the camera
    pts = np.array([[0.0, 0.0, 0.0], [0.1, 0.05, 0.0]])
    px, depth = labels.project_points(pts, mv, proj, (w, h))
    f_px = 50.0 / 36.0 * w
    np.testing.assert_allclose(px[0], [100, 100])
    np.testing.assert_allclose(px[1], [100 + 0.1 * f_px, 100 - 0.05 * f_px])
    np.testing.assert_allclose(depth, [1.0, 1.0])


def test_bbox_from_mask():
    mask = np.zeros((10, 12), np.uint8)
    mask[2:5, 3:9] = 1
    np.testing.assert_array_equal(labels.bbox_from_mask(mask, (1,)), [3, 2, 9, 5])
    assert np.isnan(labels.bbox_from_mask(mask, (7,))).all()
