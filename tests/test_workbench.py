"""The workbench controller, driven without a browser (tiny renders)."""

import json
import re
import types

import numpy as np
import pytest
from PIL import Image

from replicantface import dataset
from replicantface import workbench as rfw
from replicantface.classes import SegClass
from replicantface.expression import FACIAL_ACTIONS, PRESETS

RES = 160


@pytest.fixture(scope="module")
def wb():
    bench = rfw.Workbench(seed=0, index=1, quality="test", resolution=RES, use_gpu=False)
    yield bench
    bench.close()


@pytest.fixture
def fresh(wb):
    """The module's workbench with no control set, frontal and sharp."""
    wb.reset()
    wb.frontal()
    wb.set("depth_of_field", False)
    return wb


def _nose_x(mask):
    return np.nonzero(mask == SegClass.NOSE)[1].mean()


def test_set_yaw_moves_the_rendered_nose_and_the_label(fresh):
    front = fresh.render()
    assert np.degrees(fresh.labels["pose_aflw"][1]) == pytest.approx(0.0, abs=0.5)
    assert re.search(r"yaw\s+[+-]0\.0\s", fresh.label_text())
    for yaw in (25.0, -25.0):
        fresh.set("yaw", yaw)
        turned = fresh.render()
        assert np.degrees(turned.labels["pose_aflw"][1]) == pytest.approx(yaw, abs=0.5)
        assert f"yaw {yaw:+6.1f}" in fresh.label_text()
        # +yaw turns the nose toward image-left: in the mask and in the landmarks.
        shift = _nose_x(turned.mask) - _nose_x(front.mask)
        assert np.sign(shift) == -np.sign(yaw) and abs(shift) > 1  # the camera re-aims at the eyes
        lm_shift = turned.labels["landmarks_2d"][30, 0] - front.labels["landmarks_2d"][30, 0]
        assert np.sign(lm_shift) == -np.sign(yaw)
    assert fresh.get("yaw") == -25.0


def test_overlays_redraw_without_rendering(fresh, monkeypatch):
    fresh.render()
    calls = []
    monkeypatch.setattr(fresh.generator, "render", lambda p: calls.append(p))
    plain = np.asarray(fresh.image(landmarks=False, axes=False, box=False, mask=False))
    assert np.array_equal(plain, fresh.sample.rgb)
    with_lm = np.asarray(fresh.image(landmarks=True, axes=False, box=False))
    with_mask = np.asarray(fresh.image(landmarks=False, axes=False, box=False, mask=True))
    numbered = fresh.image(display_px=2 * RES, numbers=True)
    assert (with_lm != plain).any() and (with_mask != plain).any()
    assert numbered.size == (2 * RES, 2 * RES)
    fresh.overlays["axes"] = False
    assert calls == []
    fresh.overlays["axes"] = True
    with pytest.raises(KeyError):
        fresh.image(glasses=True)


def test_skipping_the_unchanged_world_gives_the_same_image(fresh):
    """A pose-only change leaves the world alone; the render equals one that rewrote it."""
    fresh.render()
    skipped = fresh._scene_cache.skipped
    fresh.set("yaw", 10.0)
    cached = fresh.render()
    assert fresh._scene_cache.skipped == skipped + 1
    fresh.invalidate()
    rewritten = fresh.render()
    assert np.abs(cached.rgb.astype(int) - rewritten.rgb.astype(int)).mean() < 0.5
    assert np.array_equal(cached.mask, rewritten.mask)


def test_lighting_changes_reach_the_render(fresh):
    before = fresh.render()
    fresh.set("hdri_rotation", (fresh.get("hdri_rotation") + 120.0) % 360.0)
    after = fresh.render()
    assert np.abs(after.rgb.astype(int) - before.rgb.astype(int)).mean() > 2


def test_white_balance_and_exposure_skip_the_world_and_reach_the_render(fresh):
    """The camera's white balance and exposure live on the scene, not the world: moving them
    rewrites no world node, and the image still changes (warmer, brighter), the mask not."""
    fresh.set("hdri", "sunset.exr")
    casts = {r: np.ptp(np.log(fresh.generator.white_balance(rfw.replace(
        fresh.params, lighting=rfw.replace(fresh.params.lighting, rotation_deg=r, white_balance=1.0)))))
        for r in range(0, 360, 45)}
    fresh.set("hdri_rotation", float(max(casts, key=casts.get)))
    fresh.set("white_balance", 0.0)
    fresh.set("face_exposure", 0.15)
    before = fresh.render()
    skipped = fresh._scene_cache.skipped
    fresh.set("white_balance", 1.0)
    balanced = fresh.render()
    fresh.set("face_exposure", 0.3)
    brighter = fresh.render()
    assert fresh._scene_cache.skipped == skipped + 2
    shift = balanced.rgb.reshape(-1, 3).mean(axis=0) - before.rgb.reshape(-1, 3).mean(axis=0)
    assert np.ptp(shift) > 3.0, shift
    assert brighter.rgb.mean() > balanced.rgb.mean() + 5.0
    assert np.array_equal(before.mask, balanced.mask) and np.array_equal(before.mask, brighter.mask)


def test_a_foreign_world_write_is_noticed(fresh):
    """Another generator rendering in between changes the world; the workbench rewrites it."""
    reference = fresh.render()
    gen = fresh.generator
    other = fresh.params.lighting
    other = rfw.replace(other, rotation_deg=(other.rotation_deg + 150) % 360, strength=0.3)
    # What another Generator's render does to the shared world:
    fingerprint = rfw._world_fingerprint(gen.handles.world)
    fresh._scene_cache._scene.apply_lighting(gen.handles, other, gen._hdri_path(other.hdri),
                                             np.eye(4), np.zeros(3))
    assert rfw._world_fingerprint(gen.handles.world) != fingerprint  # the foreign write took effect
    again = fresh.render()
    assert np.abs(again.rgb.astype(int) - reference.rgb.astype(int)).mean() < 0.5


def test_set_checks_names_and_ranges(wb):
    with pytest.raises(KeyError, match="did you mean yaw"):
        wb.set("yawn", 3)
    with pytest.raises(ValueError, match=r"out of range \[-180"):
        wb.set("yaw", 400)
    with pytest.raises(ValueError, match="follows the gaze"):
        wb.set("eyeLookInLeft", 0.5)
    with pytest.raises(ValueError, match="not one of"):
        wb.set("hdri", "nope.exr")


def test_controls_cover_the_issue(wb):
    names = set(wb.controls)
    assert {"yaw", "pitch", "roll", "distance_m", "focal_mm", "gaze_yaw", "gaze_pitch", "identity_seed",
            "gender", "age_years", "hdri", "hdri_rotation", "light_strength", "face_exposure", "white_balance", "extra_light",
            "hair_style", "hair_colour"} <= names
    assert set(FACIAL_ACTIONS) <= names and len(FACIAL_ACTIONS) == 52
    regions = {wb.controls[a].group for a in FACIAL_ACTIONS}
    assert regions == {f"expression/{r}" for r in ("brows", "eyes", "cheeks & nose", "jaw", "mouth", "tongue")}
    assert list(wb.controls["hdri"].options) == sorted(wb.generator.hdris)


def test_expression_presets_reset_and_gaze(fresh):
    fresh.set_expression("smile")
    assert fresh.params.expression.weights == PRESETS["smile"]
    fresh.set_expression("neutral")
    assert fresh.params.expression.weights == {}
    fresh.update(gaze_yaw=20.0)
    assert fresh.get("eyeLookOutLeft") == pytest.approx(20 / 30)
    assert fresh.get("eyeLookInRight") == pytest.approx(20 / 30)


def test_camera_distance_and_focal(fresh):
    fresh.update(distance_m=1.2, focal_mm=85.0)
    assert fresh.params.camera.distance_m == pytest.approx(1.2)
    assert fresh.params.camera.focal_mm == 85.0
    fresh.values.pop("distance_m")
    d = fresh.params.camera.distance_m
    fresh.set("focal_mm", 35.0)
    assert fresh.params.camera.distance_m == pytest.approx(d)  # zooming keeps the camera in place


def test_new_identity_and_phenotypes(fresh):
    base = fresh.params.identity
    fresh.set("gender", 0.9)
    seed = fresh.new_identity()
    ident = fresh.params.identity
    assert ident != base and "gender" not in fresh.values
    assert ident == fresh.generator.params(seed, fresh.index).identity
    assert fresh.get("identity_seed") == seed
    fresh.set("age_years", 70.0)
    assert fresh.params.identity.age_years == 70.0
    assert fresh.params.identity.local_changes == ident.local_changes


def test_lamp_colour_sliders_set_a_black_body_colour_the_render_shows(fresh):
    from replicantface.lighting import lamp_duv_limit, lamp_kelvin_duv, lamp_rgb

    fresh.update(white_balance=0.0, light_strength=0.05, extra_light="POINT", extra_light_power_w=150.0,
                 extra_light_azimuth_deg=0.0, extra_light_elevation_deg=10.0, extra_light_distance_m=0.8)
    duv = fresh.get("extra_light_duv")
    cheeks = {}
    for kelvin in (2700.0, 9000.0):
        fresh.set("extra_light_kelvin", kelvin)
        assert fresh.params.lighting.extra_light.colour == pytest.approx(lamp_rgb(kelvin, duv))
        assert fresh.get("extra_light_kelvin") == pytest.approx(kelvin, abs=0.5)
        sample = fresh.render()
        skin = sample.rgb[sample.mask == SegClass.SKIN].astype(float).mean(axis=0)
        cheeks[kelvin] = skin[0] - skin[2]
    assert cheeks[2700.0] > cheeks[9000.0] + 60  # (about 145 against 32); a warm lamp reddens the skin, a cool one blues it
    fresh.set("extra_light_duv", -0.01)
    kelvin, tint = lamp_kelvin_duv(fresh.params.lighting.extra_light.colour)
    assert kelvin == pytest.approx(9000.0, abs=0.5) and tint == pytest.approx(-0.01, abs=1e-6)
    assert rfw.params_from_snippet(fresh.params_snippet(), fresh.generator) == fresh.params
    fresh.update(extra_light_duv=0.015, extra_light_kelvin=2000.0)  # greener than a 2000 K lamp can be
    assert fresh.get("extra_light_duv") == pytest.approx(lamp_duv_limit(2000.0), abs=1e-6)
    assert fresh.get("extra_light_kelvin") == pytest.approx(2000.0, abs=0.5)
    fresh.set("extra_light", "none")
    fresh.set("extra_light_kelvin", 3000.0)  # no lamp: the slider has nothing to colour
    assert fresh.params.lighting.extra_light is None
    with pytest.raises(ValueError, match="out of range"):
        fresh.set("extra_light_kelvin", 1500.0)


def test_params_snippet_reproduces_the_face(fresh):
    fresh.update(yaw=17.0, jawOpen=0.4, hdri=sorted(fresh.generator.hdris)[2], extra_light="SPOT",
                 extra_light_power_w=120.0, skin_tone=5.5, iris="green")
    fresh.new_identity()
    text = fresh.params_snippet()
    assert "yaw = 17.0" in text and "jawOpen = 0.4" in text and "identity_seed" in text
    assert rfw.params_from_snippet(text, fresh.generator) == fresh.params
    assert rfw.params_from_snippet(fresh.params_snippet("json"), fresh.generator) == fresh.params
    data = json.loads(fresh.params_snippet("json"))
    assert (data["seed"], data["index"], data["preset"]) == (0, 1, "default")


def test_save_sample_writes_the_batch_layout(fresh, tmp_path):
    fresh.set("yaw", 12.0)
    sample = fresh.render()
    first = fresh.save_sample(tmp_path)
    second = fresh.save_sample(tmp_path)
    assert [p.name for p in first] == ["face_000000.jpg", "face_000000_mask.png", "face_000000.npz"]
    assert second[-1].name == "face_000001.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["dataset.json", *[p.name for p in first + second]])
    loaded = dataset.load_sample(tmp_path, "face_000000")
    assert set(loaded) == set(sample.labels) | {"image", "mask"}
    assert np.array_equal(loaded["mask"], sample.mask)
    assert np.array_equal(loaded["landmarks_2d"], sample.labels["landmarks_2d"])
    quality = int(sample.labels.get("jpeg_quality", dataset.JPEG_QUALITY))
    assert first[0].read_bytes() == dataset.encode_jpeg(sample.rgb, quality)  # the batch's encoding
    assert json.loads(str(loaded["params"]))["pose"]["head_yaw_deg"] == 12.0
    meta = json.loads((tmp_path / "dataset.json").read_text())
    expected = dataset.dataset_metadata(fresh.generator.cfg.to_dict(), "test", RES, 0)
    assert set(meta) == set(expected) and meta["quality"] == "test" and meta["resolution"] == RES
    assert int(dataset.load_sample(tmp_path, "face_000001")["index"]) == 1
    assert rfw.DatasetInspector(tmp_path).flagged() == {}
    from replicantface import validate
    report = validate.validate_dataset(tmp_path)
    assert not (report.bad or report.missing or report.duplicates or report.dataset_problems)


class FakeClock:
    """call_later for the Debouncer: nothing runs until ``advance``."""

    def __init__(self):
        self.now, self.calls = 0.0, []

    def call_later(self, delay, fn, *args):
        call = types.SimpleNamespace(at=self.now + delay, fn=fn, args=args, cancelled=False)
        call.cancel = lambda: setattr(call, "cancelled", True)
        self.calls.append(call)
        return call

    def advance(self, dt):
        self.now += dt
        due = [c for c in self.calls if c.at <= self.now and not c.cancelled]
        self.calls = [c for c in self.calls if c not in due]
        for c in due:
            c.fn(*c.args)


def test_main_thread_scheduler_runs_calls_from_other_threads_on_its_loop():
    import asyncio
    import threading

    async def scenario():
        sched = rfw.MainThreadScheduler()
        ran, done = [], asyncio.Event()

        def fn(tag):
            ran.append((tag, threading.current_thread() is threading.main_thread()))
            if tag == "kept":
                done.set()

        def from_worker():
            sched(0.05, fn, "cancelled").cancel()
            sched(0.01, fn, "kept")

        worker = threading.Thread(target=from_worker)
        worker.start()
        worker.join()
        await asyncio.wait_for(done.wait(), 5)
        await asyncio.sleep(0.1)
        return ran

    assert asyncio.run(scenario()) == [("kept", True)]
    calls = []
    rfw.MainThreadScheduler()(0.5, calls.append, "now")  # no running loop: runs at once
    assert calls == ["now"]


def test_debouncer_runs_once_for_a_burst_and_flags_stale_runs():
    clock, runs = FakeClock(), []
    deb = rfw.Debouncer(lambda g: runs.append((g, deb.is_current(g))), 0.15, clock.call_later)
    for _ in range(10):  # a drag: events 20 ms apart
        deb.trigger()
        clock.advance(0.02)
    assert runs == []
    clock.advance(0.15)
    assert runs == [(10, True)] and deb.cancelled == 9

    def slow_render(g):  # an event arrives while the render runs
        deb.trigger()
        runs.append((g, deb.is_current(g)))

    deb.action = slow_render
    deb.trigger()
    clock.advance(0.2)
    assert runs[-1] == (11, False)  # overtaken: its result must be dropped
    deb.action = lambda g: runs.append((g, deb.is_current(g)))
    clock.advance(0.2)
    assert runs[-1] == (12, True) and len(runs) == 3


def test_ui_debounces_drops_stale_renders_and_redraws_overlays(fresh):
    pytest.importorskip("ipywidgets")
    fresh.render()
    clock = FakeClock()
    ui = rfw.WorkbenchUI(fresh, call_later=clock.call_later)
    renders = []

    def fake_render(quality=None, resolution=None):  # the fake renderer: records the state only
        renders.append(fresh.get("yaw"))
        return fresh.sample

    fresh.render = fake_render
    try:
        shown = ui.image.value
        for yaw in range(1, 21):
            ui.inputs["yaw"].value = float(yaw)
        assert renders == [] and fresh.get("yaw") == 20.0
        clock.advance(0.2)
        assert renders == [20.0]
        # Overlays: redrawn from the cached render, no new render.
        ui.toggles["mask"].value = True
        assert ui.image.value != shown and renders == [20.0]

        def render_overtaken(quality=None, resolution=None):
            renders.append(fresh.get("yaw"))
            ui.inputs["yaw"].value = 30.0  # the user moved on during the render
            return fresh.sample

        fresh.render = render_overtaken
        before = ui.image.value
        ui.inputs["yaw"].value = 25.0
        clock.advance(0.2)
        assert renders == [20.0, 25.0] and ui.dropped == 1 and ui.image.value == before
        fresh.render = fake_render
        clock.advance(0.2)
        assert renders == [20.0, 25.0, 30.0]
    finally:
        del fresh.render
        ui.toggles["mask"].value = False


def test_ui_buttons(fresh, tmp_path):
    pytest.importorskip("ipywidgets")
    fresh.render()
    clock = FakeClock()
    ui = rfw.WorkbenchUI(fresh, call_later=clock.call_later)
    ui.copy_params()
    assert ui.snippet.value == fresh.params_snippet()
    ui.final_quality.value = "preview"
    ui.final_resolution.value = 96
    ui.save_dir.value = str(tmp_path)
    ui.save()  # renders on the main thread's loop: here, when the clock runs
    assert not (tmp_path / "face_000000.npz").exists()
    clock.advance(0.01)
    assert (tmp_path / "face_000000.npz").is_file() and "saved" in ui.status.value
    assert fresh.sample_quality == "preview" and fresh.sample.rgb.shape[:2] == (96, 96)
    ui.inputs["jawOpen"].value = 0.5
    assert fresh.get("jawOpen") == 0.5
    ui._act(fresh.set_expression, "surprise")
    assert ui.inputs["jawOpen"].value == PRESETS["surprise"]["jawOpen"]


def test_registries_feed_the_selectors(wb):
    from replicantface import accessories, hair

    controls = rfw.build_controls(["a.exr"])
    assert controls["hair_style"].options == tuple(rfw.hair_styles())
    assert set(controls["hair_style"].options) == set(hair.HAIRSTYLES)
    assert controls["beard"].options == hair.BEARDS
    slots = rfw.accessory_slots()
    assert list(slots) == list(accessories.CATEGORIES)
    assert sum(len(v) - 1 for v in slots.values()) == len(accessories.ACCESSORIES)
    for slot, options in slots.items():
        assert controls[f"accessory_{slot}"].options == tuple(options) and options[0] == "none"
    glasses = controls["accessory_glasses"]
    p = glasses.put(wb.params, "sunglasses_aviator", wb)
    assert glasses.get(p) == "sunglasses_aviator" and "sunglasses_aviator" in p.accessories.names
    assert glasses.put(p, "sunglasses_aviator", wb) == p  # same face, same item: same colours
    # A hood cannot go with over-ear headphones: wearing one takes the other off.
    p = controls["accessory_headphones"].put(p, "headphones_over_ear", wb)
    p = controls["accessory_hat"].put(p, "hood", wb)
    assert "hood" in p.accessories.names and "headphones_over_ear" not in p.accessories.names
    assert accessories.compatible(p.accessories.names)
    assert glasses.get(glasses.put(p, "none", wb)) == "none"
    params, captions = rfw.vary_params(wb, "accessories", 5)
    assert captions == ["glasses: none", *[f"glasses: {n}" for n in slots["glasses"][1:5]]]
    assert "glasses" not in [accessories.ACCESSORIES[n].category for n in params[0].accessories.names]
    assert slots["glasses"][1] in params[1].accessories.names


def test_pose_histogram_samples_match_rendered_labels(wb):
    poses = rfw.pose_label_samples(wb.generator.cfg, 4, seed=3)
    sample = wb.render_params(wb.generator.params(3, 2))
    assert np.degrees(sample.labels["pose_aflw"]) == pytest.approx(poses[2], abs=0.5)


def test_dataset_inspector_reads_npz_and_mat(fresh, tmp_path):
    for yaw in (-20.0, 0.0, 20.0):
        fresh.set("yaw", yaw)
        fresh.render()
        fresh.save_sample(tmp_path)
    ins = rfw.DatasetInspector(tmp_path)
    assert len(ins) == 3 and ins.filter_pose(yaw=(10, 30)) == [2]
    assert ins.flagged() == {}
    assert "yaw  +20.0" in ins.describe(2)
    # A label that disagrees with its mask is flagged.
    s = dataset.load_sample(tmp_path, ins.names[0])
    labels = {k: v for k, v in s.items() if k not in ("image", "mask")}
    labels["bbox_face"] = labels["bbox_face"] + 5
    dataset.write_sample(tmp_path, ins.names[0], s["image"], s["mask"], labels)
    assert "face box" in ins.check(0)[0]
    from replicantface import export_300wlp as export
    mat_dir = tmp_path / "mat"
    export.export_300wlp(tmp_path, mat_dir, filt=export.ExportFilter(min_face_px=8), progress=False)
    ins = rfw.DatasetInspector(tmp_path, mat_dir=mat_dir)
    for i in range(3):
        diff = rfw.mat_agreement(ins.load(i), ins.mat_labels(i))
        assert diff["pose_deg"] < 1e-6 and diff["pt2d_px"] < 1e-6
    img = ins.image(1, source="mat")
    assert isinstance(img, Image.Image) and img.size == (RES, RES)
    assert "at most 0 deg" in ins.mat_summary()


def test_rest_pose_is_remembered_per_identity_only(wb):
    human = wb.generator.human
    ident = wb.base_params.identity
    kwargs = {"phenotypes": ident.phenotype_kwargs(), "local_changes": ident.local_changes}
    rest = human.evaluate(**kwargs)
    assert human.evaluate(**kwargs) is rest
    other = wb.generator.params(99, 0).identity
    moved = human.evaluate(phenotypes=other.phenotype_kwargs(), local_changes=other.local_changes)
    assert not np.array_equal(moved.vertices, rest.vertices)
    posed = human.evaluate(**kwargs, head_rotvec_body=np.array([0.0, 0.3, 0.0]))
    assert not np.array_equal(posed.vertices, rest.vertices)
    assert np.array_equal(human.evaluate(**kwargs).vertices, rest.vertices)


def test_the_hair_colour_control_takes_the_brows_and_a_shaved_beards_shadow_with_it():
    from replicantface import config
    from replicantface.appearance import beard_shadow_rgb
    from replicantface.generate import sample_params
    from replicantface.hair import melanin_rgb

    controls = rfw.build_controls(["a.exr"])
    base = sample_params(0, 3, config.load_preset("default"), ["nose-l0"], ["a.exr"])
    black, blond = (rfw.apply_controls(base, {"hair_colour": c}, controls, None) for c in ("black", "blond"))
    for p in (black, blond):
        rgb = melanin_rgb(p.hair.beard_melanin, p.hair.redness)
        assert p.appearance.brow_rgb == rgb and p.appearance.beard_shadow_rgb == beard_shadow_rgb(rgb)
    assert sum(black.appearance.beard_shadow_rgb) < 0.7 * sum(blond.appearance.beard_shadow_rgb)
    assert rfw.apply_controls(base, {"beard_shadow": 0.4}, controls, None).appearance.beard_shadow == 0.4
