"""Device choice: which GPUs need Cycles' kernels compiled on first use, and the CPU fallback."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

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


def test_other_vendors_gpus_are_used_in_order_without_the_cuda_check(monkeypatch):
    """AMD (HIP), Intel (oneAPI) and Apple (Metal) GPUs are used when no NVIDIA one is found,
    and the CUDA kernel check runs only for OptiX and CUDA."""
    tried, present = [], {"ONEAPI", "METAL"}

    def fake_use_device(scene, backend):
        tried.append(backend)
        return backend in present

    def no_cuda():
        raise AssertionError("CUDA queried for a non-NVIDIA backend")

    monkeypatch.setattr(cd, "use_device", fake_use_device)
    monkeypatch.setattr(cd, "cuda_capabilities", no_cuda)
    assert cd.enable_gpu(None) == "ONEAPI"
    assert tried == ["OPTIX", "CUDA", "HIP", "ONEAPI"]
    present.clear()
    assert cd.enable_gpu(None) == "CPU"
    assert tried[-2:] == ["METAL", "CPU"]


def test_a_saved_scene_renders_again_as_the_generator_rendered_it(tmp_path):
    """benchmarks/bench_gpu.py: the saved scene (images packed), re-opened and rendered through
    cycles_device on the CPU, matches the generator's own render of it."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"

    def run(*args):
        done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    run("save", str(tmp_path), "--count", "1", "--resolution", "64")
    table = run("render", str(tmp_path), "--backends", "CPU", "--repeats", "1")
    assert "| CPU | preview |" in table and "| CPU | final |" in table
    (mae, agree), = json.loads((tmp_path / "gpu.json").read_text())["preview_vs_cpu"]["CPU"]
    assert agree == 1.0
    assert mae < 1.0
