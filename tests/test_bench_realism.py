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


def test_rates_are_split_by_lens_and_by_lens_and_pitch(bench):
    params = {"identity": {"age_years": 30.0, "gender": 0.2}, "appearance": {"fitzpatrick": 2.0},
              "lighting": {"backdrop": True}, "expression": {"weights": {}}, "camera": {"focal_mm": 25.0}}
    assert bench.appearance_groups(params)["lens"] == "25 mm"
    del params["camera"]  # an earlier run's params
    assert "lens" not in bench.appearance_groups(params)

    def row(index, lens, pitch, hit):
        return {"index": index, "yaw_bin": "0-30", "pitch_deg": pitch, "groups": {"lens": lens},
                "mtcnn": {"hit": hit, "confidence": 0.99 if hit else None}}

    rows = [row(0, "25 mm", 40.0, False), row(1, "25 mm", -35.0, True), row(2, "25 mm", 10.0, True),
            row(3, "85 mm", 45.0, True)]
    rates = {(e["group"], e["value"]): (e["n"], e["mtcnn"]["rate"]) for e in bench.rate_table(rows, ["mtcnn"])}
    assert rates[("lens", "25 mm")] == (3, pytest.approx(2 / 3))
    assert rates[("lens, |pitch| deg", "25 mm, 30-60")] == (2, 0.5)
    assert rates[("lens, |pitch| deg", "25 mm, 0-30")] == (1, 1.0)
    assert rates[("lens, |pitch| deg", "85 mm, 30-60")] == (1, 1.0)


def _full_row(index, hit, seed=None):
    row = {"index": index, "yaw_deg": 10.0, "pitch_deg": 5.0, "roll_deg": 0.0, "yaw_bin": "0-30",
           "groups": {"hair": "bob"}, "inner_landmarks_visible": 51,
           "mtcnn": {"hit": hit, "confidence": 0.99 if hit else None},
           "haar": {"hit": True, "confidence": 1.0}}
    if not hit:
        row["mtcnn"]["stage_probe"] = {"P-Net": None, "R-Net": 0.8, "O-Net": None}
    return row if seed is None else {"seed": seed, **row}


def test_tables_take_the_pieces_of_a_run_together_and_refuse_a_sample_twice(bench, tmp_path):
    import json

    def write(name, rows):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)

    first = write("a.jsonl", [_full_row(i, True) for i in range(49)] + [_full_row(49, False)])
    second = write("b.jsonl", [_full_row(i, True) for i in range(50, 99)] + [_full_row(99, False)])
    done = subprocess.run([sys.executable, str(SCRIPT), "--tables", first, second],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| all | all | 100 | 98.0% | 0.990 | 100.0% | 1.000 |" in done.stdout
    assert "#49 yaw +10 pitch +5, 51 of 51 inner landmarks visible: R-Net (0.80)" in done.stdout
    assert "mtcnn detection rate 98.0% (98 of 100; 95 % CI 93.0%-99.4%; target 98%): PASS" in done.stdout

    again = subprocess.run([sys.executable, str(SCRIPT), "--tables", first, first],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "sample 0 is in both" in again.stderr
    # Rows that carry their seed: the same index of two seeds is two samples.
    seeds = [write(f"s{k}.jsonl", [_full_row(0, True, seed=k)]) for k in (0, 1)]
    assert bench.merged_rows([Path(p) for p in seeds]) == [_full_row(0, True, 0), _full_row(0, True, 1)]
    missing = subprocess.run([sys.executable, str(SCRIPT), "--tables", str(tmp_path / "none.jsonl")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no such file" in missing.stderr
