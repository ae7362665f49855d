"""Accessories: sampling statistics, fit (no skin inside, inside the head box) and mask classes
proved on tiny renders."""

import dataclasses
import functools
import time

import numpy as np
import pytest

from replicantface import accessories as acc
from replicantface import labels
from replicantface.classes import HEAD_CLASSES, SegClass
from replicantface.expression import ExpressionParams
from replicantface.pose import PoseParams

SKIN = [int(c) for c in HEAD_CLASSES] + [int(SegClass.NECK)]
POKE_TOLERANCE_M = 0.002
# Head-frame box every accessory must stay inside (metres).
HEAD_BOX = (np.array([-0.30, -0.30, -0.36]), np.array([0.30, 0.26, 0.28]))
EXTREME_EXPRESSIONS = {
    "jaw_open": {"jawOpen": 1.0},
    "smile": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "cheekSquintLeft": 1.0,
              "cheekSquintRight": 1.0},
    "brows_up": {"browInnerUp": 1.0, "browOuterUpLeft": 1.0, "browOuterUpRight": 1.0,
                 "eyeWideLeft": 1.0, "eyeWideRight": 1.0},
    "cheek_puff": {"cheekPuff": 1.0, "mouthPucker": 1.0},
}


def _choice(name, variant=0.5, pattern="plain"):
    return acc.AccessoryChoice(name, (0.6, 0.3, 0.2), (0.1, 0.2, 0.6), pattern, variant)


# ----------------------------------------------------------------------------------------------
# Pure sampling


def test_registry_has_thirty_distinct_accessories_with_their_classes():
    assert len(acc.ACCESSORIES) >= 30
    expected = {"glasses": {int(SegClass.GLASSES)}, "hat": {int(SegClass.HEADWEAR)},
                "headphones": {int(SegClass.HEADWEAR)}, "earrings": {int(SegClass.HEADWEAR)},
                "mask": {int(SegClass.FACEWEAR)}, "scarf": {int(SegClass.CLOTHING)}}
    for name, spec in acc.ACCESSORIES.items():
        assert spec.name == name
        assert set(spec.seg_classes) == expected[spec.category], name
    assert {s.category for s in acc.ACCESSORIES.values()} == set(acc.CATEGORIES)


def test_default_frequencies_follow_the_config():
    cfg = acc.AccessoryConfig()
    rng = np.random.default_rng(0)
    n = 20000
    counts = dict.fromkeys(acc.CATEGORIES, 0)
    seen = set()
    for _ in range(n):
        params = acc.sample_accessories(rng, cfg)
        assert acc.compatible(params.names), params.names
        for item in params.items:
            counts[acc.ACCESSORIES[item.name].category] += 1
            seen.add(item.name)
            assert item.pattern in acc.PATTERNS
            assert 0.0 <= item.variant <= 1.0
    assert cfg.probabilities == {"glasses": 0.2, "hat": 0.1, "headphones": 0.02, "mask": 0.02,
                                 "scarf": 0.02, "earrings": 0.05}
    for cat, p in cfg.probabilities.items():
        tol = 4.0 * np.sqrt(p * (1 - p) / n) + 0.002  # clashes drop a few draws
        assert abs(counts[cat] / n - p) < tol, (cat, counts[cat] / n, p)
    assert len(seen) >= 30


def test_incompatible_sets_never_occur_and_weights_work():
    cfg = acc.AccessoryConfig(probabilities=dict.fromkeys(acc.CATEGORIES, 1.0),
                              weights={"hood": 5.0, "headphones_over_ear": 5.0})
    rng = np.random.default_rng(1)
    for _ in range(3000):
        names = acc.sample_accessories(rng, cfg).names
        assert acc.compatible(names), names
        assert not ({"headphones_over_ear", "hood"} <= set(names))
    assert not acc.compatible(["headphones_over_ear", "beanie"])
    assert not acc.compatible(["earbuds", "hood"])
    assert not acc.compatible(["glasses_round", "glasses_aviator"])
    assert acc.compatible(["glasses_round", "mask_ffp2", "beanie", "earrings_studs", "scarf"])
    only = acc.AccessoryConfig(probabilities={"hat": 1.0},
                               weights={n: 0.0 for n, s in acc.ACCESSORIES.items()
                                        if s.category == "hat" and n != "fedora"})
    assert {acc.sample_accessories(rng, only).names for _ in range(50)} == {("fedora",)}


def test_sampling_is_deterministic_and_json_friendly():
    import json

    cfg = acc.AccessoryConfig(probabilities=dict.fromkeys(acc.CATEGORIES, 0.5))
    a = [acc.sample_accessories(np.random.default_rng(s), cfg) for s in range(20)]
    b = [acc.sample_accessories(np.random.default_rng(s), cfg) for s in range(20)]
    assert a == b
    json.dumps([dataclasses.asdict(p) for p in a])


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="probabilities.hat"):
        acc.AccessoryConfig(probabilities={"hat": 1.5})
    with pytest.raises(ValueError, match="unknown category 'cape'"):
        acc.AccessoryConfig(probabilities={"cape": 0.1})
    with pytest.raises(ValueError, match="unknown accessory 'tiara'"):
        acc.AccessoryConfig(weights={"tiara": 1.0})


# ----------------------------------------------------------------------------------------------
# Fit


@pytest.fixture(scope="module")
def tables(generator):
    return acc.AccessoryTables.from_human(generator.human)


def _head_verts(generator, params):
    geo, _, _ = generator.pose_human(params)
    return geo, labels.transform_points(np.linalg.inv(geo.head_to_world), geo.vertices)


@pytest.fixture(scope="module")
def extreme_heads(generator):
    """Posed head-frame meshes: extreme identities x extreme expressions, with head turns."""
    out = []
    idents = [dict(gender=1.0, age_years=80.0, weight=1.0, muscle=1.0),
              dict(gender=0.0, age_years=18.0, weight=0.0, muscle=0.0),
              dict(gender=1.0, age_years=30.0, weight=0.0, muscle=0.5),
              dict(gender=0.0, age_years=65.0, weight=1.0, muscle=0.2)]
    for k, (ident, (ename, expr)) in enumerate(zip(idents, EXTREME_EXPRESSIONS.items())):
        p = generator.params(5, 200 + k)
        changes = {key: float(np.clip(v * 4.0, -1, 1)) for key, v in p.identity.local_changes.items()}
        identity = dataclasses.replace(p.identity, local_changes=changes, **ident)
        pose = PoseParams(head_yaw_deg=(-1) ** k * 40.0, head_pitch_deg=(-1) ** (k // 2) * 30.0,
                          head_roll_deg=15.0, camera_heading_deg=0.0, camera_pitch_deg=0.0)
        p = dataclasses.replace(p, identity=identity, pose=pose,
                                expression=ExpressionParams(expr, 0.0, 0.0))
        out.append((ename, _head_verts(generator, p)[1]))
    return out


def _components(faces, n_verts):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(2 * len(faces)), (np.r_[faces[:, 0], faces[:, 1]],
                                                   np.r_[faces[:, 1], faces[:, 2]])), shape=(n_verts, n_verts))
    return connected_components(graph, directed=False)[1][faces[:, 0]]


def _depth_inside(verts, faces, points):
    """Depth (m) of each point inside the closed solid (0 outside): ray parity, 2 of 3 rays."""
    from mathutils import Vector
    from mathutils.bvhtree import BVHTree

    tree = BVHTree.FromPolygons(verts.tolist(), faces.tolist(), all_triangles=True)
    lo, hi = verts.min(0) - 1e-3, verts.max(0) + 1e-3
    depth = np.zeros(len(points))
    rays = [Vector(d).normalized() for d in ((0.3, 0.8, 0.52), (-0.7, 0.1, 0.6), (0.2, -0.9, -0.3))]
    for i in np.where(np.all((points > lo) & (points < hi), axis=1))[0]:
        p = Vector(points[i])
        votes = 0
        for ray in rays:
            hits, origin = 0, p.copy()
            for _ in range(64):
                hit = tree.ray_cast(origin, ray)[0]
                if hit is None:
                    break
                hits += 1
                origin = hit + ray * 1e-6
            votes += hits % 2
        if votes >= 2:
            depth[i] = tree.find_nearest(p)[3]
    return depth


def test_no_skin_inside_any_accessory_for_extreme_faces(generator, tables, extreme_heads):
    human = generator.human
    skin_idx = np.unique(human.faces[np.isin(human.face_classes, SKIN)])
    worst = {}
    for ename, verts in extreme_heads:
        skin = verts[skin_idx].astype(np.float64)
        for name in acc.ACCESSORIES:
            mesh = acc.build_accessories(acc.AccessoryParams((_choice(name, 0.9),)), verts, tables)[0]
            v = mesh.vertices.astype(np.float64)
            assert np.all(v > HEAD_BOX[0]) and np.all(v < HEAD_BOX[1]), (name, ename)
            assert len(v) < 20000, name
            assert mesh.face_material.max() < len(mesh.materials)
            comp = _components(mesh.faces, len(v))
            deepest = 0.0
            for c in np.unique(comp):  # each part is closed; parts may overlap
                deepest = max(deepest, _depth_inside(v, mesh.faces[comp == c], skin).max())
            worst[(name, ename)] = deepest
    bad = {k: round(d * 1000, 2) for k, d in worst.items() if d > POKE_TOLERANCE_M}
    assert not bad, f"skin inside accessories (mm): {bad}"


def test_sport_glasses_lens_is_dark_or_mirrored(tables, extreme_heads):
    verts = extreme_heads[0][1]
    kinds = {}
    for variant in (0.3, 0.9):
        choice = acc.AccessoryChoice("sunglasses_sport_wrap", (0.1, 0.1, 0.1), (0.7, 0.7, 0.7), "plain", variant)
        mesh = acc.build_accessories(acc.AccessoryParams((choice,)), verts, tables)[0]
        kinds[variant] = {m for m in mesh.materials if m[0].startswith("lens")}
    assert kinds[0.3] == {("lens_dark", SegClass.GLASSES, (0.02, 0.02, 0.03))}
    assert kinds[0.9] == {("lens_mirror", SegClass.GLASSES, (0.7, 0.7, 0.7))}


def test_sport_lens_covers_the_eyes_and_clears_the_nose(tables, extreme_heads):
    """Seen from the front, the shield covers both pupils and reaches below them, spans the
    bridge of the nose above them, and its nose cut-out leaves the nose below them open."""
    from mathutils import Vector
    from mathutils.bvhtree import BVHTree

    for ename, verts in extreme_heads:
        mesh = acc.build_accessories(acc.AccessoryParams((_choice("sunglasses_sport_wrap", 0.3),)), verts,
                                     tables)[0]
        lens = np.array([mesh.materials[m][0].startswith("lens") for m in mesh.face_material])
        tree = BVHTree.FromPolygons(mesh.vertices.tolist(), mesh.faces[lens].tolist(), all_triangles=True)
        head = acc._Head(verts.astype(np.float64), tables)

        def covered(x, y, tree=tree):
            return tree.ray_cast(Vector((x, y, 0.5)), Vector((0.0, 0.0, -1.0)))[0] is not None

        for s in "rl":
            pupil = head.eye[s][np.argmax(head.eye[s][:, 2])]
            assert covered(pupil[0], pupil[1]), (ename, s)
            assert covered(pupil[0], pupil[1] - 0.012), (ename, s)  # below the eye
        pupil_y = float(np.mean([head.eye[s][np.argmax(head.eye[s][:, 2]), 1] for s in "rl"]))
        assert covered(0.0, pupil_y + 0.01), ename  # the bridge
        assert not covered(0.0, pupil_y - 0.008), ename  # the nose cut-out


def _ray_hits(tree, origin, frame, side, fwd):
    """Whether the ray from ``origin`` along (up, forward, sideways) = (.., fwd, side) in the hat
    ``frame`` (n, e1, e2) hits the BVH tree."""
    from mathutils import Vector

    n, e1, e2 = frame
    d = np.sqrt(1.0 - side ** 2 - fwd ** 2) * n + fwd * e1 + side * e2
    return tree.ray_cast(Vector(origin), Vector(d))[0] is not None


def test_bike_helmet_vents_are_open_through_the_shell(tables, extreme_heads):
    """A ray from the head's centre out through the middle of each vent leaves the helmet without
    touching it; rays through the bars between the slots and through the bridge across the crown
    hit it. The vents' walls close the shell: every edge is shared by two faces, once each way."""
    from mathutils.bvhtree import BVHTree

    spec = acc.ACCESSORIES["bike_helmet"]
    for ename, verts in extreme_heads:
        mesh = acc.build_accessories(acc.AccessoryParams((_choice("bike_helmet", 0.5),)), verts, tables)[0]
        head = acc._Head(verts.astype(np.float64), tables)
        n, _, e1, e2 = acc._hat_frame(head, *acc._hat_rim_heights(head, spec, 0.5))
        tree = BVHTree.FromPolygons(mesh.vertices.tolist(), mesh.faces.tolist(), all_triangles=True)
        hits = functools.partial(_ray_hits, tree, head.centre, (n, e1, e2))
        sides = acc._BIKE_VENT_SIDES
        for x in sides:
            for lo, hi in acc._BIKE_VENT_ROWS:
                assert not hits(x, 0.5 * (lo + hi) * 0.8), (ename, x, lo)
        for x in np.convolve(sides, [0.5, 0.5], "valid"):  # between two slots
            assert hits(x, 0.4) and hits(x, -0.4), (ename, x)
        assert hits(0.0, -0.02) and hits(0.22, -0.02), ename  # the bridge
        # The shell is the first part built; the visor and the straps are parts of their own.
        edges = np.concatenate([mesh.faces[:, [0, 1]], mesh.faces[:, [1, 2]], mesh.faces[:, [2, 0]]])
        comp = _components(mesh.faces, len(mesh.vertices))
        first = np.concatenate([comp == comp[0]] * 3)
        _, count = np.unique(edges[first], axis=0, return_counts=True)
        assert count.max() == 1, ename  # each directed edge once ...
        _, count = np.unique(np.sort(edges[first], axis=1), axis=0, return_counts=True)
        assert np.all(count == 2), ename  # ... and each edge in two faces


def test_over_ear_cushions_rest_on_the_head(generator, tables, extreme_heads):
    """The cushion encloses the ear and sits on the head round it: the outer edge of its
    head-facing side lies within 12 mm of the head (a cushion pressed on the ear's outside,
    like an on-ear pad, stands 13-25 mm off)."""
    from mathutils import Vector
    from mathutils.bvhtree import BVHTree

    for ename, verts in extreme_heads:
        bvh = BVHTree.FromPolygons(verts.astype(float).tolist(), generator.human.faces.tolist())
        for variant in (0.1, 0.9):
            mesh = acc.build_accessories(acc.AccessoryParams((_choice("headphones_over_ear", variant),)),
                                         verts, tables)[0]
            leather = [k for k, m in enumerate(mesh.materials) if m[0] == "leather"]
            cushion = mesh.vertices[np.unique(mesh.faces[np.isin(mesh.face_material, leather)])].astype(float)
            for side in (-1.0, 1.0):
                c = cushion[cushion[:, 0] * side > 0]
                out = c[:, 0] * side
                radial = np.hypot(c[:, 1] - c[:, 1].mean(), c[:, 2] - c[:, 2].mean())
                rim = c[(out < out.min() + 0.3 * np.ptp(out)) & (radial > 0.8 * radial.max())]
                gap = np.median([bvh.find_nearest(Vector(q))[3] for q in rim])
                assert gap < 0.012, (ename, variant, side, round(gap * 1000, 1))


def test_masks_stay_on_the_face_with_the_head_turned(generator, tables):
    """A turned head brings the side of the neck, the shoulder and the chest into the directions
    under the jaw. The mask's fabric ends under the chin and within the jaw's width instead of
    reaching for them (it hung 8 cm below the chin, or stuck out in a tab past the jaw)."""
    # Identity 29 has its mouth open (the chin lower, nearer the neck); 5 and 3 have it closed.
    for index, yaw in ((29, 30.0), (29, -30.0), (29, 60.0), (5, 60.0), (3, 0.0), (3, -75.0)):
        p = generator.params(0, index)
        p = dataclasses.replace(p, pose=PoseParams(head_yaw_deg=yaw, head_pitch_deg=0.0, head_roll_deg=0.0,
                                                   camera_heading_deg=0.0, camera_pitch_deg=0.0))
        verts = _head_verts(generator, p)[1].astype(float)
        lm = verts[tables.landmark_indices]
        for name in ("mask_surgical", "mask_cloth", "mask_ffp2"):
            mask = acc.build_accessories(acc.AccessoryParams((_choice(name),)), verts, tables)[0]
            comp = _components(mask.faces, len(mask.vertices))
            body = mask.vertices[np.unique(mask.faces[comp == np.bincount(comp).argmax()])].astype(float)
            drop = lm[8, 1] - body[:, 1].min()
            past_jaw = np.abs(body[:, 0]).max() - np.abs(lm[:17, 0]).max()
            assert drop < 0.02, (name, index, yaw, "below the chin", round(drop * 1000, 1))
            assert past_jaw < 0.005, (name, index, yaw, "past the jaw", round(past_jaw * 1000, 1))
            # Under the eyes the top edge keeps off the lower lids (it rode up onto them), and
            # on the midline it still covers the nose below the bridge.
            for corners, lids in (((36, 39), (40, 41)), ((42, 45), (46, 47))):
                x0, x1 = sorted(lm[list(corners), 0])
                cols = (body[:, 0] > x0) & (body[:, 0] < x1)
                gap = lm[list(lids), 1].min() - body[cols, 1].max()
                assert gap > 0.01, (name, index, yaw, "under the eye", round(gap * 1000, 1))
            mid = np.abs(body[:, 0]) < 0.004
            assert body[mid, 1].max() > lm[30, 1] + 0.01, (name, index, yaw, "nose uncovered")


def test_cloth_mask_is_sewn(generator, tables, monkeypatch):
    """A cloth mask shows how it is made: a seam down the middle of the front, a hem along the
    top and bottom edges, and folds gathered at the sides by the ear loops."""
    verts = _head_verts(generator, generator.params(0, 3))[1].astype(float)
    mask = acc.build_accessories(acc.AccessoryParams((_choice("mask_cloth"),)), verts, tables)[0]
    comp = _components(mask.faces, len(mask.vertices))
    parts = [mask.vertices[np.unique(mask.faces[comp == k])].astype(float) for k in range(comp.max() + 1)]
    body = max(parts, key=len)
    seams = [q for q in parts if np.abs(q[:, 0]).max() < 0.004 and np.ptp(q[:, 1]) > 0.05]
    hems = [q for q in parts if np.ptp(q[:, 0]) > 0.8 * np.ptp(body[:, 0]) and q is not body]
    assert len(seams) == 1 and len(hems) == 2, (len(parts), len(seams), len(hems))
    assert abs(hems[0][:, 1].mean() - hems[1][:, 1].mean()) > 0.04  # one at the top, one at the bottom
    # Folds: against the same mask without them, the fabric at the side edges stands out and
    # falls back at least three times from top to bottom, by up to 2 mm or more; the middle is
    # as it was.
    monkeypatch.setattr(acc, "CLOTH_MASK_FOLD_M", 0.0)
    flat = acc.build_accessories(acc.AccessoryParams((_choice("mask_cloth"),)), verts, tables)[0]
    grid = mask.vertices[:len(body)].reshape(2, 41, -1, 3)[1]  # the body comes first: inner, outer
    lift = np.linalg.norm(grid - flat.vertices[:len(body)].reshape(2, 41, -1, 3)[1], axis=-1)
    for edge in (lift[0], lift[-1]):
        peaks = (edge[1:-1] > edge[:-2]) & (edge[1:-1] >= edge[2:]) & (edge[1:-1] > 0.001)
        assert peaks.sum() >= 3 and edge.max() > 0.002, edge
    assert lift[20].max() < 1e-6


def test_the_sun_hat_is_straw(generator, tables):
    """The sun hat takes the straw material (braided rows in relief); felt and cloth hats do not."""
    verts = _head_verts(generator, generator.params(0, 3))[1].astype(float)
    for name, straw in (("sun_hat", True), ("fedora", False), ("bucket_hat", False)):
        mesh = acc.build_accessories(acc.AccessoryParams((_choice(name),)), verts, tables)[0]
        kinds = [kind for kind, _, _ in mesh.materials]
        assert ("straw" in kinds) == straw and kinds[0] == ("straw" if straw else "fabric"), (name, kinds)
    assert "straw" in acc.MATERIAL_KINDS


def test_the_hard_hat_is_a_ribbed_moulded_shell(generator, tables, monkeypatch):
    """The hard hat takes the worn satin "shell" material and carries a rib either side of its
    ridge; the bike helmet keeps its glossy skin."""
    verts = _head_verts(generator, generator.params(0, 3))[1].astype(float)

    def build(name):
        return acc.build_accessories(acc.AccessoryParams((_choice(name),)), verts, tables)[0]
    hat = build("hard_hat")
    assert hat.materials[0][0] == "shell" and "shell" in acc.MATERIAL_KINDS
    assert "shell" not in [kind for kind, _, _ in build("bike_helmet").materials]
    rib = acc.HARD_HAT_RIB_M
    monkeypatch.setattr(acc, "HARD_HAT_RIB_M", 0.0)
    smooth = build("hard_hat")
    assert hat.vertices.shape == smooth.vertices.shape
    lift = np.linalg.norm(hat.vertices.astype(float) - smooth.vertices.astype(float), axis=1)
    # Where the shell stands out: on both sides of the midline, not on it.
    raised = hat.vertices[lift > 0.002].astype(float)
    assert len(raised) > 20 and lift.max() < rib + 1e-3
    x = raised[:, 0]
    assert (x > 0.02).sum() > 10 and (x < -0.02).sum() > 10 and (np.abs(x) < 0.01).sum() == 0


def test_each_hard_hat_wears_its_own_patches(generator):
    """The shell's wear is placed by the hat's drawn secondary colour: two hard hats that differ
    only in it render differently on the hat, and the same elsewhere."""
    p = generator.params(21, 0)
    pose = PoseParams(head_yaw_deg=0.0, head_pitch_deg=-10.0, head_roll_deg=0.0,
                      camera_heading_deg=0.0, camera_pitch_deg=-20.0)
    cam = dataclasses.replace(p.camera, face_fraction=0.6, shift_x=0.0, shift_y=0.0, use_dof=False)
    p = dataclasses.replace(p, pose=pose, camera=cam, expression=ExpressionParams({}, 0.0, 0.0),
                            hair=dataclasses.replace(p.hair, style="bald", beard="none"))
    renders = []
    for secondary in ((0.1, 0.2, 0.6), (0.7, 0.4, 0.1)):
        hat = acc.AccessoryChoice("hard_hat", (0.7, 0.5, 0.05), secondary, "plain", 0.5)
        renders.append(generator._render_once(dataclasses.replace(p, accessories=acc.AccessoryParams((hat,)))))
    a, b = renders
    np.testing.assert_array_equal(a.mask, b.mask)
    on_hat = a.mask == int(SegClass.HEADWEAR)
    assert on_hat.sum() > 500
    diff = np.abs(a.rgb.astype(float) - b.rgb.astype(float)).mean(axis=2)
    assert diff[on_hat].mean() > 1.0 and diff[on_hat].mean() > 5.0 * diff[~on_hat].mean(), (
        diff[on_hat].mean(), diff[~on_hat].mean())


def test_headphone_band_rests_on_a_bare_crown(generator, tables, extreme_heads):
    """Over hair the band leaves room for it; on a bald head (hair.BARE_CROWN_STYLES) it rests on
    the scalp, within 3 mm, instead of standing 8 mm off it, and the scalp stays out of it."""
    from mathutils import Vector
    from mathutils.bvhtree import BVHTree

    skin_idx = np.unique(generator.human.faces[np.isin(generator.human.face_classes, SKIN)])
    for ename, verts in extreme_heads:
        bvh = BVHTree.FromPolygons(verts.astype(float).tolist(), generator.human.faces.tolist())
        gaps = {}
        for bare in (False, True):
            for name in ("headphones_over_ear", "headphones_on_ear"):
                mesh = acc.build_accessories(acc.AccessoryParams((_choice(name),)), verts, tables,
                                             bare_crown=bare)[0]
                comp = _components(mesh.faces, len(mesh.vertices))
                v = mesh.vertices.astype(float)
                top = comp[np.argmax(v[mesh.faces[:, 0], 1])]  # the band holds the highest point
                band = v[np.unique(mesh.faces[comp == top])]
                crown = band[band[:, 1] > band[:, 1].max() - 0.02]
                gaps[(bare, name)] = min(bvh.find_nearest(Vector(q))[3] for q in crown)
                if bare:
                    depth = _depth_inside(v, mesh.faces[comp == top], verts[skin_idx].astype(float))
                    assert depth.max() < POKE_TOLERANCE_M, (ename, name)
        for name in ("headphones_over_ear", "headphones_on_ear"):
            assert gaps[(True, name)] < 0.003, (ename, name, gaps)
            assert gaps[(False, name)] > 0.006, (ename, name, gaps)


def test_combinations_clear_each_other(generator, tables, extreme_heads):
    _, verts = extreme_heads[0]
    params = acc.AccessoryParams(tuple(_choice(n) for n in
                                       ("glasses_round", "beanie_pompom", "mask_ffp2", "scarf", "earrings_studs")))
    assert acc.compatible(params.names)
    meshes = acc.build_accessories(params, verts, tables)
    assert [m.name for m in meshes] == ["scarf", "mask_ffp2", "glasses_round", "earrings_studs", "beanie_pompom"]
    glasses = next(m for m in meshes if m.name == "glasses_round")
    mask = next(m for m in meshes if m.name == "mask_ffp2")
    # The glasses rest on the mask, not inside it.
    assert _depth_inside(mask.vertices.astype(float), mask.faces, glasses.vertices.astype(float)).max() < 0.001


def test_hair_cover_leaves_room_under_headwear(generator, tables, extreme_heads):
    _, verts = extreme_heads[1]
    human = generator.human
    scalp = verts[np.unique(human.faces[human.face_classes == SegClass.SKIN])].astype(float)
    assert acc.hair_cover(acc.AccessoryParams(()), verts, tables) is None
    assert acc.hair_cover(acc.AccessoryParams((_choice("glasses_round"),)), verts, tables) is None
    for name in ("beanie", "cap_forward", "fedora", "bike_helmet", "hood"):
        params = acc.AccessoryParams((_choice(name),))
        cover = acc.hair_cover(params, verts, tables)
        assert isinstance(cover, acc.HeadCover) and cover.max_offset_m > 0.003
        n = np.asarray(cover.plane_normal)
        covered = scalp[scalp @ n > cover.plane_offset + 0.01]
        assert len(covered) > 100, name
        mesh = acc.build_accessories(params, verts, tables)[0]
        # Hair flattened to max_offset_m stays under the shell.
        centre = np.array([0.0, 0.02, -0.06])
        out = (covered - centre) / np.linalg.norm(covered - centre, axis=1, keepdims=True)
        lifted = covered + cover.max_offset_m * out
        comp = _components(mesh.faces, len(mesh.vertices))
        main = np.bincount(comp).argmax()
        depth = _depth_inside(mesh.vertices.astype(float), mesh.faces[comp == main], lifted)
        assert (depth > POKE_TOLERANCE_M).mean() < 0.01, name


# ----------------------------------------------------------------------------------------------
# Renders


def _render_group(generator, tables, names, index, side=False):

    p = generator.params(21, index)
    pose = PoseParams(head_yaw_deg=float((-1) ** index * 8.0), head_pitch_deg=-5.0, head_roll_deg=0.0,
                      camera_heading_deg=60.0 if side else 0.0, camera_pitch_deg=0.0)
    cam = dataclasses.replace(p.camera, face_fraction=0.8 if side else 0.5, shift_x=0.0, shift_y=0.0,
                              use_dof=False)
    # Eyes open and looking ahead, so the lens checks find the pupils.
    p = dataclasses.replace(p, pose=pose, camera=cam, expression=ExpressionParams({}, 0.0, 0.0))
    geo, verts = _head_verts(generator, p)
    rng = np.random.default_rng(index)
    # The sport glasses get their mirrored lens (variant > 0.6); the other sunglasses show the dark one.
    items = tuple(acc.AccessoryChoice(n, acc._colour(rng, acc.ACCESSORIES[n].palette), (0.2, 0.3, 0.5),
                                      acc.PATTERNS[index % 3],
                                      0.9 if n == "sunglasses_sport_wrap" else float(rng.random()))
                  for n in names)
    params = acc.AccessoryParams(items)
    meshes = acc.build_accessories(params, verts, tables)
    # Rendered through the generator's own path (it fits and applies the sample's accessories);
    # bald, so no hair hides a small item.
    p = dataclasses.replace(p, accessories=params,
                            hair=dataclasses.replace(p.hair, style="bald", beard="none"))
    t0 = time.perf_counter()
    sample = generator._render_once(p)
    return sample, verts, meshes, time.perf_counter() - t0


def _groups():
    """Render groups with one accessory per segmentation class, so pixels name their item."""
    by_cat = {c: [n for n, s in acc.ACCESSORIES.items() if s.category == c] for c in acc.CATEGORIES}
    hats, glasses = by_cat["hat"], by_cat["glasses"]
    masks, scarves = by_cat["mask"], by_cat["scarf"]
    groups = []
    for i, hat in enumerate(hats):
        group = [hat]
        if i < len(glasses):
            group.append(glasses[i])
        extra = [masks[(i // 4) % len(masks)]] if i % 4 == 1 else []
        extra += [scarves[(i // 6) % len(scarves)]] if i % 6 == 3 else []
        for n in extra:
            if acc.compatible(group + [n]):
                group.append(n)
        groups.append((group, False))
    for g in glasses[len(hats):]:
        groups.append(([g], False))
    groups.append(([masks[1], scarves[0]], False))
    groups.append(([masks[2]], False))
    groups.append(([scarves[1]], False))
    for name in by_cat["headphones"] + by_cat["earrings"]:
        groups.append(([name], True))
    return groups


def test_every_accessory_renders_with_its_class(generator, tables):
    from replicantface import scene_accessories

    min_pixels = {int(SegClass.GLASSES): 20, int(SegClass.HEADWEAR): 40, int(SegClass.FACEWEAR): 150,
                  int(SegClass.CLOTHING): 150}
    side_min = {"earrings_studs": 4, "earrings_hoops": 6, "earrings_drops": 4, "earbuds": 15,
                "glasses_rimless": 6, "hairband": 15}
    rendered, times = set(), []
    try:
        for index, (names, side) in enumerate(_groups()):
            assert acc.compatible(names), names
            s, verts, meshes, dt = _render_group(generator, tables, names, index, side)
            times.append(dt)
            res = s.mask.shape[0]
            lab = s.labels
            for name in names:
                cls = acc.ACCESSORIES[name].seg_classes[0]
                count = int((s.mask == cls).sum())
                assert count >= side_min.get(name, min_pixels[cls]), (name, count, names)
                rendered.add(name)
            # Accessory pixels stay near the projected head: inside the head box's image.
            corners = np.array(np.meshgrid(*zip(*HEAD_BOX), indexing="ij")).reshape(3, -1).T
            px, _ = labels.project_points(corners, lab["modelview"], lab["projection"], (res, res))
            ys, xs = np.nonzero(np.isin(s.mask, [16, 17, 18]))
            if len(xs):
                assert xs.min() >= px[:, 0].min() - 1 and xs.max() <= px[:, 0].max() + 1
                assert ys.min() >= px[:, 1].min() - 1 and ys.max() <= px[:, 1].max() + 1
            glasses = [n for n in names if acc.ACCESSORIES[n].category == "glasses"]
            if glasses:
                _check_lenses(generator, s, verts, glasses[0], res)
    finally:
        scene_accessories.apply_accessories(generator.handles, [], np.eye(4))
    assert rendered == set(acc.ACCESSORIES)
    print(f"\naccessory render groups: {len(times)}, mean {np.mean(times):.2f} s at {s.mask.shape[0]} px")


def _check_lenses(generator, s, verts, name, res):
    """Clear lenses keep the eye's class at the pupil; dark lenses write GLASSES there."""
    lab = s.labels
    pupils = []
    for part in ("eye_front.R", "eye_front.L"):
        idx = np.unique(generator.human.faces[generator.human.part_of_face == part])
        pupils.append(verts[idx][np.argmax(verts[idx][:, 2])])
    px, _ = labels.project_points(np.array(pupils), lab["modelview"], lab["projection"], (res, res))
    spec = acc.ACCESSORIES[name]
    dark = spec.options.get("dark") or spec.builder == "sport_glasses"
    half_moon = spec.options.get("shape") == "half_moon"
    for (x, y), eye_class in zip(px, (SegClass.RIGHT_EYE, SegClass.LEFT_EYE)):
        patch = s.mask[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2]
        if dark:
            assert (patch == SegClass.GLASSES).mean() > 0.5, (name, patch)
        elif not half_moon:
            assert not (patch == SegClass.GLASSES).any(), (name, patch)
            assert (patch == eye_class).any(), (name, patch)


def test_unused_accessories_are_hidden(generator, tables):
    from replicantface import scene_accessories

    p = generator.params(3, 0)
    geo, verts = _head_verts(generator, p)
    meshes = acc.build_accessories(acc.AccessoryParams((_choice("beanie"), _choice("glasses_round"))), verts, tables)
    scene_accessories.apply_accessories(generator.handles, meshes, geo.head_to_world)
    objs = generator.handles.extras["accessories"]["objects"]
    assert not objs["beanie"].hide_render and not objs["glasses_round"].hide_render
    for obj in objs.values():
        for mat in obj.data.materials:
            assert mat.pass_index in (15, 16, 17, 18)
    scene_accessories.apply_accessories(generator.handles, [], geo.head_to_world)
    assert all(obj.hide_render for obj in objs.values())


def test_most_clear_lenses_are_coated():
    """About COATED_LENS_SHARE of clear glasses get the anti-reflection coating, spread over
    the variants rather than tied to one end of them (the variant also sizes the frame)."""
    coated = np.array([acc.clear_lens_reflectance(v) == acc.COATED_LENS_F0
                       for v in np.linspace(0.0, 1.0, 1001)])
    assert abs(coated.mean() - acc.COATED_LENS_SHARE) < 0.02
    assert abs(coated[:500].mean() - coated[500:].mean()) < 0.05
    assert max(acc.COATED_LENS_F0) < 0.01 < acc.UNCOATED_LENS_F0[0]


def test_clear_lenses_reflect_the_light_around_the_face(generator, tables, monkeypatch):
    """A clear lens mirrors the environment: with four times the light and two stops less
    exposure the lens looks the same, as the face does (a fixed sheen would fade to a quarter),
    and it does show against the same face without glasses."""
    import replicantface.generate as gen_mod

    p = generator.params(21, 0)
    pose = PoseParams(head_yaw_deg=35.0, head_pitch_deg=0.0, head_roll_deg=0.0,
                      camera_heading_deg=0.0, camera_pitch_deg=0.0)
    cam = dataclasses.replace(p.camera, face_fraction=0.9, shift_x=0.0, shift_y=0.0, use_dof=False)
    light = dataclasses.replace(p.lighting, extra_light=None, face_exposure=0.0, white_balance=0.0,
                                strength=1.0, background_strength=1.0)
    p = dataclasses.replace(p, pose=pose, camera=cam, lighting=light,
                            expression=ExpressionParams({}, 0.0, 0.0),
                            hair=dataclasses.replace(p.hair, style="bald", beard="none"))
    _, verts = _head_verts(generator, p)
    worn = acc.AccessoryParams((_choice("glasses_rectangular", variant=0.08),))  # bare lenses
    coated = acc.AccessoryParams((_choice("glasses_rectangular", variant=0.5),))
    assert acc.clear_lens_reflectance(0.08) == acc.UNCOATED_LENS_F0
    assert acc.clear_lens_reflectance(0.5) == acc.COATED_LENS_F0
    lens_pts = []
    for m in acc.build_accessories(worn, verts, tables):
        kinds = np.array([kind for kind, _, _ in m.materials])
        lens_faces = m.faces[kinds[m.face_material] == "lens_clear"]
        lens_pts.append(m.vertices[np.unique(lens_faces)])
    lens_pts = np.concatenate(lens_pts)
    sides = (lens_pts[:, 0] < 0, lens_pts[:, 0] >= 0)  # the two lenses (head frame x)

    def render(accessories, gain):
        monkeypatch.setattr(gen_mod, "exposure_ev", lambda *a, **k: -float(np.log2(gain)))
        lit = dataclasses.replace(light, strength=gain, background_strength=gain)
        return generator._render_once(dataclasses.replace(p, accessories=accessories, lighting=lit))

    bare = acc.AccessoryParams(())
    a, b, c, d = render(worn, 2.0), render(worn, 8.0), render(bare, 2.0), render(bare, 8.0)
    res = a.mask.shape[0]
    # modelview maps the head frame to the camera.
    px, _ = labels.project_points(lens_pts, a.labels["modelview"], a.labels["projection"], (res, res))
    region = np.zeros(a.mask.shape, bool)
    for side in sides:
        x0, y0 = np.clip(np.floor(px[side].min(0)).astype(int) + 1, 0, res)
        x1, y1 = np.clip(np.ceil(px[side].max(0)).astype(int) - 1, 0, res)
        region[y0:y1, x0:x1] = True
    region &= a.mask != SegClass.GLASSES  # the lens's own pixels: the eye and skin seen through it
    assert region.sum() > 40, region.sum()
    # Region means of signed differences: the render noise averages out, the reflection does not.
    sheen = (a.rgb.astype(float) - c.rgb)[region].mean()
    drift = abs((a.rgb.astype(float) - b.rgb)[region].mean())
    base = abs((c.rgb.astype(float) - d.rgb)[region].mean())
    assert base < 0.5, base  # without glasses, the light and exposure make up for each other
    assert sheen > 2.0, sheen
    assert drift < 0.25 * sheen, (drift, sheen)
    # An anti-reflection coating leaves a fraction of the bare lens's sheen.
    e = render(coated, 2.0)
    assert (e.rgb.astype(float) - c.rgb)[region].mean() < 0.5 * sheen
