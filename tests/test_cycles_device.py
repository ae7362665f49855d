"""Device choice: which GPUs need Cycles' kernels compiled on first use, and the CPU fallback."""

from __future__ import annotations

import logging

import bpy
import pytest

from replicantface import cycles_device as cd


def test_capabilities_without_a_shipped_kernel_are_reported(tmp_path):
    for cap in ("50", "86", "120"):
        (tmp_path / f"kernel_sm_{cap}.cubin.zst").touch()
    (tmp_path / "kernel_compute_75.ptx.zst").touch()
    caps = [(8, 6), (9, 0), (8, 9), (9, 0), (12, 0)]
    assert cd.uncompiled_capabilities(caps, tmp_path) == [(8, 9), (9, 0)]
    assert cd.uncompiled_capabilities([(8, 6)], tmp_path) == []
    assert cd.uncompiled_capabilities(caps, None) == []


def test_this_blender_ships_kernels_for_ampere_but_not_hopper():
    """The warning's premise for the installed bpy: compiled sm 8.6, PTX only for sm 9.0."""
    lib = cd.cycles_kernel_dir()
    assert lib is not None
    assert cd.uncompiled_capabilities([(8, 6), (9, 0)], lib) == [(9, 0)]


def test_without_a_gpu_the_scene_renders_on_the_cpu(caplog):
    scene = bpy.context.scene
    scene.cycles.device = "GPU"
    if cd.cuda_capabilities():
        pytest.skip("a CUDA driver is present: benchmarks/bench_gpu.py covers GPU machines")
    with caplog.at_level(logging.WARNING):
        assert cd.enable_gpu(scene) == "CPU"
    assert scene.cycles.device == "CPU"
    assert not cd.use_device(scene, "OPTIX") and not cd.use_device(scene, "CUDA")
    assert not caplog.records
