"""The deployment layer: loading trained models (:mod:`~inception_v2.deploy.load`), BatchNorm
folding (:mod:`~inception_v2.deploy.fuse`), the fast inference path and ONNX runner
(:mod:`~inception_v2.deploy.inference`) and verified export (:mod:`~inception_v2.deploy.export`).

It imports the models and nothing of the training code or matplotlib, so loading a model and
running it stays light.
"""

from inception_v2.deploy.fuse import fuse_conv_bn
from inception_v2.deploy.inference import InferenceModel, OnnxClassifier, prepare_for_inference
from inception_v2.deploy.load import load_checkpoint, load_model

__all__ = [
    "InferenceModel",
    "OnnxClassifier",
    "fuse_conv_bn",
    "load_checkpoint",
    "load_model",
    "prepare_for_inference",
]
