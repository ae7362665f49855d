"""Render the same scenes on the CPU and on each GPU backend: seconds per render, and how far
the GPU images and masks are from the CPU's.

Two steps, so that the GPU machine needs only bpy, numpy and OpenEXR:

  python benchmarks/bench_gpu.py save DIR [--count 4] [--seed 0] [--resolution 640]
      Builds the default-preset generator on the CPU, renders samples 0..count-1 at the preview
      quality and saves each one's Blender scene (images packed) as DIR/scene_NNNN.blend, with
      that CPU render as DIR/cpu_NNNN.npz and the quality presets as DIR/settings.json.
  python benchmarks/bench_gpu.py render DIR [--backends CPU OPTIX CUDA ...] [--repeats 3]
      Renders every saved scene on each backend through replicantface.cycles_device at each
      quality. Prints seconds per render (the first render of a backend on its own: it includes
      loading, and on some GPUs compiling, the kernels), and at the preview quality the mean
      absolute RGB difference and the share of mask pixels equal to the saved CPU render.
      Writes DIR/gpu.json.

On one machine with the whole environment, run the two steps one after the other.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np


def save(out: Path, count: int, seed: int, resolution: int, start: int) -> None:
    import bpy

    from replicantface.config import QUALITY, load_preset
    from replicantface.generate import Generator

    out.mkdir(parents=True, exist_ok=True)
    gen = Generator(load_preset("default"), quality="preview", resolution=resolution, use_gpu=False)
    settings = {"resolution": resolution, "seed": seed,
                "qualities": {q: dataclasses.asdict(QUALITY[q]) for q in ("preview", "final")}}
    (out / "settings.json").write_text(json.dumps(settings, indent=1))
    for index in range(start, start + count):
        gen.render(gen.params(seed, index))  # poses, dresses and lights the scene
        t = time.perf_counter()
        ref = gen._scene.render(gen.handles)  # the scene exactly as saved, without sensor noise
        dt = time.perf_counter() - t
        np.savez_compressed(out / f"cpu_{index:04d}.npz", rgb=ref.rgb, seg=ref.seg, render_s=dt)
        bpy.ops.file.pack_all()
        bpy.ops.wm.save_as_mainfile(filepath=str(out / f"scene_{index:04d}.blend"), compress=True,
                                    copy=True)
        print(f"scene {index}: CPU render {dt:.2f} s", flush=True)


def render(scenes: Path, backends: list[str], repeats: int) -> None:
    import bpy

    from replicantface import cycles_device as cd
    from replicantface.quiet import quiet_fds

    if not (scenes / "settings.json").is_file():
        sys.exit(f"bench_gpu render: no settings.json in {scenes} (run the save step first)")
    settings = json.loads((scenes / "settings.json").read_text())
    qualities = {q: SimpleNamespace(**v) for q, v in settings["qualities"].items()}
    blends = sorted(scenes.glob("scene_*.blend"))
    if not blends:
        sys.exit(f"bench_gpu render: no scene_*.blend in {scenes} (run the save step first)")
    exr_dir = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    first: dict[str, float] = {}
    times: dict[str, list[float]] = {}
    diffs: dict[str, list[tuple[float, float]]] = {}
    for k, blend in enumerate(blends):
        with quiet_fds(1):
            bpy.ops.wm.open_mainfile(filepath=str(blend))
        scene = bpy.context.scene
        cd.point_compositor_at(scene, exr_dir)
        if k == 0:
            print(f"enable_gpu() picks {cd.enable_gpu(scene)}; CUDA compute capabilities "
                  f"{cd.cuda_capabilities()}", flush=True)
        ref = np.load(scenes / blend.name.replace("scene_", "cpu_").replace(".blend", ".npz"))
        for backend in backends:
            if not cd.use_device(scene, backend):
                if k == 0:
                    print(f"{backend}: no such device here", flush=True)
                continue
            for qname, quality in qualities.items():
                cd.apply_quality(scene, quality, settings["resolution"])
                key = f"{backend} {qname}"
                for _rep in range(repeats + (key not in first)):
                    t = time.perf_counter()
                    result = cd.render(exr_dir)
                    dt = time.perf_counter() - t
                    if key not in first:
                        first[key] = dt
                    else:
                        times.setdefault(key, []).append(dt)
                if qname == "preview":
                    mae = float(np.abs(result.rgb.astype(int) - ref["rgb"].astype(int)).mean())
                    agree = float((result.seg == ref["seg"]).mean())
                    diffs.setdefault(backend, []).append((mae, agree))
                print(f"{blend.stem} {key}: " + " ".join(f"{t:.2f}" for t in times.get(key, [])[-repeats:]),
                      flush=True)

    print(f"\n{len(blends)} scenes at {settings['resolution']} px; seconds per render "
          "(render call to arrays: sync, path tracing, denoising, compositing, EXR read)\n")
    print("| backend | quality | first render s | median s | RGB MAE vs CPU (0-255) | mask agreement |")
    print("|---|---|---|---|---|---|")
    for key, ts in times.items():
        backend, qname = key.split()
        d = diffs.get(backend, []) if qname == "preview" else []
        mae = f"{np.mean([m for m, _ in d]):.2f} (max {max(m for m, _ in d):.2f})" if d else "-"
        agree = f"{100 * min(a for _, a in d):.2f} % (min)" if d else "-"
        print(f"| {backend} | {qname} | {first[key]:.1f} | {np.median(ts):.2f} | {mae} | {agree} |")
    (scenes / "gpu.json").write_text(json.dumps(
        {"first_s": first, "times_s": times, "preview_vs_cpu": diffs}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    s = sub.add_parser("save", help="save scenes and their CPU renders (needs the whole environment)")
    s.add_argument("dir", type=Path)
    s.add_argument("--count", type=int, default=4)
    s.add_argument("--start", type=int, default=0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--resolution", type=int, default=640)
    r = sub.add_parser("render", help="render saved scenes on each backend (needs bpy, numpy, OpenEXR)")
    r.add_argument("dir", type=Path)
    r.add_argument("--backends", nargs="+", default=["CPU", "OPTIX", "CUDA"],
                   choices=["CPU", "OPTIX", "CUDA", "HIP", "ONEAPI", "METAL"])
    r.add_argument("--repeats", type=int, default=3, help="timed renders per backend, quality and scene")
    args = ap.parse_args()
    if args.step == "render" and args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if args.step == "save":
        save(args.dir, args.count, args.seed, args.resolution, args.start)
    else:
        render(args.dir, args.backends, args.repeats)


if __name__ == "__main__":
    main()
