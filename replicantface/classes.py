"""Segmentation classes: FaceSynthetics' 19, with 255 meaning ignore."""

from __future__ import annotations

from enum import IntEnum


class SegClass(IntEnum):
    BACKGROUND = 0
    SKIN = 1
    NOSE = 2
    RIGHT_EYE = 3
    LEFT_EYE = 4
    RIGHT_BROW = 5
    LEFT_BROW = 6
    RIGHT_EAR = 7
    LEFT_EAR = 8
    MOUTH_INTERIOR = 9
    TOP_LIP = 10
    BOTTOM_LIP = 11
    NECK = 12
    HAIR = 13
    BEARD = 14
    CLOTHING = 15
    GLASSES = 16
    HEADWEAR = 17
    FACEWEAR = 18


IGNORE = 255

# Classes that belong to the face skin for the face box (FaceSynthetics' face region).
FACE_SKIN_CLASSES = (
    SegClass.SKIN,
    SegClass.NOSE,
    SegClass.RIGHT_EYE,
    SegClass.LEFT_EYE,
    SegClass.RIGHT_BROW,
    SegClass.LEFT_BROW,
    SegClass.TOP_LIP,
    SegClass.BOTTOM_LIP,
    SegClass.MOUTH_INTERIOR,
)

# The face box: the face skin plus what is worn on it or grows from it (a mask, glasses, a beard),
# so the box keeps the face's extent whatever covers it. Headwear and scalp hair are not in it.
FACE_BOX_CLASSES = FACE_SKIN_CLASSES + (SegClass.BEARD, SegClass.GLASSES, SegClass.FACEWEAR)

# What is worn on or grows from the head and may hide it (landmarks can be under these).
WORN_CLASSES = (SegClass.HAIR, SegClass.BEARD, SegClass.GLASSES, SegClass.HEADWEAR, SegClass.FACEWEAR)

# Everything that is the human's head (for landmark checks): face plus ears.
HEAD_CLASSES = FACE_SKIN_CLASSES + (SegClass.RIGHT_EAR, SegClass.LEFT_EAR)


def class_table() -> dict[str, int]:
    """Name -> id mapping written into dataset.json."""
    table = {c.name: int(c) for c in SegClass}
    table["IGNORE"] = IGNORE
    return table
