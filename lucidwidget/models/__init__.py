"""Model loading, layer lookup and activation taps."""

from lucidwidget.models.layers import LayerInfo, find_layer, visualizable_layers
from lucidwidget.models.taps import FeatureTap
from lucidwidget.models.zoo import Preprocess, list_models, load_model

__all__ = ["FeatureTap", "LayerInfo", "Preprocess", "find_layer", "list_models", "load_model", "visualizable_layers"]
