"""Render docs/landmarks_frontal.png: a neutral frontal face with the 68 landmarks numbered."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from replicantface.appearance import skin_albedo
from replicantface.config import load_preset
from replicantface.expression import ExpressionParams
from replicantface.generate import Generator
from replicantface.overlay import draw_overlay
from replicantface.pose import PoseParams

ZOOM_PX = 900
OUT = Path(__file__).resolve().parent.parent / "docs" / "landmarks_frontal.png"


def main() -> None:
    gen = Generator(load_preset("frontal"), quality="final", resolution=1024)
    params = gen.params(0, 0)
    params = dataclasses.replace(
        params,
        identity=dataclasses.replace(params.identity, local_changes={}, age_years=30.0),
        expression=ExpressionParams({}, 0.0, 0.0),
        pose=PoseParams(0.0, 0.0, 0.0, 0.0, 0.0),
        camera=dataclasses.replace(params.camera, focal_mm=85.0, face_fraction=0.6, shift_x=0.0,
                                   shift_y=0.0, use_dof=False),
        appearance=dataclasses.replace(params.appearance, skin_rgb=tuple(skin_albedo(2.5)),
                                       redness=0.15, iris_rgb=(0.10, 0.22, 0.45)),
        lighting=dataclasses.replace(params.lighting, hdri="studio.exr", rotation_deg=0.0,
                                     strength=1.2),
    )
    sample = gen.render(params)
    # Crop to the landmarks (plus a margin) and zoom, so the numbers stay readable.
    pts = sample.labels["landmarks_2d"]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2 * 1.25
    x0, y0 = (centre - half).astype(int)
    side = int(2 * half)
    zoom = ZOOM_PX / side
    crop = Image.fromarray(sample.rgb).crop((x0, y0, x0 + side, y0 + side)).resize(
        (ZOOM_PX, ZOOM_PX), Image.LANCZOS)
    labels = dict(sample.labels, landmarks_2d=(pts - [x0, y0]) * zoom)
    img = draw_overlay(np.asarray(crop), labels, numbers=True, axes=False, box=False)
    img.save(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
