"""One sample from (seed, index): sample params, evaluate the human, render, compute labels.

Sampling is pure (``sample_params``); ``Generator`` owns the anny model and the Blender scene
and turns params into a rendered ``Sample``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from replicantface import labels
from replicantface.accessories import (
    AccessoryParams,
    AccessoryTables,
    build_accessories,
    hair_cover,
    sample_accessories,
)
from replicantface.appearance import AppearanceParams, beard_shadow_rgb, sample_appearance
from replicantface.camera import (
    CameraParams,
    PostParams,
    apply_sensor_noise,
    orbit_camera_to_world,
    sample_camera,
    sample_post,
)
from replicantface.classes import FACE_BOX_CLASSES, FACE_SKIN_CLASSES
from replicantface.config import QUALITY, GeneratorConfig
from replicantface.expression import ExpressionParams, sample_expression
from replicantface.hair import (
    BARE_CROWN_STYLES,
    HairParams,
    HairTables,
    brow_band,
    hair_strands,
    melanin_rgb,
    sample_hair,
    world_down_in_head,
)
from replicantface.identity import IdentityParams, face_change_labels, sample_identity
from replicantface.lighting import (
    LightingParams,
    exposure_ev,
    face_luminance,
    find_hdris,
    metered_light,
    sample_lighting,
    white_balance_gains,
)
from replicantface.pose import PoseParams, head_rotation_body, sample_pose
from replicantface.teeth import JAW_FIT_LANDMARKS, kabsch, teeth_in_head_frame

# Each randomizer gets its own child stream of SeedSequence([seed, index]), in this order.
# New randomizers are appended, so the streams of the earlier ones (and their draws) stay put.
_STREAMS = ("identity", "expression", "pose", "camera", "appearance", "lighting", "post", "hair",
            "accessories")
# What variation mode redraws per variation; everything else is fixed per face.
_VARIED = ("expression", "lighting", "post")
# Streams for redrawing the lighting of a sample that rendered too dark.
_RELIGHT_KEY = 7919
OCCLUSION_TOLERANCE_M = 0.002
# The face patches the camera's face metering averages the light over (head frame: x toward
# the subject's left, y up, z out of the face): straight out, and 40 degrees to each side,
# up and down.
_METER_TILT = np.radians(40.0)
FACE_METER_NORMALS = np.array([
    [0.0, 0.0, 1.0],
    [np.sin(_METER_TILT), 0.0, np.cos(_METER_TILT)], [-np.sin(_METER_TILT), 0.0, np.cos(_METER_TILT)],
    [0.0, np.sin(_METER_TILT), np.cos(_METER_TILT)], [0.0, -np.sin(_METER_TILT), np.cos(_METER_TILT)],
])


@dataclass(frozen=True)
class SampleParams:
    seed: int
    index: int
    identity: IdentityParams
    expression: ExpressionParams
    pose: PoseParams
    camera: CameraParams
    appearance: AppearanceParams
    lighting: LightingParams
    post: PostParams
    hair: HairParams
    accessories: AccessoryParams
    variation: int | None = None
    lighting_attempt: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def sample_params(seed: int, index: int, cfg: GeneratorConfig, change_labels: list[str],
                  hdri_names: list[str], variation: int | None = None) -> SampleParams:
    """Every random choice of one sample; depends only on (seed, index[, variation]) and the config.

    Variation mode keeps a face's identity, appearance, pose and camera (drawn from
    ``(seed, index)``) and redraws expression and lighting from ``(seed, index, variation)``;
    variation 0 is the neutral expression.
    """
    streams = np.random.SeedSequence([seed, index]).spawn(len(_STREAMS))
    rng = {name: np.random.default_rng(s) for name, s in zip(_STREAMS, streams)}
    if variation is not None:
        varied = np.random.SeedSequence([seed, index, variation]).spawn(len(_STREAMS))
        for name in _VARIED:
            rng[name] = np.random.default_rng(varied[_STREAMS.index(name)])
    identity = sample_identity(rng["identity"], cfg.identity, change_labels)
    appearance = sample_appearance(rng["appearance"], cfg.appearance, identity.age_years,
                                   identity.gender)
    accessories = sample_accessories(rng["accessories"], cfg.accessories)
    hair = sample_hair(rng["hair"], cfg.hair, identity.age_years, identity.gender,
                       appearance.fitzpatrick)
    # The brow skin's tint matches the brow hairs. A shaved beard's shadow takes the beard
    # hairs' colour and shows as much as they hold pigment: fully with black stubs, a twelfth
    # as much with blond ones, not at all with white ones.
    appearance = dataclasses.replace(
        appearance, brow_rgb=melanin_rgb(hair.brow_melanin, hair.redness),
        beard_shadow=appearance.beard_shadow * (1.0 - hair.beard_grey) * hair.beard_melanin ** 2,
        beard_shadow_rgb=beard_shadow_rgb(melanin_rgb(hair.beard_melanin, hair.redness)))
    expression = sample_expression(rng["expression"], cfg.expression)
    if variation == 0:
        expression = ExpressionParams({}, 0.0, 0.0)
    hair = compatible_hair(hair, accessories)
    return SampleParams(
        seed=seed,
        index=index,
        identity=identity,
        expression=expression,
        pose=sample_pose(rng["pose"], cfg.pose),
        camera=sample_camera(rng["camera"], cfg.camera),
        appearance=compatible_appearance(appearance, hair),
        lighting=sample_lighting(rng["lighting"], cfg.lighting, hdri_names),
        post=sample_post(rng["post"], cfg.post),
        hair=hair,
        accessories=accessories,
        variation=variation,
    )


def compatible_hair(hair: HairParams, accessories: AccessoryParams) -> HairParams:
    """The hair with what cannot go with the accessories taken off: no beard under a face mask."""
    from replicantface.accessories import ACCESSORIES

    masked = any(ACCESSORIES[n].category == "mask" for n in accessories.names)
    if masked and hair.beard not in ("none", "stubble"):
        return dataclasses.replace(hair, beard="stubble")
    return hair


def compatible_appearance(appearance: AppearanceParams, hair: HairParams) -> AppearanceParams:
    """The appearance with what cannot go with the hair taken off: a bearded face wears no makeup.

    Makeup and beards are drawn independently, each by gender, so about 1 face in 80 of the
    default preset would otherwise wear lipstick, eyeliner or blush with a beard. Stubble counts
    as a beard. The makeup colours stay drawn, so the other faces keep every parameter.
    """
    if hair.beard == "none" or not any((appearance.makeup or {}).values()):
        return appearance
    return dataclasses.replace(appearance, makeup={name: 0.0 for name in appearance.makeup})


def relight(params: SampleParams, attempt: int, cfg: GeneratorConfig, hdri_names: list[str]) -> SampleParams:
    """The same sample with its lighting redrawn (deterministically) for a too-dark render."""
    variation = 0 if params.variation is None else params.variation + 1
    key = [params.seed, params.index, variation, _RELIGHT_KEY, attempt]
    rng = np.random.default_rng(np.random.SeedSequence(key))
    return dataclasses.replace(params, lighting=sample_lighting(rng, cfg.lighting, hdri_names),
                               lighting_attempt=attempt)


@dataclass(frozen=True)
class Sample:
    """A rendered sample: image, mask and the label arrays written to ``{stem}.npz``."""

    rgb: np.ndarray
    mask: np.ndarray
    labels: dict
    params: SampleParams
    timings: dict


class Generator:
    """Builds the anny model and the Blender scene once; renders samples from params."""

    def __init__(self, cfg: GeneratorConfig, quality: str = "preview", resolution: int | None = None,
                 use_gpu: bool = True, hdri_dirs: tuple = ()) -> None:
        from replicantface import scene as scene_layer
        from replicantface.human import HumanModel

        self.cfg = cfg
        self.quality = QUALITY[quality]
        self.resolution = int(resolution or self.quality.resolution)
        self.human = HumanModel()
        self.change_labels = face_change_labels(self.human.local_change_labels)
        self.hair_tables = HairTables.from_human(self.human)
        self.accessory_tables = AccessoryTables.from_human(self.human)
        self.hdris = find_hdris(hdri_dirs)
        self._scene = scene_layer
        self.use_gpu = use_gpu
        self.handles = None
        self.device = "CPU"
        self._ensure_scene()

    def _ensure_scene(self) -> None:
        """Build the scene, or rebuild it if something reset Blender since the last sample."""
        handles = self._scene.build_scene(self.human)
        if handles is not self.handles:
            self.handles = handles
            self.device = self._scene.enable_gpu(handles) if self.use_gpu else "CPU"
            self._scene.apply_quality(handles, self.quality, self.resolution)

    def set_quality(self, quality: str, resolution: int | None = None) -> None:
        """Switch the quality preset (and optionally the resolution) of later renders."""
        self.quality = QUALITY[quality]
        self.resolution = int(resolution or self.resolution)
        self._scene.apply_quality(self.handles, self.quality, self.resolution)

    def params(self, seed: int, index: int, variation: int | None = None) -> SampleParams:
        return sample_params(seed, index, self.cfg, self.change_labels, sorted(self.hdris), variation)

    def render(self, params: SampleParams) -> Sample:
        """Render a sample; a face darker than the config allows is re-lit and rendered again."""
        light = self.cfg.lighting
        for attempt in range(light.max_attempts):
            if attempt:
                params = relight(params, attempt, self.cfg, sorted(self.hdris))
            sample = self._render_once(params)
            if sample.labels["face_luminance"] >= light.min_face_luminance:
                break
        return sample

    def _render_once(self, params: SampleParams) -> Sample:
        from replicantface import scene_accessories

        t0 = time.perf_counter()
        self._ensure_scene()
        geo, teeth_v, teeth_f = self.pose_human(params)
        target = geo.head_to_world[:3, 3]
        cam = params.camera
        cam_to_world = orbit_camera_to_world(target, params.pose.camera_heading_deg,
                                             params.pose.camera_pitch_deg, cam.distance_m)
        s = self._scene
        s.apply_human(self.handles, geo.vertices, teeth_v, teeth_f)
        s.apply_appearance(self.handles, params.appearance)
        s.apply_top(self.handles, geo.vertices, params.appearance.clothing_cut)
        worn = self._apply_worn(params, geo)
        s.apply_camera(self.handles, cam_to_world, cam, focus_distance_m=cam.distance_m)
        hdri_path = self._hdri_path(params.lighting.hdri)
        ev = exposure_ev(params.lighting, params.appearance.skin_rgb, self.cfg.lighting.exposure_max_ev,
                         light_ratio=self.face_light_ratio(params, geo))
        s.apply_lighting(self.handles, params.lighting, hdri_path, cam_to_world, target,
                         exposure_ev=ev, white_balance_rgb=self.white_balance(params, geo))
        scene_accessories.sync_lens_reflections(self.handles)
        t1 = time.perf_counter()
        result = s.render(self.handles)
        t2 = time.perf_counter()
        projection = s.camera_projection(self.handles)
        label_arrays = compute_labels(self.human, geo, cam_to_world, projection, self.resolution,
                                      result.seg, params, occluders=worn)
        label_arrays["face_luminance"] = np.float64(
            face_luminance(result.rgb, result.seg, tuple(int(c) for c in FACE_SKIN_CLASSES)))
        rgb = apply_sensor_noise(result.rgb, params.post)
        t3 = time.perf_counter()
        timings = {"scene_s": t1 - t0, "render_s": t2 - t1, "labels_s": t3 - t2}
        return Sample(rgb, result.seg, label_arrays, params, timings)

    def face_light_ratio(self, params: SampleParams, geo=None) -> float:
        """How brightly the sample's environment map and extra lamp light its face, relative to
        an even sky (lighting.metered_light over FACE_METER_NORMALS): what the camera's face
        metering sees. ``geo`` is the posed human (``pose_human``), computed when not given."""
        grid, normals = self._face_meter(params, geo)
        return metered_light(params.lighting, grid, normals)[0]

    def white_balance(self, params: SampleParams, geo=None) -> np.ndarray:
        """(3,) gains of the camera's white balance: ``params.lighting.white_balance`` of the
        colour cast of the light on the face (lighting.metered_light over FACE_METER_NORMALS:
        the map's light times the tint, and the extra lamp's) removed. ``geo`` as in
        ``face_light_ratio``."""
        grid, normals = self._face_meter(params, geo)
        return white_balance_gains(metered_light(params.lighting, grid, normals)[1],
                                   params.lighting.white_balance)

    def _face_meter(self, params: SampleParams, geo=None) -> tuple[np.ndarray, np.ndarray]:
        """The HDRI's RGB metering grid and the world normals of the face's metering patches."""
        if geo is None:
            geo = self.pose_human(params)[0]
        self._ensure_scene()
        grid = self._scene.hdri_colour_map(self.handles, self._hdri_path(params.lighting.hdri))
        return grid, FACE_METER_NORMALS @ geo.head_to_world[:3, :3].T

    def _apply_worn(self, params: SampleParams, geo) -> list:
        """Fit and place the sample's accessories and hair; returns the opaque accessory meshes
        in world coordinates (vertices, faces) for landmark visibility."""
        from replicantface import scene_accessories, scene_hair

        to_head = np.linalg.inv(geo.head_to_world)
        verts_head = labels.transform_points(to_head, geo.vertices)
        meshes = build_accessories(params.accessories, verts_head, self.accessory_tables,
                                   bare_crown=params.hair.style in BARE_CROWN_STYLES)
        cover = hair_cover(params.accessories, verts_head, self.accessory_tables)
        strands = hair_strands(params.hair, verts_head, self.hair_tables, cover,
                               world_down_in_head(geo.head_to_world))
        scene_accessories.apply_accessories(self.handles, meshes, geo.head_to_world)
        scene_hair.apply_hair(self.handles, strands, params.hair, geo.head_to_world)
        self._scene.apply_brow_band(self.handles, brow_band(params.hair, self.hair_tables))
        occluders = []
        for m in meshes:
            see_through = [i for i, (kind, _, _) in enumerate(m.materials) if kind == "lens_clear"]
            faces = m.faces[~np.isin(m.face_material, see_through)]
            if len(faces):
                occluders.append((labels.transform_points(geo.head_to_world, m.vertices), faces))
        return occluders

    def _hdri_path(self, name: str) -> Path:
        if name not in self.hdris:
            raise FileNotFoundError(f"HDRI {name!r} is not in the HDRI folders ({len(self.hdris)} found)")
        return self.hdris[name]

    def pose_human(self, params: SampleParams):
        """Evaluate anny for the sample, plus the teeth that go with it (world frame)."""
        ident = params.identity
        expr = params.expression
        rotvec = Rotation.from_matrix(head_rotation_body(params.pose)).as_rotvec()
        phen = ident.phenotype_kwargs()
        geo = self.human.evaluate(
            phenotypes=phen,
            local_changes=ident.local_changes,
            expression=expr.all_weights(),
            head_rotvec_body=rotvec,
            gaze_yaw_pitch_rad=(np.radians(expr.gaze_yaw_deg), np.radians(expr.gaze_pitch_deg)),
        )
        rest = self.human.evaluate(phenotypes=phen, local_changes=ident.local_changes)
        lm_idx = self.human.landmark_indices
        rest_head = np.linalg.inv(rest.head_to_world)
        lm_rest_head = labels.transform_points(rest_head, rest.vertices[lm_idx])
        tv, tf, n_upper = teeth_in_head_frame(lm_rest_head)
        tv_world_rest = labels.transform_points(rest.head_to_world, tv)
        upper = labels.transform_points(geo.head_to_world @ rest_head, tv_world_rest[:n_upper])
        jaw_idx = lm_idx[list(JAW_FIT_LANDMARKS)]
        jaw = kabsch(rest.vertices[jaw_idx].astype(float), geo.vertices[jaw_idx].astype(float))
        lower = labels.transform_points(jaw, tv_world_rest[n_upper:])
        return geo, np.vstack([upper, lower]), tf


def compute_labels(human, geo, cam_to_world: np.ndarray, projection: np.ndarray, resolution: int,
                   mask: np.ndarray, params: SampleParams, occluders: list = ()) -> dict:
    """Label arrays of one sample (frames in labels.py and docs/labels.md).

    occluders: (vertices (N, 3) world, faces (M, 3)) of worn things that can hide a landmark.
    """
    world_to_cam = np.linalg.inv(cam_to_world)
    modelview = world_to_cam @ geo.head_to_world
    world_to_head = np.linalg.inv(geo.head_to_world)
    res = (resolution, resolution)
    lm_world = geo.vertices[human.landmark_indices].astype(np.float64)
    lm_head = labels.transform_points(world_to_head, lm_world)
    lm_2d, lm_depth = labels.project_points(lm_head, modelview, projection, res)
    visible = landmark_visibility(geo.vertices, human.faces, cam_to_world[:3, 3], lm_world, occluders)
    dense = labels.transform_points(world_to_head, geo.vertices[human.head_vertex_indices])
    gaze_cam = geo.gaze_world @ world_to_cam[:3, :3].T
    return {
        "modelview": modelview,
        "projection": projection,
        "resolution": np.array(res, dtype=np.int32),
        "vertices": dense.astype(np.float32),
        "vertex_indices": human.head_vertex_indices.astype(np.int32),
        "landmarks_3d": lm_head,
        "landmarks_2d": lm_2d,
        "landmarks_depth": lm_depth,
        "landmarks_visible": visible,
        "pose_aflw": labels.pose_aflw_from_rotation(modelview[:3, :3]),
        "bbox_face": labels.bbox_from_mask(mask, tuple(int(c) for c in FACE_BOX_CLASSES)),
        "gaze": gaze_cam / np.linalg.norm(gaze_cam, axis=1, keepdims=True),
        "expression": params.expression.vector(),
        "seed": np.int64(params.seed),
        "index": np.int64(params.index),
        "variation": np.int64(-1 if params.variation is None else params.variation),
        "jpeg_quality": np.int64(params.post.jpeg_quality),
        "lighting_attempt": np.int64(params.lighting_attempt),
        "params": np.array(params.to_json()),
    }


def landmark_visibility(vertices: np.ndarray, faces: np.ndarray, eye: np.ndarray,
                        points: np.ndarray, occluders: list = ()) -> np.ndarray:
    """(N,) bool: neither the mesh nor an occluder hides the point from the camera centre ``eye``.

    vertices (V, 3), eye (3,), points (N, 3): world; occluders: (vertices, faces) pairs, world.
    Hair strands do not count as occluders.
    """
    from mathutils import Vector
    from mathutils.bvhtree import BVHTree

    if occluders:
        parts_v, parts_f, offset = [vertices], [faces], len(vertices)
        for v, f in occluders:
            parts_v.append(np.asarray(v))
            parts_f.append(np.asarray(f) + offset)
            offset += len(v)
        vertices, faces = np.vstack(parts_v), np.vstack(parts_f)
    tree = BVHTree.FromPolygons(vertices.tolist(), faces.tolist(), all_triangles=True)
    out = np.zeros(len(points), dtype=bool)
    origin = Vector(eye)
    for i, p in enumerate(points):
        direction = Vector(p) - origin
        dist = direction.length
        hit, _, _, hit_dist = tree.ray_cast(origin, direction.normalized(), dist + 1.0)
        out[i] = hit is None or hit_dist >= dist - OCCLUSION_TOLERANCE_M
    return out


