"""Cycles device choice, quality settings and render read-back.

This is the part of the scene layer that needs only bpy, numpy and OpenEXR, so a render node
can check its GPU with it alone (``benchmarks/bench_gpu.py render`` renders saved scenes through
it, without anny or the rest of the package's dependencies).

GPU kernels: Blender ships compiled CUDA kernels only for some GPU generations
(``kernel_sm_XY.cubin.zst`` in the Cycles add-on's ``lib`` folder; bpy 5.0.1 has sm 5.0, 5.2,
6.0, 6.1, 7.0, 7.5, 8.6, 8.9 and 12.0). On any other NVIDIA GPU (the A100's sm 8.0 and
Hopper's 9.0 among them) the driver compiles
Cycles' PTX on the first render: about 7 minutes on an H100. The driver caches the result
(``~/.nv/ComputeCache``, or ``CUDA_CACHE_PATH``) and OptiX caches its pipeline
(``/var/tmp/OptixCache_$USER``, or ``OPTIX_CACHE_PATH``), so later processes on the same machine
start rendering within a second or two. ``enable_gpu`` warns when this compile is coming.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from replicantface.quiet import quiet_fds

log = logging.getLogger(__name__)

# In order of preference: NVIDIA (OptiX, then CUDA), AMD (HIP), Intel (oneAPI), Apple (Metal).
# A backend this Blender build lacks (Metal off macOS) is skipped.
GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")
_NVIDIA_BACKENDS = ("OPTIX", "CUDA")
EXR_STEM = "render"  # the compositor writes {exr_dir}/render.exr

# cuDeviceGetAttribute ids of the compute capability
_CU_CAPABILITY_MAJOR, _CU_CAPABILITY_MINOR = 75, 76


@dataclass(frozen=True)
class RenderResult:
    """rgb: (H, W, 3) uint8, AgX display space; seg: (H, W) uint8 class ids."""

    rgb: np.ndarray
    seg: np.ndarray


def use_device(scene, backend: str) -> bool:
    """Render ``scene`` on ``backend`` ('CPU' or one of ``GPU_BACKENDS``).

    Returns False, leaving the scene as it was, when Blender finds no device of that kind.
    """
    if backend == "CPU":
        scene.cycles.device = "CPU"
        return True
    prefs = bpy.context.preferences.addons["cycles"].preferences
    try:
        prefs.compute_device_type = backend
    except TypeError:  # this Blender build has no such backend
        return False
    with quiet_fds(1, 2):
        prefs.get_devices()
    if not any(d.type == backend for d in prefs.devices):
        return False
    for d in prefs.devices:
        d.use = d.type == backend
    scene.cycles.device = "GPU"
    return True


def enable_gpu(scene) -> str:
    """Use the first of ``GPU_BACKENDS`` with a device; returns the backend in use ('CPU' otherwise)."""
    for backend in GPU_BACKENDS:
        if use_device(scene, backend):
            missing = (uncompiled_capabilities(cuda_capabilities(), cycles_kernel_dir())
                       if backend in _NVIDIA_BACKENDS else [])
            if missing:
                log.warning(
                    "Rendering on %s. Blender ships no compiled Cycles kernel for this GPU "
                    "(compute capability %s), so the first render compiles one: several minutes "
                    "(about 7 on an H100), once per machine while the driver's cache "
                    "(~/.nv/ComputeCache or CUDA_CACHE_PATH) lasts.", backend,
                    ", ".join(f"{a}.{b}" for a, b in missing))
            return backend
    use_device(scene, "CPU")
    return "CPU"


def cycles_kernel_dir() -> Path | None:
    """The Cycles add-on's folder of compiled GPU kernels, if this Blender has one."""
    try:
        import cycles
    except ImportError:
        return None
    lib = Path(cycles.__file__).parent / "lib"
    return lib if lib.is_dir() else None


def cuda_capabilities() -> list[tuple[int, int]]:
    """Compute capability of each CUDA device the driver sees; [] without a CUDA driver."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return []
    count = ctypes.c_int()
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    caps = []
    for i in range(count.value):
        dev, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        if (cuda.cuDeviceGet(ctypes.byref(dev), i) == 0
                and cuda.cuDeviceGetAttribute(ctypes.byref(major), _CU_CAPABILITY_MAJOR, dev) == 0
                and cuda.cuDeviceGetAttribute(ctypes.byref(minor), _CU_CAPABILITY_MINOR, dev) == 0):
            caps.append((major.value, minor.value))
    return caps


def uncompiled_capabilities(caps: list[tuple[int, int]],
                            kernel_dir: Path | None) -> list[tuple[int, int]]:
    """The capabilities in ``caps`` that Blender has no compiled kernel for.

    Cycles loads ``kernel_sm_{major}{minor}.cubin.zst`` for the exact capability and otherwise
    has the driver compile its PTX.
    """
    if kernel_dir is None:
        return []
    return sorted({c for c in caps if not (kernel_dir / f"kernel_sm_{c[0]}{c[1]}.cubin.zst").exists()})


def apply_quality(scene, quality, resolution: int) -> None:
    """Cycles settings of a ``config.QualityPreset`` at a square ``resolution``."""
    scene.render.resolution_x = scene.render.resolution_y = int(resolution)
    cycles = scene.cycles
    cycles.samples = quality.samples
    cycles.use_adaptive_sampling = quality.adaptive_threshold > 0
    cycles.adaptive_threshold = max(quality.adaptive_threshold, 0.001)
    cycles.use_denoising = quality.denoise
    cycles.denoiser = "OPENIMAGEDENOISE"
    cycles.denoising_quality = quality.denoise_quality
    cycles.denoising_prefilter = "ACCURATE" if quality.denoise_quality == "HIGH" else "FAST"
    cycles.max_bounces = quality.max_bounces
    cycles.diffuse_bounces = min(2, quality.max_bounces)
    cycles.glossy_bounces = min(2, quality.max_bounces)
    cycles.transmission_bounces = quality.max_bounces
    cycles.transparent_max_bounces = 8
    cycles.use_light_tree = True
    scene.render.threads_mode = "AUTO"


def render(exr_dir: Path) -> RenderResult:
    """Render the current scene; its compositor writes ``{exr_dir}/render.exr``, read back here."""
    import OpenEXR

    path = Path(exr_dir) / f"{EXR_STEM}.exr"
    path.unlink(missing_ok=True)
    with quiet_fds(1):
        bpy.ops.render.render(write_still=False)
    if not path.exists():
        raise RuntimeError(f"Cycles wrote no render output to {path}")
    with OpenEXR.File(str(path), separate_channels=True) as exr:
        parts = {part.name(): part.channels for part in exr.parts}
        rgb = np.stack([parts["rgb"][f"rgb.{c}"].pixels for c in "RGB"], axis=-1)
        seg = parts["seg"]["seg.V"].pixels
    path.unlink()
    rgb8 = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    seg8 = np.rint(seg).astype(np.uint8)
    return RenderResult(rgb8, seg8)


def point_compositor_at(scene, exr_dir: Path) -> None:
    """Make the scene's compositor write its EXR into ``exr_dir`` (for a scene loaded from a file)."""
    for node in scene.compositing_node_group.nodes:
        if node.bl_idname == "CompositorNodeOutputFile":
            node.directory = str(exr_dir) + "/"
            node.file_name = EXR_STEM
