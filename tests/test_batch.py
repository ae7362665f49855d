"""Batch generation: shard planning, retry and resume logic, and real runs on Dask.

The first half drives ``run_shard`` with a stand-in generator (no Blender): retries, failure
reports, resume, manifests. The second half renders tiny faces (64 px, test quality) through
the command line: on a LocalCluster with a worker's kernel killed by SIGKILL and then the
whole batch killed, followed by a re-run; and on a scheduler and two workers started as
separate processes on 127.0.0.1. Both must give exactly the samples of a clean run.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from replicantface import batch, dataset
from replicantface.cli import main
from replicantface.validate import validate_dataset

ENV = dict(os.environ, PYTHONUNBUFFERED="1")
SEED = 3
TINY = ["--quality", "test", "--resolution", "64", "--cpu", "--seed", str(SEED)]
# Compared between a clean run and a crashed-and-resumed or distributed one.
LABEL_KEYS = ("modelview", "projection", "landmarks_2d", "landmarks_visible", "pose_aflw",
              "vertices", "bbox_face", "gaze", "expression", "params")


# ----------------------------------------------------------------------------------------------
# Planning


def test_plan_shards_covers_the_range_once():
    specs = batch.plan_shards(10, 11, 3)
    assert [(s.shard, s.start, s.count) for s in specs] == [(0, 10, 4), (1, 14, 4), (2, 18, 3)]
    assert batch.plan_shards(0, 1, 1) == [batch.ShardSpec(0, 0, 1)]
    for bad in ((5, 6), (0, 4), (3, 0)):
        with pytest.raises(ValueError):
            batch.plan_shards(0, *bad)
    assert batch.default_shards(100_000, 8) == 200
    assert batch.default_shards(10, 4) == 4
    assert batch.default_shards(3, 8) == 3


# ----------------------------------------------------------------------------------------------
# run_shard with a stand-in generator


@dataclasses.dataclass(frozen=True)
class FakeParams:
    seed: int
    index: int
    variation: int | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


@dataclasses.dataclass(frozen=True)
class FakeSample:
    rgb: np.ndarray
    mask: np.ndarray
    labels: dict
    params: FakeParams
    timings: dict


class FakeGenerator:
    """Renders flat images; ``failures[index]`` render calls of that index raise first."""

    resolution = 16
    device = "FAKE"

    def __init__(self, failures=None):
        self.failures = dict(failures or {})
        self.rendered = []

    def params(self, seed, index, variation=None):
        return FakeParams(seed, index, variation)

    def render(self, params):
        if self.failures.get(params.index, 0) > 0:
            self.failures[params.index] -= 1
            raise RuntimeError(f"boom {params.index}")
        self.rendered.append(params.index)
        labels = {"index": np.int64(params.index), "seed": np.int64(params.seed),
                  "variation": np.int64(-1), "params": np.array(params.to_json())}
        img = np.full((16, 16, 3), params.index, np.uint8)
        return FakeSample(img, np.zeros((16, 16), np.uint8), labels, params,
                          {"scene_s": 0.0, "render_s": 0.01, "labels_s": 0.0})


def shard(out, gen, start=0, count=5, **kw):
    return batch.run_shard(out, start, count, seed=SEED, quality="test", generator=gen,
                           worker_id="w-test", **kw)


def manifest_lines(out):
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_failed_sample_is_retried_once_then_reported(tmp_path):
    gen = FakeGenerator(failures={1: 1, 3: 2})
    report = shard(tmp_path, gen)
    assert report.rendered == 4 and report.retried == 2
    failed = [(f["name"], f["seed"], f["index"]) for f in report.failures]
    assert failed == [("face_000003", SEED, 3)]
    assert "boom 3" in report.failures[0]["error"]
    assert gen.rendered == [0, 1, 2, 4]  # the batch went on after index 3
    records = batch.read_jsonl(batch.shard_manifest_path(tmp_path, 0, 5))
    assert [(r["index"], r["status"], r["attempt"]) for r in records] == [
        (0, "ok", 1), (1, "error", 1), (1, "ok", 2), (2, "ok", 1), (3, "error", 1),
        (3, "error", 2), (4, "ok", 1)]
    ok = records[0]
    assert ok["seed"] == SEED and ok["worker"] == "w-test" and ok["timings"]["render_s"] == 0.01
    assert ok["params_sha256"] == batch.params_hash(FakeParams(SEED, 0).to_json())
    merged = batch.merge_manifests(tmp_path)
    assert merged["samples"] == 4 and [f["index"] for f in merged["failures"]] == [3]
    saved = json.loads(batch.report_path(tmp_path, 0, 5).read_text())
    assert saved["failures"] == report.failures


def test_rerun_skips_complete_redoes_incomplete_never_duplicates(tmp_path):
    shard(tmp_path, FakeGenerator(failures={3: 2}))
    # A crash mid-sample: index 1 lost its label file and left a temp file behind.
    (tmp_path / "face_000001.npz").unlink()
    (tmp_path / ".face_000001.npz.x1y2.tmp").write_bytes(b"half")
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("face_000000*")}
    gen = FakeGenerator()
    report = shard(tmp_path, gen)
    assert gen.rendered == [1, 3] and report.skipped == 3 and report.rendered == 2
    assert not list(tmp_path.glob(".face_*.tmp"))
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("face_000000*")} == before
    batch.merge_manifests(tmp_path)
    names = [r["name"] for r in manifest_lines(tmp_path)]
    assert names == [f"face_{i:06d}" for i in range(5)]
    assert validate_dataset(tmp_path, count=5, landmarks=False).missing == []
    # A third run has nothing to do.
    gen = FakeGenerator()
    assert shard(tmp_path, gen).rendered == 0 and gen.rendered == []


def test_merge_recovers_samples_without_a_manifest_line(tmp_path):
    shard(tmp_path, FakeGenerator(), count=3)
    path = batch.shard_manifest_path(tmp_path, 0, 3)
    lines = path.read_bytes().splitlines(keepends=True)
    # The writer died between the label file of index 2 and its manifest line, mid-write.
    path.write_bytes(b"".join(lines[:2]) + lines[2][:25])
    merged = batch.merge_manifests(tmp_path)
    assert merged == {"samples": 3, "recovered": 1, "failures": []}
    rec = manifest_lines(tmp_path)[2]
    assert rec["recovered"] is True and rec["index"] == 2 and rec["seed"] == SEED
    assert rec["params_sha256"] == batch.params_hash(FakeParams(SEED, 2).to_json())


def test_variation_mode_shards_by_face(tmp_path):
    report = shard(tmp_path, FakeGenerator(), start=4, count=2, variations=2)
    assert report.names == [f"face_00000{i}_0{v}" for i in (4, 5) for v in range(3)]
    assert report.rendered == 6 and batch.shard_name(4, 2) == "shard-000004-000005"
    stems = set(batch.batch_stems(4, 2, 2))
    assert batch.complete_stems(tmp_path) == stems


def test_a_broken_worker_stops_its_shard(tmp_path):
    n = batch.MAX_CONSECUTIVE_FAILURES
    report = shard(tmp_path, FakeGenerator(failures={i: 2 for i in range(20)}), count=20)
    assert report.aborted and f"{n} samples in a row failed twice" in report.aborted
    assert len(report.failures) == n and report.rendered == 0


@pytest.mark.parametrize("args, message", [
    (["--count", "0"], "--count must be at least 1"),
    (["--count", "2", "--shards", "3"], "--shards must be in [1, --count=2]"),
    (["--count", "2", "--workers", "0"], "--workers must be at least 1"),
    (["--count", "2", "--quality", "ultra"], "unknown --quality 'ultra'"),
    (["--count", "2", "--preset", "nope"], "unknown preset 'nope'"),
    (["--count", "2", "--scheduler", "somehost"], "--scheduler must be an address"),
    (["--count", "2", "--engine", "inprocess", "--render-threads", "-1"], "--render-threads"),
    (["--count", "2", "--scheduler", "foo://127.0.0.1:1"], "(scheme 'foo'; choose from tcp"),
    (["--count", "2", "--scheduler", "ucx://127.0.0.1:1"], "(scheme 'ucx'; choose from tcp"),
    (["--count", "2", "--scheduler", "tcp://127.0.0.1:abc"], "--scheduler must be an address"),
    (["--count", "2", "--scheduler", "tcp://"], "missing port number"),
    (["--count", "2", "--scheduler", "tcp://127.0.0.1:0"], "the port in [1, 65535]"),
    (["--count", "2", "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "-1"],
     "--connect-timeout must be a positive number of seconds, got -1.0"),
    (["--count", "2", "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "nan"],
     "--connect-timeout must be a positive number of seconds, got nan"),
])
def test_batch_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "ds"
    assert main(["batch", "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ("{bad", "is not valid JSON"),
    ("[1, 2]", "holds a JSON list, not a notebook"),
    ("{}", "is not a valid Jupyter notebook"),
    (None, "notebook not found"),
])
def test_batch_bad_notebook_exits_2_and_writes_nothing(tmp_path, capsys, text, message):
    nb, out = tmp_path / "bad.ipynb", tmp_path / "ds"
    if text is not None:
        nb.write_text(text)
    assert main(["batch", "--out", str(out), "--count", "2", "--notebook", str(nb),
                 "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(nb) in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("content, message", [
    (b"{junk", "is not valid JSON"),
    (b"\xff\x00\x01", "is not valid JSON ('utf-8' codec"),
    (b"[1, 2]", "holds a JSON list, not a dataset description"),
])
def test_batch_reports_a_broken_dataset_json_and_keeps_it(tmp_path, capsys, content, message):
    (tmp_path / "dataset.json").write_bytes(content)
    assert main(["batch", "--out", str(tmp_path), "--count", "2", "--quality", "test",
                 "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'dataset.json'} {message}" in err
    assert [p.name for p in tmp_path.iterdir()] == ["dataset.json"]
    assert (tmp_path / "dataset.json").read_bytes() == content


def test_a_run_that_fails_before_writing_removes_only_the_folders_it_made(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(batch, "run_batch", fail)
    out = tmp_path / "new" / "deeper" / "ds"
    with pytest.raises(RuntimeError, match="boom"):
        main(["batch", "--out", str(out), "--count", "2", "--quality", "test"])
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError, match="boom"):
        main(["batch", "--out", str(tmp_path / "kept"), "--count", "2", "--quality", "test"])
    assert (tmp_path / "kept").is_dir()


def test_batch_refuses_other_settings_in_an_existing_folder(tmp_path, capsys):
    shard(tmp_path, FakeGenerator(), count=1)  # dataset.json with seed 3, test quality, 16 px
    assert main(["batch", "--out", str(tmp_path), "--count", "1", "--quality", "test",
                 "--seed", "4"]) == 2
    assert "written with other settings" in capsys.readouterr().err


def test_unreachable_scheduler_exits_2_and_writes_nothing(tmp_path, capsys):
    import socket

    with socket.socket() as sock:  # a free port with nothing listening on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "new" / "ds"
    code = main(["batch", "--out", str(out), "--count", "2", "--quality", "test",
                 "--scheduler", f"tcp://127.0.0.1:{port}", "--connect-timeout", "2",
                 "--no-progress"])
    assert code == 2 and "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


# ----------------------------------------------------------------------------------------------
# Real renders on Dask


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "replicantface", *args], check=False,
                          capture_output=True, text=True, env=ENV, timeout=timeout)


def load_labels(out, name):
    with np.load(out / f"{name}.npz") as npz:
        return {k: npz[k] for k in npz.files}


def assert_same_samples(out, reference, names):
    for name in names:
        got, want = load_labels(out, name), load_labels(reference, name)
        for key in LABEL_KEYS:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name} {key}")
        m_got = np.asarray(dataset.load_sample(out, name)["mask"])
        m_want = np.asarray(dataset.load_sample(reference, name)["mask"])
        np.testing.assert_array_equal(m_got, m_want, err_msg=f"{name} mask")


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """The reference: the plain one-process ``generate`` command with the same seed."""
    out = tmp_path_factory.mktemp("clean") / "ds"
    r = run_cli("generate", "--out", str(out), "--count", "4", *TINY)
    assert r.returncode == 0, r.stderr
    return out


def _descendants(pid):
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _kill_tree(proc):
    import psutil

    victims = [*_descendants(proc.pid)]
    try:
        victims.append(psutil.Process(proc.pid))
    except psutil.NoSuchProcess:
        pass
    for p in victims:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=20)


def test_kill9_worker_then_batch_then_resume_gives_the_clean_samples(tmp_path, clean_run):
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "replicantface", "batch", "--out", str(out), "--count", "4",
           "--shards", "2", "--workers", "2", "--no-progress", *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, start_new_session=True)
    stderr = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        # 1. SIGKILL the kernel (the process that owns a bpy scene) of a shard mid-run.
        t0, killed = time.time(), None
        while killed is None and time.time() - t0 < 180 and proc.poll() is None:
            if list(out.glob("face_*.npz")):
                kernels = [p for p in _descendants(proc.pid)
                           if "ipykernel_launcher" in " ".join(p.cmdline())]
                if kernels:
                    kernels[-1].send_signal(signal.SIGKILL)
                    killed = kernels[-1].pid
            time.sleep(0.2)
        assert killed, "no kernel was running while samples were being written"
        assert len(list(out.glob("face_*.npz"))) < 4
        # 2. The batch notices and runs the shard again; then the whole batch is killed.
        while time.time() - t0 < 240 and proc.poll() is None:
            if any("running it again" in line for line in stderr):
                break
            time.sleep(0.2)
        assert any("DeadKernelError" in line for line in stderr), "".join(stderr)[-3000:]
        if proc.poll() is None:
            _kill_tree(proc)
    finally:
        if proc.poll() is None:
            _kill_tree(proc)
        proc.wait(timeout=30)
    # 3. The same command again finishes the job.
    r = run_cli(*cmd[3:])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "4/4 complete" in r.stdout
    result = validate_dataset(out, start=0, count=4)
    assert result.ok, result.problem_lines()
    assert sorted(p.name for p in out.glob("face_*.npz")) == [f"face_{i:06d}.npz" for i in range(4)]
    assert_same_samples(out, clean_run, [f"face_{i:06d}" for i in range(4)])
    records = manifest_lines(out)
    assert [r["name"] for r in records] == [f"face_{i:06d}" for i in range(4)]
    for rec in records:
        want = batch.params_hash(str(load_labels(clean_run, rec["name"])["params"]))
        assert rec["params_sha256"] == want and rec["seed"] == SEED
    notebooks = sorted(p.name for p in (out / "notebooks").glob("*.ipynb"))
    assert notebooks == ["shard-000000-000001.ipynb", "shard-000002-000003.ipynb"]
    nb = json.loads((out / "notebooks" / notebooks[0]).read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "count = 2" in "".join(injected[0]["source"])
    # 4. Once more: nothing is rendered, rewritten or listed twice.
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("face_*")}
    r = run_cli(*cmd[3:])
    assert r.returncode == 0 and "4/4 complete (0 new, 4 already there)" in r.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("face_*")} == mtimes
    assert len(manifest_lines(out)) == 4


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two single-threaded workers, each its own process, on 127.0.0.1."""
    from distributed import Client

    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(sched_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)]
    try:
        t0 = time.time()
        while not sched_file.exists() and time.time() - t0 < 60:
            time.sleep(0.2)
        for k in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                 str(sched_file), "--nthreads", "1", "--nworkers", "1", "--memory-limit", "0",
                 "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{k}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                start_new_session=True))
        with Client(scheduler_file=str(sched_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
            address = client.scheduler.address
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _kill_tree(p)


def test_external_scheduler_and_workers(tmp_path, clean_run, dask_cluster):
    out = tmp_path / "ds"
    assert dask_cluster.startswith("tcp://127.0.0.1:")
    r = run_cli("batch", "--out", str(out), "--count", "2", "--scheduler", dask_cluster,
                "--engine", "inprocess", "--no-progress", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2/2 complete (2 new, 0 already there)" in r.stdout and "on 2 worker(s)" in r.stdout
    assert validate_dataset(out, start=0, count=2).ok
    assert_same_samples(out, clean_run, ["face_000000", "face_000001"])
    workers = {rec["worker"] for rec in manifest_lines(out)}
    assert workers <= {"w0", "w1"} and workers
    assert not (out / "notebooks").exists()  # the in-process engine runs no notebook
    assert Path(out / "logs").is_dir()


@pytest.mark.slow
def test_memory_stays_flat(tmp_path):
    """The memory benchmark, shortened: RSS growth after warm-up within 5% (a few minutes)."""
    bench = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_memory.py"
    out = tmp_path / "memory.json"
    r = subprocess.run([sys.executable, str(bench), "--count", "60", "--warmup", "10", "--cpu",
                        "--out", str(out)], check=False, capture_output=True, text=True, env=ENV,
                       timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert json.loads(out.read_text())["passed"]
