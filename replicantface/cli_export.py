"""Sub-commands for the training side: ``export 300wlp | h5 | npz-sequences`` and ``evaluate``.

    replicantface export 300wlp DATASET OUT.zip [--parent NAME] [--min-luminance 20]
        [--min-face-px 32] [--max-face-frac 0.667] [--max-yaw-deg 90] [--benchmark-filter]
    replicantface export h5 DATASET OUT.h5
    replicantface export npz-sequences DATASET OUT_DIR
    replicantface evaluate PRED.csv DATASET [--variant NAME] [--no-benchmark-filter]

Formats and frames: docs/training_formats.md. Bad input raises ``cli.UsageError`` (exit 2) before
anything is written.
"""

from __future__ import annotations

import argparse
import csv
import math
import zipfile
from pathlib import Path


def register(sub) -> None:
    """Add the training-side sub-commands to the main parser's subparsers."""
    from replicantface.export_300wlp import ExportFilter

    defaults = ExportFilter()
    e = sub.add_parser("export", help="convert a dataset to training formats")
    fmt = e.add_subparsers(dest="format", required=True)

    w = fmt.add_parser("300wlp", help="AFLW2000-3D / 300W-LP .jpg + .mat pairs (zip or folder)")
    w.add_argument("dataset", type=Path, help="raw dataset folder")
    w.add_argument("out", type=Path, help="OUT.zip, or a folder")
    w.add_argument("--parent", default="replicantface", help="folder name inside the zip")
    w.add_argument("--min-luminance", type=float, default=defaults.min_luminance,
                   help="drop faces whose mean luma (0..255) is below this "
                        f"(default {defaults.min_luminance:g})")
    w.add_argument("--min-face-px", type=float, default=defaults.min_face_px,
                   help="drop face boxes narrower or shorter than this "
                        f"(default {defaults.min_face_px:g})")
    w.add_argument("--max-face-frac", type=float, default=defaults.max_face_frac,
                   help="drop face boxes larger than this fraction of the image side (default 2/3)")
    w.add_argument("--max-yaw-deg", type=float, default=defaults.max_yaw_deg,
                   help=f"drop |yaw| above this (default {defaults.max_yaw_deg:g})")
    w.add_argument("--benchmark-filter", action="store_true",
                   help="also drop samples with any |angle| > 99° (FSA-Net / 6DRepNet protocol)")
    w.add_argument("--no-progress", action="store_true", help="no progress bars")
    w.set_defaults(func=cmd_export_300wlp)

    h = fmt.add_parser("h5", help="one HDF5 file (opentrack trainer style)")
    h.add_argument("dataset", type=Path, help="raw dataset folder")
    h.add_argument("out", type=Path, help="OUT.h5")
    h.add_argument("--no-progress", action="store_true", help="no progress bars")
    h.set_defaults(func=cmd_export_h5)

    s = fmt.add_parser("npz-sequences", help="one .npz per sequence (face-multitask layout)")
    s.add_argument("dataset", type=Path, help="raw dataset folder")
    s.add_argument("out", type=Path, help="output folder")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_export_sequences)

    v = sub.add_parser("evaluate", help="head-pose (and landmark) errors of predictions",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="PRED.csv: header name,pitch,yaw,roll (degrees, AFLW convention), "
                              "optionally followed by x0,y0,...,x67,y67 (pixels).")
    v.add_argument("predictions", type=Path, help="PRED.csv")
    v.add_argument("dataset", type=Path,
                   help="raw dataset folder, 300W-LP-style export, or AFLW2000-3D zip/folder")
    v.add_argument("--variant", help="row label (default: the CSV file name)")
    v.add_argument("--no-benchmark-filter", action="store_true",
                   help="keep samples with |angle| > 99° in the pose errors")
    v.set_defaults(func=cmd_evaluate)


def _filter_from_args(args):
    from replicantface.cli import UsageError
    from replicantface.export_300wlp import ExportFilter

    for flag in ("min_luminance", "min_face_px", "max_face_frac", "max_yaw_deg"):
        value = getattr(args, flag)
        if not math.isfinite(value):
            raise UsageError(f"--{flag.replace('_', '-')} must be a finite number, got {value:g}")
    if not 0.0 <= args.min_luminance <= 255.0:
        raise UsageError(f"--min-luminance must be in [0, 255], got {args.min_luminance:g}")
    if args.min_face_px < 0:
        raise UsageError(f"--min-face-px must be 0 or more, got {args.min_face_px:g}")
    if not 0.0 < args.max_face_frac <= 1.0:
        raise UsageError(f"--max-face-frac must be in (0, 1], got {args.max_face_frac:g}")
    if not 0.0 <= args.max_yaw_deg <= 180.0:
        raise UsageError(f"--max-yaw-deg must be in [0, 180], got {args.max_yaw_deg:g}")
    return ExportFilter(min_luminance=args.min_luminance, min_face_px=args.min_face_px,
                        max_face_frac=args.max_face_frac, max_yaw_deg=args.max_yaw_deg,
                        benchmark=args.benchmark_filter)


def _run(fn, *args, **kwargs):
    """Call an exporter; its DatasetError becomes a UsageError (exit 2)."""
    from replicantface.cli import UsageError
    from replicantface.dataset import DatasetError

    try:
        return fn(*args, **kwargs)
    except DatasetError as exc:
        raise UsageError(str(exc)) from exc


def cmd_export_300wlp(args) -> int:
    from replicantface.export_300wlp import export_300wlp

    filt = _filter_from_args(args)
    report = _run(export_300wlp, args.dataset, args.out, parent=args.parent, filt=filt,
                  progress=not args.no_progress)
    print("\n".join(report.lines()))
    return 0


def cmd_export_h5(args) -> int:
    from replicantface.export_h5 import export_h5

    report = _run(export_h5, args.dataset, args.out, progress=not args.no_progress)
    print("\n".join(report.lines()))
    return 0


def cmd_export_sequences(args) -> int:
    from replicantface.export_sequences import export_npz_sequences

    report = _run(export_npz_sequences, args.dataset, args.out, progress=not args.no_progress)
    print("\n".join(report.lines()))
    return 0


def cmd_evaluate(args) -> int:
    from replicantface import metrics
    from replicantface.cli import UsageError
    from replicantface.data import FaceDataset

    if not args.dataset.exists():
        raise UsageError(f"dataset not found: {args.dataset}")
    try:
        pred = metrics.read_predictions_csv(args.predictions)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{args.predictions} is not a text CSV file ({exc})") from exc
    except ValueError as exc:  # PredictionError
        raise UsageError(str(exc)) from exc
    try:
        dataset = FaceDataset(args.dataset)
        if len(dataset) == 0:
            raise UsageError(f"no samples in {args.dataset}")
        result = metrics.evaluate(pred, dataset,
                                  None if args.no_benchmark_filter else metrics.BENCHMARK_LIMIT_DEG)
    except ValueError as exc:  # DatasetError, not a dataset, names not in the dataset
        raise UsageError(str(exc)) from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise UsageError(f"{args.dataset} cannot be read ({exc})") from exc
    variant = args.variant or args.predictions.stem
    p = result.pose
    print(metrics.format_pose_table([(variant, p)]))
    limit = "no filter" if args.no_benchmark_filter else f"{p.dropped} dropped by the ±99° filter"
    print(f"\n{p.count} samples ({limit})")
    if result.landmarks is not None:
        print()
        print(metrics.format_landmark_table([(variant, result.landmarks)]))
        counts = ", ".join(f"{lo:g}-{hi:g}°: {c}" for (lo, hi), (_, c)
                           in zip(metrics.YAW_BINS_DEG, result.landmarks.box_bins))
        print(f"\nyaw bins: {counts}")
    return 0
