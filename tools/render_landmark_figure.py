"""Render docs/landmarks_frontal.png: a neutral frontal face with the 68 landmarks numbered."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from replicantface.config import load_preset
from replicantface.expression import ExpressionParams
from replicantface.generate import Generator
from replicantface.overlay import draw_overlay
from replicantface.pose import PoseParams

OUT = Path(__file__).resolve().parent.parent / "docs" / "landmarks_frontal.png"


def main() -> None:
    gen = Generator(load_preset("frontal"), quality="preview", resolution=768)
    params = gen.params(0, 0)
    params = dataclasses.replace(
        params,
        identity=dataclasses.replace(params.identity, local_changes={}, age_years=30.0),
        expression=ExpressionParams({}, 0.0, 0.0),
        pose=PoseParams(0.0, 0.0, 0.0, 0.0, 0.0),
        camera=dataclasses.replace(params.camera, focal_mm=85.0, face_fraction=0.85, shift_x=0.0,
                                   shift_y=0.06, use_dof=False),
        lighting=dataclasses.replace(params.lighting, hdri="studio.exr", rotation_deg=0.0),
    )
    sample = gen.render(params)
    img = draw_overlay(sample.rgb, sample.labels, numbers=True, axes=False, box=False)
    img.save(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
