"""Command line: ``replicantface generate | sheet | gallery | poses`` (+ export, evaluate, batch, validate).

Bad input (a bad count, an unknown preset, an unwritable folder, a bad config value) prints one
line naming the problem and exits with code 2 before anything is written. I/O failures while
generating (a full disk) exit with code 1; completed samples stay valid and a re-run resumes.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import tempfile
import time
from pathlib import Path

from replicantface.config import QUALITY, ConfigError, available_presets, load_config, load_preset

EXIT_USAGE = 2
EXIT_IO = 1
SHEET_MAX_COLUMNS = 1024
SHEET_MAX_TILE = 4096
# The pose plot holds about 0.7 kB per pose at its peak: 1e6 poses need ~0.7 GB.
POSES_MAX_COUNT = 1_000_000


class UsageError(Exception):
    """Bad command-line input; reported with exit code 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="replicantface", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="render a dataset of labelled faces")
    g.add_argument("--out", required=True, type=Path, help="output folder")
    g.add_argument("--count", required=True, type=int, help="number of samples")
    g.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    g.add_argument("--start", type=int, default=0, help="first sample index (default 0)")
    g.add_argument("--preset", default="default",
                   help=f"randomization preset: {', '.join(available_presets())}")
    g.add_argument("--config", type=Path, help="TOML file with randomizer settings (overrides --preset)")
    g.add_argument("--quality", default="preview", help=f"render quality: {', '.join(QUALITY)}")
    g.add_argument("--resolution", type=int, help="image side in pixels (default: the quality's)")
    g.add_argument("--hdri-dir", type=Path, action="append", default=[],
                   help="extra folder of .hdr/.exr environment maps (repeatable); assets/hdris/ "
                        "and Blender's 8 bundled maps are always used")
    g.add_argument("--variations", type=int, default=0,
                   help="variation mode: per face one neutral sample plus M variations of expression "
                        "and lighting, named face_{i:06d}_{j:02d} (default 0: off)")
    g.add_argument("--cpu", action="store_true", help="render on the CPU even if a GPU is present")

    s = sub.add_parser("sheet", help="contact sheet of a dataset with the labels drawn")
    s.add_argument("dataset", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--columns", type=int, default=4)
    s.add_argument("--tile", type=int, default=320)
    s.add_argument("--plain", action="store_true", help="images only, no labels drawn")
    s.add_argument("--limit", type=int, default=64, help="at most this many samples")

    y = sub.add_parser("gallery", help="contact sheet of random faces, or of every hairstyle, "
                                       "accessory or skin tone")
    y.add_argument("--count", type=int, default=64, help="faces on a random or skin sheet (default 64)")
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--out", type=Path, required=True, help=".jpg or .png file")
    y.add_argument("--category", default="random",
                   help="random (default), hair, accessories or skin")
    y.add_argument("--preset", default="default")
    y.add_argument("--config", type=Path)
    y.add_argument("--quality", default="preview", help=f"render quality: {', '.join(QUALITY)}")
    y.add_argument("--resolution", type=int, default=256, help="render size per face (default 256)")
    y.add_argument("--columns", type=int, default=8)
    y.add_argument("--cpu", action="store_true", help="render on the CPU even if a GPU is present")

    h = sub.add_parser("poses", help="histograms of a preset's label poses, without rendering")
    h.add_argument("--preset", default="default")
    h.add_argument("--config", type=Path)
    h.add_argument("--count", type=int, default=100_000)
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--out", type=Path, required=True, help="PNG file")

    from replicantface import cli_batch, cli_export

    cli_export.register(sub)
    cli_batch.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "generate":
            return cmd_generate(args)
        if args.command == "sheet":
            return cmd_sheet(args)
        if args.command == "gallery":
            return cmd_gallery(args)
        if args.command == "poses":
            return cmd_poses(args)
        if hasattr(args, "func"):
            return args.func(args)
    except (UsageError, ConfigError) as exc:
        print(f"replicantface {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        reason = "disk full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"replicantface {args.command}: error: {reason}{where}", file=sys.stderr)
        return EXIT_IO
    return EXIT_USAGE


def check_writable_dir(path: Path) -> None:
    """Create ``path`` if needed and prove a file can be written there, or raise UsageError."""
    existed = path.exists()
    if existed and not path.is_dir():
        raise UsageError(f"--out {path} exists and is not a folder")
    above = path.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise UsageError(f"--out {path} is not writable ({above} is a file, not a folder)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write_probe_")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if not existed and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        raise UsageError(f"--out {path} is not writable ({exc.strerror or exc})") from exc


def check_run_args(args) -> None:
    """The checks every rendering command shares (generate, batch); raises UsageError."""
    if args.count < 1:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    if args.start < 0:
        raise UsageError(f"--start must be 0 or more, got {args.start}")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    if args.quality not in QUALITY:
        raise UsageError(f"unknown --quality {args.quality!r}; choose from {', '.join(QUALITY)}")
    if args.resolution is not None and not 32 <= args.resolution <= 4096:
        raise UsageError(f"--resolution must be in [32, 4096], got {args.resolution}")
    if not 0 <= args.variations <= 99:
        raise UsageError(f"--variations must be in [0, 99], got {args.variations}")


def cmd_generate(args) -> int:
    check_run_args(args)
    cfg = load_config(args.config) if args.config else load_preset(args.preset)
    for folder in args.hdri_dir:
        if not folder.is_dir():
            raise UsageError(f"--hdri-dir {folder} is not a folder")
    check_writable_dir(args.out)

    from tqdm import tqdm

    from replicantface import dataset
    from replicantface.generate import Generator

    gen = Generator(cfg, quality=args.quality, resolution=args.resolution, use_gpu=not args.cpu,
                    hdri_dirs=tuple(args.hdri_dir))
    meta = dataset.dataset_metadata(cfg.to_dict(), args.quality, gen.resolution, args.seed,
                                    args.variations)
    try:
        dataset.write_metadata(args.out, meta)
    except FileExistsError as exc:
        raise UsageError(str(exc)) from exc
    jobs = dataset.sample_jobs(args.start, args.count, args.variations)
    todo = [job for job in jobs if not dataset.is_complete(args.out, dataset.stem(*job))]
    skipped = len(jobs) - len(todo)
    t0 = time.perf_counter()
    render_s = 0.0
    for index, variation in tqdm(todo, desc=f"rendering ({gen.device})", unit="face"):
        sample = gen.render(gen.params(args.seed, index, variation))
        dataset.write_sample(args.out, dataset.stem(index, variation), sample.rgb, sample.mask,
                             sample.labels)
        render_s += sample.timings["render_s"]
    total = time.perf_counter() - t0
    done = len(todo)
    per = f", {total / done:.1f} s/face ({render_s / max(total, 1e-9):.0%} in Cycles)" if done else ""
    print(f"{done} rendered, {skipped} already complete -> {args.out}{per}")
    return 0


def _check_out_folder(out: Path) -> None:
    """UsageError unless the folder of the file ``out`` exists or can be made (nothing is made)."""
    from replicantface.dataset import DatasetError, check_output_folder

    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; name a file")
    try:
        check_output_folder(out.parent)
    except DatasetError as exc:
        raise UsageError(f"--out {out}: {exc}") from exc


def cmd_sheet(args) -> int:
    from replicantface.dataset import DatasetError
    from replicantface.overlay import SHEET_FORMATS, dataset_sheet

    if not 1 <= args.columns <= SHEET_MAX_COLUMNS:
        raise UsageError(f"--columns must be in [1, {SHEET_MAX_COLUMNS}], got {args.columns}")
    if not 1 <= args.tile <= SHEET_MAX_TILE:
        raise UsageError(f"--tile must be in [1, {SHEET_MAX_TILE}], got {args.tile}")
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    if args.out.suffix.lower() not in SHEET_FORMATS:
        raise UsageError(f"--out must end in {', '.join(SHEET_FORMATS)}, got {args.out}")
    if not args.dataset.is_dir():
        raise UsageError(f"dataset folder not found: {args.dataset}")
    _check_out_folder(args.out)
    try:
        out = dataset_sheet(args.dataset, args.out, columns=args.columns, tile=args.tile,
                            limit=args.limit, plain=args.plain)
    except (FileNotFoundError, DatasetError) as exc:
        raise UsageError(str(exc)) from exc
    print(f"contact sheet -> {out}")
    return 0


def cmd_poses(args) -> int:
    if not 1 <= args.count <= POSES_MAX_COUNT:
        raise UsageError(f"--count must be in [1, {POSES_MAX_COUNT}] (about 0.7 kB of memory per "
                         f"pose), got {args.count}")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    if args.out.suffix.lower() != ".png":
        raise UsageError(f"--out must be a .png file, got {args.out}")
    cfg = load_config(args.config) if args.config else load_preset(args.preset)
    _check_out_folder(args.out)
    from replicantface.dataset import make_folders, remove_folders
    from replicantface.pose_plots import plot_pose_histograms

    t0 = time.perf_counter()
    created = make_folders(args.out.parent)
    try:
        stats = plot_pose_histograms(cfg, args.count, args.out, seed=args.seed)
    except BaseException:
        remove_folders(created)
        raise
    p, y, r = stats["mean_deg"]
    sp, sy, sr = stats["sd_deg"]
    print(f"{args.count} poses in {time.perf_counter() - t0:.1f} s -> {args.out}")
    print(f"label pitch {p:+.1f} ± {sp:.1f}, yaw {y:+.1f} ± {sy:.1f}, roll {r:+.1f} ± {sr:.1f} deg; "
          f"{stats['share_over_99deg']:.1%} beyond ±99°")
    return 0


def cmd_gallery(args) -> int:
    from replicantface.gallery import CATEGORIES

    if not 1 <= args.count <= 1024:
        raise UsageError(f"--count must be in [1, 1024], got {args.count}")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    if args.category not in CATEGORIES:
        raise UsageError(f"unknown --category {args.category!r}; choose from {', '.join(CATEGORIES)}")
    if args.quality not in QUALITY:
        raise UsageError(f"unknown --quality {args.quality!r}; choose from {', '.join(QUALITY)}")
    if not 32 <= args.resolution <= 4096:
        raise UsageError(f"--resolution must be in [32, 4096], got {args.resolution}")
    if not 1 <= args.columns <= 64:
        raise UsageError(f"--columns must be in [1, 64], got {args.columns}")
    if args.out.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        raise UsageError(f"--out must be a .jpg or .png file, got {args.out}")
    cfg = load_config(args.config) if args.config else load_preset(args.preset)
    check_writable_dir(args.out.parent)

    from replicantface.gallery import gallery_items, render_gallery
    from replicantface.generate import Generator

    t0 = time.perf_counter()
    gen = Generator(cfg, quality=args.quality, resolution=args.resolution, use_gpu=not args.cpu)
    items = gallery_items(gen, args.category, args.seed, args.count)
    out = render_gallery(gen, items, args.out, columns=args.columns, tile=args.resolution)
    print(f"{len(items)} faces in {time.perf_counter() - t0:.0f} s -> {out}")
    return 0
