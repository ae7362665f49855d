"""Config validation and sampling determinism (pure, no Blender)."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from replicantface import config
from replicantface.generate import sample_params

PACKAGE = Path(__file__).resolve().parent.parent / "replicantface"
LABELS = [f"nose-l{i}" for i in range(5)] + ["l-eye-a", "r-eye-a"]
HDRIS = ["a.exr", "b.exr"]


def test_presets_load():
    for name in config.available_presets():
        assert config.load_preset(name).preset == name


def test_unknown_preset_names_the_choices():
    with pytest.raises(config.ConfigError, match="unknown preset 'nope'.*default"):
        config.load_preset("nope")


def test_unknown_key_is_named(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[[pose.components]]\nhead_yaw = 3\n")
    with pytest.raises(config.ConfigError, match=r"components\[0\]: unknown key 'head_yaw'.*head_yaw_deg"):
        config.load_config(f)


def test_out_of_range_value_names_key_and_range(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[[pose.components]]\nhead_pitch_deg = 400\n")
    with pytest.raises(config.ConfigError, match=r"head_pitch_deg = 400 is out of range \[0.0, 90.0\]"):
        config.load_config(f)


def test_bad_distribution_name(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[[pose.components]]\ndistribution = "gauss"\n')
    with pytest.raises(config.ConfigError, match="distribution = 'gauss'; allowed: beta, uniform"):
        config.load_config(f)


def test_unknown_section(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[posee]\n")
    with pytest.raises(config.ConfigError, match="unknown section"):
        config.load_config(f)


def test_same_seed_and_index_give_identical_params():
    cfg = config.load_preset("default")
    a = sample_params(7, 5, cfg, LABELS, HDRIS)
    b = sample_params(7, 5, cfg, LABELS, HDRIS)
    assert a.to_json() == b.to_json()
    assert sample_params(7, 6, cfg, LABELS, HDRIS).to_json() != a.to_json()
    assert sample_params(8, 5, cfg, LABELS, HDRIS).to_json() != a.to_json()


def test_pose_sampler_follows_beta3_formula():
    cfg = config.load_preset("default")
    yaws = np.array([sample_params(1, i, cfg, LABELS, HDRIS).pose.head_yaw_deg for i in range(3000)])
    # 70 * (2 Beta(3,3) - 1): variance = 70^2 * 4 * 9 / (36 * 7) = 700
    assert abs(yaws.mean()) < 2.0
    assert yaws.var() == pytest.approx(700.0, rel=0.1)
    assert np.abs(yaws).max() <= 70.0


def test_no_global_random_state_in_package():
    banned = re.compile(r"^\s*import random\b|^\s*from random import|np\.random\.(?!default_rng|SeedSequence|Generator)\w+\(",
                        re.MULTILINE)
    offenders = [p.name for p in PACKAGE.rglob("*.py") if banned.search(p.read_text())]
    assert offenders == []


@pytest.mark.parametrize("preset", ["replicantface-original", "pitch-bias", "replicantface-published", "wide"])
def test_pose_presets_match_their_formulas(preset):
    """Sampled moments of every angle match the analytic mixture moments."""
    from replicantface.pose import analytic_moments, sample_pose

    cfg = config.load_preset(preset).pose
    rng = np.random.default_rng(0)
    draws = [sample_pose(rng, cfg) for _ in range(20000)]
    for angle, (mean, var) in analytic_moments(cfg).items():
        x = np.array([getattr(d, f"{angle}_deg") for d in draws])
        sd = np.sqrt(var)
        assert abs(x.mean() - mean) < 4 * sd / np.sqrt(len(x)) + 1e-9, angle
        assert x.var() == pytest.approx(var, rel=0.05), angle


def test_published_is_a_75_25_mixture():
    from replicantface.pose import sample_pose

    cfg = config.load_preset("replicantface-published").pose
    rng = np.random.default_rng(1)
    comps = np.array([sample_pose(rng, cfg).component for _ in range(8000)])
    assert comps.mean() == pytest.approx(0.25, abs=0.02)


def test_pitch_bias_formula_values():
    """pitch-bias: head pitch (b(4)*20 + 3) deg looking down = AFLW -(...); camera b(4)*5 - 2."""
    from replicantface.pose import analytic_moments

    m = analytic_moments(config.load_preset("pitch-bias").pose)
    assert m["head_pitch"] == pytest.approx((-3.0, 400.0 / 9.0))
    assert m["camera_pitch"] == pytest.approx((-2.0, 25.0 / 9.0))
    assert m["head_roll"] == pytest.approx((0.0, 100.0 / 9.0))


def test_accessory_and_hair_tables_in_toml(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[accessories.probabilities]\nglasses = 0.5\nmask = 0\n"
                 "[accessories.weights]\nhood = 0\n[hair]\nbeard_prob_male = 0.9\n")
    cfg = config.load_config(f)
    assert cfg.accessories.probabilities["glasses"] == 0.5
    assert cfg.accessories.probabilities["hat"] == 0.1  # untouched defaults stay
    assert cfg.accessories.weights == {"hood": 0.0} and cfg.hair.beard_prob_male == 0.9
    draws = [sample_params(1, i, cfg, LABELS, HDRIS).accessories.names for i in range(300)]
    worn = [n for names in draws for n in names]
    assert "hood" not in worn and not any(n.startswith("mask_") for n in worn)
    glasses = sum(any("glasses" in n for n in names) for names in draws) / len(draws)
    assert 0.4 < glasses < 0.6


@pytest.mark.parametrize("text, message", [
    ("[accessories.probabilities]\nhats = 0.5\n", r"probabilities.hats is not known; allowed: glasses"),
    ("[accessories.probabilities]\nhat = 1.5\n", r"probabilities.hat = 1.5 is out of range \[0.0, 1.0\]"),
    ("[accessories.weights]\nmonocle = 1\n", r"weights.monocle is not known"),
    ("[accessories]\nprobabilities = 3\n", r"probabilities must be a table"),
    ("[hair]\nstyle_weights = [1, 2]\n", r"\[hair\]: style_weights needs 13 weights"),
    ("[hair]\nbeard_prob_male = 2\n", r"beard_prob_male = 2 is out of range"),
    ("[camera]\nfocal_mm_choices = []\n", r"\[camera\]: focal_mm_choices must not be empty"),
    ("[camera]\nfocal_mm_choices = [-50.0, 0.0]\n", r"focal_mm_choices\[0\] = -50.0 is out of range \[12.0, 200.0\]"),
    ("[camera]\nfocal_mm_choices = [true, false]\n", r"focal_mm_choices must be a list of numbers"),
    ("[appearance]\nfitzpatrick_weights = [1, 1, true, 1, 1, 1]\n", r"fitzpatrick_weights must be a list of numbers"),
    ("[appearance]\nclothing_cut_weights = [1, 1, 1, 1, 5000]\n",
     r"clothing_cut_weights\[4\] = 5000 is out of range \[0.0, 1000.0\]"),
    # Weight tables must leave something to draw.
    ("[hair]\nstyle_weights = [" + ", ".join(["0"] * 13) + "]\n", r"\[hair\]: style_weights must not all be 0"),
    ("[hair]\nstyle_weights = [-1" + ", 1" * 12 + "]\n", r"style_weights\[0\] = -1 is out of range \[0.0, 1000.0\]"),
    ("[hair]\nbeard_weights = [1, 0, 0, 0, 0, 0]\n", r"\[hair\]: beard_weights must not all be 0"),
    ("[hair]\nbeard_weights = [0, 1, 1, -2, 1, 1]\n", r"beard_weights\[3\] = -2 is out of range"),
    # Counts must be whole numbers (range() and friends need an int).
    ("[lighting]\nmax_attempts = 1.5\n", r"\[lighting\]: max_attempts must be a whole number, got 1.5"),
    ("[expression]\nextra_actions_max = 2.5\n", r"extra_actions_max must be a whole number, got 2.5"),
    ("[post]\njpeg_quality_min = 80.5\n", r"\[post\]: jpeg_quality_min must be a whole number, got 80.5"),
    ("[lighting]\nmax_attempts = true\n", r"max_attempts must be a whole number, got true"),
])
def test_bad_settings_are_named(tmp_path, text, message):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(config.ConfigError, match=message):
        config.load_config(f)


def test_masks_take_full_beards_off():
    from replicantface.accessories import AccessoryChoice, AccessoryParams
    from replicantface.generate import compatible_hair

    cfg = config.load_preset("default")
    p = sample_params(1, 0, cfg, LABELS, HDRIS)
    bearded = dataclasses.replace(p.hair, beard="full")
    mask = AccessoryParams((AccessoryChoice("mask_ffp2", (1, 1, 1), (1, 1, 1), "plain", 0.5),))
    assert compatible_hair(bearded, mask).beard == "stubble"
    assert compatible_hair(bearded, AccessoryParams()).beard == "full"


def test_a_bearded_face_wears_no_makeup_and_other_faces_keep_theirs():
    import replicantface.generate as generate

    cfg = config.load_preset("default")
    drawn = [sample_params(0, i, cfg, LABELS, HDRIS) for i in range(1000)]
    assert not any(p.hair.beard != "none" and any(p.appearance.makeup.values()) for p in drawn)
    # The rule is what keeps them apart: drawn independently, about 1 face in 80 has both
    # (13 expected here), and every face without a beard keeps the makeup it drew.
    rule = generate.compatible_appearance
    try:
        generate.compatible_appearance = lambda appearance, hair: appearance
        free = [sample_params(0, i, cfg, LABELS, HDRIS) for i in range(1000)]
    finally:
        generate.compatible_appearance = rule
    both = [q for q in free if q.hair.beard != "none" and any(q.appearance.makeup.values())]
    assert len(both) >= 5
    assert all(p.appearance == q.appearance for p, q in zip(drawn, free) if q.hair.beard == "none")
    assert all(p.appearance.makeup_rgb == q.appearance.makeup_rgb for p, q in zip(drawn, free))


def test_appearance_keys_in_toml(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[appearance]\nmakeup_prob = 0\nmakeup_prob_male = 0\nfreckle_prob = 1\n"
                 "clothing_cut_weights = [0, 0, 0, 1, 0]\n")
    cfg = config.load_config(f)
    draws = [sample_params(2, i, cfg, LABELS, HDRIS).appearance for i in range(40)]
    assert all(a.clothing_cut == "turtleneck" for a in draws)
    assert not any(any(a.makeup.values()) for a in draws)
    # freckle_prob is the rate on the lightest skin; type VI skin gets 40 % of it.
    assert all(a.freckles > 0 for a in draws if a.fitzpatrick <= 1.2)
    assert 0.4 <= np.mean([a.freckles > 0 for a in draws]) < 1.0
    f.write_text("[appearance]\nclothing_cut_weights = [1, 2]\n")
    with pytest.raises(config.ConfigError, match=r"\[appearance\]: .*clothing_cut_weights"):
        config.load_config(f)


def test_readme_config_example_loads(tmp_path):
    """The appearance settings example in the README is a valid config."""
    readme = (PACKAGE.parent / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)```", readme, re.S).group(1)
    f = tmp_path / "readme.toml"
    f.write_text(block)
    cfg = config.load_config(f)
    assert cfg.accessories.weights == {"hood": 0.0} and len(cfg.hair.style_weights) == 13
    assert cfg.expression.preset_weights["smile"] == 6 and cfg.expression.preset_weights["talking"] == 3
    assert cfg.expression.action_weights["mouthFrownLeft"] == 0.25 and cfg.expression.action_weights["jawOpen"] == 1


def test_a_range_whose_min_exceeds_its_max_is_refused(tmp_path):
    for section, lo, hi in (("lighting", "strength_min", "strength_max"),
                            ("lighting", "face_exposure_min", "face_exposure_max"),
                            ("camera", "face_fraction_min", "face_fraction_max")):
        path = tmp_path / f"{lo}.toml"
        path.write_text(f"[{section}]\n{lo} = 0.9\n{hi} = 0.5\n")
        with pytest.raises(config.ConfigError, match=rf"\[{section}\]: {lo} = 0.9 is larger than {hi} = 0.5"):
            config.load_config(path)
    # Only one end given: compared with the other end's default.
    path = tmp_path / "one.toml"
    path.write_text("[lighting]\nface_exposure_min = 0.5\n")
    with pytest.raises(config.ConfigError, match="face_exposure_min = 0.5 is larger than face_exposure_max = 0.3"):
        config.load_config(path)


def _expressions(n, **cfg):
    from replicantface.expression import ExpressionConfig, sample_expression

    rng = np.random.default_rng(5)
    return [sample_expression(rng, ExpressionConfig(**cfg)).weights for _ in range(n)]


def test_expressions_are_mostly_mild_and_symmetric():
    from replicantface.expression import MIRRORED

    draws = _expressions(3000)
    wide_open = np.mean([w.get("jawOpen", 0.0) > 0.3 for w in draws])
    smiles = np.mean([w.get("mouthSmileLeft", 0.0) > 0.3 and w.get("mouthSmileRight", 0.0) > 0.3
                      for w in draws])
    neutral = np.mean([not w for w in draws])
    assert 0.03 < wide_open < 0.12 and smiles > 0.15 and 0.25 < neutral < 0.35
    # No presets: every action is a random one. Mirrored pairs come together, the second side at
    # 70-100 % of the first (added extras can push a side past that, so allow a little).
    alone = _expressions(2000, neutral_prob=0.0, preset_prob=0.0, symmetric_prob=1.0)
    pairs = [(w[a], w.get(b, 0.0)) for w in alone for a, b in MIRRORED.items() if a in w]
    assert len(pairs) > 500 and all(b > 0 for _, b in pairs)
    assert np.mean([0.69 <= min(a, b) / max(a, b) for a, b in pairs]) > 0.95
    one_sided = _expressions(2000, neutral_prob=0.0, preset_prob=0.0, symmetric_prob=0.0,
                             extra_actions_max=1)
    assert not any(a in w and b in w for w in one_sided for a, b in MIRRORED.items())
    # jawLeft and mouthLeft move sideways: never paired with their opposite.
    assert "jawLeft" not in MIRRORED and "mouthRight" not in MIRRORED
    assert MIRRORED["eyeBlinkLeft"] == "eyeBlinkRight" and MIRRORED["mouthSmileRight"] == "mouthSmileLeft"


def test_random_actions_follow_their_weights():
    """Strained actions (a frown, pressed or shrugged lips, a sneer...) are drawn a quarter as often
    as the rest, and mouthClose and tongueOut, which need an open jaw, never as random extras."""
    extras = _expressions(6000, neutral_prob=0.0, preset_prob=0.0, symmetric_prob=0.0,
                          extra_actions_max=1)
    drawn = [a for w in extras for a in w]
    counts = {a: drawn.count(a) for a in ("mouthSmileLeft", "eyeWideRight", "mouthFrownLeft",
                                          "mouthShrugUpper", "mouthClose", "tongueOut")}
    assert counts["mouthClose"] == counts["tongueOut"] == 0
    for strained in ("mouthFrownLeft", "mouthShrugUpper"):
        for plain in ("mouthSmileLeft", "eyeWideRight"):
            assert 0.12 < counts[strained] / counts[plain] < 0.45, counts
    # The default draw: few faces look sour (the frown preset included).
    from replicantface.expression import _STRAINED
    sour = np.mean([any(a in w for a in _STRAINED) for w in _expressions(3000)])
    assert 0.08 < sour < 0.22
    # One weight alone picks that action.
    only = _expressions(200, neutral_prob=0.0, preset_prob=0.0, extra_actions_max=1,
                        action_weights={"eyeBlinkLeft": 1.0})
    assert all(set(w) <= {"eyeBlinkLeft", "eyeBlinkRight"} for w in only) and any(only)


def test_preset_weights_pick_the_presets(tmp_path):
    from replicantface.expression import ACTION_WEIGHTS, PRESETS

    f = tmp_path / "c.toml"
    f.write_text("[expression]\nneutral_prob = 0\npreset_prob = 1\nextra_actions_max = 0\n"
                 "[expression.preset_weights]\nsmile = 1\ntalking = 0\nfrown = 0\nsurprise = 0\n"
                 "eyes_closed = 0\nopen_mouth = 0\npucker = 0\ntongue = 0\n")
    cfg = config.load_config(f)
    draws = [sample_params(3, i, cfg, LABELS, HDRIS).expression.weights for i in range(40)]
    assert all(set(w) == set(PRESETS["smile"]) for w in draws)
    for text, message in (
            ("[expression.preset_weights]\nsmirk = 1\n", r"preset_weights.smirk is not known; allowed: smile"),
            ("[expression]\nneutral_prob = 0.7\npreset_prob = 0.5\n", r"neutral_prob \+ preset_prob = 1.2 is more than 1"),
            ("[expression]\nsymmetric_prob = 2\n", r"symmetric_prob = 2 is out of range"),
            ("[expression.preset_weights]\nsmile = 0\ntalking = 0\nfrown = 0\nsurprise = 0\n"
             "eyes_closed = 0\nopen_mouth = 0\npucker = 0\ntongue = 0\n", "preset_weights must not all be 0"),
            ("[expression.action_weights]\nwink = 1\n", r"action_weights.wink is not known; allowed: browDownLeft"),
            ("[expression.action_weights]\njawOpen = -1\n", r"action_weights.jawOpen = -1 is out of range"),
            ("[expression.action_weights]\n" + "".join(f"{a} = 0\n" for a in ACTION_WEIGHTS),
             "action_weights must not all be 0 while extra_actions_max > 0")):
        f.write_text(text)
        with pytest.raises(config.ConfigError, match=message):
            config.load_config(f)


def test_upward_gaze_lifts_the_upper_lid_and_downward_gaze_does_not():
    from replicantface.expression import FACIAL_ACTIONS, UPGAZE_EYE_WIDE, ExpressionParams

    assert UPGAZE_EYE_WIDE > 0
    up = ExpressionParams({}, 0.0, 20.0).all_weights()
    assert up["eyeWideLeft"] == up["eyeWideRight"] == pytest.approx(UPGAZE_EYE_WIDE * 20 / 25)
    assert up["eyeLookUpLeft"] == pytest.approx(20 / 25)
    assert not {"eyeWideLeft", "eyeWideRight"} & set(ExpressionParams({}, 0.0, -20.0).all_weights())
    # It adds to an eyeWide the expression sets, within [0, 1], and the label vector carries it.
    surprised = ExpressionParams({"eyeWideLeft": 0.3, "eyeWideRight": 0.7}, 0.0, 10.0)
    w = surprised.all_weights()
    assert w["eyeWideLeft"] == pytest.approx(min(1.0, 0.3 + UPGAZE_EYE_WIDE * 0.4))
    assert w["eyeWideRight"] == pytest.approx(min(1.0, 0.7 + UPGAZE_EYE_WIDE * 0.4))
    assert ExpressionParams({"eyeWideLeft": 0.9}, 0.0, 40.0).all_weights()["eyeWideLeft"] == 1.0
    vec = surprised.vector()
    assert vec[FACIAL_ACTIONS.index("eyeWideLeft")] == pytest.approx(w["eyeWideLeft"])
    assert surprised.weights == {"eyeWideLeft": 0.3, "eyeWideRight": 0.7}  # the params stay as drawn


def test_a_config_that_is_not_utf8_is_named(tmp_path):
    f = tmp_path / "c.toml"
    f.write_bytes(b"# caf\xff\n[camera]\nshift_max = 0.05\n")
    with pytest.raises(config.ConfigError, match=r"c\.toml: not valid UTF-8"):
        config.load_config(f)


def test_cli_names_a_config_that_is_not_utf8(tmp_path):
    import subprocess
    import sys

    f = tmp_path / "c.toml"
    f.write_bytes(b"# caf\xff\n")
    out = tmp_path / "ds"
    r = subprocess.run([sys.executable, "-m", "replicantface", "generate", "--out", str(out), "--count", "1",
                        "--config", str(f)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "c.toml: not valid UTF-8" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_whole_numbers_written_as_floats_become_ints(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[lighting]\nmax_attempts = 2.0\n[expression]\nextra_actions_max = 3.0\n"
                 "[post]\njpeg_quality_min = 80.0\n")
    cfg = config.load_config(f)
    assert type(cfg.lighting.max_attempts) is int and cfg.lighting.max_attempts == 2
    assert type(cfg.expression.extra_actions_max) is int and cfg.expression.extra_actions_max == 3
    assert type(cfg.post.jpeg_quality_min) is int and cfg.post.jpeg_quality_min == 80


def test_hair_config_refuses_unusable_weights_when_built_directly():
    from replicantface.hair import HairConfig

    with pytest.raises(ValueError, match="style_weights must not all be 0"):
        HairConfig(style_weights=(0.0,) * 13)
    with pytest.raises(ValueError, match=r"style_weights must be >= 0, got \[-1.0"):
        HairConfig(style_weights=(-1.0,) + (1.0,) * 12)
    with pytest.raises(ValueError, match="beard_weights must not all be 0"):
        HairConfig(beard_weights=(1.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    HairConfig(beard_prob_male=0.0, beard_weights=(1.0, 0.0, 0.0, 0.0, 0.0, 0.0))  # never drawn
