"""One Blender scene and anny model per test session (building them takes seconds)."""

import subprocess
import sys

import pytest

TEST_RESOLUTION = 160
# The tiny raw dataset the export and reader tests share (generated once per session).
RAW_COUNT, RAW_SEED, RAW_RES = 4, 1, 128


@pytest.fixture(scope="session")
def generator():
    from replicantface.config import load_preset
    from replicantface.generate import Generator

    return Generator(load_preset("default"), quality="test", resolution=TEST_RESOLUTION, use_gpu=False)


@pytest.fixture(scope="session")
def raw_dataset(tmp_path_factory):
    """A tiny raw dataset made through the CLI, as a user would."""
    root = tmp_path_factory.getbasetemp() / f"rf_raw_{RAW_RES}px_seed{RAW_SEED}"
    r = subprocess.run([sys.executable, "-m", "replicantface", "generate", "--out", str(root),
                        "--count", str(RAW_COUNT), "--seed", str(RAW_SEED), "--quality", "test",
                        "--resolution", str(RAW_RES), "--cpu"],
                       check=False, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    return root
