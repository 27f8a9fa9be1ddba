"""Shared fixtures: tiny models of each architecture family the engine must handle.

Every builder seeds its initialisers, so activations are reproducible across runs.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

SEED = 1234
BACKEND_SUBSET = {
    "test_attribution.py", "test_attribution_scenes.py", "test_backend.py", "test_checks.py", "test_errors.py",
    "test_expression.py", "test_image_objectives.py", "test_models.py", "test_objectives.py", "test_optimizers.py",
    "test_param.py", "test_quality.py", "test_readme.py", "test_render.py", "test_transform.py", "test_units.py",
    "test_widget.py",
}
"""The engine and widget test files marked `backends`: CI runs them again under JAX and PyTorch
(`KERAS_BACKEND=jax python -m pytest -m backends`; on PyTorch without the `vgg` tests). Add a file here
when it tests the engine quickly; `.ci/run` prints each run's time."""


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in BACKEND_SUBSET:
            item.add_marker(pytest.mark.backends)


def _init(offset=0):
    return keras.initializers.HeUniform(seed=SEED + offset)


def numpy_weights(model):
    """Redraws every kernel made by `_init` with NumPy from the same seed, so a fixture has the same
    weights on every backend (Keras' seeded initializers draw from each backend's own random stream)
    while its saved config names only Keras' own initializer."""
    for layer in [model, *getattr(model, "layers", ())]:
        if layer is not model and hasattr(layer, "layers"):
            numpy_weights(layer)
        initializer = getattr(layer, "kernel_initializer", None)
        if isinstance(initializer, keras.initializers.HeUniform) and getattr(layer, "kernel", None) is not None:
            shape = tuple(layer.kernel.shape)
            limit = np.sqrt(6.0 / np.prod(shape[:-1]))
            layer.kernel.assign(np.random.default_rng(initializer.seed).uniform(-limit, limit, shape).astype("float32"))
    return model


def sequential_relu(size=None):
    """Sequential CNN with fused ReLUs; free input size unless `size` is given."""
    return numpy_weights(keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1", kernel_initializer=_init(1)),
            keras.layers.MaxPooling2D(name="pool1"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2", kernel_initializer=_init(2)),
            keras.layers.Dropout(0.5, name="drop"),
            keras.layers.Conv2D(12, 3, padding="same", activation="relu", name="conv3", kernel_initializer=_init(3)),
        ],
        name="seq",
    ))


def functional_bn_residual():
    """Functional CNN with BatchNorm, a separate ReLU layer and a residual add."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem", kernel_initializer=_init(4))(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="res_a", kernel_initializer=_init(5))(x)
    y = keras.layers.Conv2D(8, 3, padding="same", name="res_b", kernel_initializer=_init(6))(y)
    x = keras.layers.Add(name="res_add")([x, y])
    x = keras.layers.Activation("relu", name="res_out")(x)
    x = keras.layers.Conv2D(10, 3, strides=2, padding="same", activation="relu", name="head",
                            kernel_initializer=_init(7))(x)
    return numpy_weights(keras.Model(inputs, x, name="resnetish"))


def nested_functional():
    """An outer Functional model whose middle is a named Functional submodel."""
    inner_in = keras.Input((None, None, 8))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="inner_conv", kernel_initializer=_init(8))(inner_in)
    inner = keras.Model(inner_in, h, name="inner")
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="outer_conv", kernel_initializer=_init(9))(inputs)
    x = inner(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="top_conv", kernel_initializer=_init(10))(x)
    return numpy_weights(keras.Model(inputs, x, name="outer"))


def softmax_classifier(size=32, classes=5):
    """Fixed-size classifier whose head fuses a softmax into its Dense layer."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1", kernel_initializer=_init(11))(inputs)
    x = keras.layers.MaxPooling2D(name="p1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c2", kernel_initializer=_init(12))(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(classes, activation="softmax", name="predictions", kernel_initializer=_init(13))(x)
    return numpy_weights(keras.Model(inputs, x, name="classifier"))


class SubclassedWithBackbone(keras.Model):
    """A subclassed model that calls a nested Functional backbone, then a head."""

    def __init__(self):
        super().__init__(name="subclassed")
        self.backbone = functional_bn_residual()
        self.pool = keras.layers.GlobalAveragePooling2D(name="sub_gap")
        self.head = keras.layers.Dense(3, name="sub_head", kernel_initializer=_init(14))

    def call(self, inputs, training=False):
        return self.head(self.pool(self.backbone(inputs, training=training)))


@pytest.fixture(scope="session")
def seq_model():
    return sequential_relu()


@pytest.fixture(scope="session")
def resnet_model():
    return functional_bn_residual()


@pytest.fixture(scope="session")
def nested_model():
    return nested_functional()


@pytest.fixture(scope="session")
def classifier_model():
    return softmax_classifier()


@pytest.fixture(scope="session")
def subclassed_model():
    model = SubclassedWithBackbone()
    model(keras.ops.zeros((1, 32, 32, 3)))
    return numpy_weights(model)


@pytest.fixture(scope="session")
def vgg16_hed():
    from lucidwidget.models import load_model

    return load_model("vgg16-hed")


@pytest.fixture(scope="session")
def dead_unit_model():
    """Channel 0 fires on every image (positive weights), channel 1 never fires on images in [0, 1]
    (bias -100) and channel 2 has all-zero weights."""
    model = keras.Sequential([keras.Input((None, None, 3)),
                              keras.layers.Conv2D(4, 3, activation="relu", name="conv", kernel_initializer=_init(11))])
    numpy_weights(model)
    kernel, bias = model.get_layer("conv").get_weights()
    kernel[..., 0] = np.abs(kernel[..., 0])
    kernel[..., 2] = 0.0
    bias[1] = -100.0
    model.get_layer("conv").set_weights([kernel, bias])
    return model
