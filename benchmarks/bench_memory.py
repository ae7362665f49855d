"""Resident memory of one batch worker over a long run: it must stay flat after warm-up.

Renders through ``batch.run_shard`` (the code a worker runs: render, write, manifest line,
orphan purge) in chunks on one warm scene and records the process RSS (psutil) after every
chunk. Warm-up renders one sample with every HDRI (the scene layer caches each one it uses,
which is bounded) and then ``--warmup`` ordinary samples. Growth is measured from the end of
warm-up to the end of the run, both as end-versus-start and as a least-squares line, and must
be at most ``--limit`` percent.

Usage: python benchmarks/bench_memory.py [--count 300] [--warmup 30] [--chunk 10]
    [--quality test] [--resolution 64] [--no-purge] [--out outputs/benchmarks/memory.json]
Prints a markdown table and writes the JSON; exits 1 when the growth is above the limit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=300, help="samples measured after warm-up")
    ap.add_argument("--warmup", type=int, default=30, help="ordinary warm-up samples")
    ap.add_argument("--chunk", type=int, default=10, help="samples per run_shard call")
    ap.add_argument("--quality", default="test")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=float, default=5.0, help="allowed RSS growth, percent")
    ap.add_argument("--no-purge", action="store_true", help="skip the orphan purge (comparison)")
    ap.add_argument("--cpu", action="store_true", help="render on the CPU even with a GPU")
    ap.add_argument("--keep", type=Path, help="write the samples here instead of a temp folder")
    ap.add_argument("--out", type=Path, default=Path("outputs/benchmarks/memory.json"))
    args = ap.parse_args()

    import psutil

    from replicantface import batch
    from replicantface.config import load_preset

    proc = psutil.Process()

    def rss_mb() -> float:
        return proc.memory_info().rss / 2**20

    t0 = time.perf_counter()
    gen = batch.warm_generator(load_preset("default"), args.quality, args.resolution,
                               use_gpu=not args.cpu)
    rss_built = rss_mb()
    # Every HDRI once: the scene layer keeps each HDRI it has used (a bounded cache).
    for k, name in enumerate(sorted(gen.hdris)):
        params = gen.params(args.seed, 10_000_000 + k)
        gen.render(dataclasses.replace(params, lighting=dataclasses.replace(params.lighting,
                                                                            hdri=name)))
        if not args.no_purge:
            batch.purge_unused(gen)

    tmp = None
    if args.keep:
        out_dir = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_memory_")
        out_dir = Path(tmp.name)
    shard_kw = {"seed": args.seed, "quality": args.quality, "resolution": args.resolution,
                "use_gpu": not args.cpu, "purge": not args.no_purge, "worker_id": "bench_memory"}
    batch.run_shard(out_dir, 0, args.warmup, **shard_kw)
    rss_warm = rss_mb()
    t_warm = time.perf_counter()
    done, points = 0, [(0, rss_warm)]
    while done < args.count:
        n = min(args.chunk, args.count - done)
        report = batch.run_shard(out_dir, args.warmup + done, n, **shard_kw)
        if report.failures:
            print(f"failures: {report.failures}", file=sys.stderr)
        done += n
        points.append((done, rss_mb()))
        print(f"{done:4d} samples  RSS {points[-1][1]:8.1f} MiB", flush=True)
    t_end = time.perf_counter()
    if tmp is not None:
        tmp.cleanup()

    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points])
    slope = float(np.polyfit(x, y, 1)[0]) if len(x) > 1 else 0.0
    growth_end = 100.0 * (y[-1] - rss_warm) / rss_warm
    growth_fit = 100.0 * slope * args.count / rss_warm
    growth = max(growth_end, growth_fit)
    row = {
        "count": args.count, "warmup": args.warmup, "quality": args.quality,
        "resolution": args.resolution, "device": gen.device, "purge": not args.no_purge,
        "hdris": len(gen.hdris), "rss_after_build_mib": round(rss_built, 1),
        "rss_after_warmup_mib": round(rss_warm, 1), "rss_end_mib": round(float(y[-1]), 1),
        "rss_peak_mib": round(float(y.max()), 1), "growth_end_pct": round(growth_end, 2),
        "growth_fit_pct": round(growth_fit, 2), "limit_pct": args.limit,
        "passed": bool(growth <= args.limit),
        "seconds_per_image": round((t_end - t_warm) / args.count, 3),
        "total_s": round(t_end - t0, 1), "cpu_count": os.cpu_count(),
        "loadavg_1min_end": os.getloadavg()[0],
        "machine": platform.machine(),
        "points": [[int(a), round(float(b), 1)] for a, b in points],
    }
    print()
    print("| samples after warm-up | quality | device | purge | RSS after warm-up | RSS at end "
          "| growth (end) | growth (fit) | limit | s/img |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.count} | {args.quality} {args.resolution}² | {gen.device} | "
          f"{'yes' if row['purge'] else 'no'} | {rss_warm:.0f} MiB | {y[-1]:.0f} MiB | "
          f"{growth_end:+.2f}% | {growth_fit:+.2f}% | {args.limit:g}% | "
          f"{row['seconds_per_image']:.2f} |")
    print("PASS" if row["passed"] else "FAIL", f"(growth {growth:+.2f}% vs limit {args.limit:g}%)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=2))
    return 0 if row["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
