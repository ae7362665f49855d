"""Draw head-pose axes from exported ``Pose_Para`` the way HopeNet's ``draw_axis`` does.

    .venv/bin/python tools/make_pose_axes_figure.py                       # render a demo set
    .venv/bin/python tools/make_pose_axes_figure.py --dataset /tmp/rf_ds  # an existing dataset

The samples go through ``replicantface export 300wlp``; the figure is drawn only from the .mat
files (Pose_Para, pt2d) and the JPEGs in the zip, as a consumer would. Axes: x red, y green,
z blue, from the head origin (tx, h - ty), length = 0.1 m * scale (the head radius in pixels).
Writes docs/pose_axes.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import tempfile
import zipfile
from math import cos, sin
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "pose_axes.png"
# (pitch, yaw, roll) of the head relative to the body, degrees; camera straight in front.
DEMO_POSES = ((0.0, 0.0, 0.0), (0.0, 40.0, 0.0), (0.0, -40.0, 0.0), (25.0, 0.0, 0.0),
              (-20.0, 25.0, 0.0), (0.0, 0.0, 20.0))


def draw_axis_hopenet(yaw, pitch, roll, tdx, tdy, size):
    """HopeNet's draw_axis maths (degrees in): the x, y, z axis tips in pixels, y down."""
    pitch = pitch * np.pi / 180
    yaw = -(yaw * np.pi / 180)
    roll = roll * np.pi / 180
    x1 = size * (cos(yaw) * cos(roll)) + tdx
    y1 = size * (cos(pitch) * sin(roll) + cos(roll) * sin(pitch) * sin(yaw)) + tdy
    x2 = size * (-cos(yaw) * sin(roll)) + tdx
    y2 = size * (cos(pitch) * cos(roll) - sin(pitch) * sin(yaw) * sin(roll)) + tdy
    x3 = size * (sin(yaw)) + tdx
    y3 = size * (-cos(yaw) * sin(pitch)) + tdy
    return [(x1, y1), (x2, y2), (x3, y3)]


def render_demo(out_dir: Path, resolution: int) -> Path:
    """Render DEMO_POSES (one identity each, neutral face, no lens shift) as a raw dataset."""
    from replicantface import dataset
    from replicantface.config import load_preset
    from replicantface.expression import ExpressionParams
    from replicantface.generate import Generator
    from replicantface.pose import PoseParams

    cfg = load_preset("default")
    gen = Generator(cfg, quality="test", resolution=resolution, use_gpu=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset.write_metadata(out_dir, dataset.dataset_metadata(cfg.to_dict(), "test", resolution, 7))
    for i, (p, y, r) in enumerate(DEMO_POSES):
        params = gen.params(7, i)
        params = dataclasses.replace(
            params,
            pose=PoseParams(head_yaw_deg=y, head_pitch_deg=p, head_roll_deg=r,
                            camera_heading_deg=0.0, camera_pitch_deg=0.0),
            camera=dataclasses.replace(params.camera, shift_x=0.0, shift_y=0.0, use_dof=False),
            expression=ExpressionParams({}, 0.0, 0.0))
        s = gen.render(params)
        dataset.write_sample(out_dir, dataset.stem(i), s.rgb, s.mask, s.labels)
    return out_dir


def draw_tile(jpg: bytes, mat: dict, tile: int) -> Image.Image:
    """One exported pair with the HopeNet axes and the 68 landmarks, scaled to ``tile`` px."""
    img = Image.open(io.BytesIO(jpg)).convert("RGB")
    w, h = img.size
    k = tile / w
    img = img.resize((tile, round(h * k)), Image.LANCZOS)
    draw = ImageDraw.Draw(img)
    pitch, yaw, roll, tx, ty, _, scale = mat["Pose_Para"][0]
    tdx, tdy = tx * k, (h - ty) * k
    tips = draw_axis_hopenet(np.degrees(yaw), np.degrees(pitch), np.degrees(roll), tdx, tdy,
                             0.1 * scale * k)
    for x, y in mat["pt2d"].T * k:
        draw.ellipse([x - 1.2, y - 1.2, x + 1.2, y + 1.2], fill=(255, 230, 0))
    for tip, colour in zip(tips, [(255, 0, 0), (0, 200, 0), (40, 90, 255)]):
        draw.line([(tdx, tdy), tip], fill=colour, width=max(3, tile // 80))
    font = ImageFont.load_default(size=max(11, tile // 18))
    caption = "p{:+.0f} y{:+.0f} r{:+.0f}".format(*np.degrees([pitch, yaw, roll]))
    draw.text((4, 2), caption, fill=(255, 255, 255), font=font, stroke_width=2,
              stroke_fill=(0, 0, 0))
    return img


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, help="raw dataset (default: render the demo poses)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--resolution", type=int, default=160, help="demo render size in pixels")
    ap.add_argument("--tile", type=int, default=320)
    ap.add_argument("--columns", type=int, default=3)
    args = ap.parse_args(argv)

    from replicantface.export_300wlp import ExportFilter, export_300wlp

    with tempfile.TemporaryDirectory() as tmp:
        raw = args.dataset or render_demo(Path(tmp) / "raw", args.resolution)
        zpath = Path(tmp) / "export.zip"
        export_300wlp(raw, zpath, filt=ExportFilter(min_face_px=0, max_face_frac=1.0))
        with zipfile.ZipFile(zpath) as zf:
            stems = sorted({n[:-4] for n in zf.namelist() if n.endswith(".mat")})
            tiles = [draw_tile(zf.read(f"{s}.jpg"),
                               scipy.io.loadmat(io.BytesIO(zf.read(f"{s}.mat"))), args.tile)
                     for s in stems]
    cols = min(args.columns, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    footer = max(16, args.tile // 14)
    sheet = Image.new("RGB", (cols * args.tile, rows * args.tile + footer), (30, 30, 30))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * args.tile, (i // cols) * args.tile))
    ImageDraw.Draw(sheet).text(
        (4, rows * args.tile + 2),
        "HopeNet draw_axis(Pose_Para): x red, y green, z blue (out of the face) "
        "at (tx, h - ty); yellow: pt2d",
        fill=(230, 230, 230), font=ImageFont.load_default(size=footer - 6))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(f".{args.out.name}.tmp.png")
    sheet.save(tmp_out)
    tmp_out.replace(args.out)
    print(f"{len(tiles)} samples -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
