"""Face-detector wrapper: box matching, and MTCNN finding a frontal render (needs the bench extra)."""

import dataclasses

import numpy as np
import pytest

from replicantface import detect


def test_box_iou():
    assert detect.box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert detect.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert detect.box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert detect.box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_match_face_takes_the_most_confident_overlapping_detection():
    face = (100.0, 50.0, 200.0, 200.0)
    # Inner landmarks spread over the face: eyes at y 90, nose at 120, mouth at 160.
    inner = np.array([[125, 90], [175, 90], [150, 120], [135, 160], [165, 160], [150, 165]], float)
    far = detect.Detection((0.0, 0.0, 30.0, 30.0), 0.99)
    tight = detect.Detection((124.0, 84.0, 176.0, 167.0), 0.9)  # small IoU, centre inside
    match, iou = detect.match_face([far, tight], face, landmarks=inner)
    assert iou < 0.3
    assert match is tight and iou == pytest.approx(detect.box_iou(tight.box, face))
    assert detect.match_face([far], face, landmarks=inner) == (None, 0.0)
    assert detect.match_face([tight], (np.nan,) * 4, landmarks=inner) == (None, 0.0)
    # Without landmarks only the IoU counts.
    assert detect.match_face([tight], face)[0] is None
    assert detect.match_face([detect.Detection(face, 0.5)], face)[0] is not None


def test_match_face_does_not_take_a_box_around_one_eye():
    face = (100.0, 50.0, 200.0, 200.0)
    inner = np.array([[125, 90], [175, 90], [150, 120], [135, 160], [165, 160], [150, 165]], float)
    eye = detect.Detection((160.0, 75.0, 190.0, 105.0), 0.95)  # centre inside the face box
    face_det = detect.Detection((124.0, 84.0, 176.0, 167.0), 0.8)
    assert detect.match_face([eye], face, landmarks=inner) == (None, detect.box_iou(eye.box, face))
    assert detect.match_face([eye, face_det], face, landmarks=inner)[0] is face_det


def test_inner_landmarks_keeps_the_visible_inner_points():
    lm = np.arange(68 * 2, dtype=float).reshape(68, 2)
    visible = np.ones(68, bool)
    visible[[3, 20, 40]] = False
    points = detect.inner_landmarks({"landmarks_2d": lm, "landmarks_visible": visible})
    assert points.shape == (49, 2)
    assert not any((lm[k] == points).all(1).any() for k in (3, 20, 40))
    assert (points[0] == lm[17]).all()


def test_unknown_detector_is_named():
    with pytest.raises(ValueError, match="mtcnn"):
        detect.load_detector("yolo")


def test_mtcnn_finds_a_frontal_render(generator):
    from replicantface.pose import PoseParams

    mtcnn = detect.load_detector("mtcnn")
    assert mtcnn(np.zeros((96, 96, 3), np.uint8)) == []
    with pytest.raises(ValueError, match="uint8"):
        mtcnn(np.zeros((96, 96, 3), np.float32))

    p = generator.params(0, 0)
    p = dataclasses.replace(p, pose=PoseParams(0.0, 0.0, 0.0, 0.0, 0.0))
    generator.set_quality("preview")
    try:
        s = generator.render(p)
    finally:
        generator.set_quality("test")
    match, iou = detect.match_face(mtcnn(s.rgb), s.labels["bbox_face"],
                                   landmarks=detect.inner_landmarks(s.labels))
    assert match is not None and match.confidence > 0.9 and iou > 0.4

    # The stage probe sets one stage's threshold at a time: lowered, the face is still found;
    # raised above 1, that stage passes nothing, whichever stage it is.
    box = s.labels["bbox_face"]
    assert all(c is not None and c > 0.9 for c in detect.mtcnn_stage_probe(s.rgb, box).values())
    assert detect.mtcnn_stage_probe(s.rgb, box, loosened=1.01) == dict.fromkeys(detect.MTCNN_STAGES)
