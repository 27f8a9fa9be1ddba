"""The atlas's units of work: chunks of a layer's units to render and shards of images to scan.

A unit's seed comes from (base seed, layer, channel) through a stable hash, so its image depends only
on the unit and the settings, never on which chunk, batch or worker it landed in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

SEED_MODULUS = 2**31
"""Seeds are in [0, 2**31 - 1]: what the widget's seed entry and the render loop's seed state take."""

SCAN_SHARD_IMAGES = 256
"""Images per scan task. A task's results are k x channels per layer whatever its size, so larger shards
cost the driver less; smaller ones spread a small folder over more workers and lose less when a worker
dies. 256 images of 128 px pass vgg16-hed's block5 in about a minute on one CPU core."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def unit_seed(base, layer, channel) -> int:
    """The seed of unit `channel` of `layer`: SHA-256 of `"base/layer/channel"`, the same in every process
    (Python's `hash` of a string changes from one process to the next)."""
    digest = hashlib.sha256(f"{base}/{layer}/{channel}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_MODULUS


def layer_folders(layers, taken=()) -> dict[str, str]:
    """A folder name per layer: the name with characters other than letters, digits, `.`, `_` and `-`
    replaced by `_` (nested names hold `/`), and a number added where it would collide with another or
    with a folder in `taken` (case-insensitively, for case-insensitive file systems)."""
    folders, used = {}, {folder.lower() for folder in taken}
    for name in layers:
        base = _UNSAFE.sub("_", name).strip(".") or "layer"
        folder, count = base, 1
        while folder.lower() in used:
            count += 1
            folder = f"{base}_{count}"
        used.add(folder.lower())
        folders[name] = folder
    return folders


@dataclasses.dataclass(frozen=True)
class RenderChunk:
    """Units of one layer rendered together: unit i on batch item i, with seed `seeds[i]`."""

    layer: str
    channels: tuple
    seeds: tuple

    @property
    def label(self) -> str:
        return f"{self.layer}:{_ranges(self.channels)}"


@dataclasses.dataclass(frozen=True)
class ScanShard:
    """Images `files` (indices `first ..` of the folder's sorted list) scanned for `layers`."""

    index: int
    first: int
    files: tuple
    layers: tuple

    @property
    def label(self) -> str:
        return f"images {self.first}-{self.first + len(self.files) - 1}"


def render_chunks(layer, channels, batch, base_seed) -> list[RenderChunk]:
    """`channels` of `layer` in chunks of at most `batch`, in order."""
    channels = list(channels)
    return [
        RenderChunk(layer, tuple(part), tuple(unit_seed(base_seed, layer, c) for c in part))
        for part in (channels[i:i + batch] for i in range(0, len(channels), batch))
    ]


def scan_shards(files, done, size=SCAN_SHARD_IMAGES) -> list[ScanShard]:
    """The folder's images in shards of `size`, each for the layers of `done` (`{layer: shard indices
    already scanned}`) that still need it."""
    shards = []
    for index, first in enumerate(range(0, len(files), size)):
        layers = tuple(layer for layer, finished in done.items() if index not in finished)
        if layers:
            shards.append(ScanShard(index, first, tuple(files[first:first + size]), layers))
    return shards


def _ranges(values) -> str:
    """`[0, 1, 2, 5]` -> `"0-2,5"`."""
    parts, values = [], sorted(values)
    start = previous = values[0]
    for value in values[1:] + [None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if value is not None:
            start = previous = value
    return ",".join(parts)
