"""Baseline models that prove a generated dataset trains something (notebooks/04_train_baseline).

- ``model``: a MobileNetV1-style CNN (plain PyTorch, no pretrained weights) with a 6D rotation
  head, a 68-landmark head and an optional gaze head.
- ``training``: ``TrainConfig``, ``train``, ``evaluate``, the mean-pose baseline.
- ``stability``: prediction spread over a variation set (expression, background, lighting).
- ``onnx_export``: ONNX export and an onnxruntime check against PyTorch.
- ``report``: training curves and results tables in the original README's layout.
"""

from replicantface.baselines.model import (
    FaceBaselineNet,
    ModelConfig,
    count_parameters,
    rotation_from_6d,
    rotation_to_6d,
)
from replicantface.baselines.training import (
    CropAroundBox,
    TrainConfig,
    TrainResult,
    assert_loss_falls,
    cross_evaluate,
    evaluate,
    fit_mean_baseline,
    generate_dataset,
    predict,
    score,
    score_mean_baseline,
    train,
)

__all__ = [
    "CropAroundBox", "FaceBaselineNet", "ModelConfig", "TrainConfig", "TrainResult",
    "assert_loss_falls", "count_parameters", "cross_evaluate", "evaluate", "fit_mean_baseline",
    "generate_dataset", "predict", "rotation_from_6d", "rotation_to_6d", "score",
    "score_mean_baseline", "train",
]
