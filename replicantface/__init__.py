"""replicantface: synthetic faces with exact head-pose, landmark and segmentation labels."""

__version__ = "0.1.0"
