"""Backgrounds and lighting: HDRI normalisation, user HDRI folders, dark-sample relighting."""

import dataclasses

import numpy as np
import pytest

from replicantface import lighting
from replicantface.config import load_preset
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
