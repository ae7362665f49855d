"""Accessories in the Blender scene: one mesh object per accessory, rebuilt every sample.

Objects and materials are created on first use and kept in ``handles.extras["accessories"]``.
Materials are shared per (kind, segmentation class) and set ``pass_index`` to the class; colours
come from a per-face attribute (``rf_colour``) and two object properties (``rf_secondary``,
``rf_pattern``), so no material is rebuilt per sample. Clear lenses are a pure Transparent BSDF
(alpha 0, below the view layer's pass alpha threshold) plus an emission that mirrors the world's
environment with glass's Fresnel reflectance, so the mask keeps the class behind them.
"""

from __future__ import annotations

import bpy
import numpy as np

from replicantface.accessories import MATERIAL_KINDS, PATTERNS, AccessoryMesh
from replicantface.scene import write_triangles

_KEY = "accessories"
# Share of light a dark lens lets through: sunglasses filter categories 2-3 pass 8-43 %.
# Its alpha (1 - this) stays over the pass alpha threshold (0.5), so the mask shows the lens.
DARK_LENS_TRANSMITTANCE = 0.2


def _state(handles) -> dict:
    state = handles.extras.get(_KEY)
    if state is None:
        state = {"objects": {}, "materials": {}}
        handles.extras[_KEY] = state
    return state


def _node(tree, idname, **inputs):
    node = tree.nodes.new(idname)
    for key, value in inputs.items():
        node.inputs[key].default_value = value
    return node


def _math(tree, operation: str, *inputs):
    """A Math node's output: ``operation`` on ``inputs`` (numbers or sockets)."""
    node = tree.nodes.new("ShaderNodeMath")
    node.operation = operation
    for slot, value in zip(node.inputs, inputs):
        if isinstance(value, (int, float)):
            slot.default_value = value
        else:
            tree.links.new(value, slot)
    return node.outputs[0]


def _colour_with_pattern(tree, kind: str):
    """Base colour: the face attribute, mixed with the object's secondary colour by its pattern."""
    attr = tree.nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = "rf_colour"
    if kind not in ("fabric", "knit"):
        return attr.outputs["Color"]
    second = tree.nodes.new("ShaderNodeAttribute")
    second.attribute_type = "OBJECT"
    second.attribute_name = "rf_secondary"
    pattern = tree.nodes.new("ShaderNodeAttribute")
    pattern.attribute_type = "OBJECT"
    pattern.attribute_name = "rf_pattern"
    coord = tree.nodes.new("ShaderNodeTexCoord")
    # Stripes: horizontal bands 8 mm apart; check: 10 mm squares (object space = head frame).
    sep = tree.nodes.new("ShaderNodeSeparateXYZ")
    tree.links.new(coord.outputs["Object"], sep.inputs[0])

    def wave(axis: str, period: float):
        mul = _node(tree, "ShaderNodeMath")
        mul.operation = "MULTIPLY"
        mul.inputs[1].default_value = 2.0 * np.pi / period
        tree.links.new(sep.outputs[axis], mul.inputs[0])
        sin = tree.nodes.new("ShaderNodeMath")
        sin.operation = "SINE"
        tree.links.new(mul.outputs[0], sin.inputs[0])
        return sin.outputs[0]

    stripes = tree.nodes.new("ShaderNodeMath")
    stripes.operation = "GREATER_THAN"
    stripes.inputs[1].default_value = 0.0
    tree.links.new(wave("Y", 0.016), stripes.inputs[0])
    prod = tree.nodes.new("ShaderNodeMath")
    prod.operation = "MULTIPLY"
    tree.links.new(wave("X", 0.02), prod.inputs[0])
    tree.links.new(wave("Y", 0.02), prod.inputs[1])
    check = tree.nodes.new("ShaderNodeMath")
    check.operation = "GREATER_THAN"
    check.inputs[1].default_value = 0.0
    tree.links.new(prod.outputs[0], check.inputs[0])
    factors = []
    for value, source in ((1.0, stripes), (2.0, check)):
        cmp_ = tree.nodes.new("ShaderNodeMath")
        cmp_.operation = "COMPARE"
        cmp_.inputs[1].default_value = value
        cmp_.inputs[2].default_value = 0.1
        tree.links.new(pattern.outputs["Fac"], cmp_.inputs[0])
        mul = tree.nodes.new("ShaderNodeMath")
        mul.operation = "MULTIPLY"
        tree.links.new(cmp_.outputs[0], mul.inputs[0])
        tree.links.new(source.outputs[0], mul.inputs[1])
        factors.append(mul)
    add = tree.nodes.new("ShaderNodeMath")
    add.operation = "ADD"
    tree.links.new(factors[0].outputs[0], add.inputs[0])
    tree.links.new(factors[1].outputs[0], add.inputs[1])
    mix = tree.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    tree.links.new(add.outputs[0], mix.inputs["Factor"])
    tree.links.new(attr.outputs["Color"], mix.inputs[6])
    tree.links.new(second.outputs["Color"], mix.inputs[7])
    return mix.outputs[2]


def _material(handles, kind: str, seg_class: int):
    state = _state(handles)
    key = (kind, int(seg_class))
    mat = state["materials"].get(key)
    if mat is not None:
        return mat
    if kind not in MATERIAL_KINDS:
        raise ValueError(f"unknown accessory material kind {kind!r}")
    mat = bpy.data.materials.new(f"rf_acc_{kind}_{int(seg_class)}")
    mat.pass_index = int(seg_class)
    mat.use_fake_user = True
    tree = mat.node_tree
    tree.nodes.clear()
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    colour = _colour_with_pattern(tree, kind)
    if kind == "lens_clear":
        # Any BSDF weight here makes Cycles end that share of camera paths on the lens and write
        # its index; a pure Transparent BSDF plus an emission never does. The emission is the
        # glass's reflection of the scene's environment: the world's HDRI looked up along the
        # reflected ray, at the world's lighting strength and tint, weighted by the lens's
        # Fresnel reflectance (4 % head on bare, under 1 % coated, more at a glance), so the sheen is as bright as
        # the light around the face, never a fixed veil. sync_lens_reflections copies the
        # world's image, rotation, strength and tint in every sample. The reflection is what
        # the lens shows, not a lamp: Cycles does not sample it as a light.
        mat.cycles.emission_sampling = "NONE"
        transparent = tree.nodes.new("ShaderNodeBsdfTransparent")
        coord = tree.nodes.new("ShaderNodeTexCoord")
        mapping = tree.nodes.new("ShaderNodeMapping")
        mapping.name = "rf_env_mapping"
        env = tree.nodes.new("ShaderNodeTexEnvironment")
        env.name = "rf_env"
        tint = tree.nodes.new("ShaderNodeMix")
        tint.data_type = "RGBA"
        tint.blend_type = "MULTIPLY"
        tint.inputs["Factor"].default_value = 1.0
        tint.name = "rf_env_tint"
        # Schlick's Fresnel on |cos| of the angle between the ray and the surface, from the
        # lens's head-on reflectance (its face colour: accessories.clear_lens_reflectance) up
        # to 1 at a glance. The same on the lens's back face as on its front: Blender's Fresnel
        # node takes a back face as glass-to-air and goes to total reflection past 42 degrees,
        # while through a real lens the refracted ray meets the back face as steeply as it
        # entered.
        geometry = tree.nodes.new("ShaderNodeNewGeometry")
        cos = _node(tree, "ShaderNodeVectorMath")
        cos.operation = "DOT_PRODUCT"
        tree.links.new(geometry.outputs["Normal"], cos.inputs[0])
        tree.links.new(geometry.outputs["Incoming"], cos.inputs[1])
        glance = _math(tree, "POWER", _math(tree, "SUBTRACT", 1.0, _math(tree, "ABSOLUTE", cos.outputs["Value"])), 5.0)
        fresnel = tree.nodes.new("ShaderNodeMix")
        fresnel.data_type = "RGBA"
        tree.links.new(glance, fresnel.inputs["Factor"])
        tree.links.new(colour, fresnel.inputs[6])
        fresnel.inputs[7].default_value = (1.0, 1.0, 1.0, 1.0)
        reflect = tree.nodes.new("ShaderNodeMix")
        reflect.data_type = "RGBA"
        reflect.blend_type = "MULTIPLY"
        reflect.inputs["Factor"].default_value = 1.0
        glare = tree.nodes.new("ShaderNodeEmission")
        glare.name = "rf_env_strength"
        tree.links.new(coord.outputs["Reflection"], mapping.inputs["Vector"])
        tree.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
        tree.links.new(env.outputs["Color"], tint.inputs[6])
        tree.links.new(tint.outputs[2], reflect.inputs[6])
        tree.links.new(fresnel.outputs[2], reflect.inputs[7])
        tree.links.new(reflect.outputs[2], glare.inputs["Color"])
        add = tree.nodes.new("ShaderNodeAddShader")
        tree.links.new(transparent.outputs[0], add.inputs[0])
        tree.links.new(glare.outputs[0], add.inputs[1])
        tree.links.new(add.outputs[0], out.inputs["Surface"])
        return _keep(state, key, mat)
    settings = {
        "plastic": {"Roughness": 0.3, "Coat Weight": 0.3},
        "metal": {"Metallic": 1.0, "Roughness": 0.22},
        "lens_dark": {"Roughness": 0.04, "Coat Weight": 1.0, "Specular IOR Level": 0.8},
        # A mirror coating: metal whose colour tints what it reflects.
        "lens_mirror": {"Metallic": 1.0, "Roughness": 0.06, "Coat Weight": 1.0},
        "fabric": {"Roughness": 0.9, "Sheen Weight": 0.4},
        "knit": {"Roughness": 0.95, "Sheen Weight": 0.6},
        "rubber": {"Roughness": 0.65},
        "leather": {"Roughness": 0.45, "Coat Weight": 0.1},
        "straw": {"Roughness": 0.7, "Sheen Weight": 0.2},
        "shell": {"Roughness": SHELL_ROUGHNESS},
    }[kind]
    bsdf = _node(tree, "ShaderNodeBsdfPrincipled", **settings)
    tree.links.new(colour, bsdf.inputs["Base Color"])
    if kind in ("lens_dark", "lens_mirror"):
        # Tinted glass: DARK_LENS_TRANSMITTANCE of the light passes in the lens's hue (its
        # colour at full value), so eyes show faintly behind it; the rest is the glossy coat
        # (or the mirror coating).
        hsv = tree.nodes.new("ShaderNodeSeparateColor")
        hsv.mode = "HSV"
        tree.links.new(colour, hsv.inputs[0])
        hue = tree.nodes.new("ShaderNodeCombineColor")
        hue.mode = "HSV"
        tree.links.new(hsv.outputs[0], hue.inputs[0])
        tree.links.new(hsv.outputs[1], hue.inputs[1])
        hue.inputs[2].default_value = 1.0
        transparent = tree.nodes.new("ShaderNodeBsdfTransparent")
        tree.links.new(hue.outputs[0], transparent.inputs["Color"])
        mix = _node(tree, "ShaderNodeMixShader", Fac=DARK_LENS_TRANSMITTANCE)
        tree.links.new(bsdf.outputs[0], mix.inputs[1])
        tree.links.new(transparent.outputs[0], mix.inputs[2])
        tree.links.new(mix.outputs[0], out.inputs["Surface"])
        return _keep(state, key, mat)
    if kind == "straw":
        _straw(tree, colour, bsdf)
    if kind == "shell":
        _shell(tree, colour, bsdf)
    if kind in ("fabric", "knit"):
        coord = tree.nodes.new("ShaderNodeTexCoord")
        if kind == "knit":  # vertical ribs
            tex = _node(tree, "ShaderNodeTexWave", Scale=260.0, Distortion=1.5)
            tex.bands_direction = "X"
            strength = 0.5
        else:
            tex = _node(tree, "ShaderNodeTexNoise", Scale=2500.0, Detail=1.0)
            strength = 0.15
        tree.links.new(coord.outputs["Object"], tex.inputs["Vector"])
        bump = _node(tree, "ShaderNodeBump", Strength=strength)
        tree.links.new(tex.outputs["Fac"], bump.inputs["Height"])
        tree.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    tree.links.new(bsdf.outputs[0], out.inputs["Surface"])
    return _keep(state, key, mat)


# A straw hat is sewn from a braid wound round and round from the top of the crown: rows
# STRAW_ROW_M apart (rings about STRAW_CENTRE, head frame metres, above the crown, so they run
# level round the crown and concentric on the brim), each row woven in strands STRAW_STRAND_M
# across.
STRAW_CENTRE = (0.0, 0.35, 0.0)
STRAW_ROW_M = 0.007
STRAW_STRAND_M = 0.0016


def _straw(tree, colour, bsdf) -> None:
    """Straw: the braid's rows and strands in relief, the rows' seams a little darker, the
    strands' colour uneven."""
    coord = tree.nodes.new("ShaderNodeTexCoord")
    centred = _node(tree, "ShaderNodeMapping", Location=tuple(-c for c in STRAW_CENTRE))
    tree.links.new(coord.outputs["Object"], centred.inputs["Vector"])
    # Blender's wave texture repeats every 2 pi / 20 of scale x distance.
    rows = _node(tree, "ShaderNodeTexWave", Scale=2 * np.pi / 20 / STRAW_ROW_M, Distortion=0.4,
                 **{"Detail Scale": 2.0})
    rows.wave_type = "RINGS"
    rows.rings_direction = "SPHERICAL"
    rows.wave_profile = "SAW"
    strands = _node(tree, "ShaderNodeTexWave", Scale=2 * np.pi / 20 / STRAW_STRAND_M, Distortion=2.0)
    strands.bands_direction = "DIAGONAL"
    for tex in (rows, strands):
        tree.links.new(centred.outputs["Vector"], tex.inputs["Vector"])
    height = _math(tree, "MULTIPLY_ADD", strands.outputs["Fac"], 0.35, rows.outputs["Fac"])
    bump = _node(tree, "ShaderNodeBump", Strength=0.45)
    tree.links.new(height, bump.inputs["Height"])
    tree.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    mottle = _node(tree, "ShaderNodeTexNoise", Scale=300.0, Detail=2.0)
    tree.links.new(coord.outputs["Object"], mottle.inputs["Vector"])
    shade = _math(tree, "ADD", _math(tree, "MULTIPLY_ADD", rows.outputs["Fac"], 0.18, 0.7),
                  _math(tree, "MULTIPLY_ADD", strands.outputs["Fac"], 0.12,
                        _math(tree, "MULTIPLY_ADD", mottle.outputs["Fac"], 0.2, -0.1)))
    tint = tree.nodes.new("ShaderNodeMix")
    tint.data_type = "RGBA"
    tint.blend_type = "MULTIPLY"
    tint.inputs["Factor"].default_value = 1.0
    tree.links.new(colour, tint.inputs[6])
    tree.links.new(shade, tint.inputs[7])
    tree.links.new(tint.outputs[2], bsdf.inputs["Base Color"])


# Moulded polyethylene (a hard hat): a satin surface (SHELL_ROUGHNESS) with the mould's fine
# orange-peel grain (SHELL_GRAIN_M across), and wear: patches of grime a few centimetres across
# that darken the colour by up to SHELL_GRIME_DARKEN and dull the finish by up to
# SHELL_GRIME_ROUGHNESS.
SHELL_ROUGHNESS = 0.38
SHELL_GRAIN_M = 0.0008
SHELL_GRIME_DARKEN = 0.3
SHELL_GRIME_ROUGHNESS = 0.25


def _shell(tree, colour, bsdf) -> None:
    """The hat's secondary colour (drawn per sample, rf_secondary) shifts the noise, so no two
    hats wear the same patches."""
    coord = tree.nodes.new("ShaderNodeTexCoord")
    grain = _node(tree, "ShaderNodeTexNoise", Scale=1.0 / SHELL_GRAIN_M, Detail=2.0)
    tree.links.new(coord.outputs["Object"], grain.inputs["Vector"])
    bump = _node(tree, "ShaderNodeBump", Strength=0.06)
    tree.links.new(grain.outputs["Fac"], bump.inputs["Height"])
    tree.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    seed = tree.nodes.new("ShaderNodeAttribute")
    seed.attribute_type = "OBJECT"
    seed.attribute_name = "rf_secondary"
    shifted = _node(tree, "ShaderNodeVectorMath")
    shifted.operation = "ADD"
    tree.links.new(coord.outputs["Object"], shifted.inputs[0])
    tree.links.new(seed.outputs["Vector"], shifted.inputs[1])
    wear = _node(tree, "ShaderNodeTexNoise", Scale=30.0, Detail=6.0, Roughness=0.65)
    tree.links.new(shifted.outputs["Vector"], wear.inputs["Vector"])
    ramp = _node(tree, "ShaderNodeMapRange", **{"From Min": 0.5, "From Max": 0.75})
    ramp.interpolation_type = "SMOOTHSTEP"
    tree.links.new(wear.outputs["Fac"], ramp.inputs["Value"])
    grime = ramp.outputs["Result"]
    tint = tree.nodes.new("ShaderNodeMix")
    tint.data_type = "RGBA"
    tint.blend_type = "MULTIPLY"
    tint.inputs["Factor"].default_value = 1.0
    tree.links.new(colour, tint.inputs[6])
    tree.links.new(_math(tree, "MULTIPLY_ADD", grime, -SHELL_GRIME_DARKEN, 1.0), tint.inputs[7])
    tree.links.new(tint.outputs[2], bsdf.inputs["Base Color"])
    tree.links.new(_math(tree, "MULTIPLY_ADD", grime, SHELL_GRIME_ROUGHNESS, SHELL_ROUGHNESS),
                   bsdf.inputs["Roughness"])


def _keep(state: dict, key, mat):
    state["materials"][key] = mat
    return mat


def _object(handles, name: str):
    state = _state(handles)
    obj = state["objects"].get(name)
    if obj is None:
        mesh = bpy.data.meshes.new(f"rf_acc_{name}")
        obj = bpy.data.objects.new(f"rf_acc_{name}", mesh)
        handles.scene.collection.objects.link(obj)
        state["objects"][name] = obj
    return obj


def _write_mesh(handles, obj, m: AccessoryMesh) -> None:
    mesh = obj.data
    mesh.clear_geometry()
    faces = np.asarray(m.faces)
    write_triangles(mesh, m.vertices, faces)
    mesh.materials.clear()
    for kind, seg_class, _ in m.materials:
        mesh.materials.append(_material(handles, kind, seg_class))
    mesh.polygons.foreach_set("material_index", np.ascontiguousarray(m.face_material, dtype=np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    rgb = np.array([mat[2] for mat in m.materials], dtype=np.float32).reshape(-1, 3)
    colours = np.ones((len(faces), 4), dtype=np.float32)
    colours[:, :3] = rgb[m.face_material]
    attr = mesh.attributes.get("rf_colour") or mesh.attributes.new("rf_colour", "FLOAT_COLOR", "FACE")
    attr.data.foreach_set("color", colours.ravel())
    obj["rf_secondary"] = [float(c) for c in m.secondary_rgb]
    obj["rf_pattern"] = float(PATTERNS.index(m.pattern)) if m.pattern in PATTERNS else 0.0


def apply_accessories(handles, meshes: list[AccessoryMesh], head_to_world: np.ndarray) -> None:
    """Show this sample's accessories and hide the rest.

    meshes: head-frame meshes from accessories.build_accessories; head_to_world: (4, 4) head
    frame to Blender world (the objects ride on the head bone).
    """
    from mathutils import Matrix

    state = _state(handles)
    used = set()
    matrix = Matrix(np.asarray(head_to_world, dtype=float).tolist())
    for m in meshes:
        obj = _object(handles, m.name)
        _write_mesh(handles, obj, m)
        obj.matrix_world = matrix
        obj.hide_render = False
        used.add(m.name)
    for name, obj in state["objects"].items():
        if name not in used:
            obj.hide_render = True


def sync_lens_reflections(handles) -> None:
    """Give the clear lenses this sample's environment, once scene.apply_lighting has set the
    world: its HDRI, its turn as it lights the scene, lighting strength (what rays other than
    camera rays see) and tint."""
    lenses = [m for (kind, _), m in _state(handles)["materials"].items() if kind == "lens_clear"]
    if not lenses:
        return
    world = handles.world.node_tree.nodes
    env = world["rf_env"]
    mapping = world["rf_light_mapping"]
    for mat in lenses:
        nodes = mat.node_tree.nodes
        nodes["rf_env"].image = env.image
        nodes["rf_env_mapping"].inputs["Rotation"].default_value = mapping.inputs["Rotation"].default_value
        nodes["rf_env_tint"].inputs[7].default_value = world["rf_tint"].inputs[7].default_value
        nodes["rf_env_strength"].inputs["Strength"].default_value = world["rf_strength"].inputs[2].default_value
