"""Sharded, resumable batch generation: plan shards, run one shard, merge manifests, drive Dask.

A batch output folder holds, next to the samples (``dataset.py``'s layout)::

    dataset.json                         generation settings; a re-run must match them
    manifest/shard-000500-000999.jsonl   one JSON line per sample attempt of faces 500..999
    manifest.jsonl                       merged: one line per complete sample, sorted by name
    reports/shard-000500-000999.json     the ShardReport of the shard's latest run
    logs/shard-000500-000999.log         what Blender and the shard's kernel printed
    notebooks/shard-000500-000999.ipynb  the shard's executed notebook (papermill engine)

Crash safety comes from ``dataset.write_sample``: every file goes to a temporary name and is
renamed, the ``.npz`` last, so a sample is complete exactly when its three files exist. A re-run
skips complete samples and redoes the rest; since a sample depends only on ``(seed, index)``,
the redone files equal what the crashed run would have written. Each shard appends to its own
manifest file (one ``os.write`` of one line, ``O_APPEND``), so no two processes append to the
same file, which also holds on network file systems where ``O_APPEND`` is not atomic;
``merge_manifests`` folds them into ``manifest.jsonl``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from replicantface import dataset

log = logging.getLogger(__name__)

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "generate.ipynb"
MANIFEST = "manifest.jsonl"
ENGINES = ("papermill", "inprocess")
# A shard stops after this many samples in a row failed twice: its worker is broken (a lost GPU,
# a full disk), and the rest of the batch is better served by reporting it than by grinding on.
MAX_CONSECUTIVE_FAILURES = 5


# ----------------------------------------------------------------------------------------------
# Planning


@dataclass(frozen=True)
class ShardSpec:
    """Face indices ``start .. start + count - 1`` of a batch, run as one task."""

    shard: int
    start: int
    count: int


def plan_shards(start: int, count: int, shards: int) -> list[ShardSpec]:
    """Split ``count`` faces from ``start`` into ``shards`` contiguous ranges (sizes within 1)."""
    if count < 1 or not 1 <= shards <= count:
        raise ValueError(f"need 1 <= shards <= count, got shards={shards}, count={count}")
    base, extra = divmod(count, shards)
    specs, first = [], start
    for k in range(shards):
        n = base + (k < extra)
        specs.append(ShardSpec(k, first, n))
        first += n
    return specs


def default_shards(count: int, workers: int, per_shard: int = 500) -> int:
    """Enough shards to keep every worker busy and to bound the work a crash redoes."""
    return max(1, min(count, max(workers, math.ceil(count / per_shard))))


@dataclass(frozen=True)
class BatchSettings:
    """What every shard of a batch shares. Paths are absolute strings (they travel to workers)."""

    out_dir: str
    seed: int = 0
    preset: str = "default"
    config: str | None = None
    quality: str = "preview"
    resolution: int | None = None
    variations: int = 0
    use_gpu: bool = True
    render_threads: int = 0  # 0: Blender's default (all cores)

    def notebook_parameters(self, spec: ShardSpec, worker_id: str) -> dict:
        """The notebook's ``parameters`` cell values for one shard."""
        return {"out_dir": self.out_dir, "count": spec.count, "start": spec.start,
                "seed": self.seed, "preset": self.preset, "config": self.config,
                "quality": self.quality, "resolution": self.resolution,
                "variations": self.variations, "shard": spec.shard, "worker_id": worker_id,
                "use_gpu": self.use_gpu, "render_threads": self.render_threads,
                "merge_manifest": False}

    def load_config(self):
        from replicantface.config import load_config, load_preset

        return load_config(Path(self.config)) if self.config else load_preset(self.preset)


def batch_stems(start: int, count: int, variations: int = 0) -> list[str]:
    return [dataset.stem(i, v) for i, v in dataset.sample_jobs(start, count, variations)]


# ----------------------------------------------------------------------------------------------
# One shard


@dataclass
class ShardReport:
    """What one run of a shard did. ``failures``: samples that failed twice (name, seed, error)."""

    shard: int
    start: int
    count: int
    samples: int
    rendered: int
    skipped: int
    failures: list = field(default_factory=list)
    retried: int = 0
    wall_s: float = 0.0
    render_s: float = 0.0
    setup_s: float = 0.0
    worker: str = ""
    host: str = ""
    pid: int = 0
    device: str = ""
    aborted: str | None = None
    names: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def seconds_per_image(self) -> float:
        return (self.wall_s - self.setup_s) / self.rendered if self.rendered else float("nan")


_WARM: dict = {}


def warm_generator(cfg, quality: str, resolution: int | None, use_gpu: bool = True,
                   render_threads: int = 0):
    """The process's one Generator (one anny model, one Blender scene), built on first use.

    Later shards in the same process reuse it and only switch config, quality or resolution.
    """
    from replicantface.generate import Generator

    gen = _WARM.get("generator")
    if gen is None or gen.use_gpu != use_gpu:
        gen = Generator(cfg, quality=quality, resolution=resolution, use_gpu=use_gpu)
        _WARM["generator"] = gen
    else:
        gen.cfg = cfg  # only the samplers read it
        gen.set_quality(quality, resolution or _quality_resolution(quality))
    _set_render_threads(gen, render_threads)
    return gen


def _quality_resolution(quality: str) -> int:
    from replicantface.config import QUALITY

    return QUALITY[quality].resolution


def _set_render_threads(gen, threads: int) -> None:
    # Several workers on one machine each default to all cores; a fixed share avoids
    # oversubscription. scene.apply_quality resets this, so it is set after it.
    render = gen.handles.scene.render
    if threads > 0:
        render.threads_mode = "FIXED"
        render.threads = threads
    else:
        render.threads_mode = "AUTO"


def purge_unused(gen) -> None:
    """Drop orphan Blender data blocks after a sample so that memory stays flat."""
    from replicantface import scene

    if gen.handles is not None:
        scene.purge_orphans()


def params_hash(params_json: str) -> str:
    """sha256 of a sample's parameter JSON (``SampleParams.to_json``), hex, first 16 digits."""
    return hashlib.sha256(params_json.encode()).hexdigest()[:16]


def manifest_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "manifest"


def shard_name(start: int, count: int) -> str:
    """Files of a shard are named by its face range, so batches over other ranges writing into
    the same folder never share a manifest file."""
    return f"shard-{start:06d}-{start + count - 1:06d}"


def shard_manifest_path(out_dir: Path, start: int, count: int) -> Path:
    return manifest_dir(out_dir) / f"{shard_name(start, count)}.jsonl"


def report_path(out_dir: Path, start: int, count: int) -> Path:
    return Path(out_dir) / "reports" / f"{shard_name(start, count)}.json"


def notebook_path(out_dir: Path, start: int, count: int) -> Path:
    return Path(out_dir) / "notebooks" / f"{shard_name(start, count)}.ipynb"


def log_path(out_dir: Path, start: int, count: int) -> Path:
    return Path(out_dir) / "logs" / f"{shard_name(start, count)}.log"


def append_jsonl(path: Path, record: dict) -> None:
    """Append one line with a single ``write`` on an ``O_APPEND`` descriptor."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def remove_stale_temps(out_dir: Path, name: str) -> None:
    """Remove temp files a killed writer left for sample ``name`` (``.{file}.XXXX.tmp``)."""
    for suffix in (".jpg", "_mask.png", ".npz"):
        for tmp in Path(out_dir).glob(f".{name}{suffix}.*.tmp"):
            tmp.unlink(missing_ok=True)


def default_worker_id() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def run_shard(out_dir, start: int, count: int, seed: int = 0, preset: str = "default",
              config: str | None = None, quality: str = "preview", resolution: int | None = None,
              variations: int = 0, worker_id: str | None = None, shard: int = 0,
              use_gpu: bool = True, render_threads: int = 0, progress: bool = False,
              purge: bool = True, generator=None) -> ShardReport:
    """Render the samples of faces ``start .. start + count - 1`` that are not complete yet.

    A sample that raises is logged with its seed and index and tried once more; a second
    failure is recorded in the report and the shard goes on. Every attempt appends a line to
    ``manifest/shard-FIRST-LAST.jsonl``; the report goes to ``reports/shard-FIRST-LAST.json``.
    ``purge``: drop orphan Blender data after each sample (off only to measure what it saves).
    ``generator``: an object with ``params``/``render``/``device``/``resolution`` (tests);
    default: this process's warm ``Generator``.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    settings = BatchSettings(str(out), seed, preset, config, quality, resolution, variations,
                             use_gpu, render_threads)
    cfg = settings.load_config()
    gen = generator or warm_generator(cfg, quality, resolution, use_gpu, render_threads)
    meta = dataset.dataset_metadata(cfg.to_dict(), quality, gen.resolution, seed, variations)
    out.mkdir(parents=True, exist_ok=True)
    dataset.write_metadata(out, meta)
    manifest_dir(out).mkdir(exist_ok=True)
    (out / "reports").mkdir(exist_ok=True)
    manifest = shard_manifest_path(out, start, count)
    worker_id = worker_id or default_worker_id()
    host, pid = socket.gethostname(), os.getpid()

    jobs = dataset.sample_jobs(start, count, variations)
    todo = [job for job in jobs if not dataset.is_complete(out, dataset.stem(*job))]
    report = ShardReport(shard=shard, start=start, count=count, samples=len(jobs), rendered=0,
                         skipped=len(jobs) - len(todo), worker=worker_id, host=host, pid=pid,
                         device=str(getattr(gen, "device", "")),
                         names=[dataset.stem(*job) for job in jobs])
    report.setup_s = time.perf_counter() - t_start
    from tqdm import tqdm

    consecutive = 0
    bar = tqdm(todo, desc=f"shard {shard} ({report.device})", unit="face", disable=not progress,
               mininterval=2.0, file=sys.stderr)
    for index, variation in bar:
        name = dataset.stem(index, variation)
        remove_stale_temps(out, name)
        base = {"name": name, "index": index, "variation": variation, "seed": seed,
                "shard": shard, "worker": worker_id, "host": host, "pid": pid,
                "device": report.device}
        for attempt in (1, 2):
            t0 = time.perf_counter()
            try:
                params = gen.params(seed, index, variation)
                sample = gen.render(params)
                t1 = time.perf_counter()
                dataset.write_sample(out, name, sample.rgb, sample.mask, sample.labels)
                t2 = time.perf_counter()
            except Exception as exc:
                err = f"{type(exc).__name__}: {exc}"
                log.warning("sample %s (seed %d, index %d) failed on attempt %d: %s", name, seed,
                            index, attempt, err)
                append_jsonl(manifest, dict(base, status="error", attempt=attempt, error=err,
                                            traceback=traceback.format_exc(limit=8),
                                            time=_now()))
                if attempt == 1:
                    report.retried += 1
                else:
                    report.failures.append({"name": name, "index": index,
                                            "variation": variation, "seed": seed, "error": err})
                continue
            timings = {k: round(float(v), 4) for k, v in sample.timings.items()}
            timings.update(write_s=round(t2 - t1, 4), total_s=round(t2 - t0, 4))
            append_jsonl(manifest, dict(base, status="ok", attempt=attempt,
                                        params_sha256=params_hash(sample.params.to_json()),
                                        timings=timings, time=_now()))
            report.rendered += 1
            report.render_s += float(sample.timings.get("render_s", 0.0))
            break
        else:
            consecutive += 1
            if consecutive >= MAX_CONSECUTIVE_FAILURES:
                report.aborted = (f"{consecutive} samples in a row failed twice; "
                                  f"last: {report.failures[-1]['error']}")
                log.error("shard %d stops: %s", shard, report.aborted)
                break
            continue
        consecutive = 0
        if purge and generator is None:
            purge_unused(gen)
    bar.close()
    report.wall_s = time.perf_counter() - t_start
    dataset.atomic_write_bytes(report_path(out, start, count),
                               (json.dumps(report.to_dict(), indent=1) + "\n").encode())
    return report


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------------------------
# Manifest


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSON-lines file; a line cut short by a crash is skipped."""
    records = []
    with open(path, "rb") as fh:
        for line in fh:
            try:
                records.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
    return records


def merge_manifests(out_dir: Path) -> dict:
    """Write ``manifest.jsonl``: one line per complete sample, from the shards' manifests.

    A complete sample keeps its latest ``ok`` record. A complete sample without one (its writer
    was killed between the label file and the manifest line) gets a record rebuilt from its
    ``.npz`` with ``"recovered": true`` and no timings. Returns counts and the failures: samples
    whose latest record is an error and that are not complete on disk.
    """
    out = Path(out_dir)
    latest: dict[str, dict] = {}
    last_error: dict[str, dict] = {}
    for path in sorted(manifest_dir(out).glob("shard-*.jsonl")):
        for rec in read_jsonl(path):
            name = rec.get("name")
            if not name:
                continue
            if rec.get("status") == "ok":
                latest[name] = rec
                last_error.pop(name, None)
            else:
                last_error[name] = rec
    names = dataset.sample_names(out)
    lines, recovered = [], 0
    for name in names:
        if not dataset.is_complete(out, name):
            continue
        rec = latest.get(name)
        if rec is None:
            rec = _record_from_npz(out, name)
            recovered += 1
        rec = {k: v for k, v in rec.items() if k != "traceback"}
        lines.append(json.dumps(rec, sort_keys=True))
    dataset.atomic_write_bytes(out / MANIFEST, ("\n".join(lines) + "\n" if lines else "").encode())
    failures = [{"name": n, "index": r.get("index"), "variation": r.get("variation"),
                 "seed": r.get("seed"), "error": r.get("error")}
                for n, r in sorted(last_error.items()) if not dataset.is_complete(out, n)]
    return {"samples": len(lines), "recovered": recovered, "failures": failures}


def _record_from_npz(out: Path, name: str) -> dict:
    with np.load(out / f"{name}.npz") as npz:
        variation = int(npz["variation"]) if "variation" in npz.files else -1
        return {"name": name, "index": int(npz["index"]),
                "variation": None if variation < 0 else variation, "seed": int(npz["seed"]),
                "params_sha256": params_hash(str(npz["params"])), "status": "ok",
                "recovered": True, "timings": None, "worker": None}


# ----------------------------------------------------------------------------------------------
# Notebook summary helpers (the notebook stays thin)


def shard_summary(report: ShardReport, out_dir: Path) -> dict:
    """Counts, seconds per image and the samples the default 300W-LP export filter would drop."""
    from replicantface.export_300wlp import ExportFilter

    out = Path(out_dir)
    rule = ExportFilter()
    reasons: dict[str, int] = {}
    complete = [n for n in report.names if dataset.is_complete(out, n)]
    for name in complete:
        reason = rule.reject_reason(dataset.load_sample(out, name))
        if reason:
            reasons[reason] = reasons.get(reason, 0) + 1
    return {"shard": report.shard, "samples": report.samples, "complete": len(complete),
            "rendered": report.rendered, "skipped": report.skipped,
            "failed": len(report.failures), "retried": report.retried,
            "seconds_per_image": report.seconds_per_image,
            "cycles_share": report.render_s / max(report.wall_s - report.setup_s, 1e-9),
            "setup_s": report.setup_s, "device": report.device,
            "filtered": sum(reasons.values()), "filter_reasons": reasons,
            "filter_rules": rule.describe()}


def summary_markdown(summary: dict) -> str:
    rows = [
        ("samples in shard", summary["samples"]),
        ("complete", summary["complete"]),
        ("rendered now / already complete", f"{summary['rendered']} / {summary['skipped']}"),
        ("failed (after one retry) / retried", f"{summary['failed']} / {summary['retried']}"),
        ("seconds per image", (f"{summary['seconds_per_image']:.2f} "
                              f"({summary['cycles_share']:.0%} in Cycles, {summary['device']})")),
        ("scene set-up", f"{summary['setup_s']:.1f} s"),
        ("filtered by the 300W-LP export filter", summary["filtered"]),
    ]
    rows += [(f"  {reason} ({summary['filter_rules'].get(reason, '')})", n)
             for reason, n in sorted(summary["filter_reasons"].items())]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def shard_contact_sheet(out_dir: Path, names: list[str], path: Path, limit: int = 8,
                        columns: int = 4, tile: int = 128):
    """A small labelled contact sheet of the first ``limit`` complete samples; returns the image."""
    from replicantface.overlay import contact_sheet, draw_overlay

    out = Path(out_dir)
    names = [n for n in names if dataset.is_complete(out, n)][:limit]
    if not names:
        return None
    tiles = []
    for name in names:
        s = dataset.load_sample(out, name)
        tiles.append(draw_overlay(s["image"], s))
    sheet = contact_sheet(tiles, columns=min(columns, len(tiles)), tile=tile,
                          captions=[n[5:] for n in names])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return sheet


# ----------------------------------------------------------------------------------------------
# Driver: one task per shard on Dask


@dataclass
class BatchReport:
    """Outcome of ``run_batch``. ``failures``: samples that failed twice; ``shard_errors``:
    shards whose task itself failed twice (a dead kernel or worker); both are redone by a re-run."""

    samples: int
    complete: int
    complete_before: int
    rendered: int = 0
    failures: list = field(default_factory=list)
    shard_errors: list = field(default_factory=list)
    reports: list = field(default_factory=list)
    wall_s: float = 0.0
    manifest: dict = field(default_factory=dict)
    workers: int = 0

    @property
    def ok(self) -> bool:
        return self.complete == self.samples


def complete_stems(out_dir: Path) -> set[str]:
    """Stems of the complete samples in a folder (one directory scan)."""
    counts: dict[str, int] = {}
    suffixes = (".npz", ".jpg", "_mask.png")
    try:
        entries = os.scandir(out_dir)
    except FileNotFoundError:
        return set()
    with entries:
        for entry in entries:
            name = entry.name
            if name.startswith("face_"):
                for suffix in suffixes:
                    if name.endswith(suffix):
                        key = name[: -len(suffix)]
                        counts[key] = counts.get(key, 0) + 1
                        break
    return {k for k, n in counts.items() if n == len(suffixes)}


def _papermill_task(notebook: dict, settings: BatchSettings, spec: ShardSpec,
                    kernel_name: str = "python3") -> dict:
    """Run one shard through the notebook in a fresh kernel; the executed notebook is kept."""
    import nbformat
    import papermill

    out = Path(settings.out_dir)
    report = report_path(out, spec.start, spec.count)
    report.unlink(missing_ok=True)
    nb_out = notebook_path(out, spec.start, spec.count)
    nb_out.parent.mkdir(parents=True, exist_ok=True)
    with _output_to(log_path(out, spec.start, spec.count)):
        papermill.execute_notebook(
            nbformat.from_dict(notebook), str(nb_out),
            parameters=settings.notebook_parameters(spec, default_worker_id()),
            kernel_name=kernel_name, progress_bar=False, log_output=False, start_timeout=600)
    return json.loads(report.read_text())


@contextlib.contextmanager
def _output_to(path: Path):
    """Send this process's file descriptors 1 and 2 to ``path`` (appending) for a while.

    Blender and the kernel a shard starts write to the descriptors they inherit; without
    this their chatter lands on the batch's terminal, under the progress bar.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


_SCENE_LOCK = None


def _inprocess_task(settings: BatchSettings, spec: ShardSpec) -> dict:
    """Run one shard in the worker process itself, on its warm scene."""
    import threading

    global _SCENE_LOCK
    if _SCENE_LOCK is None:
        _SCENE_LOCK = threading.Lock()
    # One bpy scene per process: shards of a worker with several threads take turns.
    with _SCENE_LOCK, _output_to(log_path(settings.out_dir, spec.start, spec.count)):
        report = run_shard(settings.out_dir, spec.start, spec.count, seed=settings.seed,
                         preset=settings.preset, config=settings.config,
                         quality=settings.quality, resolution=settings.resolution,
                         variations=settings.variations, shard=spec.shard,
                         use_gpu=settings.use_gpu,
                         render_threads=settings.render_threads)
    if report.aborted:
        raise RuntimeError(report.aborted)
    return report.to_dict()


class _Cluster:
    """A Dask client: on a new LocalCluster of single-threaded worker processes, or on the
    scheduler at ``address``."""

    def __init__(self, workers: int, address: str | None = None, timeout_s: float = 30.0):
        from distributed import Client, LocalCluster

        self.cluster = None
        if address:
            try:
                self.client = Client(address, timeout=timeout_s)
            except ValueError as exc:  # a malformed address: nothing to connect to
                raise ConnectionError(f"bad address ({exc})") from exc
        else:
            # memory_limit=0: a bpy worker is ~1.3 GB and the nanny must not restart it for that.
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        memory_limit=0, dashboard_address=None,
                                        host="127.0.0.1", silence_logs=logging.ERROR)
            self.client = Client(self.cluster)

    def n_workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_notebook(path: Path) -> dict:
    """The notebook at ``path`` as a dict; ValueError naming the file if it is not a valid
    Jupyter notebook."""
    import copy
    import warnings

    import nbformat

    try:
        nb = json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise ValueError(f"notebook {path} is unreadable ({exc.strerror or exc})") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"notebook {path} is not valid JSON ({exc})") from exc
    if not isinstance(nb, dict):
        raise ValueError(f"notebook {path} holds a JSON {type(nb).__name__}, not a notebook")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(copy.deepcopy(nb))  # validate() fills in missing cell ids
    except Exception as exc:  # nbformat raises assorted types for malformed notebooks
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(f"notebook {path} is not a valid Jupyter notebook ({reason})") from exc
    return nb


def run_batch(settings: BatchSettings, count: int, start: int = 0, shards: int | None = None,
              workers: int = 1, scheduler: str | None = None, engine: str = "papermill",
              notebook: Path | None = None, progress: bool = True, poll_s: float = 1.0,
              shard_retries: int = 1, metadata: dict | None = None,
              connect_timeout_s: float = 30.0) -> BatchReport:
    """Render faces ``start .. start + count - 1`` as shards on Dask; resumes what is there.

    Each shard is one task. ``engine="papermill"`` executes ``notebooks/generate.ipynb`` per
    shard in a fresh kernel started by the worker (one scene per shard);
    ``engine="inprocess"`` calls ``run_shard`` in the worker process (one scene per worker).
    A shard task that fails (its kernel or worker died) is submitted again ``shard_retries``
    times; it resumes from its complete samples. Progress is one bar over all samples, fed by
    counting complete samples on disk. ``metadata`` (``dataset.dataset_metadata``) is written
    to ``dataset.json`` once the cluster is up, so a failed connection leaves nothing behind.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    from tqdm import tqdm

    t0 = time.perf_counter()
    out = Path(settings.out_dir)
    variations = settings.variations
    stems = set(batch_stems(start, count, variations))
    present = complete_stems(out) & stems
    report = BatchReport(samples=len(stems), complete=len(present), complete_before=len(present))
    if len(present) < len(stems):
        nb = read_notebook(notebook or NOTEBOOK) if engine == "papermill" else None
        with _Cluster(workers, scheduler, connect_timeout_s) as cluster:
            if metadata is not None:
                dataset.write_metadata(out, metadata)
            report.workers = cluster.n_workers()
            n_shards = shards or default_shards(count, report.workers if scheduler else workers)
            todo = [s for s in plan_shards(start, count, n_shards)
                    if not set(batch_stems(s.start, s.count, variations)) <= present]
            if scheduler is None and settings.render_threads == 0:
                settings = dataclasses.replace(
                    settings, render_threads=max(1, (os.cpu_count() or 1) // workers))
            _drive(cluster.client, settings, todo, engine, nb, stems, report, progress, poll_s,
                   shard_retries, tqdm)
    report.manifest = merge_manifests(out)
    report.complete = len(complete_stems(out) & stems)
    report.wall_s = time.perf_counter() - t0
    return report


def _drive(client, settings, todo, engine, nb, stems, report, progress, poll_s, shard_retries,
           tqdm) -> None:
    out = Path(settings.out_dir)

    def submit(spec, attempt):
        key = f"replicantface-shard-{spec.shard:04d}-try{attempt}-{os.getpid()}-{time.time_ns()}"
        if engine == "papermill":
            return client.submit(_papermill_task, nb, settings, spec, key=key, pure=False)
        return client.submit(_inprocess_task, settings, spec, key=key, pure=False)

    pending = {submit(spec, 0): (spec, 0) for spec in todo}
    bar = tqdm(total=len(stems), initial=report.complete_before, unit="face", desc="batch",
               disable=not progress, dynamic_ncols=True, smoothing=0.1)
    first_seen = None  # (time, count) when the first new sample appeared: the rate starts there
    try:
        while pending:
            time.sleep(poll_s)
            n = len(complete_stems(out) & stems)
            bar.update(n - bar.n)
            now = time.time()
            if first_seen is None and n > report.complete_before:
                first_seen = (now, n)
            elif first_seen is not None and n > first_seen[1]:
                rate = (n - first_seen[1]) / (now - first_seen[0])
                left_s = (len(stems) - n) / rate
                finish = datetime.fromtimestamp(now + left_s)
                bar.set_postfix_str(f"finish ≈ {finish:%H:%M}" if left_s < 86400
                                    else f"finish ≈ {finish:%Y-%m-%d %H:%M}")
            for fut in [f for f in pending if f.done()]:
                spec, attempt = pending.pop(fut)
                if fut.status == "finished":
                    shard_report = fut.result()
                    report.reports.append(shard_report)
                    report.rendered += shard_report["rendered"]
                    report.failures.extend(shard_report["failures"])
                    continue
                err = _failure_text(fut)
                if attempt < shard_retries:
                    log.warning("shard %d failed (%s); running it again", spec.shard, err)
                    bar.write(f"shard {spec.shard} failed ({err}); running it again",
                              file=sys.stderr)
                    pending[submit(spec, attempt + 1)] = (spec, attempt + 1)
                else:
                    report.shard_errors.append({"shard": spec.shard, "start": spec.start,
                                                "count": spec.count, "error": err})
        bar.update(len(complete_stems(out) & stems) - bar.n)
    finally:
        for fut in pending:
            fut.cancel()
        bar.close()


def _failure_text(fut) -> str:
    """One line on why a shard's task failed (the last line of the error's message)."""
    if fut.status == "cancelled":
        return "task cancelled (the scheduler lost it)"
    exc = fut.exception()
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"
