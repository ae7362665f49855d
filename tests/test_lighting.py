"""Backgrounds and lighting: HDRI normalisation, user HDRI folders, dark-sample relighting."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from replicantface import accessories, lighting
from replicantface.appearance import skin_albedo
from replicantface.classes import FACE_SKIN_CLASSES
from replicantface.config import ConfigError, config_from_dict, load_preset
from replicantface.generate import relight


def test_hdri_gain_normalises_mean_luminance():
    rng = np.random.default_rng(0)
    env = rng.uniform(0.0, 4.0, size=(64, 128, 4)).astype(np.float32)
    gain = lighting.hdri_gain(env)
    assert lighting.hdri_gain(env * gain) == pytest.approx(1.0, rel=1e-6)
    # Twice as bright a map gets half the gain.
    assert lighting.hdri_gain(env * 2) == pytest.approx(gain / 2, rel=1e-6)


def test_hdri_gain_weights_by_solid_angle():
    env = np.zeros((90, 180, 3))
    env[:3] = 100.0  # a bright strip at the pole covers little solid angle
    pole = lighting.hdri_gain(env + 0.1)
    env = np.zeros((90, 180, 3))
    env[44:47] = 100.0  # the same strip at the equator covers much more
    equator = lighting.hdri_gain(env + 0.1)
    assert pole > 5 * equator


def test_builtin_hdris_are_found_and_user_folders_added(tmp_path):
    names = lighting.find_hdris()
    assert len(names) >= 8 and "studio.exr" in names
    (tmp_path / "mine.hdr").write_bytes(b"#?RADIANCE\n")
    (tmp_path / "notes.txt").write_text("x")
    found = lighting.find_hdris([tmp_path])
    assert found["mine.hdr"] == tmp_path / "mine.hdr" and "notes.txt" not in found
    with pytest.raises(FileNotFoundError, match="HDRI folder not found"):
        lighting.find_hdris([tmp_path / "missing"])


def test_at_least_90_distinct_background_settings():
    assert lighting.background_settings(8) >= 90


def test_relight_is_deterministic_and_changes_only_lighting(generator):
    cfg = load_preset("default")
    p = generator.params(3, 4)
    names = sorted(generator.hdris)
    a, b = relight(p, 1, cfg, names), relight(p, 1, cfg, names)
    assert a == b and a.lighting != p.lighting and a.lighting_attempt == 1
    assert dataclasses.replace(a, lighting=p.lighting, lighting_attempt=0) == p


def test_too_dark_samples_are_relit(generator):
    strict = dataclasses.replace(generator.cfg.lighting, min_face_luminance=255.0, max_attempts=3)
    old = generator.cfg
    generator.cfg = dataclasses.replace(old, lighting=strict)
    try:
        s = generator.render(generator.params(3, 5))
    finally:
        generator.cfg = old
    # Nothing reaches luminance 255, so every attempt is used, and the label says so.
    assert int(s.labels["lighting_attempt"]) == 2 and s.params.lighting_attempt == 2
    ok = generator.render(generator.params(3, 5))
    assert int(ok.labels["lighting_attempt"]) == 0 and ok.labels["face_luminance"] > 35


def _light(strength, face_exposure, tint=(1.0, 1.0, 1.0)):
    return lighting.LightingParams(hdri="x.exr", rotation_deg=0.0, strength=strength, background_strength=1.0,
                                   tint_rgb=tint, backdrop=None, extra_light=None, face_exposure=face_exposure)


def test_face_exposure_tames_bright_faces_lifts_dark_ones_and_keeps_tones_apart():
    fair, dark = tuple(skin_albedo(1.0)), tuple(skin_albedo(6.0))
    ev_fair = lighting.exposure_ev(_light(1.5, 0.2), fair, 1.5)
    ev_dark = lighting.exposure_ev(_light(0.7, 0.2), dark, 1.5)
    assert ev_fair < -0.5 and ev_dark > 0.5
    # Off, and clipped.
    assert lighting.exposure_ev(_light(1.5, 0.0), fair, 1.5) == 0.0
    assert lighting.exposure_ev(_light(0.01, 0.3), dark, 1.5) == 1.5
    assert lighting.exposure_ev(_light(0.01, 0.3), dark, 0.5) == 0.5
    # After metering, fair skin under the same light is still brighter than dark skin...
    albedo = {k: np.dot(v, lighting.LUMINANCE_WEIGHTS) for k, v in (("fair", fair), ("dark", dark))}
    seen = {k: a * 2.0 ** lighting.exposure_ev(_light(1.0, 0.2), rgb, 3.0)
            for (k, a), rgb in zip(albedo.items(), (fair, dark))}
    assert seen["fair"] > seen["dark"]
    # ...but much closer than before: the meter closes FACE_METERING_DOWN of the fair face's gap
    # to the target in stops and FACE_METERING_UP of the dark one's.
    target = np.log2(0.2 / lighting.TARGET_LUMINANCE)
    gap_fair, gap_dark = target - np.log2(albedo["fair"]), target - np.log2(albedo["dark"])
    assert gap_fair < 0.0 < gap_dark
    gap_before = np.log2(albedo["fair"] / albedo["dark"])
    gap_after = np.log2(seen["fair"] / seen["dark"])
    expected = gap_before + lighting.FACE_METERING_DOWN * gap_fair - lighting.FACE_METERING_UP * gap_dark
    assert gap_after == pytest.approx(expected) and 0.3 * gap_before < gap_after < 0.7 * gap_before
    # Brighter light or tint: less exposure.
    assert lighting.exposure_ev(_light(1.2, 0.2, (1.05, 1.05, 1.05)), fair, 3.0) < \
        lighting.exposure_ev(_light(1.2, 0.2), fair, 3.0)


def test_sampled_face_exposure_follows_config():
    cfg = lighting.LightingConfig(face_exposure_min=0.2, face_exposure_max=0.25)
    rng = np.random.default_rng(0)
    values = [lighting.sample_lighting(rng, cfg, ["a.exr"]).face_exposure for _ in range(200)]
    assert 0.2 <= min(values) and max(values) <= 0.25 and np.std(values) > 0.01


def test_face_exposure_brightens_the_rendered_face(generator):
    """Against pixels: a higher metering target gives a brighter face, background and all."""
    p = generator.params(3, 6)
    lum = []
    for target in (0.08, 0.32):
        q = dataclasses.replace(p, lighting=dataclasses.replace(p.lighting, face_exposure=target))
        lum.append(float(generator._render_once(q).labels["face_luminance"]))
    assert lum[1] > lum[0] + 25.0, lum


def test_face_light_ratio_follows_the_map_and_its_rotation():
    even = np.ones((16, 32))
    assert lighting.face_light_ratio(even, 37.0, np.array([[0.0, -1.0, 0.0]])) == pytest.approx(1.0, rel=0.01)
    sun = np.full((16, 32), 0.01)
    sun[7, 8] = 100.0  # just above the horizon, map azimuth (0.5 - 8.5 / 32) * 360 = 84 degrees
    axes = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    for rotation, lit in ((0.0, 1), (90.0, 0), (180.0, 3)):  # the map turns the other way
        ratios = [lighting.face_light_ratio(sun, rotation, n[None]) for n in axes]
        assert int(np.argmax(ratios)) == lit and max(ratios) > 3.0, (rotation, ratios)
        assert min(ratios) < 0.1
    with pytest.raises(ValueError, match="smaller than the 32x16 metering grid"):
        lighting.luminance_map(np.ones((8, 16, 3)))


def test_light_tilt_raises_the_lamps_in_front_of_the_body_and_lowers_those_behind():
    assert lighting.light_tilt_deg("/some/dir/studio.exr") == lighting.LIGHT_TILT_DEG["studio.exr"] > 0
    assert lighting.light_tilt_deg("sunrise.exr") == 0.0
    rows, cols = 90, 180
    front = (rows // 2, int(0.75 * cols))  # map azimuth -90 degrees: world -Y at rotation 0
    back = (rows // 2, int(0.25 * cols))
    for tilt in (0.0, 30.0):
        dirs, _ = lighting.map_directions((rows, cols), 0.0, tilt)
        grid = dirs.reshape(rows, cols, 3)
        for cell, toward in ((front, -1.0), (back, 1.0)):
            d = grid[cell]
            elevation = np.degrees(np.arcsin(d[2]))
            assert np.sign(d[1]) == toward and abs(d[0]) < 0.05
            assert elevation == pytest.approx(-toward * tilt, abs=1.5), (tilt, cell, elevation)
    # A lamp on the map's horizon in front of the body lights a patch facing up and forward
    # best once tilted, and one facing straight ahead best untilted.
    lamp = np.full((rows, cols), 0.01)
    lamp[front] = 1000.0
    up_front = np.array([[0.0, -np.cos(np.radians(30)), np.sin(np.radians(30))]])
    ahead = np.array([[0.0, -1.0, 0.0]])
    assert lighting.face_light_ratio(lamp, 0.0, up_front, 30.0) > lighting.face_light_ratio(lamp, 0.0, ahead, 30.0)
    assert lighting.face_light_ratio(lamp, 0.0, up_front, 0.0) < lighting.face_light_ratio(lamp, 0.0, ahead, 0.0)


def test_tilted_map_lights_the_face_from_above_and_leaves_the_background(generator, monkeypatch):
    """Against pixels: the studio map turned for the light alone brightens the forehead against
    the face below the nose (which now faces away from the raised lamps, under the nose's
    shadow), while the background the camera sees stays as it was."""
    from replicantface.classes import SegClass

    p = generator.params(3, 6)
    pose = dataclasses.replace(p.pose, head_yaw_deg=0.0, head_pitch_deg=0.0, head_roll_deg=0.0,
                               camera_heading_deg=0.0, camera_pitch_deg=0.0)
    light = dataclasses.replace(p.lighting, hdri="studio.exr", backdrop=None, extra_light=None,
                                strength=1.0, tint_rgb=(1.0, 1.0, 1.0), face_exposure=0.0,
                                white_balance=0.0)
    grid, normals = generator._face_meter(dataclasses.replace(p, pose=pose, lighting=light))
    rotations = np.arange(0.0, 360.0, 15.0)
    # The turn that puts the map's brightest light in front of the face.
    best = max(rotations, key=lambda r: lighting.face_light_ratio(grid @ lighting.LUMINANCE_WEIGHTS,
                                                                  r, normals))
    p = dataclasses.replace(p, pose=pose, lighting=dataclasses.replace(light, rotation_deg=float(best)))
    renders = {}
    for tilt in (0.0, 30.0):
        monkeypatch.setitem(lighting.LIGHT_TILT_DEG, "studio.exr", tilt)
        renders[tilt] = generator._render_once(p)
    luma = {t: s.rgb.astype(float) @ lighting.LUMINANCE_WEIGHTS for t, s in renders.items()}
    mask = renders[0.0].mask
    assert np.array_equal(mask, renders[30.0].mask)
    lm = renders[0.0].labels["landmarks_2d"]
    rows = np.arange(mask.shape[0])[:, None]
    skin = mask == SegClass.SKIN
    forehead = skin & (rows < lm[17:27, 1].min())  # above the brows
    lower = skin & (rows > lm[33, 1]) & (rows < lm[8, 1])  # below the nose tip, above the chin
    assert forehead.sum() > 200 and lower.sum() > 200, (forehead.sum(), lower.sum())
    ratio = {t: luma[t][forehead].mean() / luma[t][lower].mean() for t in luma}
    assert ratio[30.0] > 1.15 * ratio[0.0], ratio  # measured: 1.17 -> 1.50
    background = mask == SegClass.BACKGROUND
    assert np.abs(luma[30.0][background] - luma[0.0][background]).mean() < 1.0


def test_face_metering_sees_where_the_light_comes_from(generator):
    """Against pixels: of the turns of the sunrise map, the one the face metering rates
    brightest renders a brighter face than the one it rates darkest (metering off); metering
    on brings the two closer."""
    p = generator.params(3, 6)
    pose = dataclasses.replace(p.pose, head_yaw_deg=0.0, head_pitch_deg=0.0, head_roll_deg=0.0,
                               camera_heading_deg=0.0, camera_pitch_deg=0.0)
    light = dataclasses.replace(p.lighting, hdri="sunrise.exr", backdrop=None, extra_light=None,
                                strength=1.0, tint_rgb=(1.0, 1.0, 1.0))
    p = dataclasses.replace(p, pose=pose, lighting=light)

    def turned(rotation, face_exposure):
        return dataclasses.replace(p, lighting=dataclasses.replace(light, rotation_deg=rotation,
                                                                   face_exposure=face_exposure))

    rotations = np.arange(0.0, 360.0, 45.0)
    ratios = [generator.face_light_ratio(turned(r, 0.0)) for r in rotations]
    bright, dark = rotations[int(np.argmax(ratios))], rotations[int(np.argmin(ratios))]
    assert max(ratios) > 4 * min(ratios), ratios
    lum = {(r, e): float(generator._render_once(turned(r, e)).labels["face_luminance"])
           for r in (bright, dark) for e in (0.0, 0.2)}
    assert lum[bright, 0.0] > lum[dark, 0.0] + 30.0, lum
    assert abs(lum[bright, 0.2] - lum[dark, 0.2]) < 0.7 * (lum[bright, 0.0] - lum[dark, 0.0]), lum


def test_face_illuminant_is_the_colour_of_the_light_the_face_faces():
    even = np.ones((16, 32, 3)) * np.array([0.9, 1.0, 1.3])
    light = lighting.face_illuminant(even, 0.0, np.array([[0.0, -1.0, 0.0]]))
    assert light @ lighting.LUMINANCE_WEIGHTS == pytest.approx(1.0)
    assert light / light[1] == pytest.approx([0.9, 1.0, 1.3], rel=1e-6)
    # A blue sky with an orange sun low in one direction: the side facing the sun is lit orange,
    # the side away from it blue.
    sky = np.ones((16, 32, 3)) * np.array([0.5, 0.7, 1.2])
    sky[7, 8] = (400.0, 200.0, 60.0)  # the sun cell faces azimuth 84 degrees: world +Y at rotation 0
    toward = lighting.face_illuminant(sky, 0.0, np.array([[0.0, 1.0, 0.0]]))
    away = lighting.face_illuminant(sky, 0.0, np.array([[0.0, -1.0, 0.0]]))
    assert toward[0] > 1.2 > 0.8 > toward[2]
    assert away[2] > 1.3 and away[0] < 0.8
    # Black map: no cast to speak of.
    assert lighting.face_illuminant(np.zeros((16, 32, 3)), 0.0, np.array([[0.0, -1.0, 0.0]])) == \
        pytest.approx([1.0, 1.0, 1.0])


def test_white_balance_gains_remove_the_requested_share_of_the_cast():
    light = np.array([0.7, 1.0, 1.6])
    unit = light / (light @ lighting.LUMINANCE_WEIGHTS)
    assert lighting.white_balance_gains(light, 0.0) == pytest.approx([1.0, 1.0, 1.0])
    full = lighting.white_balance_gains(light, 1.0)
    grey = unit * full
    assert grey == pytest.approx(np.full(3, grey[0])) and grey @ lighting.LUMINANCE_WEIGHTS == pytest.approx(1.0)
    half = lighting.white_balance_gains(light, 0.5)
    assert (unit * half) @ lighting.LUMINANCE_WEIGHTS == pytest.approx(1.0)
    # Half the correction leaves half the cast, in log ratio of blue to red.
    cast = np.log(unit[2] / unit[0])
    assert np.log((unit * half)[2] / (unit * half)[0]) == pytest.approx(0.5 * cast)


def test_sampled_white_balance_follows_config():
    cfg = lighting.LightingConfig(white_balance_min=0.3, white_balance_max=0.5)
    rng = np.random.default_rng(1)
    values = [lighting.sample_lighting(rng, cfg, ["a.exr"]).white_balance for _ in range(200)]
    assert 0.3 <= min(values) and max(values) <= 0.5 and np.std(values) > 0.03
    with pytest.raises(ConfigError, match="white_balance_max = 1.5 is out of range"):
        config_from_dict({"lighting": {"white_balance_max": 1.5}}, "x")
    with pytest.raises(ConfigError, match="white_balance_min = 0.9 is larger than white_balance_max"):
        config_from_dict({"lighting": {"white_balance_min": 0.9, "white_balance_max": 0.7}}, "x")


def test_white_balance_warms_a_face_in_blue_light(generator):
    """Against pixels: a face lit by the sunset map's blue sky, the sun behind it, renders
    nearly grey with the white balance off; on, its skin turns toward its own colour (red well
    above blue), with the same brightness and the same mask."""
    p = generator.params(3, 6)
    pose = dataclasses.replace(p.pose, head_yaw_deg=0.0, head_pitch_deg=0.0, head_roll_deg=0.0,
                               camera_heading_deg=0.0, camera_pitch_deg=0.0)
    light = dataclasses.replace(p.lighting, hdri="sunset.exr", backdrop=None, extra_light=None,
                                strength=1.0, tint_rgb=(1.0, 1.0, 1.0), face_exposure=0.2)
    p = dataclasses.replace(p, pose=pose, lighting=light, accessories=accessories.NONE)

    def lit(rotation, balance):
        return dataclasses.replace(p, lighting=dataclasses.replace(light, rotation_deg=rotation,
                                                                   white_balance=balance))

    rotations = np.arange(0.0, 360.0, 30.0)
    blue = [generator.white_balance(lit(r, 1.0))[0] for r in rotations]  # red gain: bluest light
    rotation = rotations[int(np.argmax(blue))]
    assert max(blue) > 1.2, blue
    off, on = (generator._render_once(lit(rotation, b)) for b in (0.0, 1.0))
    face = np.isin(off.mask, [int(c) for c in FACE_SKIN_CLASSES])
    assert face.sum() > 200 and np.array_equal(off.mask, on.mask)
    r_off, _, b_off = off.rgb[face].astype(float).mean(axis=0)
    r_on, _, b_on = on.rgb[face].astype(float).mean(axis=0)
    # Skin's red lead over blue, about 11 levels in the blue light, grows past 40 (it is 0
    # when the balance does nothing).
    assert (r_on - b_on) > (r_off - b_off) + 25.0, (r_off, b_off, r_on, b_on)
    lum_off, lum_on = (float(s.labels["face_luminance"]) for s in (off, on))
    assert abs(lum_on - lum_off) < 0.15 * lum_off, (lum_off, lum_on)


def _locus_distance(rgb) -> tuple[float, float]:
    """(kelvin, duv) of a linear-RGB colour: the nearest point of the black-body locus in CIE
    1960 (u, v) and the signed distance to it (positive above, toward green)."""
    xyz = np.linalg.inv(lighting.XYZ_TO_LINEAR_RGB) @ np.asarray(rgb, dtype=float)
    x, y = xyz[:2] / xyz.sum()
    u, v = 4 * x / (-2 * x + 12 * y + 3), 6 * y / (-2 * x + 12 * y + 3)
    kelvin = np.linspace(1000.0, 15000.0, 14001)
    lu, lv = lighting.planckian_uv(kelvin)
    i = int(np.argmin(np.hypot(lu - u, lv - v)))
    return float(kelvin[i]), float(np.hypot(lu[i] - u, lv[i] - v) * np.sign(v - lv[i]))


def test_extra_lamps_have_the_colours_of_real_lamps():
    # The locus against the CIE standard illuminants: A is a 2856 K black body; D65 lies
    # 0.0032 above the locus at 6504 K and is the white of linear sRGB.
    assert lighting.lamp_xy(2856.0) == pytest.approx((0.44757, 0.40745), abs=5e-4)
    assert lighting.lamp_xy(6504.0, 0.0032) == pytest.approx((0.31271, 0.32902), abs=3e-4)
    assert lighting.lamp_rgb(6504.0, 0.0032) == pytest.approx((1.0, 1.0, 1.0), abs=0.01)
    warm, cool = lighting.lamp_rgb(2700.0), lighting.lamp_rgb(6500.0)
    assert warm[0] / warm[2] > 5.0 and cool[0] / cool[2] == pytest.approx(1.0, abs=0.05)
    assert lighting.lamp_rgb(4000.0, 0.006)[1] > lighting.lamp_rgb(4000.0, -0.006)[1]
    cfg = dataclasses.replace(load_preset("default").lighting, extra_light_prob=1.0)
    rng = np.random.default_rng(0)
    colours = [lighting.sample_lighting(rng, cfg, ["x.exr"]).extra_light.colour for _ in range(300)]
    found = np.array([_locus_distance(c) for c in colours])
    assert found[:, 0].min() == pytest.approx(2700.0, abs=60.0) and found[:, 0].max() == pytest.approx(6500.0, abs=150.0)
    assert np.abs(found[:, 1]).max() < 0.0065 and found[:, 1].min() < -0.004 < 0.004 < found[:, 1].max()
    assert [c @ lighting.LUMINANCE_WEIGHTS for c in colours] == pytest.approx(np.ones(300))
    # Three independent channels drawn from 0.7-1.0 give lamps far off the locus, such as
    # this green one, three times the LED tolerance.
    assert _locus_distance((0.708, 0.961, 0.782))[1] > 0.015


_LAMP_SCENE = """
import json, math, sys
import bpy, numpy as np
from replicantface import lighting
sc = bpy.context.scene
sc.render.engine = "CYCLES"; sc.cycles.device = "CPU"; sc.cycles.samples = 64
sc.cycles.use_denoising = False; sc.render.resolution_x = sc.render.resolution_y = 16
sc.view_settings.view_transform = "Standard"
for ob in list(bpy.data.objects):
    bpy.data.objects.remove(ob)
sc.world = bpy.data.worlds.new("black"); sc.world.color = (0.0, 0.0, 0.0)
for node in (sc.world.node_tree.nodes if sc.world.node_tree else []):
    if node.type == "BACKGROUND":
        node.inputs["Strength"].default_value = 0.0
mesh = bpy.data.meshes.new("patch")
h = 0.004
mesh.from_pydata([(-h, -h, 0), (h, -h, 0), (h, h, 0), (-h, h, 0)], [], [(0, 1, 2, 3)])
patch = bpy.data.objects.new("patch", mesh); sc.collection.objects.link(patch)
mat = bpy.data.materials.new("white"); mat.use_nodes = True
nt = mat.node_tree; nt.nodes.clear()
bsdf = nt.nodes.new("ShaderNodeBsdfDiffuse"); bsdf.inputs[0].default_value = (1, 1, 1, 1)
nt.links.new(bsdf.outputs[0], nt.nodes.new("ShaderNodeOutputMaterial").inputs[0])
mesh.materials.append(mat)
tilt = math.radians(35.0)  # the patch faces up, tilted toward -Y
patch.rotation_euler = (tilt, 0.0, 0.0)
normal = np.array([0.0, -math.sin(tilt), math.cos(tilt)])
cam = bpy.data.cameras.new("cam"); cam.type = "ORTHO"; cam.ortho_scale = 0.004; cam.clip_start = 0.001
cam_ob = bpy.data.objects.new("cam", cam); sc.collection.objects.link(cam_ob); sc.camera = cam_ob
cam_ob.location = tuple(0.05 * normal); cam_ob.rotation_euler = (tilt, 0.0, 0.0)
out = {}
for kind, az, el, dist in (("POINT", 0.0, 40.0, 0.8), ("SPOT", 30.0, 20.0, 1.2), ("AREA", -20.0, 50.0, 0.8)):
    extra = lighting.ExtraLight(kind, az, el, dist, 100.0, lighting.lamp_rgb(3000.0))
    data = bpy.data.lights.new(kind, kind); data.energy = extra.power_w; data.color = extra.colour
    data.shadow_soft_size = 0.0
    if kind == "AREA":
        data.size = lighting.AREA_LIGHT_SIZE_M
    if kind == "SPOT":
        data.spot_size = math.radians(lighting.SPOT_SIZE_DEG)
    lamp = bpy.data.objects.new(kind, data); sc.collection.objects.link(lamp)
    back = lighting.lamp_direction(extra)
    right = np.cross([0.0, 0.0, 1.0], back); right /= np.linalg.norm(right)
    m = np.eye(4); m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, dist * back
    from mathutils import Matrix
    lamp.matrix_world = Matrix(m.tolist())
    sc.render.filepath = sys.argv[1] + "/" + kind + ".exr"
    sc.render.image_settings.file_format = "OPEN_EXR"
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(sc.render.filepath)
    rgb = np.array(img.pixels[:]).reshape(-1, 4)[:, :3].mean(axis=0)
    out[kind] = [float(rgb @ lighting.LUMINANCE_WEIGHTS), lighting.lamp_irradiance(extra, normal[None]) / math.pi]
    bpy.data.objects.remove(lamp)
print("LAMPS " + json.dumps(out))
"""


def test_lamp_irradiance_is_what_cycles_renders(tmp_path):
    """Against pixels: a white Lambertian patch, tilted 35 degrees, lit by each kind of extra
    lamp from its own direction renders at the predicted irradiance over pi (a fresh Blender
    with only the patch, the lamp and a black world)."""
    script = tmp_path / "lamps.py"
    script.write_text(_LAMP_SCENE)
    r = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                       timeout=300)
    line = [s for s in r.stdout.splitlines() if s.startswith("LAMPS ")]
    assert r.returncode == 0 and line, r.stderr[-2000:]
    for kind, (rendered, predicted) in json.loads(line[0][6:]).items():
        assert predicted > 0.05 and rendered == pytest.approx(predicted, rel=0.03), (kind, rendered, predicted)


def test_a_lamp_on_the_face_is_metered_and_white_balanced():
    even = np.ones((16, 32, 3))
    face = np.array([[0.0, -1.0, 0.0]])
    light = lighting.LightingParams(hdri="x.exr", rotation_deg=0.0, strength=1.0, background_strength=1.0,
                                    tint_rgb=(1.0, 1.0, 1.0), backdrop=None, extra_light=None)
    assert lighting.metered_light(light, even, face)[0] == pytest.approx(1.0, rel=0.01)
    # A warm point lamp in front of the face as bright on it as the whole even sky.
    sky = np.pi * lighting.TARGET_LUMINANCE
    power = sky * 4.0 * np.pi * 1.0 ** 2
    warm = lighting.ExtraLight("POINT", 0.0, 0.0, 1.0, power, lighting.lamp_rgb(2700.0))
    ratio, colour = lighting.metered_light(dataclasses.replace(light, extra_light=warm), even, face)
    assert ratio == pytest.approx(2.0, rel=0.01)
    assert colour @ lighting.LUMINANCE_WEIGHTS == pytest.approx(1.0)
    assert colour == pytest.approx((np.ones(3) + np.array(warm.colour)) / 2.0, rel=0.01)
    # Behind the head it does not reach the face and changes nothing.
    behind = dataclasses.replace(warm, azimuth_deg=180.0)
    ratio, colour = lighting.metered_light(dataclasses.replace(light, extra_light=behind), even, face)
    assert ratio == pytest.approx(1.0, rel=0.01) and colour == pytest.approx(np.ones(3), rel=0.01)


def test_a_strong_warm_lamp_is_metered_and_balanced(generator):
    """Against pixels: a warm 2700 K lamp in front of the face, twice as bright on it as the
    studio map (as the meter sees it), renders the face nearly as bright as the map alone
    does, and the white balance removes most of its orange cast."""
    p = generator.params(3, 6)
    pose = dataclasses.replace(p.pose, head_yaw_deg=0.0, head_pitch_deg=0.0, head_roll_deg=0.0,
                               camera_heading_deg=0.0, camera_pitch_deg=0.0)
    light = dataclasses.replace(p.lighting, hdri="studio.exr", rotation_deg=0.0, backdrop=None, extra_light=None,
                                strength=1.0, tint_rgb=(1.0, 1.0, 1.0), face_exposure=0.2, white_balance=1.0)
    p = dataclasses.replace(p, pose=pose, lighting=light, accessories=accessories.NONE)
    bare = generator.face_light_ratio(p)

    def with_lamp(watts):
        lamp = lighting.ExtraLight("AREA", 0.0, 15.0, 1.0, watts, lighting.lamp_rgb(2700.0))
        return dataclasses.replace(p, lighting=dataclasses.replace(light, extra_light=lamp))

    per_watt = generator.face_light_ratio(with_lamp(1.0)) - bare
    lit = with_lamp(2.0 * bare / per_watt)  # the lamp gives twice the map's light

    def render(q, balance):
        s = generator._render_once(dataclasses.replace(q, lighting=dataclasses.replace(q.lighting, white_balance=balance)))
        face = np.isin(s.mask, [int(c) for c in FACE_SKIN_CLASSES])
        r, _, b = s.rgb[face].astype(float).mean(axis=0)
        return float(s.labels["face_luminance"]), r - b

    (lum_bare, lead_bare), (lum_lit, lead_lit) = render(p, 1.0), render(lit, 1.0)
    (_, lead_bare_off), (_, lead_lit_off) = render(p, 0.0), render(lit, 0.0)
    # Luma 92 and 107: the lamp triples the light, and the metering takes most of it back.
    assert lum_lit < 1.3 * lum_bare, (lum_bare, lum_lit)
    # Skin's red lead over blue grows by 90 levels under the lamp with the balance off and by
    # 31 with it on: the lamp's own highlights and its frontal light on the face go beyond what
    # the five metering patches see, so some warmth stays, as with a camera under a room lamp.
    assert lead_lit_off > lead_bare_off + 60.0, (lead_bare_off, lead_lit_off)
    assert lead_lit - lead_bare < 0.5 * (lead_lit_off - lead_bare_off), (lead_bare, lead_lit)


def test_a_lamp_colour_gives_back_its_temperature_and_tint():
    for kelvin, duv in [(1900.0, 0.0), (2000.0, -0.02), (2700.0, 0.006), (4000.0, -0.02), (6500.0, 0.003), (10000.0, -0.004)]:
        got_k, got_duv = lighting.lamp_kelvin_duv(lighting.lamp_rgb(kelvin, duv))
        assert got_k == pytest.approx(kelvin, rel=1e-4) and got_duv == pytest.approx(duv, abs=1e-6)
    # Linear sRGB white is D65: 6504 K, 0.0032 above the locus; brightness does not matter.
    assert lighting.lamp_kelvin_duv((2.0, 2.0, 2.0)) == pytest.approx((6504.0, 0.0032), rel=2e-3, abs=2e-4)
    for bad in [(0.0, 0.0, 0.0), (1.0, -0.1, 1.0), (1.0, float("nan"), 1.0), (1.0, 1.0)]:
        with pytest.raises(ValueError, match="lamp colour"):
            lighting.lamp_kelvin_duv(bad)
    # A green tint on a warm lamp leaves the RGB gamut: the limit is its edge.
    edge = lighting.lamp_duv_limit(2000.0)
    assert 0.0 < edge < 0.006 and lighting.lamp_duv_limit(6500.0) > 0.02 and lighting.lamp_duv_limit(1500.0) == 0.0
    x, y = lighting.lamp_xy(2000.0, edge)
    raw = lighting.XYZ_TO_LINEAR_RGB @ np.array([x / y, 1.0, (1.0 - x - y) / y])
    assert raw.min() == pytest.approx(0.0, abs=1e-6)
    assert lighting.lamp_kelvin_duv(lighting.lamp_rgb(2000.0, edge)) == pytest.approx((2000.0, edge), rel=1e-4, abs=1e-6)
