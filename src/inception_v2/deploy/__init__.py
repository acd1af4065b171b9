"""The deployment layer: loading trained models (:mod:`~inception_v2.deploy.load`), BatchNorm
folding (:mod:`~inception_v2.deploy.fuse`), the fast inference path and ONNX runner
(:mod:`~inception_v2.deploy.inference`), verified export to ONNX, ``torch.export`` and
TorchScript (:mod:`~inception_v2.deploy.export`), INT8 ONNX with an accuracy gate
(:mod:`~inception_v2.deploy.quantize`) and one loader for every deployed form of a model
(:mod:`~inception_v2.deploy.runners`). See ``docs/deployment.md``.

It imports the models and nothing of the training code or matplotlib, so loading a model and
running it stays light; ONNX Runtime is imported only when an ONNX file is written or run.
"""

from inception_v2.deploy.fuse import fuse_conv_bn
from inception_v2.deploy.inference import InferenceModel, OnnxClassifier, prepare_for_inference
from inception_v2.deploy.load import load_checkpoint, load_model
from inception_v2.deploy.runners import load_classifier

__all__ = [
    "InferenceModel",
    "OnnxClassifier",
    "fuse_conv_bn",
    "load_checkpoint",
    "load_classifier",
    "load_model",
    "prepare_for_inference",
]
