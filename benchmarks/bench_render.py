"""Seconds per image at each quality, split into Cycles render vs everything else.

Everything else = anny evaluation + scene update + label maths + writing the three files.
Usage: python benchmarks/bench_render.py [--count 3] [--qualities preview final] [--resolution 640]
Prints a markdown table and writes outputs/benchmarks/render.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--qualities", nargs="+", default=["preview", "final"])
    ap.add_argument("--resolution", type=int, default=640)
    ap.add_argument("--out", type=Path, default=Path("outputs/benchmarks/render.json"))
    args = ap.parse_args()

    from replicantface import dataset
    from replicantface.config import load_preset
    from replicantface.generate import Generator

    rows = []
    gen = None
    for quality in args.qualities:
        if gen is None:
            gen = Generator(load_preset("default"), quality=quality, resolution=args.resolution)
        else:
            gen.set_quality(quality, args.resolution)
        gen.render(gen.params(0, 10_000))  # warm-up: kernels, HDRI load
        render_s, other_s = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.count):
                t0 = time.perf_counter()
                sample = gen.render(gen.params(0, i))
                dataset.write_sample(Path(tmp), dataset.stem(i), sample.rgb, sample.mask, sample.labels)
                total = time.perf_counter() - t0
                render_s.append(sample.timings["render_s"])
                other_s.append(total - sample.timings["render_s"])
        r, o = float(np.mean(render_s)), float(np.mean(other_s))
        rows.append(dict(quality=quality, resolution=args.resolution, device=gen.device, count=args.count,
                         render_s=r, other_s=o, total_s=r + o, overhead_ratio=o / r))
    print("| quality | resolution | device | Cycles s/img | scene+labels+write s/img | total s/img | overhead / render |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['quality']} | {row['resolution']}² | {row['device']} | {row['render_s']:.2f} | "
              f"{row['other_s']:.3f} | {row['total_s']:.2f} | {row['overhead_ratio']:.1%} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
