"""Hair, beards, brows and lashes: sampling statistics, geometry, and rendered masks."""

import dataclasses
import json

import numpy as np
import pytest
from scipy.spatial import cKDTree

from replicantface import hair, labels
from replicantface.accessories import AccessoryParams
from replicantface.classes import SegClass
from replicantface.expression import ExpressionParams
from replicantface.pose import PoseParams


def _draws(n, age, gender, cfg=None, seed=0):
    cfg = cfg or hair.HairConfig()
    rng = np.random.default_rng(seed)
    return [hair.sample_hair(rng, cfg, age, gender) for _ in range(n)]


def test_sampling_is_deterministic_and_serialisable():
    a = hair.sample_hair(np.random.default_rng(5), hair.HairConfig(), 44.0, 0.7)
    b = hair.sample_hair(np.random.default_rng(5), hair.HairConfig(), 44.0, 0.7)
    assert a == b
    json.dumps(dataclasses.asdict(a))
    draws = _draws(3000, 40.0, 0.5)
    assert {d.style for d in draws} == set(hair.HAIRSTYLES)
    assert {d.brow_shape for d in draws} == set(hair.BROW_SHAPES)
    assert len(hair.HAIRSTYLES) >= 10 and len(hair.BEARDS) >= 5


def test_grey_rises_with_age_and_brows_grey_later():
    stats = {}
    for age in (22.0, 45.0, 70.0):
        draws = _draws(3000, age, 0.5)
        stats[age] = (np.mean([d.grey for d in draws]), np.mean([d.grey > 0 for d in draws]),
                      np.mean([d.brow_grey for d in draws]))
    assert stats[22.0][1] == 0.0
    assert stats[22.0][0] < stats[45.0][0] < stats[70.0][0]
    assert stats[45.0][1] < stats[70.0][1] and stats[70.0][1] > 0.6
    assert stats[70.0][2] < 0.5 * stats[70.0][0]


def test_beards_follow_gender_and_config():
    assert all(d.beard == "none" for d in _draws(1000, 40.0, 0.0))
    men = _draws(4000, 40.0, 1.0)
    share = np.mean([d.beard != "none" for d in men])
    assert abs(share - hair.HairConfig().beard_prob_male) < 0.03
    assert {d.beard for d in men} == set(hair.BEARDS)
    never = _draws(500, 40.0, 1.0, hair.HairConfig(beard_prob_male=0.0))
    assert all(d.beard == "none" for d in never)
    only_buzz = hair.HairConfig(style_weights=tuple(float(s == "buzz") for s in hair.HAIRSTYLES))
    assert {d.style for d in _draws(200, 30.0, 0.2, only_buzz)} == {"buzz"}
    with pytest.raises(ValueError, match="style_weights"):
        hair.HairConfig(style_weights=(1.0, 2.0))


@pytest.fixture(scope="module")
def tables(generator):
    return hair.HairTables.from_human(generator.human)


def _params(style="short", beard="none", seed=3, **changes):
    p = hair.sample_hair(np.random.default_rng(seed), hair.HairConfig(), 45.0, 1.0)
    length = {"none": 0.0, "stubble": 0.002, "moustache": 0.012, "goatee": 0.015, "chin_strap": 0.006,
              "full": 0.025}[beard]
    return dataclasses.replace(p, style=style, beard=beard, beard_length_m=length, **changes)


def _head_verts(generator, params):
    geo, _, _ = generator.pose_human(params)
    return geo, labels.transform_points(np.linalg.inv(geo.head_to_world), geo.vertices)


def test_strands_are_deterministic_fast_and_outside_the_skin(generator, tables):
    geo, verts = _head_verts(generator, generator.params(2, 0))
    tri = verts[tables.collision_faces]
    rng = np.random.default_rng(0)
    w = rng.dirichlet((1, 1, 1), size=(len(tri), 20))
    surface = np.einsum("fsk,fkd->fsd", w, tri).reshape(-1, 3)
    normal = np.repeat(hair._unit(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])), 20, axis=0)
    tree = cKDTree(surface)
    for style in hair.HAIRSTYLES[1:]:
        p = _params(style, "full")
        out = hair.hair_strands(p, verts, tables)
        again = hair.hair_strands(p, verts, tables)
        np.testing.assert_array_equal(out["hair"].points, again["hair"].points)
        for key in ("hair", "beard", "brow_r", "brow_l", "lash_r", "lash_l"):
            s = out[key]
            assert s.points.ndim == 3 and s.points.dtype == np.float32 and np.isfinite(s.points).all()
            assert s.radius_m.shape[-1] == s.points.shape[1]
        pts = out["hair"].points[:, 1:].reshape(-1, 3)
        d, i = tree.query(pts, distance_upper_bound=0.02)
        i = np.minimum(i, len(surface) - 1)
        signed = np.einsum("nd,nd->n", pts - surface[i], normal[i])
        assert np.mean((signed < -0.003) & (d < 0.02)) < 0.005, style  # deeper than 3 mm inside
        assert np.abs(pts).max() < 0.7


def test_hanging_hair_falls_toward_the_ground(generator, tables):
    """Tails and long hair hang along the world's down, not the head's: with the face turned up
    or the head tilted, the hanging part points (nearly) straight down in the world."""
    def tilt_from_down(params, style, down):
        geo, verts = _head_verts(generator, params)
        pts = hair.hair_strands(_params(style), verts, tables, down=down)["hair"].points.astype(float)
        k = pts.shape[1]
        hang = labels.transform_points(geo.head_to_world, pts[:, -1]) - \
            labels.transform_points(geo.head_to_world, pts[:, (2 * k) // 3])
        d = hang.mean(0) / np.linalg.norm(hang.mean(0))
        return np.degrees(np.arccos(-d[2]))  # angle from world -Z

    base = generator.params(2, 3)
    for style, pose in (("double_tail", (0.0, 40.0, 0.0)), ("ponytail", (0.0, 35.0, 0.0)),
                        ("long_straight", (0.0, 0.0, 30.0))):
        p = dataclasses.replace(base, pose=PoseParams(*pose, 0.0, 0.0))
        geo, _ = _head_verts(generator, p)
        world = tilt_from_down(p, style, hair.world_down_in_head(geo.head_to_world))
        head = tilt_from_down(p, style, hair.HEAD_DOWN)
        assert world < 20.0 and world < head - 10.0, (style, round(world, 1), round(head, 1))
    upright = dataclasses.replace(base, pose=PoseParams(0.0, 0.0, 0.0, 0.0, 0.0))
    np.testing.assert_allclose(hair.world_down_in_head(_head_verts(generator, upright)[0].head_to_world),
                               hair.HEAD_DOWN, atol=0.02)


def test_covered_hair_stays_under_the_headwear(generator, tables):
    _, verts = _head_verts(generator, generator.params(2, 1))
    cover = hair.HeadCover(plane_normal=(0.0, 0.94, 0.34), plane_offset=0.035, max_offset_m=0.006)
    scalp = verts[tables.scalp_verts]
    # Dense area-uniform points on the skin: distances to them bound distances to the skin.
    faces = tables.collision_faces
    f, b = hair._area_points(np.random.default_rng(0), verts, faces, np.arange(len(faces)), 400_000)
    tree = cKDTree(np.einsum("nk,nkd->nd", b, verts[faces[f]]))
    n = np.array(cover.plane_normal)
    for style in ("long_straight", "curly", "bun", "afro", "ponytail", "short"):
        pts = hair.hair_strands(_params(style), verts, tables, cover)["hair"].points.reshape(-1, 3)
        under = pts @ n > cover.plane_offset
        assert under.sum() > 1000, style
        dist = tree.query(pts[under], distance_upper_bound=0.05)[0]
        assert dist.max() < cover.max_offset_m + 0.0015, (style, dist.max())
        # Long hair keeps falling below the rim.
        if style == "long_straight":
            assert pts[:, 1].min() < scalp[:, 1].min() - 0.1


def test_brows_and_lashes_follow_the_expression(generator, tables):
    base = generator.params(2, 2)
    p = _params("bald")
    roots = {}
    for name, weights in (("neutral", {}), ("brow", {"browInnerUp": 1.0, "browOuterUpLeft": 1.0,
                                                     "browOuterUpRight": 1.0}),
                          ("blink", {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})):
        sp = dataclasses.replace(base, expression=ExpressionParams(weights, 0.0, 0.0))
        _, verts = _head_verts(generator, sp)
        out = hair.hair_strands(p, verts, tables)
        roots[name] = {k: out[k].points[:, 0] for k in ("brow_r", "brow_l", "lash_r", "lash_l")}
    for k in ("brow_r", "brow_l"):
        rise = roots["brow"][k][:, 1] - roots["neutral"][k][:, 1]
        assert rise.mean() > 0.002, (k, rise.mean())
    for k in ("lash_r", "lash_l"):
        upper = slice(0, 60)  # the upper-lid lashes come first
        drop = roots["neutral"][k][upper, 1] - roots["blink"][k][upper, 1]
        assert drop.mean() > 0.003, (k, drop.mean())


def _frontal(generator, index):
    params = generator.params(31, index)
    cam = dataclasses.replace(params.camera, shift_x=0.0, shift_y=0.0, use_dof=False)
    pose = PoseParams(0.0, 0.0, 0.0, 25.0 if index % 2 else -25.0, 0.0)
    return dataclasses.replace(params, pose=pose, camera=cam)


def _brow_mask_fit(mask, hairs, lm, eye_w):
    """How the mask's brow classes sit over the brow hairs found in the pixels: per side, the
    share of the hair pixels the side's class covers and the share of that class lying more
    than 0.15 eye widths from any hair pixel. Each class must stay on its own side of the face."""
    from scipy import ndimage

    mid = 0.5 * (lm[39, 0] + lm[42, 0])
    x = np.arange(mask.shape[1])[None, :]
    out = []
    for cls, side in ((SegClass.RIGHT_BROW, x < mid), (SegClass.LEFT_BROW, x >= mid)):
        own, labelled = hairs & side, mask == cls
        assert not (labelled & ~side).any(), (cls, "crosses the face's midline")
        near = ndimage.binary_dilation(own, iterations=max(1, round(0.15 * eye_w)))
        out.append((labelled[own].mean(), (labelled & ~near).sum() / labelled.sum()))
    return out


def test_brows_sit_where_the_ibug_mean_shape_puts_them(generator):
    """The brows' upper edge runs where the iBUG-68 mean shape puts the brow points relative to
    the rendered eye corners (``labels.IBUG_BROW_UW``): measured in the render, as the top of
    the pixels that darken when the brow hairs go from white to black, at the three middle
    points of each brow, it lies within 0.06 eye widths of them on average over the six shapes
    and within 0.2 for each shape (a straight brow's tail runs lower, a high arch's middle
    higher). Brows grown along the landmark vertices with the arch on top had their edge 0.15
    eye widths above on average. A long lens keeps perspective out of the comparison.

    The same hair pixels check the mask: each brow class covers its side's hairs and ends
    near them, so the skin band under the hairs (``regions``) follows the brow."""
    base = generator.params(31, 5)
    pose = PoseParams(0.0, 0.0, 0.0, 0.0, 0.0)
    cam = dataclasses.replace(base.camera, shift_x=0.0, shift_y=0.0, use_dof=False, face_fraction=1.9,
                              focal_mm=200.0)
    app = dataclasses.replace(base.appearance, brow_darkening=0.0)
    offsets, fits = [], []
    for k, shape in enumerate(hair.BROW_SHAPES):
        h = dataclasses.replace(_params("bald", seed=k), brow_shape=shape, brow_grey=0.0, brow_density=1.0)
        grey = []
        for melanin in (0.0, 1.0):
            p = dataclasses.replace(base, pose=pose, camera=cam, appearance=app, accessories=AccessoryParams(),
                                    expression=ExpressionParams({}, 0.0, 0.0),
                                    hair=dataclasses.replace(h, brow_melanin=melanin))
            s = generator._render_once(p)
            grey.append(s.rgb.astype(float).mean(axis=2))
        lm = s.labels["landmarks_2d"]
        eye_w = np.linalg.norm(lm[39] - lm[36])
        hairs = grey[0] - grey[1] > 50.0
        for covered, outside in _brow_mask_fit(s.mask, hairs, lm, eye_w):
            fits.append((covered, outside))
            assert covered > 0.85 and outside < 0.25, (shape, covered, outside)
        y = np.arange(len(hairs))
        up = np.c_[lm[:, 0], -lm[:, 1]]  # image y runs down
        for side in ("r", "l"):
            for gx, gy in (labels.brow_guide(up, side) * [1.0, -1.0])[1:4]:
                rows = np.flatnonzero(hairs[:, int(gx) - 1:int(gx) + 2].any(axis=1) & (np.abs(y - gy) < 0.5 * eye_w))
                assert len(rows), (shape, side, gx)
                offsets.append((rows.min() + 0.5 - gy) / eye_w)
                assert abs(offsets[-1]) < 0.2, (shape, side, offsets[-1])
    assert abs(np.mean(offsets)) < 0.06, np.mean(offsets)
    # The brow classes (the hairs and the skin band under them, ``regions``) cover the hairs
    # and end near them: on this code 0.95 covered and 0.07 outside on average; with the band
    # centred 5 mm lower than it belongs, 0.78 and 0.33.
    covered, outside = np.mean(fits, axis=0)
    assert covered > 0.88 and outside < 0.12, (covered, outside)


def test_every_style_and_beard_renders_its_class(generator, tables):
    from replicantface import scene_hair

    beards = hair.BEARDS[1:]
    try:
        for k, style in enumerate(hair.HAIRSTYLES):
            params = _frontal(generator, k)
            beard = beards[k % len(beards)] if k < 2 * len(beards) else "none"
            p = _params(style, beard, seed=k)
            # Through the generator's own path: the sample's hair is fitted and applied per render.
            params = dataclasses.replace(params, hair=p, accessories=AccessoryParams())
            mask = generator.render(params).mask
            hair_px = int((mask == SegClass.HAIR).sum())
            if style == "bald":
                assert hair_px == 0
            else:
                assert hair_px > 150, (style, hair_px)
            beard_px = int((mask == SegClass.BEARD).sum())
            if beard == "none":
                assert beard_px == 0, beard_px
            else:
                need = {"stubble": 5, "moustache": 25}.get(beard, 60)
                assert beard_px > need, (beard, beard_px)
            assert (mask == SegClass.RIGHT_BROW).sum() > 10 and (mask == SegClass.LEFT_BROW).sum() > 10
    finally:
        scene_hair.hide_hair(generator.handles)


def test_a_shaved_scalp_shows_a_faint_shadow_that_keeps_it_skin(generator, tables):
    _, verts = _head_verts(generator, generator.params(2, 3))
    caps = {}
    for name, melanin, grey in (("dark", 0.95, 0.0), ("fair", 0.3, 0.0), ("grey", 0.95, 1.0)):
        out = hair.hair_strands(_params("bald", melanin=melanin, grey=grey), verts, tables)
        assert "hair" not in out and "hair_cap" not in out
        caps[name] = out.get("scalp_shadow")
    assert caps["grey"] is None
    dark, fair = caps["dark"].coverage, caps["fair"].coverage
    # SKIN, below Cycles' pass alpha threshold (the render test checks that no HAIR pixel
    # shows), and stronger for darker hair.
    assert hair.class_of("scalp_shadow") == SegClass.SKIN
    assert 0.3 < dark.max() < 0.5 and fair.max() < dark.max()
    # On the scalp, not on the face: below the brows only behind the face's side edge or at the
    # sides (sideburns).
    shadow = caps["dark"].vertices[caps["dark"].coverage > 0.2]
    lm = verts[tables.landmark_indices]
    front = (shadow[:, 1] < lm[19, 1]) & (shadow[:, 2] > lm[0, 2])
    assert shadow[:, 1].max() > lm[19, 1] + 0.08
    assert (np.abs(shadow[front, 0]) > 0.85 * abs(lm[0, 0])).all()


def test_a_full_beard_thins_toward_its_edge_and_greys_translucent(generator, tables):
    """Roots of a full beard thin out along the cheek line and the neck instead of ending on a
    drawn line, the moustache stays dense up to the nose, and a white beard's cap lets skin
    through while its middle still writes BEARD (coverage above the pass alpha threshold)."""
    _, verts = _head_verts(generator, generator.params(2, 3))
    depth = tables.beard_depth
    full = tables.beard_masks["full"]
    tree = cKDTree(tables.beard.neutral)
    roots = []
    for seed in range(4):
        p = _params("short", "full", seed=seed)
        roots.append(hair.hair_strands(p, tables.neutral_head, tables)["beard"].points[:, 0])
    _, nearest = tree.query(np.concatenate(roots))
    # Pool points are spread evenly by area, so roots per pool point is the density.
    per_point = np.bincount(nearest, minlength=len(depth))

    def density(sel):
        return per_point[sel].sum() / sel.sum()
    edge = full & (depth < 0.003)
    inner = full & (depth > hair.BEARD_EDGE_FADE_M)
    assert edge.sum() > 200 and inner.sum() > 1000
    assert density(edge) < 0.45 * density(inner), (density(edge), density(inner))
    # The moustache's upper edge faces the philtrum, not bare skin: dense up to the nose.
    lm = tables.neutral_landmarks
    top = tables.beard_masks["moustache"] & (tables.beard.neutral[:, 1] > lm[51, 1] + 0.004)
    assert top.sum() > 20 and density(top) > 0.65 * density(inner), (density(top), density(inner))

    covers = {}
    for grey in (0.0, 1.0):
        cap = hair.hair_strands(_params("short", "full", beard_grey=grey), verts, tables)["beard_cap"]
        covers[grey] = cap.coverage
    dark, white = covers[0.0], covers[1.0]
    assert dark.max() == pytest.approx(hair.BEARD_CAP_COVER, abs=1e-6)
    assert 0.5 < white.max() < 0.8 * dark.max()
    # Graded toward the edge rather than full right up to it.
    covered = dark[dark > 0]
    assert np.mean(covered < 0.7) > 0.08


def test_narrow_beards_thin_toward_their_edges_and_grey_translucent(generator, tables):
    """A moustache, goatee or chin strap thins over its outer few millimetres all round, and
    its cap lets skin through as it greys, as a full beard's does; its middle still writes
    BEARD (coverage above the pass alpha threshold) when white."""
    _, verts = _head_verts(generator, generator.params(2, 3))
    tree = cKDTree(tables.beard.neutral)
    for kind in hair.NARROW_BEARDS:
        inside = tables.beard_masks[kind]
        depth = tables.narrow_beard_depth[kind]
        roots = [hair.hair_strands(_params("short", kind, seed=seed), tables.neutral_head, tables)["beard"].points[:, 0]
                 for seed in range(6)]
        per_point = np.bincount(tree.query(np.concatenate(roots))[1], minlength=len(depth))
        edge = inside & (depth < 0.0012)
        middle = inside & (depth > hair.NARROW_BEARD_FADE_M)
        assert edge.sum() > 20 and middle.sum() > 20, (kind, edge.sum(), middle.sum())
        ratio = (per_point[edge].sum() / edge.sum()) / (per_point[middle].sum() / middle.sum())
        assert ratio < 0.5, (kind, ratio)
        dark, white = (hair.hair_strands(_params("short", kind, beard_grey=g), verts, tables)["beard_cap"].coverage
                       for g in (0.0, 1.0))
        assert dark.max() == pytest.approx(hair.BEARD_CAP_COVER, abs=1e-6), kind
        assert 0.5 < white.max() < 0.8 * dark.max(), kind
        assert np.mean(dark[dark > 0] < 0.7) > 0.08, kind  # graded toward the edge (0 before)
    # Against pixels: a white moustache, the narrowest, still writes BEARD between nose and lip.
    from replicantface import scene_hair

    try:
        params = dataclasses.replace(_frontal(generator, 0), hair=_params("short", "moustache", beard_grey=1.0),
                                     accessories=AccessoryParams())
        sample = generator.render(params)
    finally:
        scene_hair.hide_hair(generator.handles)
    beard = sample.mask == SegClass.BEARD
    assert beard.sum() > 25, beard.sum()
    lm = sample.labels["landmarks_2d"]
    ys, xs = np.nonzero(beard)
    assert lm[33, 1] - 3 < np.median(ys) < lm[51, 1] + 3 and abs(np.median(xs) - lm[33, 0]) < 6


def test_an_alice_band_holds_the_front_hair_back(generator):
    """Against pixels: a fringe hangs over the forehead down to the brows; under an alice band
    the forehead is bare skin up to the hairline, the band shows, and hair still covers the head
    behind it (before, the fringe hung over the band's front and hid it)."""
    from replicantface import scene_hair
    from replicantface.accessories import AccessoryChoice

    band = AccessoryParams((AccessoryChoice("hairband", (0.05, 0.05, 0.06), (0.05, 0.05, 0.06), "plain", 0.5),))
    forehead, worn_px, hair_px = {}, {}, {}
    try:
        for name, worn in (("bare", AccessoryParams()), ("band", band)):
            params = dataclasses.replace(_frontal(generator, 2), hair=_params("fringe"), accessories=worn,
                                         pose=PoseParams(0.0, 0.0, 0.0, 0.0, 15.0))
            sample = generator.render(params)
            lm = sample.labels["landmarks_2d"]
            span = np.linalg.norm(lm[45] - lm[36])  # outer eye corners, about 9 cm
            brow_y = lm[17:27, 1].min()
            x0, x1 = int(lm[19, 0]), int(lm[24, 0]) + 1
            # 1.5 to 3.5 cm above the brows' top: a fringe's place, below the hairline.
            rows = slice(int(brow_y - 0.38 * span), int(brow_y - 0.17 * span))
            forehead[name] = float((sample.mask[rows, x0:x1] == SegClass.HAIR).mean())
            worn_px[name] = int((sample.mask == SegClass.HEADWEAR).sum())
            hair_px[name] = int((sample.mask == SegClass.HAIR).sum())
    finally:
        scene_hair.hide_hair(generator.handles)
    assert forehead["bare"] > 0.6, forehead
    assert forehead["band"] < 0.1, forehead
    assert worn_px["band"] > 40 and worn_px["bare"] == 0, worn_px
    assert hair_px["band"] > 0.3 * hair_px["bare"], hair_px


def test_balding_leaves_the_crown_bare_and_keeps_a_horseshoe(generator, tables):
    """Against pixels: from above the front, the top of a balding head is skin where a short
    cut's is hair; from behind, the band of hair round the back shows."""
    from replicantface import scene_hair

    params = generator.params(31, 3)
    params = dataclasses.replace(params, camera=dataclasses.replace(params.camera, shift_x=0.0, shift_y=0.0,
                                                                    use_dof=False),
                                 accessories=AccessoryParams())
    above, behind = PoseParams(0.0, 0.0, 0.0, 0.0, -35.0), PoseParams(0.0, 0.0, 0.0, 180.0, 0.0)
    try:
        top_hair = {}
        for style in ("short", "balding"):
            p = dataclasses.replace(params, hair=_params(style, grey=0.0), pose=above)
            mask = generator.render(p).mask
            head = np.isin(mask, [SegClass.SKIN, SegClass.HAIR])
            rows = np.flatnonzero(head.any(axis=1))
            crown = head[rows[0]:rows[0] + max(3, len(rows) // 8)]
            band = mask[rows[0]:rows[0] + max(3, len(rows) // 8)]
            top_hair[style] = (band[crown] == SegClass.HAIR).mean()
        assert top_hair["short"] > 0.6 and top_hair["balding"] < 0.05, top_hair
        p = dataclasses.replace(params, hair=_params("balding", grey=0.0), pose=behind)
        mask = generator.render(p).mask
        assert (mask == SegClass.HAIR).sum() > 150 and (mask == SegClass.SKIN).sum() > 150
    finally:
        scene_hair.hide_hair(generator.handles)


def test_the_brow_band_lies_under_each_brow_shapes_hairs(tables):
    """The skin's brow band follows the sample's brow hairs, whatever their shape: most hair
    points lie inside it, its centre line runs through the hairs' middle along the whole brow
    (within 1.25 mm in the medial, middle and lateral thirds), and it is no wider than the
    hairs. A band along the landmark line alone misses the middle third of every shape's hairs by
    2.5-6.2 mm: the brow landmarks run along the brow's upper edge, not its middle."""
    verts = tables.neutral_head
    for shape in hair.BROW_SHAPES:
        p = dataclasses.replace(_params("bald"), brow_shape=shape)
        band = hair.brow_band(p, tables)
        assert band == hair.brow_band(p, tables)
        out = hair.hair_strands(p, verts, tables)
        pts = np.concatenate([out[k].points.reshape(-1, 3) for k in ("brow_r", "brow_l")])
        ax, y = np.abs(pts[:, 0]), pts[:, 1]
        centre = band["brow_c0"] + band["brow_c1"] * ax + band["brow_c2"] * ax ** 2
        t = (ax - band["brow_x0"]) / (band["brow_x1"] - band["brow_x0"])
        half = band["brow_w0"] + np.clip(t, 0.0, 1.0) * (band["brow_w1"] - band["brow_w0"])
        inside = (np.abs(y - centre) < half) & (t >= 0.0) & (t <= 1.0)
        assert inside.mean() > 0.75, (shape, inside.mean())
        for lo in (0.0, 1 / 3, 2 / 3):
            part = (t >= lo) & (t < lo + 1 / 3)
            assert abs(np.median(y[part] - centre[part])) < 0.00125, (shape, lo)
        assert 0.0012 < band["brow_w1"] <= band["brow_w0"] + 0.001 < 0.007, (shape, band)
        assert 0.008 < band["brow_x0"] < 0.016 and 0.05 < band["brow_x1"] < 0.065, (shape, band)
