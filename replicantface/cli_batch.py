"""Sub-commands for large runs: ``batch`` and ``validate``.

    replicantface batch --count N --out DIR [--shards K] [--workers W]
        [--scheduler tcp://HOST:PORT [--connect-timeout S]] [--engine papermill|inprocess]
        [--start S] [--seed S]
        [--preset NAME | --config FILE] [--quality Q] [--resolution PX] [--variations M]
        [--cpu] [--render-threads T] [--notebook PATH] [--no-progress]
    replicantface validate DIR [--start S --count N] [--jobs J] [--no-landmarks]

``batch`` exits 0 when every sample of the range is complete, 1 when some failed (a re-run of
the same command redoes exactly those), 2 on bad input before anything is written.
``validate`` exits 0 when the dataset is sound, 1 with a list of bad samples otherwise.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from replicantface.cli import UsageError, check_run_args, check_writable_dir
from replicantface.config import QUALITY, ConfigError, available_presets

EXIT_FAILED = 1


def register(sub) -> None:
    """Add the batch sub-commands to the main parser's subparsers."""
    from replicantface.batch import ENGINES

    b = sub.add_parser(
        "batch", help="sharded, resumable generation on Dask (local processes or a cluster)",
        description="Render faces START .. START+COUNT-1 as shards, one task per shard, on a "
                    "local Dask cluster of single-threaded worker processes or on an existing "
                    "scheduler. Re-running the same command resumes.")
    b.add_argument("--out", required=True, type=Path, help="output folder (shared by all workers)")
    b.add_argument("--count", required=True, type=int, help="number of faces")
    b.add_argument("--shards", type=int,
                   help="number of shards (default: max(workers, count / 500), at most count)")
    b.add_argument("--workers", type=int, default=1,
                   help="local worker processes, one bpy scene each (default 1; ignored with "
                        "--scheduler, where the cluster's workers are used)")
    b.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://HOST:8786")
    b.add_argument("--connect-timeout", type=float, default=30.0,
                   help="seconds to wait for --scheduler (default 30)")
    b.add_argument("--engine", default="papermill", choices=ENGINES,
                   help="papermill: each shard executes notebooks/generate.ipynb in a fresh kernel "
                        "(the executed notebook is kept); inprocess: each shard runs in the worker "
                        "process on its warm scene (default papermill)")
    b.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    b.add_argument("--start", type=int, default=0, help="first face index (default 0)")
    b.add_argument("--preset", default="default",
                   help=f"randomization preset: {', '.join(available_presets())}")
    b.add_argument("--config", type=Path,
                   help="TOML file with randomizer settings (overrides --preset)")
    b.add_argument("--quality", default="preview", help=f"render quality: {', '.join(QUALITY)}")
    b.add_argument("--resolution", type=int, help="image side in pixels (default: the quality's)")
    b.add_argument("--variations", type=int, default=0,
                   help="variation mode: M expression/lighting variations per face "
                        "(default 0: off)")
    b.add_argument("--cpu", action="store_true", help="render on the CPU even if a GPU is present")
    b.add_argument("--render-threads", type=int, default=0,
                   help="Cycles CPU threads per worker (default: cores / workers locally, all "
                        "cores on a cluster)")
    b.add_argument("--notebook", type=Path, help="notebook to run per shard (default: the bundled "
                                                 "notebooks/generate.ipynb)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_batch)

    v = sub.add_parser("validate", help="check every sample of a dataset folder",
                       description="Check files, label keys and shapes, landmarks against the "
                                   "mask, mask classes, and missing or duplicate indices.")
    v.add_argument("dataset", type=Path)
    v.add_argument("--start", type=int, help="first expected face index (with --count)")
    v.add_argument("--count", type=int, help="expected number of faces (with --start, default 0)")
    v.add_argument("--jobs", type=int, default=1, help="processes reading samples (default 1)")
    v.add_argument("--no-landmarks", action="store_true", help="skip the landmark-on-mask check")
    v.add_argument("--max-listed", type=int, default=50, help="bad samples listed (default 50)")
    v.set_defaults(func=cmd_validate)


def _check_batch_args(args) -> None:
    check_run_args(args)
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.shards is not None and not 1 <= args.shards <= args.count:
        raise UsageError(f"--shards must be in [1, --count={args.count}], got {args.shards}")
    if args.render_threads < 0:
        raise UsageError(f"--render-threads must be 0 or more, got {args.render_threads}")
    if args.scheduler is not None:
        _check_scheduler_address(args.scheduler)
    if not (math.isfinite(args.connect_timeout) and args.connect_timeout > 0):
        raise UsageError(f"--connect-timeout must be a positive number of seconds, got "
                         f"{args.connect_timeout}")
    if args.engine == "papermill":
        from replicantface.batch import NOTEBOOK, read_notebook

        nb = args.notebook or NOTEBOOK
        if not Path(nb).is_file():
            raise UsageError(f"notebook not found: {nb}")
        try:
            read_notebook(nb)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc


def _check_scheduler_address(address: str) -> None:
    """A Dask address SCHEME://HOST:PORT whose scheme this command can connect with."""
    usage = f"--scheduler must be an address like tcp://HOST:8786, got {address!r}"
    if "://" not in address:
        raise UsageError(usage)
    from distributed.comm import get_address_host_port, parse_address

    # inproc only works inside one process, and distributed's ucx connector is a stub.
    schemes = ("tcp", "tls", "ws", "wss")
    scheme, _ = parse_address(address)
    if scheme not in schemes:
        raise UsageError(f"{usage} (scheme {scheme!r}; choose from {', '.join(schemes)})")
    try:
        host, port = get_address_host_port(address)
    except ValueError as exc:
        raise UsageError(f"{usage} ({exc})") from exc
    if not host or not 1 <= port <= 65535:
        raise UsageError(f"{usage} (the host must be named and the port in [1, 65535])")


def cmd_batch(args) -> int:
    _check_batch_args(args)
    from replicantface import batch, dataset

    settings = batch.BatchSettings(
        out_dir=str(args.out.resolve()), seed=args.seed, preset=args.preset,
        config=str(args.config.resolve()) if args.config else None, quality=args.quality,
        resolution=args.resolution, variations=args.variations, use_gpu=not args.cpu,
        render_threads=args.render_threads)
    cfg = settings.load_config()  # ConfigError -> exit 2
    resolution = args.resolution or QUALITY[args.quality].resolution
    meta = dataset.dataset_metadata(cfg.to_dict(), args.quality, resolution, args.seed,
                                    args.variations)
    _check_same_settings(args.out, meta)
    new_dirs = [p for p in (args.out, *args.out.parents) if not p.exists()]  # this run makes
    try:
        check_writable_dir(args.out)
        report = batch.run_batch(settings, args.count, start=args.start, shards=args.shards,
                                 workers=args.workers, scheduler=args.scheduler,
                                 engine=args.engine, notebook=args.notebook,
                                 progress=not args.no_progress, metadata=meta,
                                 connect_timeout_s=args.connect_timeout)
    except BaseException as exc:
        dataset.remove_folders(new_dirs[::-1])  # a run that failed before writing leaves nothing
        if (not args.scheduler or not isinstance(exc, OSError | TimeoutError)
                or isinstance(exc, FileNotFoundError | PermissionError)):
            raise
        raise UsageError(f"cannot reach the Dask scheduler at {args.scheduler}: {exc}") from exc
    _print_batch_report(report, args.out)
    return 0 if report.ok else EXIT_FAILED


def _check_same_settings(out: Path, meta: dict) -> None:
    """An existing dataset.json must describe the same generation settings (read-only check)."""
    import json

    path = out / "dataset.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise UsageError(f"{path} is not valid JSON ({exc}); use a new --out folder or fix "
                         "the file") from exc
    except OSError as exc:
        raise UsageError(f"{path} is unreadable ({exc.strerror or exc})") from exc
    if not isinstance(old, dict):
        raise UsageError(f"{path} holds a JSON {type(old).__name__}, not a dataset description; "
                         "use a new --out folder or fix the file")
    meta = json.loads(json.dumps(meta))
    keys = ("config", "quality", "resolution", "seed", "variations")
    changed = [k for k in keys if old.get(k) != meta.get(k)]
    if changed:
        raise UsageError(f"{path} was written with other settings ({', '.join(changed)}); use a "
                         "new --out folder or the same settings to resume")


def _print_batch_report(report, out: Path) -> None:
    new = report.complete - report.complete_before
    line = (f"{report.complete}/{report.samples} complete ({new} new, "
            f"{report.complete_before} already there) -> {out}")
    if report.reports:
        busy = sum(r["wall_s"] - r["setup_s"] for r in report.reports)
        rendered = sum(r["rendered"] for r in report.reports)
        if rendered:
            line += (f"; {report.wall_s:.0f} s wall on {report.workers} worker(s), "
                     f"{busy / rendered:.2f} s/face per worker, "
                     f"{report.wall_s / rendered:.2f} s/face overall")
    print(line)
    if report.manifest.get("recovered"):
        print(f"manifest: {report.manifest['recovered']} sample(s) recorded from their label "
              "file (their writer stopped before its manifest line)")
    for f in report.failures:
        print(f"failed twice: {f['name']} (seed {f['seed']}, index {f['index']}): {f['error']}",
              file=sys.stderr)
    for e in report.shard_errors:
        print(f"shard {e['shard']} (faces {e['start']}..{e['start'] + e['count'] - 1}) failed "
              f"twice: {e['error']}", file=sys.stderr)
    if not report.ok:
        print(f"{report.samples - report.complete} sample(s) missing; run the same command again "
              "to redo them", file=sys.stderr)


def cmd_validate(args) -> int:
    from replicantface.validate import validate_dataset

    if not args.dataset.is_dir():
        raise UsageError(f"dataset folder not found: {args.dataset}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    if args.start is not None and args.start < 0:
        raise UsageError(f"--start must be 0 or more, got {args.start}")
    if args.start is not None and args.count is None:
        raise UsageError("--start needs --count")
    if args.max_listed < 0:
        raise UsageError(f"--max-listed must be 0 or more, got {args.max_listed}")
    try:
        result = validate_dataset(args.dataset, start=args.start or 0, count=args.count,
                                  jobs=args.jobs, landmarks=not args.no_landmarks)
    except ConfigError as exc:  # pragma: no cover - re-raised for the main handler
        raise UsageError(str(exc)) from exc
    print(result.summary())
    if result.ok:
        return 0
    for line in result.problem_lines(args.max_listed):
        print(line)
    return EXIT_FAILED
