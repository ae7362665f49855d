"""Hair, beard, brow and eyelash curves in the Blender scene.

Strands become Cycles curves (ribbons) shaded with the Principled Hair BSDF (Chiang model,
melanin parametrisation); a share ``grey`` of the strands, picked by Hair Info's per-strand
random value, switches to an unpigmented white-grey fibre. Scalp and beard caps are thin meshes
with a diffuse hair-coloured shader whose alpha fades out at the hairline (below Cycles' pass
alpha threshold they write no class). Every material's pass_index is its segmentation class.
Objects are created on first use in ``handles.extras["hair"]`` and carry the head frame:
``matrix_world = head_to_world``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import bpy
import numpy as np

from replicantface.hair import CapMesh, HairParams, Strands, class_of, melanin_rgb

CURVE_KINDS = ("hair", "beard", "brow_r", "brow_l", "lash_r", "lash_l")
CAP_KINDS = ("hair_cap", "scalp_shadow", "beard_cap")
_FRIZZ_GROUP = "Frizz Hair Curves"
# Frizz displacement (metres) of scalp hair and beards; small enough to keep covered hair
# within its headwear's clearance.
_FRIZZ_M = {"hair": 0.0012, "beard": 0.0008}
# Dark-brown-black eyelashes whatever the hair colour (they rarely go grey).
_LASH_MELANIN = 0.95


@dataclass
class HairObjects:
    """The hair layer of a scene: objects and materials by kind."""

    objects: dict
    materials: dict


def _hair_assets_path() -> str:
    return os.path.join(bpy.utils.system_resource("DATAFILES"), "assets", "nodes",
                        "procedural_hair_node_assets.blend")


def _frizz_group():
    """Blender's "Frizz Hair Curves" node group, appended from the bundled asset file once."""
    group = bpy.data.node_groups.get(_FRIZZ_GROUP)
    if group is None:
        with bpy.data.libraries.load(_hair_assets_path(), link=False) as (src, dst):
            dst.node_groups = [_FRIZZ_GROUP]
        group = bpy.data.node_groups[_FRIZZ_GROUP]
        group.use_fake_user = True
    return group


def _hair_bsdf(tree, name: str):
    bsdf = tree.nodes.new("ShaderNodeBsdfHairPrincipled")
    bsdf.name = name
    bsdf.model = "CHIANG"
    bsdf.parametrization = "MELANIN"
    bsdf.inputs["Roughness"].default_value = 0.3
    bsdf.inputs["Radial Roughness"].default_value = 0.35
    bsdf.inputs["Coat"].default_value = 0.1
    bsdf.inputs["Random Color"].default_value = 0.12
    bsdf.inputs["Random Roughness"].default_value = 0.1
    return bsdf


def _strand_material(kind: str):
    """Pigmented and white fibres mixed per strand: white where Hair Info Random < grey."""
    mat = bpy.data.materials.new(f"rf_hair_{kind}")
    mat.pass_index = class_of(kind)
    tree = mat.node_tree
    tree.nodes.clear()
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    pigment = _hair_bsdf(tree, "rf_pigment")
    white = _hair_bsdf(tree, "rf_white")
    white.inputs["Melanin"].default_value = 0.06
    white.inputs["Melanin Redness"].default_value = 0.2
    white.inputs["Tint"].default_value = (0.95, 0.93, 0.88, 1.0)
    info = tree.nodes.new("ShaderNodeHairInfo")
    grey = tree.nodes.new("ShaderNodeMath")
    grey.name = "rf_grey"
    grey.operation = "LESS_THAN"
    grey.inputs[1].default_value = 0.0
    tree.links.new(info.outputs["Random"], grey.inputs[0])
    mix = tree.nodes.new("ShaderNodeMixShader")
    tree.links.new(grey.outputs[0], mix.inputs["Fac"])
    tree.links.new(pigment.outputs[0], mix.inputs[1])
    tree.links.new(white.outputs[0], mix.inputs[2])
    tree.links.new(mix.outputs[0], out.inputs["Surface"])
    mat.use_fake_user = True
    return mat


def _cap_material(kind: str):
    """Diffuse hair colour whose alpha is the mesh's ``coverage`` attribute."""
    mat = bpy.data.materials.new(f"rf_hair_{kind}")
    mat.pass_index = class_of(kind)
    tree = mat.node_tree
    tree.nodes.clear()
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    rgb = tree.nodes.new("ShaderNodeRGB")
    rgb.name = "rf_rgb"
    bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.inputs["Roughness"].default_value = 0.6
    tree.links.new(rgb.outputs[0], bsdf.inputs["Base Color"])
    attr = tree.nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = "coverage"
    transparent = tree.nodes.new("ShaderNodeBsdfTransparent")
    mix = tree.nodes.new("ShaderNodeMixShader")
    tree.links.new(attr.outputs["Fac"], mix.inputs["Fac"])
    tree.links.new(transparent.outputs[0], mix.inputs[1])
    tree.links.new(bsdf.outputs[0], mix.inputs[2])
    tree.links.new(mix.outputs[0], out.inputs["Surface"])
    mat.use_fake_user = True
    return mat


def _build(handles) -> HairObjects:
    objects, materials = {}, {}
    frizz = _frizz_group()
    for kind in CURVE_KINDS:
        materials[kind] = _strand_material(kind)
        data = bpy.data.hair_curves.new(f"rf_{kind}")
        data.materials.append(materials[kind])
        obj = bpy.data.objects.new(f"rf_{kind}", data)
        obj.hide_render = True
        handles.scene.collection.objects.link(obj)
        if kind in _FRIZZ_M:
            mod = obj.modifiers.new("frizz", "NODES")
            mod.node_group = frizz
            _set_modifier_input(mod, "Distance", _FRIZZ_M[kind])
            _set_modifier_input(mod, "Shape", 0.3)
        objects[kind] = obj
    for kind in CAP_KINDS:
        materials[kind] = _cap_material(kind)
        mesh = bpy.data.meshes.new(f"rf_{kind}")
        obj = bpy.data.objects.new(f"rf_{kind}", mesh)
        obj.hide_render = True
        handles.scene.collection.objects.link(obj)
        objects[kind] = obj
    return HairObjects(objects, materials)


def _set_modifier_input(mod, name: str, value) -> None:
    for item in mod.node_group.interface.items_tree:
        if item.item_type == "SOCKET" and item.in_out == "INPUT" and item.name == name:
            mod[item.identifier] = value
            return
    raise KeyError(f"{mod.node_group.name} has no input {name!r}")


def _objects(handles) -> HairObjects:
    found = handles.extras.get("hair")
    if found is None:
        found = handles.extras["hair"] = _build(handles)
    return found


def _write_curves(obj, strands: Strands, material) -> None:
    pts = np.ascontiguousarray(strands.points, dtype=np.float32)
    n, p, _ = pts.shape
    data = obj.data
    if len(data.curves) != n or len(data.points) != n * p:
        old = data
        data = bpy.data.hair_curves.new(old.name)
        data.add_curves([p] * n)
        data.materials.append(material)
        obj.data = data
        bpy.data.hair_curves.remove(old)
    data.position_data.foreach_set("vector", pts.ravel())
    radius = np.broadcast_to(np.asarray(strands.radius_m, dtype=np.float32), (n, p))
    attr = data.attributes.get("radius") or data.attributes.new("radius", "FLOAT", "POINT")
    attr.data.foreach_set("value", np.ascontiguousarray(radius).ravel())
    data.update_tag()


def _write_cap(obj, cap: CapMesh, material) -> None:
    old = obj.data
    mesh = bpy.data.meshes.new(old.name)
    verts, faces = cap.vertices, cap.faces
    mesh.vertices.add(len(verts))
    mesh.loops.add(faces.size)
    mesh.polygons.add(len(faces))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(verts, dtype=np.float32).ravel())
    mesh.loops.foreach_set("vertex_index", np.ascontiguousarray(faces, dtype=np.int32).ravel())
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    mesh.update()
    cov = mesh.attributes.new("coverage", "FLOAT", "POINT")
    cov.data.foreach_set("value", np.ascontiguousarray(cap.coverage, dtype=np.float32))
    mesh.materials.append(material)
    obj.data = mesh
    bpy.data.meshes.remove(old)


def _set_strand_colour(material, melanin: float, redness: float, grey: float) -> None:
    nodes = material.node_tree.nodes
    nodes["rf_pigment"].inputs["Melanin"].default_value = float(melanin)
    nodes["rf_pigment"].inputs["Melanin Redness"].default_value = float(redness)
    nodes["rf_grey"].inputs[1].default_value = float(grey)


# A cap's colour where its hair is all white: the white strands' mass as they render (a warm mid
# grey), not a light grey, which showed as a pale patch wherever the strands part from the cap.
GREY_CAP_RGB = (0.36, 0.34, 0.30)


def _set_cap_colour(material, melanin: float, redness: float, grey: float) -> None:
    pigment = np.array(melanin_rgb(melanin, redness))
    colour = (1.0 - grey) * pigment * 0.8 + grey * np.array(GREY_CAP_RGB)
    material.node_tree.nodes["rf_rgb"].outputs[0].default_value = (*colour, 1.0)


def apply_hair(handles, strands: dict, params: HairParams, head_to_world: np.ndarray) -> None:
    """Write one sample's strands and caps (from ``hair.hair_strands``; head frame, metres) and
    colours; kinds missing from ``strands`` are hidden. head_to_world: (4, 4)."""
    from mathutils import Matrix

    layer = _objects(handles)
    colours = {
        "hair": (params.melanin, params.redness, params.grey),
        "hair_cap": (params.melanin, params.redness, params.grey),
        "scalp_shadow": (params.melanin, params.redness, params.grey),
        "beard": (params.beard_melanin, params.redness, params.beard_grey),
        "beard_cap": (params.beard_melanin, params.redness, params.beard_grey),
        "brow_r": (params.brow_melanin, params.redness, params.brow_grey),
        "brow_l": (params.brow_melanin, params.redness, params.brow_grey),
        "lash_r": (_LASH_MELANIN, 0.1, 0.0),
        "lash_l": (_LASH_MELANIN, 0.1, 0.0),
    }
    matrix = Matrix(np.asarray(head_to_world, dtype=float).tolist())
    for kind, obj in layer.objects.items():
        item = strands.get(kind)
        obj.hide_render = item is None
        if item is None:
            continue
        material = layer.materials[kind]
        if kind in CAP_KINDS:
            _write_cap(obj, item, material)
            _set_cap_colour(material, *colours[kind])
        else:
            _write_curves(obj, item, material)
            _set_strand_colour(material, *colours[kind])
        obj.matrix_world = matrix


def hide_hair(handles) -> None:
    """Hide every hair object (e.g. before rendering a sample without hair)."""
    layer = handles.extras.get("hair")
    if layer is not None:
        for obj in layer.objects.values():
            obj.hide_render = True
