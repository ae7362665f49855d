"""Contact sheets of the appearance randomization: a random gallery and one sheet per category.

``gallery_items`` picks the params (pure: no rendering); ``render_gallery`` renders them and writes
the sheet atomically. Categories:

- ``random``: samples ``0..count-1`` of the seed, as a dataset would draw them;
- ``hair``: every hairstyle, then every beard, on random identities;
- ``accessories``: every accessory, on random identities;
- ``skin``: Fitzpatrick types I-VI across, one face, light and exposure per row, rows older
  downward.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np

from replicantface.appearance import with_skin

CATEGORIES = ("random", "hair", "accessories", "skin")
# Three-quarter views alternate sides so hair at the back (tails, buns) and ear pieces show.
_SHOWCASE_YAW_DEG = (-30.0, 30.0)


def _showcase_pose(params, k: int):
    """A calm three-quarter pose and a neutral camera, so the item is in view."""
    pose = replace(params.pose, head_yaw_deg=_SHOWCASE_YAW_DEG[k % 2], head_pitch_deg=0.0,
                   head_roll_deg=0.0, camera_heading_deg=0.0, camera_pitch_deg=5.0)
    return replace(params, pose=pose)


def gallery_items(gen, category: str, seed: int, count: int = 64) -> list[tuple[object, str]]:
    """(params, caption) pairs for one sheet; ``count`` applies to ``random`` and ``skin``."""
    from replicantface import accessories, hair

    if category not in CATEGORIES:
        raise ValueError(f"category must be one of {', '.join(CATEGORIES)}, got {category!r}")
    items = []
    if category == "random":
        for i in range(count):
            p = gen.params(seed, i)
            items.append((p, f"#{i} {p.hair.style}"))
    elif category == "hair":
        for k, style in enumerate(hair.HAIRSTYLES):
            p = _showcase_pose(gen.params(seed, k), k)
            p = replace(p, hair=replace(p.hair, style=style, beard="none"), accessories=accessories.NONE)
            items.append((p, style))
        for k, beard in enumerate(b for b in hair.BEARDS if b != "none"):
            p = _showcase_pose(gen.params(seed, 1000 + k), k)
            # Beards are shown on men without makeup, as the sampler draws them.
            man = replace(p.identity, gender=max(p.identity.gender, 0.85))
            bare = replace(p.appearance, makeup={name: 0.0 for name in p.appearance.makeup or {}})
            p = replace(p, identity=man, appearance=bare, hair=replace(p.hair, beard=beard),
                        accessories=accessories.NONE)
            items.append((p, f"beard: {beard}"))
    elif category == "accessories":
        for k, name in enumerate(accessories.ACCESSORIES):
            p = _showcase_pose(gen.params(seed, k), k)
            rng = np.random.default_rng(np.random.SeedSequence([seed, k, 0xACC]))
            p = replace(p, accessories=accessories.wear(accessories.NONE, accessories.choice_for(name, rng)))
            items.append((p, name))
    else:
        # A row is one face, pose and light in types I..VI; rows go up in age. The camera's face
        # metering is off, so a row shares one exposure too and the tones compare as they are.
        ages = np.linspace(20.0, 75.0, max(1, count // 6))
        for k in range(count):
            fitz = 1.0 + (k % 6)
            p = _showcase_pose(gen.params(seed, k // 6), 0)
            p = replace(p, pose=replace(p.pose, head_yaw_deg=0.0))
            ident = replace(p.identity, age_years=float(ages[(k // 6) % len(ages)]))
            app = with_skin(p.appearance, fitz)
            p = replace(p, identity=ident, appearance=app, accessories=accessories.NONE,
                        lighting=replace(p.lighting, face_exposure=0.0))
            items.append((p, f"type {'I II III IV V VI'.split()[k % 6]}, {ident.age_years:.0f} y"))
    return items


def render_gallery(gen, items: list[tuple[object, str]], out: Path, columns: int = 8,
                   tile: int = 256, progress: bool = True) -> Path:
    """Render every (params, caption) and write the contact sheet to ``out`` (.jpg or .png)."""
    from PIL import Image
    from tqdm import tqdm

    from replicantface.dataset import atomic_write_bytes
    from replicantface.overlay import contact_sheet

    tiles, captions = [], []
    for params, caption in tqdm(items, desc="gallery", unit="face", disable=not progress):
        tiles.append(Image.fromarray(gen.render(params).rgb))
        captions.append(caption)
    sheet = contact_sheet(tiles, columns=min(columns, len(tiles)), tile=tile, captions=captions)
    buf = io.BytesIO()
    if out.suffix.lower() in (".jpg", ".jpeg"):
        sheet.save(buf, format="JPEG", quality=88)
    else:
        sheet.save(buf, format="PNG")
    atomic_write_bytes(Path(out), buf.getvalue())
    return Path(out)
