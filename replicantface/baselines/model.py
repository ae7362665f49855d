"""A MobileNet-sized multitask CNN in plain PyTorch: head pose, 68 landmarks, optional gaze.

Frames (docs/training_formats.md):

- rotation: head -> camera in the image frame (x right, y down, z into the screen), the
  ``rotation`` of ``replicantface.data.FaceDataset`` samples; ``data.pose_from_rotation`` turns it
  into AFLW [pitch, yaw, roll].
- landmarks: (68, 2) iBUG-68 in crop units, x right / y down, (0, 0) the top-left corner and
  (1, 1) the bottom-right corner of the input crop (pixels / crop side).
- gaze: (2, 3) unit gaze of the [right, left] eye in the camera frame (x right, y up, z toward
  the viewer), as the dataset's ``gaze``.

No pretrained weights: every parameter starts from PyTorch's default initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# ImageNet statistics; the network normalises its 0..1 input itself so that the ONNX model
# takes the same 0..1 RGB tensor as the PyTorch one.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
# The 6D vector of the identity rotation: its first two columns.
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # Written out so that every ONNX opset exports it (no linalg.cross op).
    ax, ay, az = a[:, 0], a[:, 1], a[:, 2]
    bx, by, bz = b[:, 0], b[:, 1], b[:, 2]
    return torch.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], dim=1)


def _normalize(v: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return v / torch.sqrt((v * v).sum(dim=1, keepdim=True) + eps)


def rotation_from_6d(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) rotations from (N, 6) vectors (Zhou et al. 2019, Gram-Schmidt).

    x holds two 3-vectors a1 = x[:, :3], a2 = x[:, 3:]; the result's columns are
    b1 = a1 / |a1|, b2 = the normalised part of a2 orthogonal to b1, b3 = b1 x b2.
    """
    a1, a2 = x[:, 0:3], x[:, 3:6]
    b1 = _normalize(a1)
    b2 = _normalize(a2 - (b1 * a2).sum(dim=1, keepdim=True) * b1)
    b3 = _cross(b1, b2)
    return torch.stack([b1, b2, b3], dim=2)


def rotation_to_6d(rot: torch.Tensor) -> torch.Tensor:
    """(N, 6) first two columns of (N, 3, 3) rotations (the inverse of ``rotation_from_6d``)."""
    return torch.cat([rot[:, :, 0], rot[:, :, 1]], dim=1)


def _conv_bn(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _depthwise_separable(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in), nn.ReLU(inplace=True),
        nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False),
        nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


# MobileNetV1's (channels, stride) after the stem, with three instead of five 512-channel
# blocks in the middle and the last stride dropped (output stride 16: a 64 px crop ends as a
# 4x4 map, not 2x2): the whole backbone at width 1 (channels are scaled by `width`).
_MOBILENET_V1 = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                 (512, 1), (512, 1), (512, 1), (1024, 1), (1024, 1))
# The default: plain 3x3 convolutions at the same output stride and a similar parameter count.
# From scratch on a few hundred renders it learned pose far faster than the depthwise layout
# (docs/baseline_results.md gives the numbers).
_PLAIN = ((48, 2), (64, 1), (96, 2), (128, 1), (192, 2), (256, 1), (384, 2), (384, 1))
ARCHS = ("plain", "mobilenet_v1")
OUTPUT_STRIDE = 16


@dataclass(frozen=True)
class ModelConfig:
    """arch: ``plain`` (3x3 conv-BN-ReLU stack) or ``mobilenet_v1`` (depthwise-separable).
    width: channel multiplier of the layout. crop_size: input side in pixels
    (a multiple of 16). head_channels: the final map is reduced to this many channels and
    flattened, so the heads see where things are, not just a pooled average.
    with_gaze: add the gaze head. dropout: before the heads."""

    arch: str = "plain"
    width: float = 0.5
    crop_size: int = 64
    head_channels: int = 32
    with_gaze: bool = False
    dropout: float = 0.1


class FaceBaselineNet(nn.Module):
    """A small CNN (plain or depthwise-separable) with three linear heads on the flattened
    final feature map.

    Input: (N, 3, S, S) float RGB in 0..1, S = ``cfg.crop_size``.
    ``forward`` returns a dict: ``rot6d`` (N, 6), ``rotation`` (N, 3, 3) image frame,
    ``landmarks`` (N, 68, 2) crop units, and ``gaze`` (N, 2, 3) unit vectors when enabled.
    """

    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        self.cfg = cfg

        def ch(c: int) -> int:
            return max(8, int(round(c * cfg.width / 8)) * 8)

        if cfg.arch == "mobilenet_v1":
            layers, c_in = [_conv_bn(3, ch(32), 2)], ch(32)
            for c, stride in _MOBILENET_V1:
                layers.append(_depthwise_separable(c_in, ch(c), stride))
                c_in = ch(c)
        elif cfg.arch == "plain":
            layers, c_in = [], 3
            for c, stride in _PLAIN:
                layers.append(_conv_bn(c_in, ch(c), stride))
                c_in = ch(c)
        else:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {cfg.arch!r}")
        if cfg.crop_size % OUTPUT_STRIDE:
            raise ValueError(f"crop_size must be a multiple of {OUTPUT_STRIDE}, got {cfg.crop_size}")
        layers.append(nn.Sequential(nn.Conv2d(c_in, cfg.head_channels, 1, bias=False),
                                    nn.BatchNorm2d(cfg.head_channels), nn.ReLU(inplace=True)))
        self.backbone = nn.Sequential(*layers)
        side = cfg.crop_size // OUTPUT_STRIDE
        self.features = cfg.head_channels * side * side
        self.dropout = nn.Dropout(cfg.dropout)
        self.rot_head = nn.Linear(self.features, 6)
        self.landmark_head = nn.Linear(self.features, 68 * 2)
        self.gaze_head = nn.Linear(self.features, 6) if cfg.with_gaze else None
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        # Start at the frontal pose, landmarks at the crop centre, gaze into the lens, so the
        # first steps do not chase a random offset.
        with torch.no_grad():
            self.rot_head.weight.mul_(0.1)
            self.rot_head.bias.copy_(torch.tensor(IDENTITY_6D))
            self.landmark_head.weight.mul_(0.1)
            self.landmark_head.bias.fill_(0.5)
            if self.gaze_head is not None:
                self.gaze_head.weight.mul_(0.1)
                self.gaze_head.bias.copy_(torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 1.0]))

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """(N, F) flattened final feature map of (N, 3, S, S) 0..1 RGB."""
        x = self.backbone((image - self.mean) / self.std)
        return self.dropout(torch.flatten(x, 1))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.embed(image)
        rot6d = self.rot_head(f)
        out = {"rot6d": rot6d, "rotation": rotation_from_6d(rot6d),
               "landmarks": self.landmark_head(f).view(-1, 68, 2)}
        if self.gaze_head is not None:
            g = self.gaze_head(f).view(-1, 2, 3)
            out["gaze"] = g / torch.sqrt((g * g).sum(dim=2, keepdim=True) + 1e-8)
        return out


class ExportWrapper(nn.Module):
    """Tuple-output view of a ``FaceBaselineNet`` for ONNX: (rotation, landmarks[, gaze])."""

    def __init__(self, net: FaceBaselineNet):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor):
        out = self.net(image)
        keys = ("rotation", "landmarks", "gaze") if "gaze" in out else ("rotation", "landmarks")
        return tuple(out[k] for k in keys)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
