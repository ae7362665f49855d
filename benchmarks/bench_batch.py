"""Batch throughput: seconds per image per quality, 1 vs 2 workers, and one process per image.

Three measurements, in one run on one machine:

1. Each quality on one warm worker (``batch.run_shard`` in this process): seconds per image,
   the Cycles part, and the overhead outside Cycles (anny, scene update, labels, writing).
2. ``batch.run_batch`` on a LocalCluster with 1 and with 2 worker processes (papermill engine
   by default): wall time including start-up, steady throughput from the manifest's per-sample
   timings, and the ratio of one worker's throughput to two workers'.
3. The original project's architecture: one process per image (``replicantface generate
   --count 1 --start i``), so Blender starts, anny loads and the scene is built every time.

Usage: python benchmarks/bench_batch.py [--count 8] [--baseline-count 4] [--quality-count 3]
    [--qualities test preview final] [--quality test] [--resolution 64] [--workers 1 2]
    [--engine papermill|inprocess] [--cpu] [--out outputs/benchmarks/batch.json]
Prints markdown tables and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def quality_rows(args, tmp: Path) -> list[dict]:
    from replicantface import batch
    from replicantface.config import load_preset

    rows = []
    for quality in args.qualities:
        gen = batch.warm_generator(load_preset("default"), quality, args.resolution,
                                   use_gpu=not args.cpu)
        gen.render(gen.params(args.seed, 10_000_000))  # warm-up: kernels, HDRI load
        out = tmp / f"quality_{quality}"
        report = batch.run_shard(out, 0, args.quality_count, seed=args.seed, quality=quality,
                                 resolution=args.resolution, use_gpu=not args.cpu,
                                 worker_id="bench")
        recs = [r for r in batch.read_jsonl(batch.shard_manifest_path(out, 0, args.quality_count))
                if r["status"] == "ok"]
        total = float(np.mean([r["timings"]["total_s"] for r in recs]))
        render = float(np.mean([r["timings"]["render_s"] for r in recs]))
        rows.append({"quality": quality, "resolution": args.resolution, "device": report.device,
                     "count": len(recs), "total_s": total, "render_s": render,
                     "outside_cycles_s": total - render,
                     "outside_cycles_share": (total - render) / total})
    return rows


def worker_row(args, tmp: Path, workers: int) -> dict:
    from replicantface import batch

    out = tmp / f"workers_{workers}"
    settings = batch.BatchSettings(out_dir=str(out), seed=args.seed, quality=args.quality,
                                   resolution=args.resolution, use_gpu=not args.cpu)
    t0 = time.perf_counter()
    report = batch.run_batch(settings, args.count, shards=workers, workers=workers,
                             engine=args.engine, progress=False)
    wall = time.perf_counter() - t0
    if not report.ok:
        raise RuntimeError(f"{workers}-worker run incomplete: {report.failures} "
                           f"{report.shard_errors}")
    recs = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    per_worker: dict[str, list[float]] = {}
    for r in recs:
        per_worker.setdefault(f"{r['host']}:{r['pid']}", []).append(r["timings"]["total_s"])
    # Steady state: every worker renders back to back, so throughput adds up over workers.
    steady = sum(1.0 / float(np.mean(v)) for v in per_worker.values())
    busy = max(r["wall_s"] - r["setup_s"] for r in report.reports)
    render = float(np.mean([r["timings"]["render_s"] for r in recs]))
    total = float(np.mean([r["timings"]["total_s"] for r in recs]))
    return {"workers": workers, "engine": args.engine, "count": args.count,
            "device": report.reports[0]["device"], "wall_s": wall,
            "wall_s_per_image": wall / args.count, "steady_images_per_s": steady,
            "steady_s_per_image": 1.0 / steady, "per_sample_s": total,
            "render_s": render, "startup_and_merge_s": wall - busy,
            "render_threads_per_worker": max(1, (os.cpu_count() or 1) // workers)}


def baseline_row(args, tmp: Path) -> dict:
    out = tmp / "one_process_per_image"
    times = []
    for i in range(args.baseline_count):
        cmd = [sys.executable, "-m", "replicantface", "generate", "--out", str(out),
               "--count", "1", "--start", str(i), "--seed", str(args.seed), "--quality",
               args.quality, "--resolution", str(args.resolution)] + (["--cpu"] if args.cpu else [])
        t0 = time.perf_counter()
        r = subprocess.run(cmd, check=False, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise RuntimeError(f"generate failed: {r.stderr[-2000:]}")
    return {"count": args.baseline_count, "s_per_image": float(np.mean(times)),
            "min_s": float(np.min(times)), "max_s": float(np.max(times))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=8, help="samples per worker-count run")
    ap.add_argument("--baseline-count", type=int, default=4, help="one-process-per-image runs")
    ap.add_argument("--quality-count", type=int, default=3, help="samples per quality")
    ap.add_argument("--qualities", nargs="+", default=["test", "preview", "final"])
    ap.add_argument("--quality", default="test", help="quality of the worker and baseline runs")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--engine", default="papermill", choices=("papermill", "inprocess"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpu", action="store_true", help="render on the CPU even with a GPU")
    ap.add_argument("--out", type=Path, default=Path("outputs/benchmarks/batch.json"))
    args = ap.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp_name:
        tmp = Path(tmp_name)
        # The worker runs and the baseline come first, while this process holds no scene.
        workers = [worker_row(args, tmp, w) for w in args.workers]
        baseline = baseline_row(args, tmp)
        qualities = quality_rows(args, tmp)

    one = next((w for w in workers if w["workers"] == 1), workers[0])
    two = next((w for w in workers if w["workers"] == 2), None)
    summary = {
        "one_vs_two_steady": (one["steady_images_per_s"] / two["steady_images_per_s"]
                              if two else None),
        "one_vs_two_wall": one["wall_s"] / two["wall_s"] if two else None,
        "per_process_vs_warm_worker": baseline["s_per_image"] / one["steady_s_per_image"],
        "per_process_vs_batch_wall": baseline["s_per_image"] / one["wall_s_per_image"],
    }
    # Other processes on a shared machine slow every figure; the load average says how much.
    result = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "gpu": qualities[0]["device"] if qualities else None,
                          "loadavg_1min_before": load_before[0],
                          "loadavg_1min_after": os.getloadavg()[0]},
              "qualities": qualities, "workers": workers, "one_process_per_image": baseline,
              "summary": summary}

    device = qualities[0]["device"]
    print(f"Seconds per image on one warm worker ({args.resolution}², {device}):\n")
    print("| quality | Cycles s/img | outside Cycles s/img | total s/img | outside Cycles |")
    print("|---|---|---|---|---|")
    for q in qualities:
        print(f"| {q['quality']} | {q['render_s']:.2f} | {q['outside_cycles_s']:.2f} | "
              f"{q['total_s']:.2f} | {q['outside_cycles_share']:.0%} |")
    print(f"\nWorkers ({args.engine} engine, {args.count} × {args.quality} {args.resolution}², "
          f"{os.cpu_count()} cores, load average {load_before[0]:.1f} before, "
          f"{result['machine']['loadavg_1min_after']:.1f} after):\n")
    print("| workers | Cycles threads each | wall s (incl. start-up) | wall s/img | steady s/img | "
          "steady img/s | start-up + merge s |")
    print("|---|---|---|---|---|---|---|")
    for w in workers:
        print(f"| {w['workers']} | {w['render_threads_per_worker']} | {w['wall_s']:.1f} | "
              f"{w['wall_s_per_image']:.2f} | {w['steady_s_per_image']:.2f} | "
              f"{w['steady_images_per_s']:.3f} | {w['startup_and_merge_s']:.1f} |")
    print(f"\nOne process per image (the original's architecture): "
          f"{baseline['s_per_image']:.2f} s/img over {baseline['count']} images "
          f"({baseline['min_s']:.1f}–{baseline['max_s']:.1f} s)\n")
    if summary["one_vs_two_steady"] is not None:
        print(f"- 1-worker / 2-worker throughput: {summary['one_vs_two_steady']:.2f} (steady), "
              f"wall time 1 / 2 workers: {summary['one_vs_two_wall']:.2f}")
    print(f"- one process per image is {summary['per_process_vs_warm_worker']:.1f}× slower per "
          f"image than a warm worker, {summary['per_process_vs_batch_wall']:.1f}× slower than the "
          f"{args.count}-image 1-worker batch including its start-up")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
