"""The Jupyter workbench: a controller that turns control values into a rendered, labelled face.

``Workbench`` holds the state (which sample, which controls are set) and renders it; the
ipywidgets UI (``Workbench.widget()``) only mirrors that state, so tests drive the controller
without a browser::

    wb = Workbench(seed=0, index=0)
    wb.set("yaw", 20)
    sample = wb.render()
    wb.image(landmarks=True, axes=True)   # PIL image, overlays drawn on the cached render
    wb.labels["pose_aflw"]

A face is the sample ``(seed, index)`` of a preset with some controls set: ``params_snippet()``
writes exactly that as TOML and ``Workbench.from_snippet`` / ``params_from_snippet`` rebuild it.

The notebook helpers for exploring randomizers (``pose_label_samples``, ``vary_grid``) and for
inspecting a generated dataset (``DatasetInspector``) live at the end of this module.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import io
import json
import math
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from replicantface import dataset, labels
from replicantface.appearance import IRIS_COLOURS, with_skin
from replicantface.classes import FACE_BOX_CLASSES, HEAD_CLASSES, SegClass
from replicantface.config import QUALITY, GeneratorConfig, load_preset
from replicantface.expression import FACIAL_ACTIONS, PRESETS
from replicantface.lighting import (
    EXTRA_LIGHT_KINDS,
    ExtraLight,
    lamp_duv_limit,
    lamp_kelvin_duv,
    lamp_rgb,
)
from replicantface.overlay import draw_overlay

# Slider drags send many events; one render starts this long after the last of them.
DEBOUNCE_S = 0.1
# Quality of the live preview and of the "render final" button.
PREVIEW_QUALITY = "interactive"
FINAL_QUALITIES = ("preview", "final")
GAZE_ACTIONS = tuple(a for a in FACIAL_ACTIONS if a.startswith("eyeLook"))
# The preset buttons of the expression tab, in this order; the rest of PRESETS follow.
EXPRESSION_BUTTONS = ("smile", "surprise", "talking", "eyes_closed")
# Where "save sample" writes unless told otherwise (the repository's git-ignored outputs/).
DEFAULT_SAVE_DIR = Path(__file__).resolve().parent.parent / "outputs" / "workbench"
# A lamp switched on from the workbench when the sample had none (then edited by the sliders).
DEFAULT_EXTRA_LIGHT = ExtraLight(kind="AREA", azimuth_deg=45.0, elevation_deg=30.0,
                                 distance_m=1.5, power_w=60.0, colour=(1.0, 1.0, 1.0))


# ----------------------------------------------------------------------------------------------
# Registries of hair styles and accessories (from their modules).


def hair_styles() -> list[str]:
    """Hair styles the scene can show, "bald" first."""
    from replicantface import hair

    return ["bald", *[s for s in hair.HAIRSTYLES if s != "bald"]]


def accessory_slots() -> dict[str, list[str]]:
    """Accessory slot (category) -> options, "none" first, e.g. {"glasses": ["none", ...]}."""
    from replicantface import accessories

    return {slot: ["none", *names] for slot, names in accessories.by_category().items()}


def _has_field(obj, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(obj))


# ----------------------------------------------------------------------------------------------
# Controls: one per slider / dropdown, each reading and writing one thing of SampleParams.


@dataclass(frozen=True)
class Control:
    """A named, range-checked handle on one parameter.

    get(params) reads the value; put(params, value, wb) returns params with it set (wb gives
    access to the generator, for controls that resample, e.g. ``identity_seed``).
    kind: "float" | "int" | "choice" | "bool". Angles are degrees, distances metres.
    """

    name: str
    group: str
    label: str
    kind: str
    get: Callable
    put: Callable
    lo: float = 0.0
    hi: float = 1.0
    step: float = 0.01
    options: tuple = ()
    enabled: bool = True
    note: str = ""

    def check(self, value):
        """The value converted to this control's type, or ValueError naming the allowed range."""
        if self.kind == "float" or self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ValueError(f"{self.name} must be a number, got {value!r}")
            value = int(value) if self.kind == "int" else float(value)
            if not self.lo <= value <= self.hi:
                raise ValueError(f"{self.name} = {value} is out of range [{self.lo}, {self.hi}]")
            return value
        if self.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{self.name} must be true or false, got {value!r}")
            return bool(value)
        if value not in self.options:
            raise ValueError(f"{self.name} = {value!r} is not one of {list(self.options)}")
        return value


def _section(section: str, field: str, cast=float):
    """get/put for ``params.<section>.<field>``."""
    def get(p):
        return getattr(getattr(p, section), field)

    def put(p, v, wb):
        return replace(p, **{section: replace(getattr(p, section), **{field: cast(v)})})

    return get, put


def _put_action(action: str):
    def put(p, v, wb):
        weights = dict(p.expression.weights)
        if v > 0:
            weights[action] = float(v)
        else:
            weights.pop(action, None)
        return replace(p, expression=replace(p.expression, weights=weights))
    return put


def _get_action(action: str):
    """A gaze-driven action shows what the gaze sets; any other shows the weight set on it (the
    render adds upward gaze's eyeWide on top: expression.UPGAZE_EYE_WIDE)."""
    if action in GAZE_ACTIONS:
        return lambda p: float(p.expression.all_weights().get(action, 0.0))
    return lambda p: float(p.expression.weights.get(action, 0.0))


def _put_gaze_driven(action: str):
    def put(p, v, wb):
        raise ValueError(f"{action} follows the gaze; set gaze_yaw / gaze_pitch instead")
    return put


def _put_identity_seed(p, v, wb):
    """The identity of sample (v, index): same sampler and config, another seed."""
    key = (int(v), p.index)
    cache = wb.__dict__.setdefault("_identities", {})
    if key not in cache:
        cache[key] = wb.generator.params(*key).identity
    return replace(p, identity=cache[key])


def _get_identity_seed(p):
    return p.seed  # the sampled identity is that of the face's own seed; Workbench.get knows better


def _put_distance(p, v, wb):
    # distance is proportional to 1 / face_fraction at a fixed focal length.
    cam = p.camera
    return replace(p, camera=replace(cam, face_fraction=cam.face_fraction * cam.distance_m / float(v)))


def _put_focal(p, v, wb):
    cam = p.camera
    zoomed = replace(cam, focal_mm=float(v))
    # Keep the camera where it is: a longer lens makes the face bigger, not the camera farther.
    return replace(p, camera=replace(zoomed, face_fraction=zoomed.face_fraction * zoomed.distance_m
                                     / cam.distance_m))


def _put_skin_tone(p, v, wb):
    return replace(p, appearance=with_skin(p.appearance, float(v)))


def _get_iris(p):
    return p.appearance.iris_name


def _put_iris(p, v, wb):
    return replace(p, appearance=replace(p.appearance, iris_name=v, iris_rgb=IRIS_COLOURS[v]))


def _get_hair_colour(p):
    return p.hair.colour


def _put_hair_colour(p, v, wb):
    """Hair, beard and brows take the middle of the colour's melanin and redness ranges; so do
    the brow skin's tint and a shaved beard's shadow."""
    from replicantface.appearance import beard_shadow_rgb
    from replicantface.hair import HAIR_COLOURS as COLOURS
    from replicantface.hair import melanin_rgb

    melanin, redness = (float(np.mean(r)) for r in COLOURS[v])
    hair = replace(p.hair, colour=v, melanin=melanin, redness=redness, beard_melanin=melanin,
                   brow_melanin=melanin)
    rgb = melanin_rgb(melanin, redness)
    return replace(p, hair=hair, appearance=replace(p.appearance, brow_rgb=rgb,
                                                    beard_shadow_rgb=beard_shadow_rgb(rgb)))


def _hair_field(field: str):
    def put(p, v, wb):
        return replace(p, hair=replace(p.hair, **{field: v}))

    return (lambda p: getattr(p.hair, field)), put


def _accessory_control(slot: str, options: list[str]) -> Control:
    from replicantface import accessories

    def get(p):
        return next((n for n in p.accessories.names if accessories.ACCESSORIES[n].category == slot),
                    "none")

    def put(p, v, wb):
        if v == "none":
            return replace(p, accessories=accessories.take_off(p.accessories, slot))
        # Colours from the face's own seed, so choosing the same item twice gives the same look.
        rng = np.random.default_rng(np.random.SeedSequence([p.seed, p.index, options.index(v)]))
        return replace(p, accessories=accessories.wear(p.accessories, accessories.choice_for(v, rng)))

    return Control(f"accessory_{slot}", "appearance", slot, "choice", get, put, options=tuple(options))


def _get_hdri(p):
    return p.lighting.hdri


def _put_extra_light_kind(p, v, wb):
    light = p.lighting.extra_light
    if v == "none":
        light = None
    else:
        light = replace(light or DEFAULT_EXTRA_LIGHT, kind=v)
    return replace(p, lighting=replace(p.lighting, extra_light=light))


def _extra_light_field(field: str, default: float):
    def get(p):
        light = p.lighting.extra_light
        return default if light is None else getattr(light, field)

    def put(p, v, wb):
        light = p.lighting.extra_light
        if light is None:
            return p  # the lamp is off; its sliders only matter once a kind is chosen
        return replace(p, lighting=replace(p.lighting, extra_light=replace(light, **{field: float(v)})))

    return get, put


def _extra_light_colour(which: int):
    """Get and put of the lamp's colour temperature (``which`` 0, kelvin) or its green-magenta
    tint (1, Duv off the black-body locus); setting one keeps the other (lighting.lamp_rgb). A
    green tint that a warm lamp cannot show in linear RGB is held at the gamut's edge
    (lighting.lamp_duv_limit), so the sliders read back what the render shows."""
    def get(p):
        light = p.lighting.extra_light
        return lamp_kelvin_duv((light or DEFAULT_EXTRA_LIGHT).colour)[which]

    def put(p, v, wb):
        light = p.lighting.extra_light
        if light is None:
            return p  # the lamp is off, as for its other sliders
        kelvin_duv = list(lamp_kelvin_duv(light.colour))
        kelvin_duv[which] = float(v)
        kelvin_duv[1] = min(kelvin_duv[1], lamp_duv_limit(kelvin_duv[0]))
        return replace(p, lighting=replace(p.lighting, extra_light=replace(light, colour=lamp_rgb(*kelvin_duv))))

    return get, put


def build_controls(hdri_names: list[str]) -> dict[str, Control]:
    """Every control of the workbench, in the order they are applied (name -> Control)."""
    c: list[Control] = []

    def add(name, group, label, kind, getput, **kw):
        c.append(Control(name, group, label, kind, *getput, **kw))

    # Identity first: a new identity seed replaces all phenotypes, which may then be edited.
    add("identity_seed", "identity", "identity seed", "int", (_get_identity_seed, _put_identity_seed),
        lo=0, hi=2**31 - 1, step=1)
    add("gender", "identity", "gender (0 female, 1 male)", "float", _section("identity", "gender"))
    add("age_years", "identity", "age (years)", "float", _section("identity", "age_years"),
        lo=1.0, hi=90.0, step=1.0)
    for name in ("muscle", "weight", "height", "proportions"):
        add(name, "identity", name, "float", _section("identity", name))
    # Head relative to the body, and the camera orbit (the label is their composition).
    add("yaw", "head", "head yaw (°)", "float", _section("pose", "head_yaw_deg"), lo=-180, hi=180, step=1)
    add("pitch", "head", "head pitch (°)", "float", _section("pose", "head_pitch_deg"), lo=-90, hi=90, step=1)
    add("roll", "head", "head roll (°)", "float", _section("pose", "head_roll_deg"), lo=-90, hi=90, step=1)
    add("camera_heading", "camera", "camera orbit heading (°)", "float",
        _section("pose", "camera_heading_deg"), lo=-180, hi=180, step=1)
    add("camera_pitch", "camera", "camera orbit pitch (°)", "float",
        _section("pose", "camera_pitch_deg"), lo=-80, hi=80, step=1)
    add("focal_mm", "camera", "focal length (mm)", "float", (lambda p: p.camera.focal_mm, _put_focal),
        lo=12.0, hi=200.0, step=1.0)
    add("distance_m", "camera", "camera distance (m)", "float", (lambda p: p.camera.distance_m, _put_distance),
        lo=0.2, hi=6.0, step=0.01)
    add("depth_of_field", "camera", "depth of field", "bool", _section("camera", "use_dof", bool))
    add("gaze_yaw", "gaze", "gaze yaw (°, + subject's left)", "float",
        _section("expression", "gaze_yaw_deg"), lo=-45, hi=45, step=1)
    add("gaze_pitch", "gaze", "gaze pitch (°, + up)", "float",
        _section("expression", "gaze_pitch_deg"), lo=-40, hi=40, step=1)
    for action in FACIAL_ACTIONS:
        gaze = action in GAZE_ACTIONS
        add(action, f"expression/{action_region(action)}", action, "float",
            (_get_action(action), _put_gaze_driven(action) if gaze else _put_action(action)),
            enabled=not gaze, note="follows the gaze" if gaze else
            "upward gaze adds to it" if action.startswith("eyeWide") else "")
    add("hdri", "lighting", "HDRI", "choice", (_get_hdri, _section("lighting", "hdri", str)[1]),
        options=tuple(hdri_names))
    add("hdri_rotation", "lighting", "HDRI rotation (°)", "float", _section("lighting", "rotation_deg"),
        lo=0, hi=360, step=1)
    add("light_strength", "lighting", "light strength", "float", _section("lighting", "strength"),
        lo=0, hi=4, step=0.05)
    add("background_strength", "lighting", "background strength", "float",
        _section("lighting", "background_strength"), lo=0, hi=4, step=0.05)
    add("face_exposure", "lighting", "face exposure", "float", _section("lighting", "face_exposure"),
        lo=0, hi=1, step=0.01, note="face-priority metering target, linear; 0 turns it off")
    add("white_balance", "lighting", "white balance", "float", _section("lighting", "white_balance"),
        lo=0, hi=1, step=0.05, note="share of the light's colour cast removed; 0 turns it off")
    add("extra_light", "lighting", "extra light", "choice",
        (lambda p: "none" if p.lighting.extra_light is None else p.lighting.extra_light.kind,
         _put_extra_light_kind), options=("none", *EXTRA_LIGHT_KINDS))
    for field, label, lo, hi, step in (("power_w", "extra light power (W)", 0, 500, 1),
                                       ("azimuth_deg", "extra light azimuth (°)", -180, 180, 1),
                                       ("elevation_deg", "extra light elevation (°)", -60, 85, 1),
                                       ("distance_m", "extra light distance (m)", 0.3, 5, 0.05)):
        add(f"extra_light_{field}", "lighting", label, "float",
            _extra_light_field(field, getattr(DEFAULT_EXTRA_LIGHT, field)), lo=lo, hi=hi, step=step)
    add("extra_light_kelvin", "lighting", "extra light colour temperature (K)", "float",
        _extra_light_colour(0), lo=1900, hi=10000, step=50,
        note="a black body's colour; the random lamps span 2700-6500 K")
    add("extra_light_duv", "lighting", "extra light tint (Duv)", "float", _extra_light_colour(1),
        lo=-0.02, hi=0.02, step=0.001, note="off the black-body locus: + green (held inside the RGB gamut), - magenta")
    add("skin_tone", "appearance", "skin tone (Fitzpatrick)", "float",
        (lambda p: p.appearance.fitzpatrick, _put_skin_tone), lo=1.0, hi=6.0, step=0.05)
    add("iris", "appearance", "iris colour", "choice", (_get_iris, _put_iris), options=tuple(sorted(IRIS_COLOURS)))
    from replicantface import hair

    add("hair_style", "appearance", "hair style", "choice", _hair_field("style"),
        options=tuple(hair_styles()))
    add("hair_colour", "appearance", "hair colour", "choice", (_get_hair_colour, _put_hair_colour),
        options=tuple(hair.HAIR_COLOURS))
    add("hair_grey", "appearance", "grey hair", "float", _hair_field("grey"), lo=0.0, hi=1.0, step=0.05)
    add("beard", "appearance", "beard", "choice", _hair_field("beard"), options=hair.BEARDS)
    add("beard_shadow", "appearance", "beard shadow", "float", _section("appearance", "beard_shadow"),
        lo=0.0, hi=1.0, step=0.05, note="a shaved beard's stubs in the skin; 0 for none")
    add("brows", "appearance", "brow shape", "choice", _hair_field("brow_shape"),
        options=hair.BROW_SHAPES)
    for slot, options in accessory_slots().items():
        c.append(_accessory_control(slot, options))
    return {ctl.name: ctl for ctl in c}


def action_region(action: str) -> str:
    """Face region of an ARKit facial action, for grouping the 52 sliders."""
    if action.startswith("brow"):
        return "brows"
    if action.startswith("eye"):
        return "eyes"
    if action.startswith(("cheek", "nose")):
        return "cheeks & nose"
    if action.startswith("jaw"):
        return "jaw"
    if action.startswith("tongue"):
        return "tongue"
    return "mouth"


def apply_controls(base, values: dict, controls: dict[str, Control], wb) -> Any:
    """``base`` SampleParams with every set control applied, in the controls' order."""
    params = base
    for name, ctl in controls.items():
        if name in values:
            params = ctl.put(params, values[name], wb)
    return params


# ----------------------------------------------------------------------------------------------
# Scene access that skips rewriting an unchanged world.


class _WorldSkippingScene:
    """Stands in for ``replicantface.scene`` inside the workbench's Generator.

    Writing any node of the world (even the same value) makes Cycles rebuild the background's
    importance map, about 2 s per render on 2 cores. A slider that moves the head or camera does
    not change the world, so when the lighting params and HDRI equal those of the last write,
    and the world still holds what that write put there (nothing else rendered in between),
    ``apply_lighting`` is given a private copy of the world to write into: backdrop and extra
    light are still placed (they follow the head and camera), the real world stays untouched.
    Everything else is forwarded unchanged.
    """

    def __init__(self, scene_module) -> None:
        self._scene = scene_module
        self._key = None
        self._fingerprint = None
        self._shadow = None
        self._shadow_of = None
        self.skipped = 0

    def __getattr__(self, name):
        return getattr(self._scene, name)

    def invalidate(self) -> None:
        self._key = None

    def apply_lighting(self, handles, params, hdri_path, *args, **kwargs):
        key = (_world_params(params), str(hdri_path))
        if key == self._key and _world_fingerprint(handles.world) == self._fingerprint:
            shadow_handles = copy.copy(handles)
            shadow_handles.world = self._shadow_world(handles.world)
            self._scene.apply_lighting(shadow_handles, params, hdri_path, *args, **kwargs)
            self.skipped += 1
            return
        self._scene.apply_lighting(handles, params, hdri_path, *args, **kwargs)
        self._key = key
        self._fingerprint = _world_fingerprint(handles.world)

    def _shadow_world(self, world):
        try:
            alive = self._shadow is not None and self._shadow_of == world.name and self._shadow.name
        except ReferenceError:
            alive = False
        if not alive:
            self._shadow = world.copy()
            self._shadow.name = "rf_workbench_world_copy"
            self._shadow.use_fake_user = True  # survives orphan purges
            self._shadow_of = world.name
        return self._shadow

    def remove_shadow(self) -> None:
        import bpy

        try:
            if self._shadow is not None:
                bpy.data.worlds.remove(self._shadow)
        except ReferenceError:
            pass
        self._shadow = None


def _remember_rest_pose(human) -> None:
    """Make this HumanModel keep its last rest-pose evaluation (identity only, no expression or
    pose: what the teeth are fitted to). Every slider but the identity ones leaves it unchanged,
    so a render saves one anny evaluation (~40-70 ms on 2 cores)."""
    evaluate = human.evaluate
    last = {}

    def evaluate_remembering_rest(*args, **kwargs):
        if args or not set(kwargs) <= {"phenotypes", "local_changes"}:
            return evaluate(*args, **kwargs)
        key = json.dumps(kwargs, sort_keys=True)
        if last.get("key") != key:
            last.update(key=key, geometry=evaluate(**kwargs))
        return last["geometry"]

    human.evaluate = evaluate_remembering_rest


def _world_params(lighting):
    """The part of LightingParams that can affect the world (backdrop and lamp cannot, nor the
    camera's exposure and white balance, which live on the scene and its compositor)."""
    drop = {f: None for f in ("backdrop", "extra_light", "face_exposure", "white_balance")
            if _has_field(lighting, f)}
    return replace(lighting, **drop)


def _world_fingerprint(world) -> tuple:
    """Every input value and image of the world's nodes: what the last write left there."""
    out = []
    for node in world.node_tree.nodes:
        image = getattr(node, "image", None)
        out.append((node.name, image.name if image is not None else None))
        for sock in node.inputs:
            value = getattr(sock, "default_value", None)
            if value is None:
                continue
            try:
                out.append(tuple(round(float(x), 7) for x in value))
            except TypeError:
                out.append(round(float(value), 7) if isinstance(value, float) else value)
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# Debounce with "latest request wins".


class MainThreadScheduler:
    """call_later(delay_s, fn, *args) that runs ``fn`` on the asyncio loop of the thread that
    made the scheduler, whichever thread calls it.

    bpy must run on the kernel's main thread (rendering from another thread aborts the kernel:
    "PyEval_RestoreThread: the function must be called with the GIL held"), but ipykernel 7 hands
    widget messages from JupyterLab to a subshell thread. So the UI is built on the main thread
    (in a cell), keeps that thread's loop, and every render is scheduled onto it. Without a
    running loop (a plain script) ``fn`` runs at once.
    """

    def __init__(self) -> None:
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    def __call__(self, delay_s: float, fn: Callable, *args):
        if self.loop is None:
            fn(*args)
            return None
        handle = _CrossThreadHandle()

        def schedule():
            if not handle.cancelled:
                handle.timer = self.loop.call_later(delay_s, fn, *args)

        self.loop.call_soon_threadsafe(schedule)
        return handle


class _CrossThreadHandle:
    """cancel() for a call scheduled from another thread (the Debouncer also checks its
    generation when the call fires, so a cancel that loses a race is harmless)."""

    def __init__(self) -> None:
        self.cancelled = False
        self.timer = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.timer is not None:
            self.timer.cancel()


class Debouncer:
    """Runs ``action(generation)`` once, ``delay_s`` after the last ``trigger()``.

    Every trigger bumps ``generation`` and cancels the pending call, so a slider drag gives one
    render of its final value. A run whose generation was overtaken while it ran (an event
    arrived meanwhile) is reported as stale by ``is_current``; its result should be dropped,
    and the newer trigger has already scheduled the next run. Nothing is queued behind a run.
    call_later(delay_s, fn, *args) -> handle with cancel(); tests pass a fake clock.
    """

    def __init__(self, action: Callable[[int], None], delay_s: float = DEBOUNCE_S,
                 call_later: Callable | None = None) -> None:
        self.action = action
        self.delay_s = delay_s
        self.call_later = call_later or MainThreadScheduler()
        self.generation = 0
        self.runs = 0
        self.cancelled = 0
        self._pending = None

    def trigger(self) -> int:
        self.generation += 1
        if self._pending is not None:
            self._pending.cancel()
            self.cancelled += 1
        self._pending = None
        self._pending = self.call_later(self.delay_s, self._fire, self.generation)
        return self.generation

    def is_current(self, generation: int) -> bool:
        return generation == self.generation

    def _fire(self, generation: int) -> None:
        if generation != self.generation:
            return  # a newer trigger replaced this call (its cancel came too late)
        self._pending = None
        self.runs += 1
        self.action(generation)


# ----------------------------------------------------------------------------------------------
# The controller.


class Workbench:
    """State and rendering of the workbench. One Blender scene per process, so one at a time.

    seed, index: the sample the face starts from; preset or config: the randomizer settings.
    quality, resolution: of the live preview (``interactive`` by default).
    """

    def __init__(self, seed: int = 0, index: int = 0, preset: str = "default",
                 config: GeneratorConfig | None = None, quality: str = PREVIEW_QUALITY,
                 resolution: int | None = None, use_gpu: bool = True) -> None:
        from replicantface import generate

        cfg = config if config is not None else load_preset(preset)
        # The Blender scene is one per process and shared with any other Generator: remember its
        # render settings so that close() can give them back.
        self._settings_before = _render_settings()
        if _has_field(cfg.lighting, "max_attempts"):
            # A face the user lit dark stays dark: no automatic relighting in the workbench.
            cfg = replace(cfg, lighting=replace(cfg.lighting, max_attempts=1))
        self.seed, self.index, self.preset = int(seed), int(index), cfg.preset
        self.quality = quality
        self.generator = generate.Generator(cfg, quality=quality, resolution=resolution, use_gpu=use_gpu)
        self.resolution = self.generator.resolution
        _remember_rest_pose(self.generator.human)
        self._scene_cache = None
        if hasattr(self.generator, "_scene"):
            self._scene_cache = _WorldSkippingScene(self.generator._scene)
            self.generator._scene = self._scene_cache
        self.controls = build_controls(sorted(self.generator.hdris))
        self.values: dict[str, Any] = {}
        self.overlays = {"landmarks": True, "numbers": False, "axes": True, "box": True, "mask": False}
        self.sample = None
        self.sample_quality = None
        self.last_render_s = float("nan")
        self._identity_rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.index, 1]))
        self._base = None
        self._ui = None

    # -- state -------------------------------------------------------------------------------

    @classmethod
    def from_snippet(cls, text: str, **kwargs) -> Workbench:
        """A workbench showing the face that ``params_snippet()`` wrote (TOML or JSON)."""
        data = _parse_snippet(text)
        wb = cls(seed=data["seed"], index=data["index"], preset=data.get("preset", "default"), **kwargs)
        wb.update(**data.get("controls", {}))
        return wb

    @property
    def base_params(self):
        """The sampled params of (seed, index), before any control is set."""
        if self._base is None:
            self._base = self.generator.params(self.seed, self.index)
        return self._base

    @property
    def params(self):
        """The SampleParams the next render uses."""
        return apply_controls(self.base_params, self.values, self.controls, self)

    def get(self, name: str, params=None):
        """Current value of a control (``params``: the current params, if already at hand)."""
        if name == "identity_seed" and name in self.values:
            return self.values[name]
        return self._control(name).get(self.params if params is None else params)

    def set(self, name: str, value) -> None:
        """Set one control (no render). Unknown names and out-of-range values raise."""
        ctl = self._control(name)
        value = ctl.check(value)
        if not ctl.enabled:
            raise ValueError(f"{name} cannot be set: {ctl.note or 'disabled'}")
        ctl.put(self.params, value, self)  # an inapplicable value fails here, not at render time
        if name == "identity_seed":  # a new identity brings its own phenotypes
            for other in self.controls.values():
                if other.group == "identity" and other.name != name:
                    self.values.pop(other.name, None)
        self.values[name] = value

    def update(self, **values) -> None:
        for name, value in values.items():
            self.set(name, value)

    def reset(self, group: str | None = None) -> None:
        """Forget the set controls (of one group, e.g. "head", or "expression" for all regions)."""
        if group is None:
            self.values.clear()
        for name in [n for n in self.values if self.controls[n].group.split("/")[0] == group]:
            del self.values[name]

    def frontal(self) -> None:
        """Head and camera straight ahead: all five pose angles 0."""
        self.update(yaw=0.0, pitch=0.0, roll=0.0, camera_heading=0.0, camera_pitch=0.0)

    def set_expression(self, preset: str) -> None:
        """One of expression.PRESETS on every (non-gaze) action; "neutral" zeroes them all."""
        if preset not in PRESETS:
            raise ValueError(f"unknown expression preset {preset!r}; choose from {sorted(PRESETS)}")
        for action in FACIAL_ACTIONS:
            if action not in GAZE_ACTIONS:
                self.values[action] = float(PRESETS[preset].get(action, 0.0))

    def new_identity(self) -> int:
        """A new random identity (phenotypes and face shape); returns its seed."""
        seed = int(self._identity_rng.integers(0, 2**31 - 1))
        self.set("identity_seed", seed)
        return seed

    def overrides(self) -> dict:
        """The set controls whose value differs from the sampled face's."""
        base = self.base_params
        return {n: v for n, v in self.values.items() if self.controls[n].get(base) != v
                or n == "identity_seed"}

    def params_snippet(self, fmt: str = "toml") -> str:
        """Text that reproduces this face: preset, seed, index and the controls set (TOML or JSON)."""
        data = {"preset": self.preset, "seed": self.seed, "index": self.index,
                "controls": _plain(self.overrides())}
        if fmt == "json":
            return json.dumps(data, indent=2, sort_keys=True)
        if fmt != "toml":
            raise ValueError(f"fmt must be 'toml' or 'json', got {fmt!r}")
        lines = ["# replicantface workbench: sample (seed, index) of the preset, with these controls set.",
                 "# Rebuild it: replicantface.workbench.Workbench.from_snippet(text)",
                 f"preset = {json.dumps(self.preset)}", f"seed = {self.seed}", f"index = {self.index}",
                 "", "[controls]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in data["controls"].items()]
        return "\n".join(lines) + "\n"

    def _control(self, name: str) -> Control:
        if name not in self.controls:
            import difflib

            close = difflib.get_close_matches(name, self.controls, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown control {name!r}{hint}")
        return self.controls[name]

    # -- rendering ---------------------------------------------------------------------------

    def render(self, quality: str | None = None, resolution: int | None = None):
        """Render the current params (at the preview quality unless given); returns the Sample.

        The labels of the render are ``self.labels``; overlays are drawn by ``image()``.
        """
        self.sample = self.render_params(self.params, quality, resolution)
        return self.sample

    def render_params(self, params, quality: str | None = None, resolution: int | None = None):
        """Render any SampleParams through the workbench's scene (for grids); sets the timing."""
        quality = quality or self.quality
        resolution = resolution or (self.resolution if quality == self.quality else QUALITY[quality].resolution)
        self._use_quality(quality, resolution)
        t0 = time.perf_counter()
        sample = self.generator.render(params)
        self.last_render_s = time.perf_counter() - t0
        self.sample_quality = quality
        return sample

    def _use_quality(self, quality: str, resolution: int) -> None:
        """Make the shared scene render at this quality. Other generators in the process may
        have changed it, so compare what the scene holds, not what we last set."""
        gen = self.generator
        gen._ensure_scene()
        handles = gen.handles
        scene = handles.scene
        preset = QUALITY[quality]
        if (gen.quality.name != quality or gen.resolution != resolution
                or scene.render.resolution_x != resolution or scene.cycles.samples != preset.samples
                or scene.cycles.use_denoising != preset.denoise):
            gen.set_quality(quality, resolution)
        # Keep Cycles' scene between renders: a slider move then re-syncs only what changed.
        if not scene.render.use_persistent_data:
            scene.render.use_persistent_data = True

    def invalidate(self) -> None:
        """Forget what the scene holds (call after rendering with another Generator)."""
        if self._scene_cache is not None:
            self._scene_cache.invalidate()

    def close(self) -> None:
        """Give the scene back with the render settings it had before this workbench."""
        _restore_render_settings(self._settings_before)
        if self._scene_cache is not None:
            self._scene_cache.remove_shadow()
            self._scene_cache.invalidate()

    @property
    def labels(self) -> dict:
        """Label arrays of the last render (as written to ``{stem}.npz``)."""
        if self.sample is None:
            raise RuntimeError("nothing rendered yet: call render() first")
        return self.sample.labels

    def image(self, display_px: int | None = None, **overlays) -> Image.Image:
        """The last render with overlays drawn (no re-render).

        overlays: landmarks, numbers, axes, box, mask (bool); defaults from ``self.overlays``.
        display_px: draw at this size (the render is upscaled first, so numbers stay legible).
        """
        if self.sample is None:
            raise RuntimeError("nothing rendered yet: call render() first")
        unknown = set(overlays) - set(self.overlays)
        if unknown:
            raise KeyError(f"unknown overlays {sorted(unknown)}; choose from {sorted(self.overlays)}")
        flags = {**self.overlays, **overlays}
        return overlay_image(self.sample.rgb, self.sample.mask, self.sample.labels, flags, display_px)

    def label_text(self) -> str:
        return format_labels(self.labels, f"{self.last_render_s:.2f} s ({self.sample_quality}, "
                                          f"{self.sample.rgb.shape[1]} px, {self.generator.device})")

    def save_sample(self, out_dir: Path, quality: str | None = None,
                    resolution: int | None = None) -> list[Path]:
        """Write the current face into ``out_dir`` exactly as the batch generator does.

        Files ``face_{n:06d}.jpg/_mask.png/.npz`` with n the first free number, plus
        dataset.json (which must match if the folder has one). As in a batch folder, the npz's
        ``index`` is n; its ``params`` say where the face came from (the index it was drawn
        at) and hold every edited value.
        quality, resolution: render at these first unless the last render is of the current
        params at that quality and size (default: whatever was rendered last).
        """
        out_dir = Path(out_dir)
        last = self.sample
        if (last is None or last.params != self.params
                or (quality is not None and quality != self.sample_quality)
                or (resolution is not None and resolution != last.rgb.shape[1])):
            self.render(quality or self.sample_quality or self.quality, resolution)
        sample = self.sample
        out_dir.mkdir(parents=True, exist_ok=True)
        meta = dataset.dataset_metadata(self.generator.cfg.to_dict(), self.sample_quality,
                                        int(sample.rgb.shape[1]), self.seed)
        dataset.write_metadata(out_dir, meta)
        n = 0
        while (out_dir / f"{dataset.stem(n)}.npz").exists():
            n += 1
        labels = {**sample.labels, "index": np.int64(n)}
        return dataset.write_sample(out_dir, dataset.stem(n), sample.rgb, sample.mask, labels)

    def widget(self):
        """The ipywidgets UI (sliders, preview with overlay toggles, labels, buttons)."""
        if self._ui is None:
            self._ui = WorkbenchUI(self)
        return self._ui.root


def _render_settings() -> dict | None:
    """Resolution, persistent data and every Cycles setting of Blender's current scene."""
    import bpy

    scene = bpy.context.scene
    if scene is None:
        return None
    cycles = {p.identifier: getattr(scene.cycles, p.identifier)
              for p in scene.cycles.bl_rna.properties
              if not p.is_readonly and p.type in ("BOOLEAN", "INT", "FLOAT", "ENUM") and p.identifier
              != "rna_type" and not getattr(p, "is_array", False)}
    render = {k: getattr(scene.render, k) for k in ("resolution_x", "resolution_y", "use_persistent_data")}
    return {"scene": scene.as_pointer(), "cycles": cycles, "render": render}


def _restore_render_settings(saved: dict | None) -> None:
    import bpy

    scene = bpy.context.scene
    if saved is None or scene is None or scene.as_pointer() != saved["scene"]:
        return  # the scene was rebuilt since: nothing of ours to undo
    for group, values in (("cycles", saved["cycles"]), ("render", saved["render"])):
        target = getattr(scene, group)
        for key, value in values.items():
            if getattr(target, key) != value:
                try:
                    setattr(target, key, value)
                except (TypeError, ValueError, AttributeError):
                    pass  # e.g. a device no longer available


def _plain(values: dict) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in values.items()}


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def _parse_snippet(text: str) -> dict:
    text = text.strip()
    data = json.loads(text) if text.startswith("{") else tomllib.loads(text)
    missing = {"seed", "index"} - set(data)
    if missing:
        raise ValueError(f"snippet lacks {sorted(missing)}")
    return data


def params_from_snippet(text: str, generator) -> Any:
    """The SampleParams a snippet describes, with an existing Generator (same preset assumed)."""
    data = _parse_snippet(text)
    wb = _ParamsOnly(generator)
    base = generator.params(int(data["seed"]), int(data["index"]))
    values = {n: wb.controls[n].check(v) for n, v in data.get("controls", {}).items()}
    return apply_controls(base, values, wb.controls, wb)


class _ParamsOnly:
    """What a control's ``put`` needs from a workbench: the generator."""

    def __init__(self, generator) -> None:
        self.generator = generator
        self.controls = build_controls(sorted(generator.hdris))


# ----------------------------------------------------------------------------------------------
# Drawing and text.


def overlay_image(rgb: np.ndarray, mask: np.ndarray, label_arrays: dict, flags: dict,
                  display_px: int | None = None) -> Image.Image:
    """Render with labels drawn; flags: landmarks, numbers, axes, box, mask (bool).

    rgb: (H, W, 3) uint8; mask: (H, W) class ids; label_arrays as in ``{stem}.npz``.
    With display_px the image is upscaled and the pixel labels scaled with it.
    """
    h, w = mask.shape
    scale = (display_px / w) if display_px else 1.0
    lab = dict(label_arrays)
    if scale != 1.0:
        size = (round(w * scale), round(h * scale))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BICUBIC))
        mask = np.asarray(Image.fromarray(mask).resize(size, Image.NEAREST))
        lab["landmarks_2d"] = np.asarray(lab["landmarks_2d"]) * scale
        lab["bbox_face"] = np.asarray(lab["bbox_face"]) * scale
        lab["resolution"] = np.array(size)
    lab["mask"] = mask
    return draw_overlay(rgb, lab, numbers=flags.get("numbers", False) and flags.get("landmarks", True),
                        axes=flags.get("axes", True), box=flags.get("box", True),
                        landmarks=flags.get("landmarks", True),
                        mask_alpha=0.45 if flags.get("mask", False) else 0.0)


def gaze_angles_deg(gaze: np.ndarray) -> np.ndarray:
    """(2, 2) [yaw, pitch] degrees per eye of camera-frame unit gaze vectors (2, 3).

    yaw > 0: toward image-right; pitch > 0: up; (0, 0) looks into the lens.
    """
    g = np.asarray(gaze, dtype=float)
    return np.degrees(np.stack([np.arctan2(g[:, 0], g[:, 2]), np.arcsin(np.clip(g[:, 1], -1, 1))], 1))


def format_labels(lab: dict, footer: str = "") -> str:
    """The labels a researcher checks against the render, as plain text (from label arrays only)."""
    pitch, yaw, roll = np.degrees(lab["pose_aflw"])
    gz = gaze_angles_deg(lab["gaze"])
    box = np.asarray(lab["bbox_face"])
    vis = np.asarray(lab["landmarks_visible"])
    weights = {a: float(w) for a, w in zip(FACIAL_ACTIONS, lab["expression"]) if a not in GAZE_ACTIONS}
    top = sorted(((w, a) for a, w in weights.items() if w > 0), reverse=True)[:5]
    expr = ", ".join(f"{a} {w:.2f}" for w, a in top) or "neutral"
    lines = [
        f"pose (AFLW, deg)   pitch {pitch:+6.1f}   yaw {yaw:+6.1f}   roll {roll:+6.1f}",
        *(f"gaze {side} eye{' ' * (6 - len(side))}    yaw {gz[e, 0]:+5.1f}  pitch {gz[e, 1]:+5.1f}   ("
          + ", ".join(f"{v:+.3f}" for v in lab["gaze"][e]) + ")" for e, side in enumerate(("right", "left"))),
        "                   (camera frame; yaw + toward image-right, pitch + up)",
        "face box (px)      " + ("none" if not np.isfinite(box).all()
                                 else f"[{box[0]:.0f}, {box[1]:.0f}, {box[2]:.0f}, {box[3]:.0f}]"),
        f"landmarks visible  {int(vis.sum())}/68",
        f"expression         {expr}",
        f"sample             seed {int(lab['seed'])}, index {int(lab['index'])}",
    ]
    if footer:
        lines.append(f"render             {footer}")
    return "\n".join(lines)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# The ipywidgets UI: a view of the controller.


class WorkbenchUI:
    """Widgets mirroring a Workbench. Slider events set controls and trigger a debounced render;
    overlay toggles redraw the cached render."""

    DISPLAY_PX = 512

    def __init__(self, wb: Workbench, call_later: Callable | None = None) -> None:
        import ipywidgets as W

        self.wb = wb
        self.W = W
        self._syncing = False
        # Widget events may arrive on another thread; renders run where this UI was built.
        self.call_later = call_later or MainThreadScheduler()
        self.debouncer = Debouncer(self._render_latest, DEBOUNCE_S, self.call_later)
        self.dropped = 0
        self.inputs: dict[str, Any] = {}
        self.image = W.Image(format="png", layout=W.Layout(width=f"{self.DISPLAY_PX}px",
                                                           height=f"{self.DISPLAY_PX}px"))
        self.image.add_class("rf-preview")
        self.labels = W.HTML()
        self.status = W.HTML()
        self._params = wb.params  # while building the inputs
        self.toggles = {name: W.ToggleButton(value=on, description=name, layout=W.Layout(width="92px"))
                        for name, on in wb.overlays.items()}
        for name, toggle in self.toggles.items():
            toggle.observe(lambda ch, n=name: self._on_overlay(n, ch["new"]), names="value")
        self.root = W.HBox([self._controls_panel(),
                            W.VBox([self.image, W.HBox(list(self.toggles.values())), self.labels,
                                    self._buttons(), self.status])])
        self.root.add_class("rf-workbench")
        if wb.sample is None:
            wb.render()
        self._show()

    # -- building --------------------------------------------------------------------------

    def _input(self, ctl: Control):
        W = self.W
        style = {"description_width": "180px"}
        layout = W.Layout(width="500px")
        value = self.wb.get(ctl.name, self._params)
        if ctl.kind == "float":
            w = W.FloatSlider(value=float(np.clip(value, ctl.lo, ctl.hi)), min=ctl.lo, max=ctl.hi,
                              step=ctl.step, description=ctl.label, continuous_update=True,
                              readout_format=".2f" if ctl.step < 1 else ".0f", style=style, layout=layout)
        elif ctl.kind == "int":
            w = W.BoundedIntText(value=int(value), min=int(ctl.lo), max=int(ctl.hi),
                                 description=ctl.label, style=style, layout=layout)
        elif ctl.kind == "bool":
            w = W.Checkbox(value=bool(value), description=ctl.label, style=style, layout=layout)
        else:
            w = W.Dropdown(options=list(ctl.options), value=value if value in ctl.options else None,
                           description=ctl.label, style=style, layout=layout)
        w.disabled = not ctl.enabled
        if ctl.note:
            w.tooltip = ctl.note
        w.add_class(f"rf-{ctl.name}")
        w.observe(lambda ch, n=ctl.name: self._on_input(n, ch["new"]), names="value")
        self.inputs[ctl.name] = w
        return w

    def _group(self, group: str) -> list:
        return [self._input(c) for c in self.wb.controls.values() if c.group == group]

    def _button(self, description: str, on_click: Callable, **kw):
        b = self.W.Button(description=description, **kw)
        b.on_click(lambda _: on_click())
        return b

    def _controls_panel(self):
        W, wb = self.W, self.wb
        head = W.VBox([*self._group("head"), *self._group("camera"), *self._group("gaze"),
                       self._button("frontal pose", lambda: self._act(wb.frontal))])
        regions = []
        names = []
        for region in ("brows", "eyes", "cheeks & nose", "jaw", "mouth", "tongue"):
            regions.append(W.VBox(self._group(f"expression/{region}")))
            names.append(region)
        accordion = W.Accordion(children=regions, titles=tuple(names))
        presets = [*EXPRESSION_BUTTONS, *[p for p in PRESETS if p not in EXPRESSION_BUTTONS + ("neutral",)]]
        preset_buttons = [self._button(p.replace("_", " "), lambda p=p: self._act(wb.set_expression, p),
                                       layout=W.Layout(width="104px")) for p in presets]
        reset = self._button("reset", lambda: self._act(wb.set_expression, "neutral"),
                             button_style="warning", layout=W.Layout(width="104px"))
        expression = W.VBox([W.GridBox(preset_buttons + [reset],
                                       layout=W.Layout(grid_template_columns="repeat(4, 108px)")),
                             accordion])
        identity = W.VBox([*self._group("identity"),
                           self._button("new random identity", lambda: self._act(wb.new_identity),
                                        button_style="info")])
        lighting = W.VBox(self._group("lighting"))
        appearance = W.VBox(self._group("appearance") + ([] if accessory_slots() else [
            W.HTML("<i>No accessories installed yet: the slots appear here when they are.</i>")]))
        tabs = W.Tab(children=[head, expression, identity, lighting, appearance],
                     titles=("head/camera", "expression", "identity", "lighting", "hair, acc."))
        tabs.layout.width = "540px"
        return tabs

    def _buttons(self):
        W = self.W
        self.final_quality = W.Dropdown(options=list(FINAL_QUALITIES), value="preview",
                                        description="final quality", layout=W.Layout(width="220px"))
        self.final_resolution = W.BoundedIntText(value=QUALITY["preview"].resolution, min=32, max=4096,
                                                 description="px", layout=W.Layout(width="140px"))
        self.save_dir = W.Text(value=str(DEFAULT_SAVE_DIR), description="dataset folder",
                               layout=W.Layout(width="330px"))
        self.snippet = W.Textarea(layout=W.Layout(width="98%", height="150px", display="none"))
        row1 = W.HBox([self._button("render final", self.render_final, button_style="primary"),
                       self.final_quality, self.final_resolution])
        row2 = W.HBox([self._button("save sample", self.save, button_style="success"), self.save_dir,
                       self._button("copy params", self.copy_params)])
        return W.VBox([row1, row2, self.snippet])

    # -- events ----------------------------------------------------------------------------

    def _on_input(self, name: str, value) -> None:
        if self._syncing or value is None:
            return
        try:
            self.wb.set(name, value)
        except ValueError as exc:
            self.status.value = f"<span style='color:#b00'>{exc}</span>"
            return
        if name == "identity_seed":
            self._sync_inputs()
        if name in ("gaze_yaw", "gaze_pitch"):
            self._sync_inputs(GAZE_ACTIONS)
        self.request_render()

    def _act(self, fn: Callable, *args) -> None:
        fn(*args)
        self._sync_inputs()
        self.request_render()

    def _on_overlay(self, name: str, on: bool) -> None:
        self.wb.overlays[name] = bool(on)
        self._show(rendered=False)

    def request_render(self) -> None:
        self.status.value = "<i>rendering…</i>"
        self.debouncer.trigger()

    def _render_latest(self, generation: int) -> None:
        self.wb.render()
        if not self.debouncer.is_current(generation):
            self.dropped += 1  # a newer change arrived during the render; its render follows
            return
        self._show()

    def _sync_inputs(self, names=None) -> None:
        params = self.wb.params
        self._syncing = True
        try:
            for name in names or self.inputs:
                ctl, w = self.wb.controls[name], self.inputs[name]
                value = self.wb.get(name, params)
                w.value = float(np.clip(value, ctl.lo, ctl.hi)) if ctl.kind == "float" else value
        finally:
            self._syncing = False

    def _show(self, rendered: bool = True) -> None:
        wb = self.wb
        self.image.value = png_bytes(wb.image(display_px=self.DISPLAY_PX))
        self.labels.value = f"<pre style='font-size:11px;line-height:1.3'>{wb.label_text()}</pre>"
        if rendered:
            self.status.value = (f"rendered in {wb.last_render_s:.2f} s ({wb.sample_quality}, "
                                 f"{wb.sample.rgb.shape[1]} px)")

    # -- buttons ---------------------------------------------------------------------------

    def render_final(self) -> None:
        self.status.value = f"<i>rendering at {self.final_quality.value} quality…</i>"
        self.call_later(0.0, self._render_final)

    def _render_final(self) -> None:
        self.wb.render(self.final_quality.value, int(self.final_resolution.value))
        self._show()

    def save(self) -> None:
        self.status.value = f"<i>rendering at {self.final_quality.value} quality and saving…</i>"
        self.call_later(0.0, self._save)

    def _save(self) -> None:
        try:
            paths = self.wb.save_sample(Path(self.save_dir.value), self.final_quality.value,
                                        int(self.final_resolution.value))
        except (OSError, ValueError) as exc:
            self.status.value = f"<span style='color:#b00'>not saved: {exc}</span>"
            return
        self._show()
        self.status.value = f"saved {paths[-1]}"

    def copy_params(self) -> None:
        self.snippet.value = self.wb.params_snippet()
        self.snippet.layout.display = None
        self.status.value = "params snippet below (select all and copy)"


# ----------------------------------------------------------------------------------------------
# Exploring randomizers (notebook 02).


def pose_label_samples(cfg: GeneratorConfig, count: int, seed: int = 0,
                       hdri_names: list[str] | None = None) -> np.ndarray:
    """(count, 3) label [pitch, yaw, roll] in degrees of samples 0..count-1, without rendering.

    Draws each sample with ``generate.sample_params`` (the batch's own sampler, so these are
    the poses that run would get) and composes head and camera with ``pose.label_pose``.
    Identity face-shape labels do not affect the pose stream, so none are needed here.
    """
    from replicantface.generate import sample_params
    from replicantface.pose import label_pose

    names = hdri_names or ["placeholder.exr"]
    out = np.empty((count, 3))
    for i in range(count):
        out[i] = label_pose(sample_params(seed, i, cfg, [], names).pose)
    return np.degrees(out)


def pose_histograms(poses_by_preset: dict[str, np.ndarray], bins=None):
    """Figure: one row per preset, label pitch / yaw / roll histograms (degrees)."""
    import matplotlib.pyplot as plt

    bins = np.arange(-180, 181, 5) if bins is None else bins
    fig, axes = plt.subplots(len(poses_by_preset), 3, figsize=(12, 2.2 * len(poses_by_preset)),
                             squeeze=False, sharex=True)
    for row, (name, poses) in zip(axes, poses_by_preset.items()):
        for ax, values, angle in zip(row, poses.T, ("pitch", "yaw", "roll")):
            ax.hist(values, bins=bins, color="tab:blue")
            ax.set_title(f"{name}: {angle} sd {values.std():.0f}°", fontsize=9)
            ax.axvline(0, color="k", lw=0.5)
    for ax, angle in zip(axes[-1], ("pitch", "yaw", "roll")):
        ax.set_xlabel(f"label {angle} (deg, AFLW)")
    fig.tight_layout()
    return fig


VARY_CHOICES = ("identity", "expression", "pose", "camera", "appearance", "lighting",
                "skin_tone", "hdri", "accessories", "seed")


def vary_params(wb: Workbench, vary: str, count: int = 16) -> tuple[list, list[str]]:
    """Params of ``count`` faces that differ in one randomizer only, with captions.

    vary: a SampleParams section (identity, expression, pose, camera, appearance, lighting) is
    redrawn from samples index+1.. of the same seed while the rest stays the workbench's face;
    "skin_tone" spans Fitzpatrick 1-6 evenly; "hdri" takes each HDRI; "accessories" each
    option of each slot (empty while none are installed); "seed" changes the seed itself.
    """
    if vary not in VARY_CHOICES:
        raise ValueError(f"vary must be one of {VARY_CHOICES}, got {vary!r}")
    base = wb.params
    gen = wb.generator
    out, captions = [], []
    if vary in ("identity", "expression", "pose", "camera", "appearance", "lighting"):
        for k in range(count):
            other = gen.params(base.seed, base.index + 1 + k)
            out.append(replace(base, **{vary: getattr(other, vary)}))
            captions.append(f"{vary} of #{base.index + 1 + k}")
    elif vary == "skin_tone":
        for f in np.linspace(1.0, 6.0, count):
            out.append(_put_skin_tone(base, f, wb))
            captions.append(f"Fitzpatrick {f:.2f}")
    elif vary == "hdri":
        for name in sorted(gen.hdris)[:count]:
            out.append(replace(base, lighting=replace(base.lighting, hdri=name)))
            captions.append(name)
    elif vary == "accessories":
        for slot, options in accessory_slots().items():
            ctl = _accessory_control(slot, options)
            for option in options:
                out.append(ctl.put(base, option, wb))
                captions.append(f"{slot}: {option}")
        out, captions = out[:count], captions[:count]
    else:
        for k in range(count):
            out.append(gen.params(base.seed + k, base.index))
            captions.append(f"seed {base.seed + k}, index {base.index}")
    return out, captions


def render_grid(wb: Workbench, params_list: list, captions: list[str], columns: int = 4,
                tile: int = 192, overlays: bool = False) -> Image.Image:
    """Contact sheet of renders of these params (at the workbench's preview quality)."""
    from replicantface.overlay import contact_sheet

    tiles = []
    for params in params_list:
        sample = wb.render_params(params)
        flags = {"landmarks": overlays, "axes": overlays, "box": overlays}
        tiles.append(overlay_image(sample.rgb, sample.mask, sample.labels, flags) if overlays
                     else Image.fromarray(sample.rgb))
    if not tiles:
        return Image.new("RGB", (tile * columns, tile // 4), (30, 30, 30))
    return contact_sheet(tiles, columns=columns, tile=tile, captions=captions)


# ----------------------------------------------------------------------------------------------
# Inspecting a generated dataset (notebook 03).


class DatasetInspector:
    """Browse a dataset folder: labels from the ``.npz`` files, optionally from ``.mat`` exports.

    dataset_dir: a folder written by ``replicantface generate`` (or the workbench's save).
    """

    def __init__(self, dataset_dir: Path, mat_dir: Path | None = None) -> None:
        self.dir = Path(dataset_dir)
        self.names = dataset.sample_names(self.dir)
        if not self.names:
            raise FileNotFoundError(f"no samples (face_*.npz) in {self.dir}")
        self.mat_dir = None if mat_dir is None else Path(mat_dir)
        self._poses = None

    def __len__(self) -> int:
        return len(self.names)

    def load(self, i: int) -> dict:
        return dataset.load_sample(self.dir, self.names[i])

    @property
    def poses_deg(self) -> np.ndarray:
        """(N, 3) label [pitch, yaw, roll] degrees of every sample."""
        if self._poses is None:
            rows = []
            for name in self.names:
                with np.load(self.dir / f"{name}.npz") as npz:
                    rows.append(np.degrees(npz["pose_aflw"]))
            self._poses = np.array(rows).reshape(-1, 3)
        return self._poses

    def filter_pose(self, pitch=(-180, 180), yaw=(-180, 180), roll=(-180, 180)) -> list[int]:
        """Indices of the samples whose label angles (degrees) lie in the closed ranges."""
        p = self.poses_deg
        keep = np.ones(len(p), dtype=bool)
        for col, (lo, hi) in enumerate((pitch, yaw, roll)):
            keep &= (p[:, col] >= lo) & (p[:, col] <= hi)
        return [int(i) for i in np.flatnonzero(keep)]

    def image(self, i: int, source: str = "npz", **flags) -> Image.Image:
        """Sample i with its labels drawn, read from the ``.npz`` or from the exported ``.mat``."""
        s = self.load(i)
        if source == "npz":
            return overlay_image(s["image"], s["mask"], s, {"landmarks": True, "axes": True, "box": True, **flags})
        if source != "mat":
            raise ValueError(f"source must be 'npz' or 'mat', got {source!r}")
        return draw_mat_overlay(s["image"], self.mat_labels(i))

    def mat_labels(self, i: int) -> dict:
        """Labels of sample i read back from its ``.mat`` (AFLW2000-3D fields)."""
        if self.mat_dir is None:
            raise RuntimeError("no .mat folder: pass mat_dir (export with export_300wlp first)")
        import scipy.io

        path = next(self.mat_dir.rglob(f"{self.names[i]}.mat"), None)
        if path is None:
            raise FileNotFoundError(f"{self.names[i]}.mat not under {self.mat_dir} (rejected by the export filter?)")
        return scipy.io.loadmat(path)

    def mat_names(self) -> list[str]:
        """Samples that have a ``.mat`` (the export filter may have dropped some)."""
        if self.mat_dir is None:
            return []
        found = {p.stem for p in self.mat_dir.rglob("*.mat")}
        return [n for n in self.names if n in found]

    def mat_summary(self) -> str:
        """How far the ``.mat`` labels are from the ``.npz`` ones, over every exported sample."""
        exported = self.mat_names()
        if not exported:
            return "no .mat files"
        worst = {"pose_deg": 0.0, "pt2d_px": 0.0}
        for name in exported:
            i = self.names.index(name)
            diff = mat_agreement(self.load(i), self.mat_labels(i))
            worst = {k: max(worst[k], diff[k]) for k in worst}
        return (f"{len(exported)} of {len(self)} samples exported; .mat vs .npz: pose differs by at "
                f"most {worst['pose_deg']:.2g} deg, pt2d by at most {worst['pt2d_px']:.2g} px")

    def widget(self, display_px: int = 384):
        """Index slider, label source (npz / mat) and pose-range filters over the samples."""
        import ipywidgets as W

        index = W.IntSlider(value=0, min=0, max=max(len(self) - 1, 0), description="sample")
        sources = ["npz", "mat"] if self.mat_names() else ["npz"]
        source = W.ToggleButtons(options=sources, description="labels from")
        ranges = {a: W.FloatRangeSlider(value=(-180, 180), min=-180, max=180, step=1,
                                        description=f"{a} (°)", continuous_update=False)
                  for a in ("pitch", "yaw", "roll")}
        image = W.Image(format="png", layout=W.Layout(width=f"{display_px}px"))
        text = W.HTML()

        def show(*_):
            selected = self.filter_pose(**{a: r.value for a, r in ranges.items()})
            index.max = max(len(selected) - 1, 0)
            if not selected:
                image.value, text.value = b"", "<i>no sample in these pose ranges</i>"
                return
            i = selected[min(index.value, len(selected) - 1)]
            src = source.value if self.names[i] in self.mat_names() else "npz"
            image.value = png_bytes(self.image(i, src))
            problems = self.check(i)
            text.value = (f"<pre style='font-size:11px'>{self.describe(i)}\nlabels drawn from .{src}"
                          f" ({len(selected)} samples in range)\nmask check: "
                          f"{'; '.join(problems) if problems else 'labels agree with the mask'}</pre>")

        for w in (index, source, *ranges.values()):
            w.observe(show, names="value")
        show()
        return W.HBox([W.VBox([index, source, *ranges.values(), text]), image])

    def describe(self, i: int) -> str:
        with np.load(self.dir / f"{self.names[i]}.npz") as npz:
            return f"{self.names[i]}\n" + format_labels(npz)

    def distribution_figure(self):
        """Histograms of label pitch/yaw/roll, face-box height, visible landmarks, expression."""
        import matplotlib.pyplot as plt

        box_h, visible, expr = [], [], []
        for name in self.names:
            with np.load(self.dir / f"{name}.npz") as npz:
                b = npz["bbox_face"]
                box_h.append(b[3] - b[1] if np.isfinite(b).all() else np.nan)
                visible.append(int(npz["landmarks_visible"].sum()))
                expr.append(float(npz["expression"].max()))
        p = self.poses_deg
        fig, axes = plt.subplots(2, 3, figsize=(12, 6))
        for ax, values, angle in zip(axes[0], p.T, ("pitch", "yaw", "roll")):
            ax.hist(values, bins=np.arange(-180, 181, 10), color="tab:blue")
            ax.set_xlabel(f"label {angle} (deg)")
        axes[1, 0].hist(box_h, bins=20, color="tab:orange")
        axes[1, 0].set_xlabel("face-box height (px)")
        axes[1, 1].hist(visible, bins=np.arange(0, 70, 4), color="tab:green")
        axes[1, 1].set_xlabel("visible landmarks")
        axes[1, 2].hist(expr, bins=20, color="tab:purple")
        axes[1, 2].set_xlabel("strongest facial action")
        fig.suptitle(f"{self.dir}: {len(self)} samples")
        fig.tight_layout()
        return fig

    def check(self, i: int) -> list[str]:
        """Ways in which sample i's labels disagree with its own mask (empty: none found).

        - the face box is not the box of the face-skin classes in the mask;
        - a visible landmark lies off the head classes (1 px tolerance) or off the image;
        - an eye corner (36, 39 / 42, 45) is not next to its eye class (2 px);
        - the nose tip (30) does not lie on the nose class (2 px).
        """
        from scipy import ndimage

        s = self.load(i)
        mask, problems = s["mask"], []
        h, w = mask.shape
        box = labels.bbox_from_mask(mask, tuple(int(c) for c in FACE_BOX_CLASSES))
        if not np.array_equal(np.isfinite(box), np.isfinite(s["bbox_face"])) or \
                not np.allclose(box[np.isfinite(box)], s["bbox_face"][np.isfinite(box)]):
            problems.append(f"face box {np.round(s['bbox_face']).tolist()} != mask box {box.tolist()}")
        pts = np.floor(s["landmarks_2d"]).astype(int)
        vis = s["landmarks_visible"].astype(bool)
        inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
        if (vis & ~inside).any():
            problems.append(f"visible landmarks off the image: {np.flatnonzero(vis & ~inside).tolist()}")
        head = ndimage.binary_dilation(np.isin(mask, [int(c) for c in HEAD_CLASSES]), iterations=1)
        on = vis & inside
        off = np.flatnonzero(on)[~head[pts[on, 1], pts[on, 0]]]
        if len(off):
            problems.append(f"visible landmarks off the head: {off.tolist()}")

        def near(cls, idx, tol):
            region = ndimage.binary_dilation(mask == cls, iterations=tol)
            x, y = pts[idx]
            return not (vis[idx] and inside[idx]) or bool(region[y, x])

        for cls, corners in ((SegClass.RIGHT_EYE, (36, 39)), (SegClass.LEFT_EYE, (42, 45))):
            bad = [c for c in corners if not near(cls, c, 2)]
            if bad:
                problems.append(f"eye corners {bad} not on {cls.name}")
        if not near(SegClass.NOSE, 30, 2):
            problems.append("nose tip (30) not on NOSE")
        return problems

    def flagged(self) -> dict[str, list[str]]:
        """name -> problems, for every sample whose labels disagree with its mask."""
        return {self.names[i]: p for i in range(len(self)) if (p := self.check(i))}


def draw_mat_overlay(image: np.ndarray, mat: dict) -> Image.Image:
    """Labels of an AFLW2000-3D style ``.mat`` drawn the way its readers see them.

    pt2d (2, 68) pixels y down; roi [x0, h-y0, x1, h-y1] (y up); Pose_Para [pitch, yaw, roll,
    tx, ty (y up), tz, scale]: the head axes are drawn with the weak-perspective scale
    (pixels per metre) from the head origin (tx, h - ty).
    """
    from PIL import ImageDraw

    img = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(img)
    h = img.size[1]
    r = max(1.0, img.size[0] / 256)
    x0, y0u, x1, y1u = np.asarray(mat["roi"], dtype=float).ravel()[:4]
    if np.isfinite([x0, y0u, x1, y1u]).all():
        draw.rectangle([x0, h - y0u, x1, h - y1u], outline=(255, 255, 255))
    pose = np.asarray(mat["Pose_Para"], dtype=float).ravel()
    rot = labels.rotation_from_pose_aflw(pose[:3])  # head -> camera (x right, y up, z back)
    origin = np.array([pose[3], h - pose[4]])
    length_m = 0.08
    for axis, colour in zip(np.eye(3), [(255, 0, 0), (0, 255, 0), (0, 80, 255)]):
        d = rot @ axis * length_m * pose[6]
        draw.line([tuple(origin), (origin[0] + d[0], origin[1] - d[1])], fill=colour, width=max(1, int(r * 1.5)))
    for x, y in np.asarray(mat["pt2d"], dtype=float).T:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 220, 0))
    return img


def mat_agreement(npz_sample: dict, mat: dict) -> dict[str, float]:
    """Largest differences between a sample's ``.npz`` labels and its ``.mat`` (should be ~0).

    pose_deg: max |angle| difference in degrees; pt2d_px: max landmark difference in pixels.
    """
    pose = np.asarray(mat["Pose_Para"], dtype=float).ravel()[:3]
    return {
        "pose_deg": float(np.abs(np.degrees(pose - npz_sample["pose_aflw"])).max()),
        "pt2d_px": float(np.abs(np.asarray(mat["pt2d"], dtype=float).T - npz_sample["landmarks_2d"]).max()),
    }


def nose_column(mask: np.ndarray) -> float:
    """Mean column (pixels) of the NOSE class, NaN when it is not visible."""
    cols = np.nonzero(mask == SegClass.NOSE)[1]
    return float(cols.mean()) if len(cols) else math.nan
