"""Model loading, layer lookup and activation taps."""

from lucidwidget._tf_startup import import_backend

import_backend()  # before any submodule: TensorFlow (the default backend) loads without its start-up log lines

from lucidwidget.models.inputs import ImageInput, find_image_input
from lucidwidget.models.layers import LayerInfo, find_layer, visualizable_layers
from lucidwidget.models.taps import FeatureTap
from lucidwidget.models.zoo import PRESET_NAMES, Preprocess, list_models, load_model, preprocessing

__all__ = [
    "PRESET_NAMES",
    "FeatureTap",
    "ImageInput",
    "LayerInfo",
    "Preprocess",
    "find_image_input",
    "find_layer",
    "list_models",
    "load_model",
    "preprocessing",
    "visualizable_layers",
]
