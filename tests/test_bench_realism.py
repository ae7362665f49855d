"""benchmarks/bench_realism.py's pure parts: the paired comparison of two runs and its options."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_realism.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_realism", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(index, confidence):
    return {"index": index, "mtcnn": {"hit": confidence is not None, "confidence": confidence}}


def test_paired_comparison_counts_flips_and_tests_the_shift(bench):
    before = [_row(i, 0.99) for i in range(10)] + [_row(10, None), _row(11, 0.8), _row(12, 0.9)]
    after = [_row(i, 0.999) for i in range(10)] + [_row(10, 0.75), _row(11, None), _row(13, 0.9)]
    c = bench.paired_comparison(before, after, "mtcnn")
    assert c["n"] == 12  # 12 and 13 are in one run only
    assert (c["hits_before"], c["hits_after"]) == (11, 11)
    assert c["found"] == [10] and c["lost"] == [11]
    assert (c["up"], c["down"]) == (11, 1)
    assert c["sign_test_p"] == pytest.approx(2 * 13 / 2 ** 12)  # P(X <= 1 or X >= 11), X ~ B(12, 1/2)
    same = bench.paired_comparison(before, before, "mtcnn")
    assert (same["up"], same["down"], same["sign_test_p"]) == (0, 0, 1.0)


def test_a_miss_scores_zero_and_confidence_grows_toward_one(bench):
    assert bench.confidence_score(_row(0, None), "mtcnn") == 0.0
    assert bench.confidence_score(_row(0, 0.99), "mtcnn") == pytest.approx(2.0)
    assert bench.confidence_score(_row(0, 1.0), "mtcnn") == pytest.approx(7.0)


def test_bad_options_are_named_before_anything_renders(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(tmp_path / "out")],
                              capture_output=True, text=True, timeout=120)

    done = run("--indices", "12,x")
    assert done.returncode == 2 and "'x' is not a sample index" in done.stderr
    done = run("--compare", str(tmp_path / "missing.jsonl"))
    assert done.returncode == 2 and "no such file" in done.stderr
    done = run("--count", "0")
    assert done.returncode == 2 and "--count must be at least 1" in done.stderr
    assert not (tmp_path / "out").exists()


def test_rates_are_split_by_how_much_of_the_inner_face_is_visible(bench):
    def row(index, seen, hit):
        return {"index": index, "yaw_bin": "0-30", "pitch_deg": 5.0, "groups": {},
                "inner_landmarks_visible": seen, "mtcnn": {"hit": hit, "confidence": 0.99 if hit else None}}

    rows = [row(0, 51, True), row(1, 51, True), row(2, 40, True), row(3, 12, False), row(4, 26, False)]
    rates = {(e["group"], e["value"]): (e["n"], e["mtcnn"]["rate"]) for e in bench.rate_table(rows, ["mtcnn"])}
    assert rates[("inner landmarks visible", "all 51")] == (2, 1.0)
    assert rates[("inner landmarks visible", "26-50")] == (2, 0.5)
    assert rates[("inner landmarks visible", "0-25")] == (1, 0.0)
    old = {k: v for k, v in rows[0].items() if k != "inner_landmarks_visible"}  # an earlier run's row
    assert not any(e["group"] == "inner landmarks visible" for e in bench.rate_table([old], ["mtcnn"]))
