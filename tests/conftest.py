"""One Blender scene and anny model per test session (building them takes seconds)."""

import pytest

TEST_RESOLUTION = 160


@pytest.fixture(scope="session")
def generator():
    from replicantface.config import load_preset
    from replicantface.generate import Generator

    return Generator(load_preset("default"), quality="test", resolution=TEST_RESOLUTION, use_gpu=False)
