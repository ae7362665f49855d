"""Cost of the appearance layer: hair and accessory fitting, appearance updates, render time.

    .venv/bin/python benchmarks/bench_appearance.py [--count 6] [--resolution 320] [--quality preview]

Prints, measured in one run on this machine:
- ``hair_strands`` seconds per hairstyle (numpy strand growth, per sample);
- ``build_accessories`` seconds per accessory (numpy fitting, per sample);
- ``apply_appearance`` seconds per call (scene update);
- Cycles seconds per image for the same samples rendered bare (bald, nothing worn) and as
  sampled, and their ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=6, help="samples rendered bare and dressed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", type=int, default=320)
    ap.add_argument("--quality", default="preview")
    args = ap.parse_args()

    from replicantface import accessories, hair, labels, scene
    from replicantface.config import load_preset
    from replicantface.generate import Generator

    gen = Generator(load_preset("default"), quality=args.quality, resolution=args.resolution,
                    use_gpu=False)
    p0 = gen.params(args.seed, 0)
    geo, _, _ = gen.pose_human(p0)
    verts = labels.transform_points(np.linalg.inv(geo.head_to_world), geo.vertices)

    print("hair_strands, s per sample (best of 3):")
    for style in hair.HAIRSTYLES:
        h = dataclasses.replace(p0.hair, style=style, beard="full")
        print(f"  {style:14s} {_time(lambda h=h: hair.hair_strands(h, verts, gen.hair_tables)):.3f}")

    rng = np.random.default_rng(args.seed)
    acc_s = {}
    for name in accessories.ACCESSORIES:
        worn = accessories.wear(accessories.NONE, accessories.choice_for(name, rng))
        acc_s[name] = _time(lambda w=worn: accessories.build_accessories(w, verts, gen.accessory_tables))
    values = np.array(list(acc_s.values()))
    slowest = max(acc_s, key=acc_s.get)
    print(f"build_accessories, s per accessory: median {np.median(values):.3f}, "
          f"slowest {slowest} {acc_s[slowest]:.3f}")

    apps = [gen.params(args.seed, i).appearance for i in range(6)]
    t0 = time.perf_counter()
    for a in apps * 3:
        scene.apply_appearance(gen.handles, a)
    print(f"apply_appearance: {(time.perf_counter() - t0) / (3 * len(apps)) * 1000:.1f} ms per call")

    bare_s, dressed_s = [], []
    for i in range(args.count):
        p = gen.params(args.seed, i)
        bare = dataclasses.replace(p, accessories=accessories.NONE,
                                   hair=dataclasses.replace(p.hair, style="bald", beard="none"))
        bare_s.append(gen._render_once(bare).timings["render_s"])
        sample = gen._render_once(p)
        dressed_s.append(sample.timings["render_s"])
        print(f"  #{i} {p.hair.style:13s} {p.hair.beard:10s} {'+'.join(p.accessories.names) or '-':28s} "
              f"bare {bare_s[-1]:.2f} s, as sampled {dressed_s[-1]:.2f} s")
    print(f"Cycles at {args.resolution}px {args.quality}: bare {np.mean(bare_s):.2f} s, as sampled "
          f"{np.mean(dressed_s):.2f} s per image; ratio {np.mean(dressed_s) / np.mean(bare_s):.2f}")


if __name__ == "__main__":
    main()
