"""Label overlays and contact sheets. Pillow + numpy only."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from replicantface import labels

# iBUG-68 groups and their overlay colours.
GROUPS = {
    "jaw": (range(17), (255, 220, 0)),
    "brows": (range(17, 27), (255, 120, 0)),
    "nose": (range(27, 36), (0, 220, 255)),
    "eyes": (range(36, 48), (0, 255, 80)),
    "mouth": (range(48, 68), (255, 60, 160)),
}

# Contact-sheet file suffix -> Pillow format.
SHEET_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF"}

MASK_PALETTE = np.array(
    [
        [0, 0, 0], [255, 200, 150], [255, 120, 60], [0, 120, 255], [0, 220, 255],
        [120, 60, 0], [200, 120, 40], [160, 0, 160], [255, 0, 255], [120, 0, 0],
        [255, 0, 0], [200, 0, 60], [255, 240, 200], [90, 60, 20], [60, 40, 20],
        [0, 160, 80], [200, 200, 200], [80, 80, 255], [0, 255, 0],
    ],
    dtype=np.uint8,
)


def colorize_mask(mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 colours for a class-id mask (255 -> white)."""
    palette = np.full((256, 3), 255, dtype=np.uint8)
    palette[: len(MASK_PALETTE)] = MASK_PALETTE
    return palette[mask]


def draw_overlay(image: np.ndarray, sample: dict, numbers: bool = False, axes: bool = True,
                 box: bool = True, landmarks: bool = True, mask_alpha: float = 0.0) -> Image.Image:
    """Draw labels over a rendered image.

    sample: the arrays of a ``{stem}.npz`` (landmarks_2d pixels, x right / y down;
    modelview/projection for the axes; bbox_face [x0, y0, x1, y1]).
    """
    img = Image.fromarray(image).convert("RGB")
    if mask_alpha > 0 and "mask" in sample:
        colour = Image.fromarray(colorize_mask(sample["mask"]))
        img = Image.blend(img, colour, mask_alpha)
    draw = ImageDraw.Draw(img)
    w, h = img.size
    r = max(1.0, w / 256)
    if box and np.all(np.isfinite(sample["bbox_face"])):
        draw.rectangle(list(sample["bbox_face"]), outline=(255, 255, 255), width=max(1, int(r)))
    if axes:
        _draw_axes(draw, sample, length=0.08, width=max(1, int(r * 1.5)))
    if landmarks:
        pts = sample["landmarks_2d"]
        vis = sample.get("landmarks_visible", np.ones(len(pts), bool))
        font = ImageFont.load_default(size=max(8, int(5 * r))) if numbers else None
        for idx, colour in GROUPS.values():
            for i in idx:
                x, y = pts[i]
                c = colour if vis[i] else tuple(v // 3 for v in colour)
                draw.ellipse([x - r, y - r, x + r, y + r], fill=c)
                if numbers:
                    draw.text((x + r, y - 3 * r), str(i), fill=c, font=font,
                              stroke_width=1, stroke_fill=(0, 0, 0))
    return img


def _draw_axes(draw: ImageDraw.ImageDraw, sample: dict, length: float, width: int) -> None:
    """Head axes (x red, y green, z blue out of the face) projected with the true camera."""
    w, h = (int(v) for v in sample["resolution"])
    pts = np.array([[0, 0, 0], [length, 0, 0], [0, length, 0], [0, 0, length]], dtype=float)
    px, _ = labels.project_points(pts, sample["modelview"], sample["projection"], (w, h))
    for end, colour in zip(px[1:], [(255, 0, 0), (0, 255, 0), (0, 80, 255)]):
        draw.line([tuple(px[0]), tuple(end)], fill=colour, width=width)


def contact_sheet(images: list[Image.Image], columns: int = 4, tile: int = 320,
                  captions: list[str] | None = None) -> Image.Image:
    """Grid of images resized to ``tile`` pixels, with optional captions."""
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * tile, rows * tile), (30, 30, 30))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(10, tile // 22))
    for i, im in enumerate(images):
        x, y = (i % columns) * tile, (i // columns) * tile
        sheet.paste(im.resize((tile, tile), Image.LANCZOS), (x, y))
        if captions:
            draw.text((x + 4, y + 2), captions[i], fill=(255, 255, 255), font=font,
                      stroke_width=2, stroke_fill=(0, 0, 0))
    return sheet


def dataset_sheet(dataset_dir: Path, out_path: Path, columns: int = 4, tile: int = 320,
                  limit: int = 64, plain: bool = False) -> Path:
    """Contact sheet of a dataset with landmarks, box and axes drawn; returns ``out_path``.

    The format follows the suffix (``SHEET_FORMATS``). The file is written atomically, after
    every sample has loaded; an unreadable sample raises ``dataset.DatasetError``.
    """
    from replicantface.dataset import (
        atomic_write_bytes,
        load_sample,
        make_folders,
        remove_folders,
        sample_names,
    )

    out_path = Path(out_path)
    fmt = SHEET_FORMATS.get(out_path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{out_path}: the sheet must be one of {', '.join(SHEET_FORMATS)}")
    if columns < 1 or tile < 1 or limit < 1:
        raise ValueError(f"columns, tile and limit must be at least 1, got {columns}, {tile}, "
                         f"{limit}")
    names = sample_names(dataset_dir)[:limit]
    if not names:
        raise FileNotFoundError(f"no samples (face_*.npz) in {dataset_dir}")
    tiles, captions = [], []
    for name in names:
        s = load_sample(dataset_dir, name)
        tiles.append(Image.fromarray(s["image"]) if plain else draw_overlay(s["image"], s))
        p, y, r = np.degrees(s["pose_aflw"])
        captions.append(f"{name[5:]}  p{p:+.0f} y{y:+.0f} r{r:+.0f}")
    sheet = contact_sheet(tiles, columns=columns, tile=tile, captions=None if plain else captions)
    buf = io.BytesIO()
    sheet.save(buf, format=fmt)
    created = make_folders(out_path.parent)
    try:
        atomic_write_bytes(out_path, buf.getvalue())
    except BaseException:
        remove_folders(created)
        raise
    return out_path
