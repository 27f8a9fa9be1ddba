"""Synthetic scenes whose class evidence sits in a known box, and a small CNN trained on them.

Each scene is a dark noisy background with distractor bars (random sizes and dim colours, the same for
every class) and one bright class glyph (a plus, a ring, a cross or a square outline, in strokes as
wide as the bars) pasted at a random place; the glyph's box is where the evidence is. The CNN ends with
a global average pool and a dense softmax head, so Grad-CAM and channel attribution have closed forms
to test against. Its weights start from NumPy draws and training does not shuffle, so every backend
trains nearly the same model (on TensorFlow, JAX and PyTorch the test figures agreed to about 0.01).
"""

import keras
import numpy as np

SIZE = 32
"""Scene side in pixels."""

GLYPH = 8
"""Glyph side in pixels: 6% of a scene's area, so "more magnitude inside the box than its share of the
area" asks for clear concentration."""

CLASSES = 4
DISTRACTORS = 3
"""Random bars per scene, two pixels wide like the glyphs' strokes."""

NOISE = 0.08
"""Standard deviation of the background's pixel noise."""

BACKGROUND = (0.1, 0.4)
DISTRACTOR_COLOURS = (0.0, 0.5)
GLYPH_COLOURS = (0.75, 1.0)
"""Ranges of each channel's value. Glyphs are the brightest things in a scene, as objects in photos
often are: Score-CAM multiplies the image by masks (dark glyphs vanish from every masked image) and
Integrated Gradients starts from black (a dark glyph has almost no path to integrate)."""

WIDTHS = (16, 16, 32, 32)
"""Filters of the four convolutions (a max pool after the second)."""

TRAIN_SCENES = 1024
LEARNING_RATE = 3e-3
BATCH = 32
MAX_EPOCHS = 20
LEARNED = 0.99
"""Training stops once an epoch's accuracy reaches this: six epochs on every backend, about 5 s of CPU
time on TensorFlow, 12 s on JAX and 46 s on PyTorch (Keras' per-step overhead there) on this
project's 2-core CPU; fresh scenes are then classified with 98-100% accuracy."""

SEED = 11


def _glyph(label):
    """A GLYPH x GLYPH 0/1 stroke mask for a class: a plus, a ring, a cross or a square outline."""
    mask = np.zeros((GLYPH, GLYPH), np.float32)
    middle = GLYPH // 2
    if label == 0:
        mask[middle - 1:middle + 1, :] = 1
        mask[:, middle - 1:middle + 1] = 1
    elif label == 1:
        yy, xx = np.mgrid[0:GLYPH, 0:GLYPH] + 0.5
        radius = np.hypot(yy - GLYPH / 2, xx - GLYPH / 2)
        mask[(radius > GLYPH / 2 - 2.2) & (radius < GLYPH / 2)] = 1
    elif label == 2:
        index = np.arange(GLYPH)
        for offset in (0, 1):
            mask[index, np.clip(index + offset, 0, GLYPH - 1)] = 1
            mask[index, np.clip(GLYPH - 1 - index + offset, 0, GLYPH - 1)] = 1
    else:
        mask[:2, :] = mask[-2:, :] = mask[:, :2] = mask[:, -2:] = 1
    return mask


def _paint(image, mask, top, left, colour):
    window = image[top:top + mask.shape[0], left:left + mask.shape[1]]
    window[:] = window * (1 - mask[..., None]) + colour * mask[..., None]


def scenes(count, seed=SEED, channels=3):
    """`(images (count, SIZE, SIZE, channels) in [0, 1], labels, boxes (count, 4) as top, left, bottom,
    right)`."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(CLASSES, size=count)
    images = np.clip(rng.uniform(*BACKGROUND, (count, 1, 1, channels))
                     + rng.normal(0, NOISE, (count, SIZE, SIZE, channels)), 0, 1).astype(np.float32)
    boxes = np.zeros((count, 4), np.int64)
    for image, label, box in zip(images, labels, boxes):
        for _ in range(DISTRACTORS):
            length, width = rng.integers(4, GLYPH + 1), 2
            bar = np.ones((length, width) if rng.random() < 0.5 else (width, length), np.float32)
            _paint(image, bar, rng.integers(0, SIZE - bar.shape[0] + 1), rng.integers(0, SIZE - bar.shape[1] + 1),
                   rng.uniform(*DISTRACTOR_COLOURS, channels))
        top, left = rng.integers(0, SIZE - GLYPH + 1, size=2)
        _paint(image, _glyph(label), top, left, rng.uniform(*GLYPH_COLOURS, channels))
        box[:] = (top, left, top + GLYPH, left + GLYPH)
    return np.clip(images, 0, 1), labels, boxes


def cnn(channels=3):
    """Convolutions, a global average pool and a dense softmax head, with weights drawn by NumPy so
    that every backend starts from the same ones."""
    layers = [keras.Input((None, None, channels))]
    for index, filters in enumerate(WIDTHS):
        layers.append(keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{index + 1}"))
        if index == 1:
            layers.append(keras.layers.MaxPooling2D(name="pool"))
    layers += [keras.layers.GlobalAveragePooling2D(name="gap"),
               keras.layers.Dense(CLASSES, activation="softmax", name="predictions")]
    model = keras.Sequential(layers, name="scenes_cnn")
    rng = np.random.default_rng(SEED)
    for layer in model.layers:
        if getattr(layer, "kernel", None) is not None:
            shape = tuple(layer.kernel.shape)
            limit = np.sqrt(6.0 / np.prod(shape[:-1]))                   # He uniform
            layer.kernel.assign(rng.uniform(-limit, limit, shape).astype(np.float32))
    return model


class _StopWhenLearned(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if logs["accuracy"] >= LEARNED:
            self.model.stop_training = True


def trained_cnn():
    """`(model, accuracy on fresh scenes)`: trained until the training accuracy reaches `LEARNED`, for at
    most `MAX_EPOCHS` epochs."""
    keras.utils.set_random_seed(SEED)
    model = cnn()
    images, labels, _ = scenes(TRAIN_SCENES)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(images, labels, epochs=MAX_EPOCHS, batch_size=BATCH, shuffle=False, verbose=0,
              callbacks=[_StopWhenLearned()])
    test_images, test_labels, _ = scenes(256, seed=SEED + 1)
    accuracy = float(np.mean(np.argmax(model.predict(test_images, verbose=0), axis=-1) == test_labels))
    return model, accuracy


def box_mask(boxes, size=SIZE):
    """Boolean masks (count, size, size) that are True inside each box."""
    masks = np.zeros((len(boxes), size, size), bool)
    for mask, (top, left, bottom, right) in zip(masks, boxes):
        mask[top:bottom, left:right] = True
    return masks
