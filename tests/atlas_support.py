"""What the atlas tests share: a tiny model saved to a file (workers and subprocesses load it by path),
a folder of generated images, and the settings of a small, fast atlas."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
from PIL import Image

SMALL = {"layers": ["conv2", "conv3"], "channels": "0-7", "steps": 8, "size": 32}
"""A small atlas: 16 units of the tiny Sequential model, 8 steps each at 32 px (in batches of 4 or 8, every
chunk full: one compiled step per layer and view)."""


def save_tiny_model(folder) -> str:
    """The tests' Sequential CNN (`conftest.sequential_relu`) as a .keras file; returns its path."""
    from conftest import sequential_relu

    path = os.path.join(folder, "tiny.keras")
    with warnings.catch_warnings():
        # Keras's own saver converts variables with np.array(x), which NumPy 2 flags; not ours to fix.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="keras")
        sequential_relu().save(path)
    return path


def make_images(folder, count=14, duplicates=4, seed=0) -> list[str]:
    """`count` generated images of assorted sizes and shapes (blobs, stripes, noise) in `folder`, plus
    `duplicates` byte-identical copies under other names (equal activations: ties to break by name)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for index in range(count):
        height, width = int(rng.integers(28, 60)), int(rng.integers(28, 60))
        rows, cols = np.mgrid[0:height, 0:width] / max(height, width)
        picture = np.stack([np.sin(rows * rng.uniform(2, 20) + cols * rng.uniform(-10, 10) + rng.uniform(0, 6))
                            for _ in range(3)], -1) * 0.5 + 0.5
        picture = 0.7 * picture + 0.3 * rng.uniform(size=(height, width, 3))
        name = f"img{index:02d}.png" if index % 3 else f"sub/img{index:02d}.jpg"
        os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
        Image.fromarray((picture * 255).astype(np.uint8)).save(os.path.join(folder, name))
        names.append(name)
    for index in range(duplicates):
        source = names[index * 2 + 1]
        copy = f"dup{index}_{os.path.basename(source)}"
        with open(os.path.join(folder, source), "rb") as original, open(os.path.join(folder, copy), "wb") as file:
            file.write(original.read())
        names.append(copy)
    with open(os.path.join(folder, "notes.txt"), "w") as file:
        file.write("not an image")
    return sorted(names)


def manifest(directory, layer) -> dict:
    with open(os.path.join(directory, layer, "manifest.json")) as file:
        return json.load(file)


def unit_files(directory, layer="conv2"):
    """{file name: (inode, mtime_ns)} of a layer's unit images and records."""
    found = {}
    for sub in ("", "units"):
        folder = os.path.join(directory, layer, sub)
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not name.startswith("manifest"):
                stat = os.stat(path)
                found[os.path.join(sub, name)] = (stat.st_ino, stat.st_mtime_ns)
    return found
