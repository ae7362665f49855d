"""Appearance sampling (pure), skin-region maps and clothing cuts, and their effect on renders."""

import dataclasses
import json

import numpy as np
import pytest
from matplotlib.path import Path as PolyPath
from scipy import ndimage

from replicantface import labels, lighting, regions
from replicantface.accessories import AccessoryParams
from replicantface.appearance import (
    CLOTHING_CUTS,
    CLOTHING_PATTERNS,
    FITZPATRICK_ALBEDO,
    ITA_CLASSES_DEG,
    MAKEUP,
    SKIN_ROUGHNESS,
    WRINKLES,
    AppearanceConfig,
    individual_typology_angle,
    lab_to_linear_rgb,
    linear_rgb_to_lab,
    lip_albedo,
    sample_appearance,
    skin_albedo,
    skin_region_maps,
    with_skin,
)
from replicantface.classes import HEAD_CLASSES, SegClass
from replicantface.expression import ExpressionParams
from replicantface.pose import PoseParams


def _draw(n, cfg=None, age=40.0, gender=0.5, seed=0):
    rng = np.random.default_rng(seed)
    cfg = cfg or AppearanceConfig()
    return [sample_appearance(rng, cfg, age, gender) for _ in range(n)]


def test_sampling_is_deterministic_and_json_serialisable():
    a = _draw(20, seed=5)
    b = _draw(20, seed=5)
    assert [dataclasses.asdict(x) for x in a] == [dataclasses.asdict(x) for x in b]
    assert dataclasses.asdict(a[0]) != dataclasses.asdict(_draw(1, seed=6)[0])
    for p in a:
        json.dumps(dataclasses.asdict(p))
        assert set(p.wrinkles) == set(WRINKLES) and set(p.makeup) == set(MAKEUP)
        assert p.clothing_cut in CLOTHING_CUTS and p.clothing_pattern in CLOTHING_PATTERNS
        for rgb in (p.skin_rgb, p.iris_rgb, p.clothing_rgb, p.clothing_rgb2, p.lip_rgb, p.sclera_rgb):
            assert len(rgb) == 3 and all(0.0 <= c <= 1.0 for c in rgb)


def test_fitzpatrick_types_are_even_by_default():
    types = np.array([int(np.clip(np.floor(p.fitzpatrick + 0.5), 1, 6)) for p in _draw(3000)])
    share = np.bincount(types, minlength=7)[1:] / len(types)
    assert np.all(np.abs(share - 1 / 6) < 0.035), share


def test_skin_tones_sit_in_their_typology_angle_classes_at_measured_lightness():
    # The colour conversion against published values: sRGB red and white in CIELAB (D65).
    assert np.allclose(linear_rgb_to_lab([1.0, 0.0, 0.0]), (53.24, 80.09, 67.20), atol=0.05)
    assert np.allclose(linear_rgb_to_lab([1.0, 1.0, 1.0]), (100.0, 0.0, 0.0), atol=0.02)
    assert np.allclose(lab_to_linear_rgb(linear_rgb_to_lab(FITZPATRICK_ALBEDO)), FITZPATRICK_ALBEDO)
    lab = linear_rgb_to_lab(FITZPATRICK_ALBEDO)
    ita = individual_typology_angle(FITZPATRICK_ALBEDO)
    for ftype, ((lo, hi), angle) in enumerate(zip(ITA_CLASSES_DEG, ita), start=1):
        assert lo < angle < hi, (ftype, angle)
    # Lightness within what faces measure (no plaster-white type I), with the chroma of skin,
    # and the albedo is never above 1 nor negative.
    assert 30.0 <= lab[:, 0].min() and lab[:, 0].max() <= 72.0, lab[:, 0]
    assert np.hypot(lab[:, 1], lab[:, 2]).min() >= 12.0, lab
    assert (FITZPATRICK_ALBEDO > 0.0).all() and (FITZPATRICK_ALBEDO < 1.0).all()
    # Between the anchors the tone darkens steadily, and sampled skins (undertone, brightness
    # jitter) keep their type's order on average.
    steps = individual_typology_angle(np.array([skin_albedo(t) for t in np.linspace(1.0, 6.0, 26)]))
    assert (np.diff(steps) < 0.0).all()
    draws = _draw(1200, seed=3)
    types = np.array([int(np.clip(np.floor(p.fitzpatrick + 0.5), 1, 6)) for p in draws])
    sampled = individual_typology_angle(np.array([p.skin_rgb for p in draws]))
    means = [sampled[types == t].mean() for t in range(1, 7)]
    assert (np.diff(means) < 0.0).all(), means


def _lch(lab):
    lab = np.asarray(lab, dtype=float)
    return lab[..., 0], np.hypot(lab[..., 1], lab[..., 2]), np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))


def test_lips_are_redder_and_darker_than_the_skin_with_its_chroma():
    """Lips against the perioral skin, as colorimetry measures them: a redder hue, a chroma
    close to the skin's (not the doubled chroma of painted lips), darker on fair skin and about
    as light on the darkest."""
    draws = _draw(1500, seed=7)
    light = np.array([(6.0 - p.fitzpatrick) / 5.0 for p in draws])
    skin_l, skin_c, skin_h = _lch(linear_rgb_to_lab(np.array([p.skin_rgb for p in draws])))
    lip_l, lip_c, lip_h = _lch(linear_rgb_to_lab(np.array([p.lip_rgb for p in draws])))
    assert (lip_h < skin_h - 8.0).all(), (skin_h - lip_h).min()
    # Never purple: on the coolest fair skin the lost yellow stops at LIP_MIN_HUE_DEG (10).
    assert lip_h.min() > 9.99, lip_h.min()
    ratio = lip_c / skin_c
    assert (ratio > 0.8).all() and (ratio < 1.6).all(), (ratio.min(), ratio.max())
    fair, darkest = light > 0.8, light < 0.1
    assert fair.sum() > 50 and darkest.sum() > 50
    assert (skin_l - lip_l)[fair].min() > 3.0 and (skin_l - lip_l)[fair].mean() > 6.0
    assert np.abs(skin_l - lip_l)[darkest].max() < 4.0
    # Lips dull with age: less red added at 80 than at 20 years.
    skin = FITZPATRICK_ALBEDO[2]
    young, old = (linear_rgb_to_lab(lip_albedo(skin, 0.6, age, (0.5, 0.5, 0.5))) for age in (0.0, 1.0))
    assert young[1] > old[1] + 1.5, (young, old)


def test_a_face_given_another_skin_type_keeps_lips_that_fit_it():
    """with_skin (the skin sheet, the workbench's skin slider): the lips move with the skin. They
    keep their added red and lost yellow, take the new type's darkening, and going back restores
    them exactly; lips left at the old skin's colour would sit 25 L* off a type VI skin."""
    for p in _draw(40, seed=11):
        dark = with_skin(p, 6.0)
        assert np.allclose(dark.skin_rgb, FITZPATRICK_ALBEDO[5]) and dark.fitzpatrick == 6.0
        before = linear_rgb_to_lab(p.lip_rgb) - linear_rgb_to_lab(p.skin_rgb)
        after = linear_rgb_to_lab(dark.lip_rgb) - linear_rgb_to_lab(dark.skin_rgb)
        assert np.allclose(after[1:], before[1:], atol=1e-6), (before, after)
        assert -2.0 - 1e-6 <= -after[0] <= 2.0 + 1e-6, after
        back = with_skin(dark, p.fitzpatrick, p.skin_rgb)
        assert np.allclose(back.lip_rgb, p.lip_rgb, atol=1e-6)


def test_freckle_and_makeup_rates_follow_config():
    fair = dict(fitzpatrick_weights=(1, 0, 0, 0, 0, 0))
    for prob in (0.0, 0.5, 1.0):
        rate = np.mean([p.freckles > 0 for p in _draw(1500, AppearanceConfig(freckle_prob=prob, **fair))])
        assert abs(rate - prob * 0.97) < 0.05, (prob, rate)
    cfg = AppearanceConfig(makeup_prob=0.6, makeup_prob_male=0.1)
    for gender, expected in ((0.0, 0.6), (1.0, 0.1), (0.5, 0.35)):
        rate = np.mean([any(v > 0 for v in p.makeup.values()) for p in _draw(1500, cfg, gender=gender)])
        assert abs(rate - expected) < 0.05, (gender, rate)
    assert not any(any(p.makeup.values()) for p in _draw(300, AppearanceConfig(makeup_prob=0.0), gender=0.0))


def test_choice_weights_and_age():
    cut = AppearanceConfig(clothing_cut_weights=(0, 0, 0, 1, 0), clothing_pattern_weights=(0, 0, 1, 0, 0, 0))
    assert {(p.clothing_cut, p.clothing_pattern) for p in _draw(50, cut)} == {("turtleneck", "checks")}
    with pytest.raises(ValueError, match="weights"):
        _draw(1, AppearanceConfig(clothing_cut_weights=(1, 1)))
    young = np.mean([sum(p.wrinkles.values()) for p in _draw(300, age=22.0)])
    old = np.mean([sum(p.wrinkles.values()) for p in _draw(300, age=75.0)])
    assert old > young + 1.0, (young, old)
    none = _draw(100, AppearanceConfig(wrinkle_scale=0.0), age=80.0)
    assert all(v == 0.0 for p in none for v in p.wrinkles.values())


@pytest.fixture(scope="module")
def human(generator):
    return generator.human


@pytest.fixture(scope="module")
def neutral_maps(human):
    """The neutral mesh in the head frame, its landmarks, its head vertices and its region maps."""
    n = human.neutral
    verts = labels.transform_points(np.linalg.inv(n.head_to_world), n.vertices)
    lm = verts[human.landmark_indices]
    head = np.zeros(len(verts), dtype=bool)
    head[human.faces[human.part_of_face == "head"].ravel()] = True
    return verts, lm, head, skin_region_maps(verts, lm, head, np.zeros(len(verts), dtype=bool))


def test_skin_region_maps_sit_on_the_face(human, neutral_maps):
    verts, lm, head, maps = neutral_maps
    assert all(m.shape == (len(verts), 3) and m.dtype == np.float32 for m in maps.values())

    def nearest(point):
        return int(np.argmin(np.linalg.norm(np.where(head[:, None], verts, 1e3) - point, axis=1)))

    forehead = nearest([0.0, lm[19, 1] + 0.035, lm[27, 2]])
    chin = human.landmark_indices[8]
    cheek = nearest(lm[[2, 31], :].mean(axis=0) + [0.0, 0.0, 0.01])
    assert maps["rf_zone_b"][forehead, 0] > 0.8 and maps["rf_zone_b"][chin, 0] == 0.0
    assert maps["rf_zone_a"][cheek, 0] > 0.3 and maps["rf_zone_a"][forehead, 0] == 0.0
    assert not np.any(maps["rf_zone_b"][~head])
    # Crow's feet fan out from each eye's outer corner over the temple, not up the lid under the
    # brow's tail.
    for corner, tail, out in ((36, 17, -1.0), (45, 26, 1.0)):
        temple = nearest(lm[corner] + [out * 0.012, -0.002, -0.008])
        lid = nearest(lm[[corner, tail]].mean(axis=0))
        assert maps["rf_zone_b"][temple, 1] > 0.4 and maps["rf_zone_b"][lid, 1] < 0.1, (
            maps["rf_zone_b"][temple, 1], maps["rf_zone_b"][lid, 1])


def test_the_neck_zone_is_the_skin_below_the_jaw(human, neutral_maps):
    verts, lm, head, maps = neutral_maps
    neck = maps["rf_zone_d"][:, 1]
    skin = np.zeros(len(verts), dtype=bool)
    skin[human.faces[np.isin(human.face_classes, [SegClass.SKIN, SegClass.NECK])].ravel()] = True

    def nearest(point):
        return int(np.argmin(np.linalg.norm(np.where(skin[:, None], verts, 1e3) - point, axis=1)))

    # The face, the jaw's edge and the chin keep the face's gloss...
    face = [human.landmark_indices[i] for i in (8, 4, 12, 30, 48, 54)]
    face += [nearest(lm[[2, 31]].mean(axis=0)), nearest([0.0, lm[19, 1] + 0.03, lm[27, 2]])]
    assert np.all(neck[face] == 0.0), neck[face]
    # ...and the neck all round, 3-4 cm below the chin (throat, sides and nape), is neck.
    ring = skin & (verts[:, 1] < lm[8, 1] - 0.03) & (verts[:, 1] > lm[8, 1] - 0.04)
    assert ring.sum() > 20 and np.all(neck[ring] == 1.0), np.sort(neck[ring])[:5]
    assert np.ptp(verts[ring, 0]) > 0.08 and np.ptp(verts[ring, 2]) > 0.08  # a ring, not a patch
    # The whole face in front of the jaw's angles, down to the chin, keeps most of its gloss.
    face_front = head & skin & (verts[:, 1] > lm[8, 1]) & (verts[:, 2] > lm[[3, 13], 2].max())
    assert face_front.sum() > 500 and neck[face_front].max() < 0.5, neck[face_front].max()
    # None of the head's skin above the jaw's angles (the cheek in front of and below the ear).
    assert not np.any(neck[head & skin & (verts[:, 1] > lm[[3, 13], 1].max())])


def test_the_beard_area_covers_chin_jaw_and_upper_lip_and_never_the_lips(human):
    from replicantface.hair import beard_area_weights

    n = human.neutral
    verts = labels.transform_points(np.linalg.inv(n.head_to_world), n.vertices)
    lm = verts[human.landmark_indices]
    area = beard_area_weights(verts, human.faces, human.face_classes, lm)
    assert area.shape == (len(verts),) and 0.0 <= area.min() and area.max() <= 1.0

    def nearest(point, classes=(SegClass.SKIN,)):
        ok = np.zeros(len(verts), dtype=bool)
        ok[human.faces[np.isin(human.face_classes, classes)].ravel()] = True
        return int(np.argmin(np.linalg.norm(np.where(ok[:, None], verts, 1e3) - point, axis=1)))

    chin = nearest(lm[8] + [0.0, 0.012, 0.0])
    jaw = nearest(lm[[4, 5]].mean(axis=0))
    upper_lip = nearest(lm[[33, 51]].mean(axis=0))  # where a moustache grows
    assert min(area[chin], area[jaw], area[upper_lip]) > 0.8, (area[chin], area[jaw], area[upper_lip])
    cheekbone = nearest(lm[[1, 29]].mean(axis=0))
    forehead = nearest([0.0, lm[19, 1] + 0.03, lm[27, 2]])
    nose_tip = human.landmark_indices[30]
    assert area[cheekbone] == 0.0 and area[forehead] == 0.0 and area[nose_tip] == 0.0
    lips = np.unique(human.faces[np.isin(human.face_classes, [SegClass.TOP_LIP, SegClass.BOTTOM_LIP])])
    assert not area[lips].any()


def test_only_men_draw_a_beard_shadow_and_white_stubs_cast_none():
    cfg = AppearanceConfig()
    women = [sample_appearance(np.random.default_rng(i), cfg, 30.0, gender=0.4) for i in range(50)]
    men = [sample_appearance(np.random.default_rng(i), cfg, 30.0, gender=0.9) for i in range(50)]
    assert all(a.beard_shadow == 0.0 for a in women)
    assert all(0.2 <= a.beard_shadow <= 1.0 for a in men) and np.std([a.beard_shadow for a in men]) > 0.1
    from replicantface import config
    from replicantface.generate import sample_params

    labels_ = [f"nose-l{i}" for i in range(5)]
    drawn = [sample_params(3, i, config.load_preset("default"), labels_, ["a.exr"]) for i in range(300)]
    for p in drawn:
        if p.identity.gender <= 0.5:
            assert p.appearance.beard_shadow == 0.0
        # As strong as the stubs are pigmented: none when white, faint when blond.
        assert p.appearance.beard_shadow <= (1.0 - p.hair.beard_grey) * p.hair.beard_melanin ** 2 + 1e-9
    men = [p for p in drawn if p.identity.gender > 0.8 and p.hair.beard_grey == 0.0]
    dark = [p.appearance.beard_shadow for p in men if p.hair.beard_melanin > 0.8]
    fair = [p.appearance.beard_shadow for p in men if p.hair.beard_melanin < 0.4]
    assert dark and fair and min(dark) > 0.1 and max(fair) < 0.16, (dark, fair)
    # Dark stubs read blue-grey through the skin.
    assert all(np.argmax(p.appearance.beard_shadow_rgb) == 2 for p in men if p.hair.beard_melanin > 0.8)


def test_clothing_cuts_stay_below_the_neck(human):
    verts = human.neutral.vertices
    cuts = regions.clothing_cuts(human, verts)
    assert list(cuts) == list(CLOTHING_CUTS)
    assert np.array_equal(cuts["crew"], human.face_classes == SegClass.CLOTHING)
    chin_z = verts[human.landmark_indices[8], 2]
    jaw_angle_z = verts[human.landmark_indices[[4, 12]], 2].min()
    sizes = {}
    for name, cut in cuts.items():
        # Only bare-neck faces switch; no head class, hand or ear is ever covered.
        assert set(np.unique(human.face_classes[cut])) <= {SegClass.NECK, SegClass.CLOTHING}, name
        assert not np.isin(human.part_of_face[cut], ["hand.L", "hand.R"]).any(), name
        top = verts[human.faces[cut]][..., 2].max(axis=1)
        front = verts[human.faces[cut]][..., 1].mean(axis=1) < verts[human.landmark_indices[8], 1] + 0.05
        assert top[front].max() < chin_z, name  # under the chin at the front
        assert top.max() < jaw_angle_z, name
        sizes[name] = int(cut.sum())
    assert sizes["turtleneck"] > sizes["crew"] > sizes["v_neck"] and sizes["crew"] > sizes["scoop"]


def _frontal(generator, index, appearance):
    """A frontal head-and-shoulders view of sample ``index`` with the given appearance."""
    p = generator.params(4, index)
    pose = PoseParams(head_yaw_deg=0.0, head_pitch_deg=0.0, head_roll_deg=0.0, camera_heading_deg=0.0,
                      camera_pitch_deg=0.0)
    cam = dataclasses.replace(p.camera, shift_x=0.0, shift_y=0.0, use_dof=False, face_fraction=0.35)
    bald = dataclasses.replace(p.hair, style="bald", beard="none")
    return dataclasses.replace(p, pose=pose, camera=cam, appearance=appearance, hair=bald,
                               accessories=AccessoryParams())


def test_appearance_changes_skin_pixels(generator):
    light = AppearanceConfig(fitzpatrick_weights=(1, 0, 0, 0, 0, 0))
    dark = AppearanceConfig(fitzpatrick_weights=(0, 0, 0, 0, 0, 1))
    a = sample_appearance(np.random.default_rng(1), light, 30.0)
    b = dataclasses.replace(sample_appearance(np.random.default_rng(2), dark, 70.0), clothing_cut=a.clothing_cut)
    pa, pb = (_frontal(generator, 0, x) for x in (a, b))
    # The camera's face metering off: it narrows the gap between skin tones on purpose.
    pa, pb = (dataclasses.replace(p, lighting=dataclasses.replace(p.lighting, face_exposure=0.0)) for p in (pa, pb))
    sa, sb = generator._render_once(pa), generator._render_once(pb)
    assert np.array_equal(sa.mask, sb.mask)
    skin = sa.mask == SegClass.SKIN
    assert skin.sum() > 500
    diff = np.abs(sa.rgb[skin].astype(float).mean(axis=0) - sb.rgb[skin].astype(float).mean(axis=0))
    assert diff.max() > 40.0, diff


def test_rendered_skin_tones_keep_their_order_and_the_colour_of_skin(generator):
    """Six types on one face, under the studio map with the camera's white balance fully on and
    its face metering off: the rendered skin's typology angle falls type by type, its hue stays
    that of skin, and even type I keeps a skin's chroma rather than reading as grey plaster."""
    base = sample_appearance(np.random.default_rng(1), AppearanceConfig(), 30.0)
    plain = dict(redness=0.0, flush=0.0, mottling=0.0, freckles=0.0, moles=0.0, blemishes=0.0)
    seen = []
    for ftype in range(1, 7):
        a = dataclasses.replace(base, fitzpatrick=float(ftype), skin_rgb=tuple(skin_albedo(ftype)), **plain)
        p = _frontal(generator, 0, a)
        light = dataclasses.replace(p.lighting, hdri="studio.exr", backdrop=None, extra_light=None, strength=1.0,
                                    tint_rgb=(1.0, 1.0, 1.0), face_exposure=0.0, white_balance=1.0)
        s = generator._render_once(dataclasses.replace(p, lighting=light))
        skin = s.mask == SegClass.SKIN
        assert skin.sum() > 500
        srgb = s.rgb[skin].astype(float).mean(axis=0) / 255.0
        seen.append(np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4))
    lab = linear_rgb_to_lab(np.array(seen))
    ita = individual_typology_angle(np.array(seen))
    assert (np.diff(ita) < -5.0).all(), ita
    assert ita[0] - ita[-1] > 90.0, ita
    hue = np.degrees(np.arctan2(lab[:, 2], lab[:, 1]))
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    assert ((hue > 40.0) & (hue < 70.0)).all(), hue
    assert chroma.min() > 7.5, chroma


def test_rendered_lips_are_redder_than_the_skin_round_them_not_painted(generator):
    """A close frontal face with a closed, unpainted mouth under the studio map, denoised, for the
    fairest and the darkest skin. Against the skin round them the lips' pixels are redder in hue,
    below twice its chroma (the lips made as a fixed multiple of the skin rendered at 2.7 times
    it on type I), darker on type I, and within a few L* of it on type VI (those lips were 15
    darker)."""
    base = sample_appearance(np.random.default_rng(1), AppearanceConfig(), 30.0)
    plain = dict(redness=0.0, flush=0.0, mottling=0.0, freckles=0.0, moles=0.0, blemishes=0.0,
                 makeup={name: 0.0 for name in MAKEUP})
    for ftype in (1, 6):
        skin_rgb = skin_albedo(ftype)
        lip_rgb = lip_albedo(skin_rgb, (6.0 - ftype) / 5.0, 0.2, (0.5, 0.5, 0.5))
        a = dataclasses.replace(base, fitzpatrick=float(ftype), skin_rgb=tuple(skin_rgb),
                                lip_rgb=tuple(lip_rgb), **plain)
        p = _frontal(generator, 0, a)
        light = dataclasses.replace(p.lighting, hdri="studio.exr", backdrop=None, extra_light=None, strength=1.0,
                                    tint_rgb=(1.0, 1.0, 1.0), face_exposure=0.0, white_balance=1.0)
        p = dataclasses.replace(p, lighting=light, expression=ExpressionParams({}, 0.0, 0.0),
                                camera=dataclasses.replace(p.camera, face_fraction=0.9))
        generator.set_quality("preview")
        try:
            s = generator._render_once(p)
        finally:
            generator.set_quality("test")
        lips = np.isin(s.mask, [SegClass.TOP_LIP, SegClass.BOTTOM_LIP])
        inner = ndimage.binary_erosion(lips)
        ring = (ndimage.binary_dilation(lips, iterations=8) & ~ndimage.binary_dilation(lips, iterations=3)
                & (s.mask == SegClass.SKIN))
        assert inner.sum() > 150 and ring.sum() > 300, (inner.sum(), ring.sum())
        srgb = np.array([np.median(s.rgb[m].astype(float), axis=0) for m in (ring, inner)]) / 255.0
        lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        (skin_l, skin_c, skin_h), (lip_l, lip_c, lip_h) = (_lch(x) for x in linear_rgb_to_lab(lin))
        assert lip_h < skin_h - 10.0, (ftype, skin_h, lip_h)
        assert 0.8 < lip_c / skin_c < 2.0, (ftype, skin_c, lip_c)
        if ftype == 1:
            assert lip_l < skin_l - 3.0, (skin_l, lip_l)
        else:
            assert abs(lip_l - skin_l) < 8.0, (skin_l, lip_l)


def test_the_skin_highlight_is_stippled_not_one_smooth_lobe(generator, monkeypatch):
    """An oily type-VI face (the skin whose highlight shows most) under the studio map's ring
    light at head height (untilted: lighting.LIGHT_TILT_DEG would light it from above, and the
    shading from brow to chin would then swamp the highlight's measure), at 320 px and the preview quality's denoiser, with the stipple off and on. What the
    stipple changes is fine texture in the highlight: the high-pass of the difference is above
    1.2 grey levels in the brightest fifth of the skin and more than twice what it is in the
    darkest two fifths, which the specular barely reaches (1.9 and 0.8 on this code), and more
    than half the mean change there (0.63 of it; noise blotches 17 mm across give less); the
    skin as a whole is no brighter or darker (mean within 1 %).

    The face has the smoothest skin sampled (appearance.SKIN_ROUGHNESS) and oiliness 1, and it
    still sheens rather than shines like lacquer: with the stipple on, the skin's 99th
    percentile of luminance is under 2.3 times its median (2.0 here; 2.55 when skin was drawn
    from roughness 0.36 with a floor of 0.28, a wet look)."""
    base = sample_appearance(np.random.default_rng(1), AppearanceConfig(), 30.0)
    oily = dataclasses.replace(base, fitzpatrick=6.0, skin_rgb=tuple(skin_albedo(6.0)), mottling=0.0,
                               freckles=0.0, moles=0.0, blemishes=0.0, oiliness=1.0,
                               roughness=SKIN_ROUGHNESS[0],
                               makeup={name: 0.0 for name in MAKEUP})
    renders, side = [], generator.resolution
    monkeypatch.setitem(lighting.LIGHT_TILT_DEG, "studio.exr", 0.0)
    generator.set_quality("preview", 320)
    try:
        for stipple in (0.0, 1.0):
            p = _frontal(generator, 0, dataclasses.replace(oily, sheen_stipple=stipple))
            light = dataclasses.replace(p.lighting, hdri="studio.exr", backdrop=None, extra_light=None,
                                        strength=1.0, tint_rgb=(1.0, 1.0, 1.0), face_exposure=0.0,
                                        white_balance=1.0)
            p = dataclasses.replace(p, lighting=light, expression=ExpressionParams({}, 0.0, 0.0),
                                    camera=dataclasses.replace(p.camera, face_fraction=0.9))
            renders.append(generator._render_once(p))
    finally:
        generator.set_quality("test", side)
    smooth, stippled = renders
    assert np.array_equal(smooth.mask, stippled.mask)
    skin = ndimage.binary_erosion(smooth.mask == SegClass.SKIN, iterations=2)
    assert skin.sum() > 10000, skin.sum()
    lum0, lum1 = (s.rgb.astype(float).mean(axis=2) for s in renders)
    diff = lum1 - lum0
    fine = np.abs(diff - ndimage.gaussian_filter(diff, 2.0))
    bright = skin & (lum0 > np.percentile(lum0[skin], 80))
    dark = skin & (lum0 < np.percentile(lum0[skin], 40))
    assert fine[bright].mean() > 1.2, fine[bright].mean()
    assert fine[bright].mean() > 2.0 * fine[dark].mean(), (fine[bright].mean(), fine[dark].mean())
    # Fine: most of the change is in the high-pass, not blotches a centimetre across.
    assert fine[bright].mean() > 0.5 * np.abs(diff[bright]).mean(), (fine[bright].mean(), np.abs(diff[bright]).mean())
    assert abs(lum1[skin].mean() / lum0[skin].mean() - 1.0) < 0.01, (lum0[skin].mean(), lum1[skin].mean())
    sheen = np.percentile(lum1[skin], 99) / np.median(lum1[skin])
    assert sheen < 2.3, sheen


def test_a_shaved_beard_shadows_chin_and_jaw_and_leaves_lips_and_forehead(generator):
    """A close frontal man with type-II skin and dark beard hairs, shaved: at beard_shadow 1 the
    skin between lower lip and chin renders darker than at 0, the forehead and lips as before."""
    from replicantface.appearance import beard_shadow_rgb
    from replicantface.hair import melanin_rgb

    base = sample_appearance(np.random.default_rng(1), AppearanceConfig(), 30.0, gender=0.9)
    plain = dataclasses.replace(base, fitzpatrick=2.0, skin_rgb=tuple(skin_albedo(2.0)), mottling=0.0,
                                freckles=0.0, moles=0.0, blemishes=0.0, makeup={name: 0.0 for name in MAKEUP},
                                beard_shadow_rgb=beard_shadow_rgb(melanin_rgb(0.9, 0.1)))
    renders = []
    for amount in (0.0, 1.0):
        p = _frontal(generator, 0, dataclasses.replace(plain, beard_shadow=amount))
        p = dataclasses.replace(p, expression=ExpressionParams({}, 0.0, 0.0),
                                camera=dataclasses.replace(p.camera, face_fraction=0.9))
        renders.append(generator._render_once(p))
    bare, shaved = renders
    assert np.array_equal(bare.mask, shaved.mask)
    lm = bare.labels["landmarks_2d"]
    yy, xx = np.mgrid[: bare.mask.shape[0], : bare.mask.shape[1]]
    half = 0.25 * (lm[16, 0] - lm[0, 0])
    skin = bare.mask == SegClass.SKIN
    chin = skin & (yy > lm[57, 1] + 2) & (yy < lm[8, 1] - 1) & (np.abs(xx - lm[8, 0]) < half)
    forehead = skin & (yy < lm[[19, 24], 1].min() - 3) & (np.abs(xx - lm[27, 0]) < half)
    lips = np.isin(bare.mask, [SegClass.TOP_LIP, SegClass.BOTTOM_LIP])
    assert chin.sum() > 40 and forehead.sum() > 40 and lips.sum() > 40, (chin.sum(), forehead.sum(), lips.sum())

    def ratio(region):
        return shaved.rgb[region].astype(float).mean() / bare.rgb[region].astype(float).mean()

    assert ratio(chin) < 0.95, ratio(chin)
    assert ratio(forehead) > 0.995 and ratio(lips) > 0.98, (ratio(forehead), ratio(lips))


def test_every_cut_renders_clothing_below_the_jaw(generator):
    base = sample_appearance(np.random.default_rng(3), AppearanceConfig(), 40.0)
    for cut in CLOTHING_CUTS:
        s = generator._render_once(_frontal(generator, 1, dataclasses.replace(base, clothing_cut=cut)))
        cloth = s.mask == SegClass.CLOTHING
        assert cloth.sum() > 200, cut
        lm = s.labels["landmarks_2d"]
        rows, cols = np.nonzero(cloth)
        assert rows.min() > lm[[4, 12], 1].min(), cut
        face = PolyPath(np.vstack([lm[0:17], lm[26:16:-1]]))
        assert not face.contains_points(np.c_[cols + 0.5, rows + 0.5]).any(), cut
        assert not np.isin(s.mask[cloth], [int(c) for c in HEAD_CLASSES]).any()
    necks = {}
    for cut in ("v_neck", "turtleneck"):
        s = generator._render_once(_frontal(generator, 1, dataclasses.replace(base, clothing_cut=cut)))
        necks[cut] = int((s.mask == SegClass.NECK).sum())
    assert necks["turtleneck"] < necks["v_neck"]


def test_apply_appearance_only_sets_values(generator):
    """Per sample, appearance changes node values and face materials, never the data blocks."""
    import bpy

    from replicantface import scene

    params = _draw(6, seed=9)
    scene.apply_appearance(generator.handles, params[0])
    before = (len(bpy.data.materials), len(bpy.data.node_groups), len(bpy.data.images))
    for p in params[1:]:
        scene.apply_appearance(generator.handles, p)
    assert (len(bpy.data.materials), len(bpy.data.node_groups), len(bpy.data.images)) == before


def test_brow_band_and_lash_lines_darken_brows_and_lid_margins(generator):
    """Turning the brow band or the natural lash lines on darkens pixels at the brows or along
    the lid margins, as the landmarks place them in the rendered image, and nowhere else."""
    base = sample_appearance(np.random.default_rng(4), AppearanceConfig(fitzpatrick_weights=(0, 0, 1, 0, 0, 0)), 30.0)
    base = dataclasses.replace(base, makeup={name: 0.0 for name in MAKEUP}, brow_rgb=(0.01, 0.008, 0.006),
                               brow_darkening=0.0, lash_line=0.0, under_eye_dark=0.0)

    def render(**changes):
        p = _frontal(generator, 2, dataclasses.replace(base, **changes))
        p = dataclasses.replace(p, camera=dataclasses.replace(p.camera, face_fraction=0.9))
        s = generator._render_once(p)
        return s.rgb.astype(float).mean(axis=2), s.labels["landmarks_2d"]

    plain, lm = render()
    brow, _ = render(brow_darkening=1.0)
    lash, _ = render(lash_line=1.0)
    eye_w = np.linalg.norm(lm[39] - lm[36])
    for changed, name in ((plain - brow > 12.0, "brow"), (plain - lash > 12.0, "lash")):
        rows, cols = np.nonzero(changed)
        assert len(rows) > 15, name
        pts = np.c_[cols + 0.5, rows + 0.5]
        if name == "brow":
            ref = np.vstack([lm[17:27], lm[17:27] - [0.0, 0.25 * eye_w]])  # the brow's lower half and above
        else:
            ref = lm[36:48]
        d = np.linalg.norm(pts[:, None] - ref[None], axis=2).min(axis=1)
        assert np.quantile(d, 0.9) < 0.35 * eye_w, (name, np.quantile(d, 0.9), eye_w)
        # Both sides of the face.
        mid = lm[27, 0]
        assert (pts[:, 0] < mid).sum() > 5 and (pts[:, 0] > mid).sum() > 5, name
    # The brow band sits above the upper lids, the lash lines at the eyes.
    assert np.nonzero(plain - brow > 12.0)[0].mean() < lm[[37, 38, 43, 44], 1].min()
    assert abs(np.nonzero(plain - lash > 12.0)[0].mean() - lm[36:48, 1].mean()) < 0.3 * eye_w


def test_skin_round_the_eyes_is_darker_above_and_below(generator):
    """``under_eye_dark`` darkens the skin below the lower lids and the upper lids up to the
    brows, on both sides, as the landmarks place them in the rendered image, and not the
    forehead, nose tip or cheeks further out."""
    base = sample_appearance(np.random.default_rng(4), AppearanceConfig(fitzpatrick_weights=(0, 0, 1, 0, 0, 0)), 30.0)
    base = dataclasses.replace(base, makeup={name: 0.0 for name in MAKEUP}, under_eye_dark=0.0)

    def render(amount):
        p = _frontal(generator, 2, dataclasses.replace(base, under_eye_dark=amount))
        p = dataclasses.replace(p, camera=dataclasses.replace(p.camera, face_fraction=0.9))
        s = generator._render_once(p)
        return s.rgb.astype(float).mean(axis=2), s.labels["landmarks_2d"]

    plain, lm = render(0.0)
    dark, _ = render(1.0)
    rows, cols = np.nonzero(plain - dark > 8.0)
    pts = np.c_[cols + 0.5, rows + 0.5]
    eye_w = np.linalg.norm(lm[39] - lm[36])
    centres = np.array([lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)])
    near = np.linalg.norm(pts[:, None] - centres[None], axis=2).min(axis=1)
    assert len(pts) > 40 and np.quantile(near, 0.95) < 1.3 * eye_w, (len(pts), np.quantile(near, 0.95), eye_w)
    mid = lm[27, 0]
    lid_top = lm[[37, 38, 43, 44], 1].min()
    lid_bottom = lm[[40, 41, 46, 47], 1].max()
    for side in (pts[:, 0] < mid, pts[:, 0] > mid):
        assert (side & (pts[:, 1] < lid_top)).sum() > 10, "upper lids"
        assert (side & (pts[:, 1] > lid_bottom)).sum() > 10, "under the eyes"
    # Nothing at the nose tip or the mouth.
    assert not (pts[:, 1] > lm[33, 1]).any()


def test_shell_templates_cut_smoothly_along_the_neckline(human):
    verts = human.neutral.vertices
    body = regions.top_region(human)
    cuts = regions.clothing_cuts(human, verts)
    fields = regions.neckline_fields(human, verts)
    assert list(fields) == list(CLOTHING_CUTS)
    normals = labels.vertex_normals(verts, human.faces)
    for cut in CLOTHING_CUTS:
        f = fields[cut]
        loose = regions.loose_weights(human, verts, f)
        # The field is the line clothing_cuts uses face by face.
        assert np.array_equal((f[human.faces] < 0).all(axis=1) & body, cuts[cut] & body), cut
        tpl = regions.shell_template(human.faces, f, body)
        on_shell = regions.shell_points(tpl, f)
        assert on_shell.max() <= 1e-8, cut  # nothing above the neckline
        edge = tpl.i != tpl.j
        assert edge.sum() > 40 and np.abs(on_shell[edge]).max() < 1e-8, cut  # new points on the line
        # Whole faces under the line are kept whole; the shell faces keep the body's winding.
        whole = (tpl.i[tpl.faces] == tpl.j[tpl.faces]).all(axis=1)
        assert whole.sum() == (cuts[cut] & body).sum(), cut
        p = regions.shell_points(tpl, verts)
        tri = p[tpl.faces]
        fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        big = np.linalg.norm(fn, axis=1) > 1e-9
        n = regions.shell_points(tpl, normals)[tpl.faces].mean(axis=1)
        assert ((fn[big] * n[big]).sum(axis=1) > 0).mean() > 0.99, cut
        # No cracks: every edge of the shell is shared by two faces except along its rim.
        e = np.sort(tpl.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        _, count = np.unique(e, axis=0, return_counts=True)
        assert count.max() == 2, cut
        # The shell sits SHELL_OFFSET_M off the skin plus the ease below the shoulders, except
        # a turtleneck's collar (below).
        offsets = regions.shell_offsets(human, verts, fields)[cut]
        off = np.linalg.norm(regions.shell_vertices(
            regions.shell_template(human.faces, f, body, offsets), verts, human.faces) - p, axis=1)
        plain = regions.SHELL_OFFSET_M + regions.TOP_EASE_M * regions.shell_points(tpl, loose)
        if cut != "turtleneck":
            assert np.allclose(off, plain), cut
            assert off[edge].max() < regions.SHELL_OFFSET_M + 0.001, cut  # the neckline rests on the skin
            continue
        # The collar stands off the neck, most at its rim; the body below the crew's collar line
        # keeps the plain offset.
        torso = (tpl.i == tpl.j) & (fields["crew"][tpl.i] < 0.0)
        assert np.allclose(off[torso], plain[torso])
        assert off.min() >= regions.SHELL_OFFSET_M - 1e-9
        rim_lift = regions.SHELL_OFFSET_M + regions.TURTLENECK_LIFT_M + regions.TURTLENECK_RIM_LIFT_M
        assert np.allclose(off[edge], rim_lift, atol=5e-4), (off[edge].min(), off[edge].max())


def _grid_surface(height, half=0.15, n=31):
    """A triangulated height field z = height(x, y) over a square of side 2 * half (metres)."""
    x, y = np.meshgrid(np.linspace(-half, half, n), np.linspace(-half, half, n))
    verts = np.c_[x.ravel(), y.ravel(), height(x.ravel(), y.ravel())]
    k = np.arange(n * n).reshape(n, n)[:-1, :-1].ravel()
    faces = np.r_[np.c_[k, k + 1, k + n + 1], np.c_[k, k + n + 1, k + n]]
    return verts, faces


def test_a_loose_top_bridges_hollows_and_rests_on_rises():
    """Two rounded rises 10 cm apart, like a chest: the cloth lifts over the hollow between them
    but not over their tops, and not at all where the drape weight is 0."""
    def chest(x, y):
        bump = lambda cx: 0.03 * np.exp(-((x - cx) ** 2 + y ** 2) / 0.04 ** 2)  # noqa: E731
        return bump(-0.05) + bump(0.05)

    verts, faces = _grid_surface(chest)
    normals = labels.vertex_normals(verts, faces)
    assert (normals[:, 2] > 0).all()
    every = np.ones(len(faces), dtype=bool)
    field = -np.ones(len(verts))

    def heights(weight):
        tpl = regions.shell_template(faces, field, every, drape=np.full(len(verts), weight))
        lifted = regions.shell_vertices(tpl, verts, faces)
        plain = regions.shell_points(tpl, verts) + regions.SHELL_OFFSET_M * regions.shell_points(tpl, normals)
        return np.einsum("ij,ij->i", lifted - plain, regions.shell_points(tpl, normals)), regions.shell_points(tpl, verts)

    h, p = heights(1.0)
    between = np.argmin(np.linalg.norm(p[:, :2], axis=1))
    tops = np.argsort(np.linalg.norm(np.abs(p[:, :2]) - [0.05, 0.0], axis=1))[:2]
    assert h[between] > 0.002, h[between]  # bridged
    assert h[tops].max() < 0.0005, h[tops]  # resting on the rises
    assert h.min() >= 0.0 and h.max() <= regions.TOP_DRAPE_MAX_M + 1e-12
    assert p[between, 2] + h[between] < p[tops, 2].min()  # never above the rises' tops
    assert np.abs(heights(0.0)[0]).max() < 1e-12


def test_a_top_hangs_loose_below_the_shoulders_only(human):
    """On the body, a V-neck: the drape weight is 0 at the neckline and the shoulder tops and 1
    lower down; a woman's top bridges the hollow between the breasts, a man's lifts less there."""
    neutral = human.neutral.vertices
    field = regions.neckline_fields(human, neutral)["v_neck"]
    loose = regions.loose_weights(human, neutral, field)
    neck_z = human.neutral.bone_poses["neck01"][2, 3]
    shoulder = human.neutral.bone_poses["shoulder01.L"][:3, 3]
    near = np.linalg.norm(neutral - shoulder, axis=1) < 0.06
    assert loose[near & (neutral[:, 2] > shoulder[2])].max() == 0.0  # the top rests on the shoulder
    assert loose[neutral[:, 2] > neck_z - regions.TOP_LOOSE_BELOW_NECK_M].max() == 0.0
    low = neutral[:, 2] < neck_z - regions.TOP_LOOSE_BELOW_NECK_M - regions.TOP_LOOSE_FADE_M
    assert loose[low & (field < -regions.TOP_NECKLINE_REST_M)].min() == 1.0
    assert loose[field >= 0.0].max() == 0.0
    body = regions.top_region(human)
    tpl = regions.shell_template(human.faces, field, body, drape=loose)
    lift = {}
    for gender in (0.0, 1.0):
        verts = human.evaluate(phenotypes=dict(gender=gender, age=0.5, muscle=0.5, weight=0.7,
                                               height=0.5, proportions=0.5)).vertices
        normals = regions.shell_points(tpl, labels.vertex_normals(verts, human.faces))
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        p = regions.shell_points(tpl, verts)
        h = regions.drape_heights(p, normals, tpl.neighbours, tpl.drape)
        chin_z = verts[human.landmark_indices[8], 2]
        sternum = (np.abs(p[:, 0]) < 0.02) & (normals[:, 1] < -0.5) & (p[:, 2] < chin_z - 0.15) \
            & (p[:, 2] > chin_z - 0.3)
        lift[gender] = h[sternum].max()
        assert h[tpl.i != tpl.j].max() < 0.002  # the neckline stays on the skin
    assert lift[0.0] > 0.004 and lift[1.0] < 0.6 * lift[0.0], lift


def test_neckline_is_smooth_and_the_mask_follows_the_cloth(generator):
    """Against pixels: with a green top, CLOTHING pixels are green and bare neck pixels are not,
    right up to the edge; the bare neck is narrower than the shoulders; and the shell's edge row
    varies smoothly across the neckline, where the body's own faces step."""
    base = sample_appearance(np.random.default_rng(5), AppearanceConfig(fitzpatrick_weights=(0, 1, 0, 0, 0, 0)), 30.0)
    green = dataclasses.replace(base, clothing_rgb=(0.02, 0.5, 0.03), clothing_rgb2=(0.02, 0.5, 0.03),
                                clothing_pattern="solid")
    top = generator.handles.extras["top"]["object"]
    for cut in CLOTHING_CUTS:
        p = _frontal(generator, 3, dataclasses.replace(green, clothing_cut=cut))
        p = dataclasses.replace(p, camera=dataclasses.replace(p.camera, shift_y=-0.5, face_fraction=0.6))
        if cut == "turtleneck":  # a low camera sees the neck between the collar and the jaw
            p = dataclasses.replace(p, pose=dataclasses.replace(p.pose, camera_pitch_deg=20.0))
        # The camera's white balance off: under this sample's orange night light it lifts green
        # and blue, and the colour key below tells cloth from skin by green over red.
        p = dataclasses.replace(p, lighting=dataclasses.replace(p.lighting, white_balance=0.0))
        s = generator._render_once(p)
        rgb = s.rgb.astype(float)
        greenish = rgb[..., 1] > rgb[..., 0] + 20
        cloth, neck = s.mask == SegClass.CLOTHING, s.mask == SegClass.NECK
        # Pixels on the edge mix both colours (the mask takes a pixel's centre); under a
        # turtleneck's chin the skin also catches some green light bounced off the cloth.
        bare_neck, inner_cloth = ndimage.binary_erosion(neck), ndimage.binary_erosion(cloth)
        assert inner_cloth.sum() > 300 and bare_neck.sum() > 100, cut
        assert greenish[inner_cloth].mean() > 0.95 and greenish[bare_neck].mean() < 0.1, (
            cut, greenish[inner_cloth].mean(), greenish[bare_neck].mean())
        # The neck hole is narrower than the shoulders: the top covers the shoulder tops.
        span = {name: np.ptp(np.quantile(np.flatnonzero(m.any(axis=0)), [0.01, 0.99]))
                for name, m in (("neck", neck), ("cloth", cloth))}
        assert span["neck"] < 0.55 * span["cloth"], (cut, span)
        # Roughness of the neckline: the first CLOTHING row in each column across the middle of
        # the neck (its shoulder ends are steep anyway); mean |second difference| in pixels.
        cols = np.flatnonzero(neck.any(axis=0))
        cols = np.arange(*np.quantile(cols, [0.15, 0.85]).astype(int))

        def roughness(mask, cols=cols, cut=cut):
            rows = np.array([np.argmax(mask[:, c]) for c in cols], dtype=float)
            d1 = np.diff(rows)
            d2 = np.abs(np.diff(d1))
            if cut == "collared":  # leave out the front opening's steep sides
                d2 = d2[(np.abs(d1[:-1]) <= 4) & (np.abs(d1[1:]) <= 4)]
            return d2.mean()

        top.hide_render = True  # the body's own faces alone
        bare = generator._scene.render(generator.handles)
        top.hide_render = False
        smooth, stepped = roughness(cloth), roughness(bare.seg == SegClass.CLOTHING)
        assert smooth < 1.0, (cut, smooth)
        # The crew line runs along the mesh's edge loops and steps little; the collar's steps
        # are as steep as its opening's sides, which the measure leaves out.
        if cut not in ("crew", "collared"):
            assert smooth < 0.6 * stepped, (cut, smooth, stepped)


def _pit_mesh(depth: float, half: float = 0.002, size: float = 0.03, n: int = 31):
    """A flat square (z = 0, facing +z) with a square shaft ``2 * half`` wide and ``depth``
    deep at its centre: grid vertices inside the shaft's mouth are sunk to its floor."""
    xs = np.linspace(-size, size, n)
    gx, gy = np.meshgrid(xs, xs)
    verts = np.c_[gx.ravel(), gy.ravel(), np.zeros(n * n)]
    inside = (np.abs(verts[:, 0]) < half + 1e-9) & (np.abs(verts[:, 1]) < half + 1e-9)
    verts[inside, 2] = -depth
    faces = []
    for r in range(n - 1):
        for c in range(n - 1):
            a, b, d, e = r * n + c, r * n + c + 1, (r + 1) * n + c, (r + 1) * n + c + 1
            faces += [(a, b, e), (a, e, d)]
    return verts, np.array(faces), inside


def test_cavity_openness_is_low_down_a_shaft_and_one_on_open_skin():
    """The baked openness: 1 on a flat open surface, low at the floor of a deep narrow shaft
    (a nostril), and higher at the floor of a shallow one."""
    from replicantface.scene import cavity_openness, hemisphere_directions

    d = hemisphere_directions(48)
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0) and (d[:, 2] > 0).all()
    # Cosine density: the mean height over the hemisphere is 2/3.
    assert abs(d[:, 2].mean() - 2.0 / 3.0) < 0.02
    for depth, floor_max in ((0.012, 0.35), (0.001, 1.0)):
        verts, faces, inside = _pit_mesh(depth)
        which = np.arange(len(verts))
        o = cavity_openness(verts, faces, which)
        far = np.linalg.norm(verts[:, :2], axis=1) > 0.02
        assert np.allclose(o[far], 1.0)
        floor = o[inside]
        assert floor.max() <= floor_max, (depth, floor)
    deep = cavity_openness(*_pit_mesh(0.012)[:2], np.flatnonzero(_pit_mesh(0.012)[2]))
    shallow = cavity_openness(*_pit_mesh(0.003)[:2], np.flatnonzero(_pit_mesh(0.003)[2]))
    assert shallow.mean() > deep.mean() + 0.2


def _cavity_renders(generator, pose_change: dict):
    """A bald face (Fitzpatrick III, no makeup) with ``pose_change`` applied, rendered with the
    baked openness and with every vertex marked open; returns (shaded, open_all, baked)."""
    import bpy

    base = sample_appearance(np.random.default_rng(4), AppearanceConfig(fitzpatrick_weights=(0, 0, 1, 0, 0, 0)), 30.0)
    p = _frontal(generator, 2, dataclasses.replace(base, makeup={name: 0.0 for name in MAKEUP}))
    p = dataclasses.replace(p, pose=dataclasses.replace(p.pose, **pose_change),
                            camera=dataclasses.replace(p.camera, face_fraction=0.9))
    shaded = generator._render_once(p)
    attr = bpy.data.objects["rf_human"].data.attributes["rf_open"]
    baked = np.empty(len(attr.data), dtype=np.float32)
    attr.data.foreach_get("value", baked)
    try:
        attr.data.foreach_set("value", np.ones_like(baked))
        open_all = generator._render_once(p)
    finally:
        attr.data.foreach_set("value", baked)
    return shaded, open_all, baked


def test_cavities_darken_nostrils_seen_from_below(generator):
    """With the baked openness the nostrils, seen from below, go dark in the rendered image;
    with every vertex marked open they do not. The darkened pixels lie at the nose's base, the
    eyes, the mouth's corners and the ears, not on the forehead or cheeks."""
    with_cavities, open_all, baked = _cavity_renders(generator, {"head_pitch_deg": 35.0})
    assert (baked < 0.6).sum() > 50 and np.median(baked) == 1.0
    assert np.array_equal(with_cavities.mask, open_all.mask)
    lm = with_cavities.labels["landmarks_2d"]
    dark = open_all.rgb.astype(float).mean(axis=2) - with_cavities.rgb.astype(float).mean(axis=2) > 12.0
    rows, cols = np.nonzero(dark)
    pts = np.c_[cols + 0.5, rows + 0.5]
    eye_w = np.linalg.norm(lm[39] - lm[36])
    nostrils = np.linalg.norm(pts[:, None] - lm[31:36][None], axis=2).min(axis=1) < 0.4 * eye_w
    assert nostrils.sum() >= 4, nostrils.sum()
    mask = with_cavities.mask
    ears = np.isin(mask[rows, cols], [SegClass.RIGHT_EAR, SegClass.LEFT_EAR])
    # Nowhere on the open skin: not above the brows, not on the cheeks between eye and jaw.
    features = np.vstack([lm[31:36], lm[36:48], lm[[48, 54, 60, 64]]])
    near_feature = np.linalg.norm(pts[:, None] - features[None], axis=2).min(axis=1) < 0.6 * eye_w
    assert (near_feature | ears).mean() > 0.9, (near_feature | ears).mean()
    assert not (pts[:, 1] < lm[17:27, 1].min()).any()


def test_cavities_darken_the_ear_canal_not_the_bowl_of_the_ear(generator):
    """In profile, the cavity shading darkens a small patch of the ear (the canal) and leaves
    most of its skin alone: the folds of the ear are shaded by their own geometry."""
    from replicantface.scene import CAVITY_OPEN_DARK, ear_canal_openness

    assert np.allclose(ear_canal_openness(np.array([0.0, 0.3, 0.4, 0.5, 0.9])),
                       [CAVITY_OPEN_DARK, CAVITY_OPEN_DARK, 0.5 * (1 + CAVITY_OPEN_DARK), 1.0, 1.0])
    shaded, open_all, _ = _cavity_renders(generator, {"head_yaw_deg": 75.0})
    ears = np.isin(shaded.mask, [SegClass.RIGHT_EAR, SegClass.LEFT_EAR])
    assert ears.sum() > 80, ears.sum()
    drop = open_all.rgb.astype(float).mean(axis=2) - shaded.rgb.astype(float).mean(axis=2)
    dark = ears & (drop > 12.0)
    assert dark.sum() >= 2, dark.sum()
    assert dark.sum() < 0.1 * ears.sum(), (dark.sum(), ears.sum())


def test_eyeballs_darken_under_the_lids(generator):
    """The eyeball's ambient occlusion darkens eye pixels next to the lids (the rim of the eye
    classes in the mask) more than the middle of the open eye, and leaves the skin alone."""
    import bpy

    from replicantface.scene import EYE_AO_DARK

    base = sample_appearance(np.random.default_rng(4), AppearanceConfig(fitzpatrick_weights=(0, 0, 1, 0, 0, 0)), 30.0)
    p = _frontal(generator, 2, dataclasses.replace(base, makeup={name: 0.0 for name in MAKEUP}))
    p = dataclasses.replace(p, camera=dataclasses.replace(p.camera, face_fraction=1.2),
                            expression=dataclasses.replace(p.expression, weights={}, gaze_yaw_deg=0.0,
                                                           gaze_pitch_deg=0.0))
    shaded = generator._render_once(p)
    ranges = [m.node_tree.nodes["rf_eye_ao"].inputs[0].links[0].from_node
              for m in bpy.data.materials if "rf_eye_ao" in m.node_tree.nodes]
    assert len(ranges) == 2
    try:
        for r in ranges:
            r.inputs["To Min"].default_value = 0.0
        plain = generator._render_once(p)
    finally:
        for r in ranges:
            r.inputs["To Min"].default_value = EYE_AO_DARK
    assert np.array_equal(shaded.mask, plain.mask)
    eyes = np.isin(shaded.mask, [SegClass.RIGHT_EYE, SegClass.LEFT_EYE])
    assert eyes.sum() > 60, eyes.sum()
    drop = plain.rgb.astype(float).mean(axis=2) - shaded.rgb.astype(float).mean(axis=2)
    rim = eyes & ~ndimage.binary_erosion(eyes)
    middle = ndimage.binary_erosion(eyes, iterations=2)
    assert middle.sum() > 10 and rim.sum() > 20
    assert drop[rim].mean() > 8.0 and drop[rim].mean() > drop[middle].mean() + 4.0, (drop[rim].mean(), drop[middle].mean())
    skin = shaded.mask == SegClass.SKIN
    assert np.abs(drop[skin]).mean() < 1.0
