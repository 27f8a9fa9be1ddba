"""Small models trained for a few seconds on synthetic stripes, the kinds of model users bring.

Each class is one stripe orientation (0, 45, 90, 135 degrees) at a random frequency and phase, with noise,
so the trained filters are oriented edge detectors and the logits read orientation: real features to
visualise, unlike a random initialisation. `z_score` is the test's measure of "the render excites the
target": how many noise standard deviations it sits above uniform-noise images.
"""

import numpy as np

import keras

CLASSES = 4
"""Stripe orientations, one per class."""

TRAIN_EXAMPLES = 2048
EPOCHS = 3
"""Enough for > 90% training accuracy on the one-input models below in a few seconds of CPU time; the
two-input model, whose label also depends on its metadata, needs `TWO_INPUT_EPOCHS`."""

TWO_INPUT_EPOCHS = 8

NOISE_IMAGES = 16
"""Uniform-noise images whose objective values give the mean and spread that `z_score` measures against."""

SEED = 7


def stripes(count, size, channels, seed=SEED, sites=None):
    """`(images in [0, 1], labels)`: oriented stripes; with `sites`, labels shift by a per-example site.

    Returns `(images, labels)`, or `(images, site one-hots, labels)` when `sites` is given.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(CLASSES, size=count)
    angles = labels * np.pi / CLASSES + rng.normal(0.0, 0.08, count)
    frequency = rng.uniform(0.5, 1.2, count)
    phase = rng.uniform(0.0, 2 * np.pi, count)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    wave = np.cos(angles)[:, None, None] * xx + np.sin(angles)[:, None, None] * yy
    grey = 0.5 + 0.4 * np.sin(frequency[:, None, None] * wave + phase[:, None, None])
    tint = rng.uniform(0.6, 1.0, (count, 1, 1, channels))
    images = grey[..., None] * tint + rng.normal(0.0, 0.05, (count, size, size, channels))
    images = np.clip(images, 0.0, 1.0).astype(np.float32)
    if sites is None:
        return images, labels
    site = rng.integers(sites, size=count)
    return images, np.eye(sites, dtype=np.float32)[site], (labels + site) % CLASSES


def train(model, inputs, labels, preprocess=None, epochs=EPOCHS):
    """Fits `model` to the data (after `preprocess`, the model's own convention); returns its final accuracy."""
    if preprocess is not None:
        inputs = [preprocess(inputs[0])] + list(inputs[1:]) if isinstance(inputs, list) else preprocess(inputs)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(inputs, labels, epochs=epochs, batch_size=64, verbose=0)
    return history.history["accuracy"][-1]


def _conv(filters, name, seed):
    return keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=name,
                               kernel_initializer=keras.initializers.HeUniform(seed=seed))


def _dense(units, name, seed, activation=None):
    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_initializer=keras.initializers.GlorotUniform(seed=seed))


def grey_classifier(size=28):
    """An MNIST-sized grayscale classifier with a fixed input (Flatten pins the size)."""
    keras.utils.set_random_seed(SEED)
    return keras.Sequential([
        keras.Input((size, size, 1)),
        _conv(8, "conv1", 1),
        keras.layers.MaxPooling2D(name="pool1"),
        _conv(16, "conv2", 2),
        keras.layers.MaxPooling2D(name="pool2"),
        keras.layers.Flatten(name="flatten"),
        _dense(CLASSES, "logits", 3),
    ], name="grey28")


def rgb_classifier(size=32):
    """A 32-px RGB classifier trained on [-1, 1] inputs (the "tf" convention)."""
    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((size, size, 3), name="image")
    x = _conv(8, "conv1", 4)(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = _conv(16, "conv2", 5)(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _dense(CLASSES, "logits", 6)(x), name="rgb32")


class FaceNetLike(keras.Model):
    """A subclassed fixed-size net with Caffe-style names (`conv2.1`, `fc6-3`), like the small face
    detectors users bring: Keras cannot know its input size, Flatten + Dense pin it."""

    def __init__(self):
        super().__init__(name="facenet_like")
        self.conv1 = _conv(8, "conv1", 7)
        self.pool1 = keras.layers.MaxPooling2D(name="pool1")
        self.conv2 = _conv(16, "conv2.1", 8)
        self.pool2 = keras.layers.MaxPooling2D(name="pool2")
        self.flatten = keras.layers.Flatten(name="flatten")
        self.fc = _dense(32, "fc5", 9, activation="relu")
        self.logits = _dense(CLASSES, "fc6-3", 10)

    def call(self, inputs):
        x = self.pool2(self.conv2(self.pool1(self.conv1(inputs))))
        return self.logits(self.fc(self.flatten(x)))


def two_input_classifier(size=32, sites=2):
    """An image + metadata (site one-hot) classifier, the label depending on both."""
    keras.utils.set_random_seed(SEED)
    image = keras.Input((size, size, 3), name="image")
    meta = keras.Input((sites,), name="meta")
    x = _conv(8, "conv1", 11)(image)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = _conv(16, "conv2", 12)(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Concatenate(name="join")([x, _dense(8, "meta_embed", 13, activation="relu")(meta)])
    x = _dense(32, "hidden", 14, activation="relu")(x)
    return keras.Model([image, meta], _dense(CLASSES, "logits", 15)(x), name="two_input")


def caffe_named_classifier(size=24):
    """A Functional grey classifier whose layer names carry '-' and '.' (`conv1-1`, `conv2.1`, `fc6-3`),
    with a nested Functional block."""
    keras.utils.set_random_seed(SEED)
    block_in = keras.Input((size // 2, size // 2, 8))
    block = keras.Model(block_in, _conv(16, "conv2.1", 17)(block_in), name="block-2")
    inputs = keras.Input((size, size, 1))
    x = _conv(8, "conv1-1", 16)(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = block(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, _dense(CLASSES, "fc6-3", 18)(x), name="caffe_named")


def noise_images(renderer, count=NOISE_IMAGES, seed=SEED):
    """Uniform noise in [0, 1] of the renderer's input size and channel count."""
    height, width = renderer.input_size
    return np.random.default_rng(seed).uniform(0.0, 1.0, (count, height, width, renderer.channels)).astype(np.float32)


def z_score(renderer, objective, images):
    """How far `images` excite `objective` above noise, in noise standard deviations.

    `(value on the images - mean over noise images) / std over noise images`, where each value is
    `renderer.evaluate` on one image (no transforms, the renderer's own preprocessing) and the noise is
    `NOISE_IMAGES` uniform-noise images (`noise_images`). For a batch of images the mean value counts.
    """
    noise = np.array([renderer.evaluate(objective, image[None]) for image in noise_images(renderer)])
    value = np.mean([renderer.evaluate(objective, image[None]) for image in images])
    return (value - noise.mean()) / noise.std()
