"""Realism: how often a standard pretrained face detector finds the rendered face.

Renders ``--count`` samples whose label yaw is within ``--max-yaw`` degrees (indices 0, 1, 2...
of ``--seed``; the yaw is known from the params before rendering, so others are skipped, not
rendered), runs each detector on the RGB image and counts a hit when a detection overlaps the
label face box ``bbox_face``: IoU >= ``--min-iou``, or the detection's centre inside it and at
least half of the visible inner landmarks inside the detection (detect.match_face).
The first detector is the one the pass mark applies to (MTCNN by default, target 98 %).

Usage: python benchmarks/bench_realism.py [--count 200] [--seed 0] [--quality preview]
    [--resolution PX] [--max-yaw 60] [--detectors mtcnn haar] [--out outputs/bench_realism]
    [--indices 12,69,...] [--compare EARLIER_OUT/rows.jsonl] | --tables ROWS.jsonl [ROWS.jsonl ...]
Needs the detectors: pip install -e '.[bench]'
Use quality preview or final: "test" (4 samples, no denoiser) is too noisy for MTCNN to see faces.
Prints markdown tables (overall, by |yaw| bin and by appearance groups found in the params) and,
for each face MTCNN misses, which of its three stages holds it back (the face is detected again
with one stage threshold at a time lowered to 0.3: detect.mtcnn_stage_probe); writes
summary.json, misses_<detector>.png (contact sheet of the misses; the least confident hits when
there is no miss) and rows.jsonl (with the stage probe of each miss) to --out. rows.jsonl grows
one line per sample as the run goes, so an interrupted run keeps what it finished.

--tables A/rows.jsonl B/rows.jsonl renders nothing: it prints the tables of earlier runs taken
together (the pieces of a run split with --start, or several seeds).

--indices renders just those samples of --seed (all of them, whatever their yaw): to check the
faces a change touches without a full run. --compare pairs this run with an earlier one on the
indices both rendered (same seed and preset): faces that flipped between hit and miss, and a
sign test on each face's confidence, -log10(1 - c) with a miss as 0, so a real shift stands out
from flips near the thresholds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ANGLE_BINS_DEG = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))
INNER_LANDMARKS = 51  # iBUG-68 points 17-67 (brows, nose, eyes, mouth); 0-16 are the jaw
SHEET_TILE = 192
SHEET_MAX = 64


def appearance_groups(params: dict) -> dict[str, str]:
    """Group name -> value for one sample's params (the JSON of SampleParams).

    Hair and accessory fields are read when the params carry them, so the table grows with the
    generator; identity and lighting groups are always there.
    """
    ident, app, light = params["identity"], params["appearance"], params["lighting"]
    age = ident["age_years"]
    groups = {
        "gender": "female" if ident["gender"] < 0.5 else "male",
        "age": "18-39" if age < 40 else ("40-59" if age < 60 else "60+"),
        "fitzpatrick": f"type {int(round(app['fitzpatrick']))}",
        "background": "backdrop" if light.get("backdrop") else "hdri",
        "expression": "mouth open" if params["expression"].get("weights", {}).get("jawOpen", 0.0) > 0.3
        else "mouth closed",
    }
    cam = params.get("camera")
    if isinstance(cam, dict) and "focal_mm" in cam:
        groups["lens"] = f"{cam['focal_mm']:.0f} mm"
    hair = params.get("hair") or app.get("hair")
    if isinstance(hair, dict):
        if "style" in hair:
            groups["hair"] = str(hair["style"])
        if "beard" in hair:
            groups["beard"] = str(hair["beard"])
    acc = params.get("accessories") or app.get("accessories")
    if isinstance(acc, dict):
        names = sorted(str(item.get("name", "?")) for item in acc.get("items", ()))
        groups["accessories"] = "+".join(names) if names else "none"
        for category, name in _accessory_categories(names).items():
            groups[f"accessory: {category}"] = name
    return groups


def _accessory_categories(names: list[str]) -> dict[str, str]:
    try:
        from replicantface.accessories import ACCESSORIES
    except ImportError:
        return {}
    return {getattr(ACCESSORIES[n], "category", n): n for n in names if n in ACCESSORIES}


def facing_yaw_deg(pitch: float, yaw: float, roll: float) -> float:
    """|yaw| in degrees of the Euler triple with |pitch| <= 90.

    AFLW angles keep yaw in [-90, 90] and let pitch and roll run to ±180, so a head seen from
    behind can read yaw -46, pitch -170, roll 175; the same rotation with |pitch| <= 90 has
    |yaw| = 180 - 46 = 134, which is what "|yaw| <= 60" must exclude.
    """
    return abs(yaw) if abs(pitch) <= 90.0 else 180.0 - abs(yaw)


def angle_bin(angle_deg: float) -> str:
    """'0-30', '30-60' or '60-90' for |angle| in degrees."""
    a = abs(angle_deg)
    for lo, hi in ANGLE_BINS_DEG:
        if lo <= a < hi or (hi == ANGLE_BINS_DEG[-1][1] and a == hi):
            return f"{lo:.0f}-{hi:.0f}"
    return f">{ANGLE_BINS_DEG[-1][1]:.0f}"


def inner_visible_bin(count: int | None) -> str | None:
    """'all 51', '26-50' or '0-25' for the number of inner landmarks (17-67: brows, nose, eyes,
    mouth) that the label marks visible; None for rows written before the count was kept."""
    if count is None:
        return None
    return f"all {INNER_LANDMARKS}" if count >= INNER_LANDMARKS else ("26-50" if count > 25 else "0-25")


def rate_table(rows: list[dict], detectors: list[str]) -> list[dict]:
    """One entry per (group, value): n and, per detector, hit rate and mean confidence of hits."""
    keys: dict[tuple[str, str], list[dict]] = {("all", "all"): rows}
    for r in rows:
        keys.setdefault(("|yaw| deg", r["yaw_bin"]), []).append(r)
        keys.setdefault(("|pitch| deg", angle_bin(r["pitch_deg"])), []).append(r)
        seen = inner_visible_bin(r.get("inner_landmarks_visible"))
        if seen is not None:
            keys.setdefault(("inner landmarks visible", seen), []).append(r)
        for g, v in r["groups"].items():
            keys.setdefault((g, v), []).append(r)
        if "lens" in r["groups"]:  # a short lens is a close camera: steep views foreshorten most
            keys.setdefault(("lens, |pitch| deg", f"{r['groups']['lens']}, {angle_bin(r['pitch_deg'])}"),
                            []).append(r)
    table = []
    first = {"all": 0, "|yaw| deg": 1, "|pitch| deg": 2, "inner landmarks visible": 3, "lens": 4,
             "lens, |pitch| deg": 5}
    for (g, v), rs in sorted(keys.items(), key=lambda kv: (first.get(kv[0][0], 6), kv[0])):
        entry = {"group": g, "value": v, "n": len(rs)}
        for d in detectors:
            hits = [r[d]["confidence"] for r in rs if r[d]["hit"]]
            entry[d] = {"rate": len(hits) / len(rs),
                        "mean_confidence": float(np.mean(hits)) if hits else None}
        table.append(entry)
    return table


def rate_interval(hits: int, n: int) -> tuple[float, float]:
    """Wilson 95 % confidence interval of a detection rate of ``hits`` out of ``n`` samples."""
    from scipy.stats import binomtest

    ci = binomtest(int(hits), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def print_table(table: list[dict], detectors: list[str]) -> None:
    head = " | ".join(f"{d} rate | {d} conf" for d in detectors)
    print(f"| group | value | n | {head} |")
    print("|---|---|---|" + "---|---|" * len(detectors))
    for e in table:
        cells = []
        for d in detectors:
            conf = e[d]["mean_confidence"]
            cells.append(f"{e[d]['rate']:.1%} | {'-' if conf is None else f'{conf:.3f}'}")
        print(f"| {e['group']} | {e['value']} | {e['n']} | {' | '.join(cells)} |")


def contact_sheet(images: list[tuple[np.ndarray, dict]], detector: str, path: Path) -> Path | None:
    """Tiles with the label box (white), the detections (red) and index / yaw / confidence."""
    from PIL import Image, ImageDraw

    if not images:
        return None
    images = images[:SHEET_MAX]
    cols = min(8, len(images))
    nrows = math.ceil(len(images) / cols)
    sheet = Image.new("RGB", (cols * SHEET_TILE, nrows * SHEET_TILE), (0, 0, 0))
    for k, (rgb, row) in enumerate(images):
        im = Image.fromarray(rgb)
        s = SHEET_TILE / im.width
        draw = ImageDraw.Draw(im)
        draw.rectangle(list(row["bbox_face"]), outline=(255, 255, 255), width=2)
        for box, _ in row[detector]["detections"]:
            draw.rectangle(list(box), outline=(255, 40, 40), width=2)
        tile = im.resize((SHEET_TILE, round(im.height * s)))
        d = ImageDraw.Draw(tile)
        conf = row[detector]["confidence"]
        text = f"#{row['index']} yaw {row['yaw_deg']:+.0f} p {row['pitch_deg']:+.0f} r {row['roll_deg']:+.0f}"
        d.rectangle([0, 0, SHEET_TILE, 12], fill=(0, 0, 0))
        d.text((2, 0), text, fill=(255, 255, 0))
        if conf:
            d.text((2, SHEET_TILE - 12), f"conf {conf:.2f}", fill=(255, 255, 0))
        sheet.paste(tile, ((k % cols) * SHEET_TILE, (k // cols) * SHEET_TILE))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    sheet.save(tmp)
    tmp.replace(path)
    return path


def confidence_score(row: dict, detector: str) -> float:
    """-log10(1 - confidence) of the detection that matched the face; 0 for a miss."""
    c = row[detector]["confidence"] if row[detector]["hit"] else 0.0
    return float(-np.log10(max(1.0 - float(c), 1e-7)))


def paired_comparison(before: list[dict], after: list[dict], detector: str) -> dict:
    """How ``after`` differs from ``before`` on the indices both hold: hits, flips, and a two-sided
    sign test (scipy's binomtest) on the confidence scores that went up against those that went
    down (ties left out)."""
    from scipy.stats import binomtest

    a = {r["index"]: r for r in before}
    b = {r["index"]: r for r in after}
    common = sorted(set(a) & set(b))
    diff = np.array([confidence_score(b[i], detector) - confidence_score(a[i], detector) for i in common])
    up, down = int((diff > 1e-9).sum()), int((diff < -1e-9).sum())
    return {
        "n": len(common),
        "hits_before": sum(a[i][detector]["hit"] for i in common),
        "hits_after": sum(b[i][detector]["hit"] for i in common),
        "found": [i for i in common if b[i][detector]["hit"] and not a[i][detector]["hit"]],
        "lost": [i for i in common if a[i][detector]["hit"] and not b[i][detector]["hit"]],
        "up": up,
        "down": down,
        "sign_test_p": float(binomtest(up, up + down).pvalue) if up + down else 1.0,
    }


def read_rows(path: Path) -> list[dict]:
    """The rows of a rows.jsonl."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def merged_rows(paths: list[Path]) -> list[dict]:
    """The rows of several rows.jsonl (the pieces of a run split with --start, or runs of several
    seeds), in order; ValueError names a sample that two of them hold."""
    rows, source = [], {}
    for path in paths:
        for r in read_rows(path):
            key = (r.get("seed"), r["index"])
            if key in source:
                seed = "" if key[0] is None else f" of seed {key[0]}"
                raise ValueError(f"--tables: sample {key[1]}{seed} is in both {source[key]} and {path}")
            source[key] = path
            rows.append(r)
    return rows


def detector_names(rows: list[dict]) -> list[str]:
    """The detectors a run's rows hold, the one the target applies to first."""
    return [k for k, v in rows[0].items() if isinstance(v, dict) and "hit" in v] if rows else []


def print_misses(rows: list[dict], thresholds) -> None:
    probed = [r for r in rows if "stage_probe" in r.get("mtcnn", {})]
    if probed:
        print(f"\nmtcnn misses, found with one stage threshold lowered to 0.3 (standard {thresholds}):")
        for r in probed:
            found = [f"{stage} ({c:.2f})" for stage, c in r["mtcnn"]["stage_probe"].items() if c is not None]
            seen = r.get("inner_landmarks_visible")
            print(f"  #{r['index']} yaw {r['yaw_deg']:+.0f} pitch {r['pitch_deg']:+.0f}, "
                  f"{'?' if seen is None else seen} of {INNER_LANDMARKS} inner landmarks visible: "
                  f"{', '.join(found) if found else 'none'}")


def rate_line(rows: list[dict], detector: str, target: float) -> str:
    hits = sum(r[detector]["hit"] for r in rows)
    lo, hi = rate_interval(hits, len(rows))
    verdict = "PASS" if hits / len(rows) >= target else "FAIL"
    return (f"{detector} detection rate {hits / len(rows):.1%} ({hits} of {len(rows)}; 95 % CI "
            f"{lo:.1%}-{hi:.1%}; target {target:.0%}): {verdict}")


def parse_indices(text: str) -> list[int]:
    """'12,69, 208' -> [12, 69, 208]; ValueError names a bad entry."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise ValueError(f"--indices: {part!r} is not a sample index (comma-separated integers >= 0)")
        out.append(int(part))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200, help="samples within --max-yaw to render")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="default", help="randomization preset (default: default)")
    ap.add_argument("--start", type=int, default=0, help="first index tried")
    ap.add_argument("--quality", default="preview")
    ap.add_argument("--resolution", type=int, default=None,
                    help="image side in pixels (default: the quality's, as `replicantface generate` renders)")
    ap.add_argument("--max-yaw", type=float, default=60.0, help="degrees, |label yaw|")
    ap.add_argument("--detectors", nargs="+", default=["mtcnn", "haar"],
                    help="the first one is checked against --target")
    ap.add_argument("--min-iou", type=float, default=0.3)
    ap.add_argument("--target", type=float, default=0.98, help="detection rate the first detector must reach")
    ap.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    ap.add_argument("--cpu", action="store_true", help="render on the CPU even when a GPU is there")
    ap.add_argument("--save-images", action="store_true", help="also write every RGB to --out/images/")
    ap.add_argument("--out", type=Path, default=Path("outputs/bench_realism"))
    ap.add_argument("--indices", default=None,
                    help="comma-separated sample indices: render just these (any yaw) instead of --count from --start")
    ap.add_argument("--compare", type=Path, default=None,
                    help="rows.jsonl of an earlier run (same seed): flips and a sign test on the common indices")
    ap.add_argument("--tables", type=Path, nargs="+", default=None, metavar="ROWS_JSONL",
                    help="render nothing: print the tables of earlier runs' rows.jsonl taken together")
    args = ap.parse_args()
    if args.tables is not None:
        missing = [str(p) for p in args.tables if not p.is_file()]
        if missing:
            ap.error(f"--tables: no such file {', '.join(missing)}")
        try:
            rows = merged_rows(args.tables)
        except ValueError as err:
            ap.error(str(err))
        if not rows:
            ap.error("--tables: the files hold no rows")
        names = detector_names(rows)
        print(f"{len(rows)} samples from {', '.join(map(str, args.tables))}")
        print_table(rate_table(rows, names), names)
        from replicantface.detect import MTCNN_THRESHOLDS

        print_misses(rows, MTCNN_THRESHOLDS)
        print("\n" + rate_line(rows, names[0], args.target))
        return 0
    try:
        indices = parse_indices(args.indices) if args.indices is not None else None
    except ValueError as err:
        ap.error(str(err))
    if args.count < 1:
        ap.error("--count must be at least 1")
    if args.compare is not None and not args.compare.is_file():
        ap.error(f"--compare: no such file {args.compare}")
    baseline = read_rows(args.compare) if args.compare is not None else None

    from replicantface import detect

    try:  # before the scene is built, so a missing package fails in a second
        detectors = {name: detect.load_detector(name) for name in args.detectors}
    except ImportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from PIL import Image
    from tqdm import tqdm

    from replicantface.config import load_preset
    from replicantface.generate import Generator
    from replicantface.pose import label_pose

    t_setup = time.perf_counter()
    gen = Generator(load_preset(args.preset), quality=args.quality, resolution=args.resolution,
                    use_gpu=not args.cpu)
    setup_s = time.perf_counter() - t_setup
    names = list(detectors)
    rows, images = [], []
    skipped = 0
    index = args.start
    todo = list(indices) if indices is not None else None
    total = len(todo) if todo is not None else args.count
    args.out.mkdir(parents=True, exist_ok=True)
    rows_file = open(args.out / "rows.jsonl", "w")
    t0 = time.perf_counter()
    with tqdm(total=total, unit="img", desc="render+detect") as bar, rows_file:
        while len(rows) < total:
            if todo is not None:
                index = todo[len(rows)]
            params = gen.params(args.seed, index)
            index += 1
            if todo is None and facing_yaw_deg(*np.degrees(label_pose(params.pose))) > args.max_yaw:
                skipped += 1
                continue
            t_img = time.perf_counter()
            sample = gen.render(params)
            render_s = time.perf_counter() - t_img
            pitch, yaw, roll = np.degrees(sample.labels["pose_aflw"])
            if todo is None and facing_yaw_deg(pitch, yaw, roll) > args.max_yaw:  # the label is the truth
                skipped += 1
                continue
            face_box = [float(v) for v in sample.labels["bbox_face"]]
            inner = detect.inner_landmarks(sample.labels)
            row = {"seed": args.seed, "index": params.index, "yaw_deg": float(yaw), "pitch_deg": float(pitch),
                   "roll_deg": float(roll), "yaw_bin": angle_bin(yaw), "bbox_face": face_box,
                   "groups": appearance_groups(json.loads(str(sample.labels["params"]))),
                   "inner_landmarks_visible": len(inner),
                   "render_s": render_s}
            for name, det in detectors.items():
                t_det = time.perf_counter()
                found = det(sample.rgb)
                match, iou = detect.match_face(found, face_box, args.min_iou, inner)
                row[name] = {"hit": match is not None,
                             "confidence": match.confidence if match else None,
                             "iou": iou, "seconds": time.perf_counter() - t_det,
                             "detections": [(list(d.box), d.confidence) for d in found]}
            if "mtcnn" in names and not row["mtcnn"]["hit"]:  # which stage holds the face back
                row["mtcnn"]["stage_probe"] = detect.mtcnn_stage_probe(sample.rgb, face_box,
                                                                       min_iou=args.min_iou,
                                                                       landmarks=inner)
            rows.append(row)
            rows_file.write(json.dumps(row) + "\n")
            rows_file.flush()
            images.append(sample.rgb)
            if args.save_images:
                (args.out / "images").mkdir(parents=True, exist_ok=True)
                Image.fromarray(sample.rgb).save(args.out / "images" / f"{params.index:06d}.png")
            bar.update(1)
            bar.set_postfix({n: f"{np.mean([r[n]['hit'] for r in rows]):.1%}" for n in names})
    wall_s = time.perf_counter() - t0

    table = rate_table(rows, names)
    tried = (f"indices {args.indices}" if todo is not None else
             f"indices {args.start}..{index - 1}, {skipped} skipped for |yaw| > {args.max_yaw:g}")
    print(f"\n{len(rows)} samples (seed {args.seed}, {tried}), {args.quality} {gen.resolution}px, "
          f"device {gen.device}")
    print_table(table, names)

    print_misses(rows, detect.MTCNN_THRESHOLDS)

    comparison = None
    if baseline is not None:
        comparison = paired_comparison(baseline, rows, names[0])
        c = comparison
        print(f"\nagainst {args.compare} ({names[0]}, {c['n']} common indices): hits "
              f"{c['hits_before']} -> {c['hits_after']}; found {c['found'] or 'none'}, lost "
              f"{c['lost'] or 'none'}; confidence up for {c['up']}, down for {c['down']} "
              f"(sign test p = {c['sign_test_p']:.2g})")

    sheets = {}
    for name in names:
        misses = [(im, r) for im, r in zip(images, rows) if not r[name]["hit"]]
        if not misses:  # nothing missed: show the least confident hits instead
            order = np.argsort([r[name]["confidence"] for r in rows])[:16]
            misses = [(images[i], rows[i]) for i in order]
        sheet = contact_sheet(misses, name, args.out / f"misses_{name}.png")
        sheets[name] = str(sheet) if sheet else None

    primary = names[0]
    rate = table[0][primary]["rate"]
    ci = {n: rate_interval(sum(r[n]["hit"] for r in rows), len(rows)) for n in names}
    summary = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "device": gen.device,
        "samples": len(rows),
        "indices_tried": len(todo) if todo is not None else index - args.start,
        "skipped_yaw": skipped,
        "setup_s": setup_s,
        "wall_s": wall_s,
        "seconds_per_sample": wall_s / max(1, len(rows)),
        "render_s_mean": float(np.mean([r["render_s"] for r in rows])),
        "detect_s_mean": {n: float(np.mean([r[n]["seconds"] for r in rows])) for n in names},
        "detection_rate": {n: table[0][n]["rate"] for n in names},
        "detection_rate_ci95": ci,
        "mean_confidence": {n: table[0][n]["mean_confidence"] for n in names},
        "misses": {n: [r["index"] for r in rows if not r[n]["hit"]] for n in names},
        "target": {"detector": primary, "rate": args.target, "passed": rate >= args.target},
        "table": table,
        "sheets": sheets,
        "comparison": comparison,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    verdict = "PASS" if rate >= args.target else "FAIL"
    lo, hi = ci[primary]
    print(f"\n{primary} detection rate {rate:.1%} (95 % CI {lo:.1%}-{hi:.1%}; target "
          f"{args.target:.0%}): {verdict}; "
          f"{summary['seconds_per_sample']:.2f} s/sample (render {summary['render_s_mean']:.2f} s); "
          f"wrote {args.out}/summary.json and misses_*.png")
    return 1 if args.strict and rate < args.target else 0


if __name__ == "__main__":
    sys.exit(main())
