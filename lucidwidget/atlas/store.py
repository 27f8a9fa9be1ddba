"""An atlas on disk: the files are the state.

Every file is written to a temporary name beside it and renamed into place (`os.replace`), so a process
killed at any moment leaves each file whole or absent. A unit is finished when its record
(`<layer>/units/<channel>.json`) exists: it is written after the unit's images, so a rerun renders
exactly the units without one. Each layer's `manifest.json` (and the `manifest.js` the gallery loads) is
rebuilt from the records and the layer's dataset examples, never edited in place.

    DIR/atlas.json                    settings that every run must share, and each layer's folder
    DIR/index.html, gallery.js/.css   the static gallery (copied from `lucidwidget/atlas/static/`)
    DIR/atlas-index.js                the gallery's list of layers (a script, because `file://` pages
                                      cannot fetch JSON)
    DIR/<layer>/<channel>.png         the channel view; `<channel>.negative.png`, `.diversity.png`
    DIR/<layer>/units/<channel>.json  a unit's record: seed, values, files
    DIR/<layer>/examples.json         the top-k table of the dataset examples, when complete
    DIR/<layer>/examples/<c>.<rank>.jpg   crops around each example's strongest position
    DIR/<layer>/scan.npz              a scan in progress: merged top-k so far and the shards done
    DIR/<layer>/manifest.json, .js    the layer's units, rebuilt from the above
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib

import numpy as np

from lucidwidget import imaging
from lucidwidget.atlas import examples as examples_lib
from lucidwidget.atlas.plan import layer_folders

SETTINGS_FILE = "atlas.json"
INDEX_SCRIPT = "atlas-index.js"
RECORDS = "units"
EXAMPLES_FILE = "examples.json"
EXAMPLES_FOLDER = "examples"
SCAN_FILE = "scan.npz"
MANIFEST = "manifest.json"
MANIFEST_SCRIPT = "manifest.js"
STATIC = pathlib.Path(__file__).resolve().parent / "static"
GALLERY_FILES = ("index.html", "gallery.js", "gallery.css")

TEMPORARY_MARK = ".partial-"
"""Temporary files are `<name>.partial-<pid>`: a kill leaves at most these, removed by the next run."""

SHARED_SETTINGS = ("model", "preprocess", "steps", "size", "views", "seed", "format")
"""Settings that shape every image: a run with other values would mix two atlases, so it is refused."""

INDEX_CALLBACK = "LUCIDWIDGET_ATLAS"
LAYER_CALLBACK = "lucidwidgetAtlasLayer"
"""The global the index script sets, and the function a layer's manifest script calls (gallery.js)."""


def atomic_write(path, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file in the same folder and `os.replace`."""
    path = os.fspath(path)
    temporary = f"{path}{TEMPORARY_MARK}{os.getpid()}"
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def json_bytes(value) -> bytes:
    return json.dumps(value, indent=1, ensure_ascii=True).encode()


def script_bytes(call, value) -> bytes:
    """A script that hands `value` to the gallery: `window.NAME = {...};` or `window.NAME({...});`."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    statement = f"window.{call} = {text};" if call == INDEX_CALLBACK else f"window.{call} && window.{call}({text});"
    return (statement + "\n").encode()


def view_file(channel, view, format) -> str:
    """`42.png` for the channel view, `42.negative.png` for another view."""
    return f"{channel}.{format}" if view == "channel" else f"{channel}.{view}.{format}"


def folder_digest(folder, files) -> str:
    """SHA-256 of the image files' relative paths and sizes: which images a scan saw."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(f"{name}\t{os.path.getsize(os.path.join(folder, name))}\n".encode())
    return digest.hexdigest()


class Store:
    """The atlas folder `root` (created by `claim`)."""

    def __init__(self, root):
        self.root = os.fspath(root)
        self.folders = dict((self.read_settings() or {}).get("folders", {}))

    def path(self, *parts) -> str:
        return os.path.join(self.root, *parts)

    def read_settings(self):
        try:
            with open(self.path(SETTINGS_FILE)) as file:
                return json.load(file)
        except FileNotFoundError:
            return None

    def check(self, settings) -> None:
        """Refuses, with one sentence, `settings` that differ from those of the atlas already here."""
        existing = self.read_settings() or {}
        for key in SHARED_SETTINGS:
            if key in existing and existing[key] != settings[key]:
                raise ValueError(
                    f"The atlas in {self.root!r} was made with {key}={_shown(existing[key])}; rerun with the same "
                    f"settings or write to another folder. Received: {key}={_shown(settings[key])}"
                )

    def claim(self, settings, layers) -> dict:
        """Records `settings` (after `check`) with a folder for each of `layers`; returns `{layer: folder}`."""
        self.check(settings)
        folders = dict(self.folders)
        folders.update(layer_folders([layer for layer in layers if layer not in folders], taken=folders.values()))
        os.makedirs(self.root, exist_ok=True)
        atomic_write(self.path(SETTINGS_FILE), json_bytes({**settings, "folders": folders}))
        for layer in layers:
            os.makedirs(self.path(folders[layer], RECORDS), exist_ok=True)
        self.folders = folders
        return folders

    def clean(self) -> int:
        """Removes temporary files a killed run left behind; returns how many."""
        removed = 0
        for folder, _, files in os.walk(self.root):
            for name in files:
                if TEMPORARY_MARK in name:
                    os.remove(os.path.join(folder, name))
                    removed += 1
        return removed

    # Units.

    def records(self, layer) -> dict[int, dict]:
        """The finished units of `layer`: `{channel: record}` for every record whose images exist."""
        folder = self.path(self.folders[layer])
        found = {}
        for name in os.listdir(os.path.join(folder, RECORDS)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(folder, RECORDS, name)) as file:
                record = json.load(file)
            if all(os.path.exists(os.path.join(folder, view["image"])) for view in record["views"].values()):
                found[record["channel"]] = record
        return found

    def write_unit(self, layer, unit, format, seconds, worker) -> dict:
        """Writes a `work.UnitResult`'s images, then its record (which marks it finished)."""
        folder = self.path(self.folders[layer])
        views = {}
        for view, (images, values) in unit.views.items():
            name = view_file(unit.channel, view, format)
            atomic_write(os.path.join(folder, name),
                         imaging.image_bytes(images, format.upper(), columns=len(images)))
            views[view] = {"image": name, "value": float(np.mean(values))}
            if len(values) > 1:
                views[view]["values"] = [float(v) for v in values]
        record = {"channel": unit.channel, "seed": unit.seed, "views": views, "seconds": seconds, "worker": worker}
        atomic_write(os.path.join(folder, RECORDS, f"{unit.channel}.json"), json_bytes(record))
        return record

    # Dataset examples.

    def read_examples(self, layer):
        """The layer's complete examples table (`examples.json`), or None."""
        if layer not in self.folders:
            return None
        try:
            with open(self.path(self.folders[layer], EXAMPLES_FILE)) as file:
                return json.load(file)
        except FileNotFoundError:
            return None

    def read_scan(self, layer, digest):
        """(merged `TopK` or None, shard indices done) of a scan in progress over the images `digest`."""
        try:
            with np.load(self.path(self.folders[layer], SCAN_FILE)) as saved:
                if str(saved["digest"]) != digest:
                    return None, set()
                table = examples_lib.TopK.from_dict(saved)
                return table, {int(i) for i in saved["done"]}
        except FileNotFoundError:
            return None, set()

    def write_scan(self, layer, digest, table, done) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, digest=np.asarray(digest), done=np.asarray(sorted(done), np.int64), **table.as_dict())
        atomic_write(self.path(self.folders[layer], SCAN_FILE), buffer.getvalue())

    def finish_examples(self, layer, table, files, folder, digest, size, channels) -> dict:
        """Writes the complete top-k table (`examples.json`) and drops the scan state."""
        units = {}
        for unit in range(table.values.shape[1]):
            units[str(unit)] = [
                {"source": files[int(table.index[rank, unit])], "value": float(table.values[rank, unit]),
                 "y": int(table.row[rank, unit]), "x": int(table.col[rank, unit])}
                for rank in range(table.values.shape[0]) if table.index[rank, unit] != examples_lib.EMPTY_INDEX
            ]
        found = {"folder": folder, "digest": digest, "images": len(files), "size": size,
                 "top_k": table.values.shape[0], "grid": list(table.grid), "units": units}
        atomic_write(self.path(self.folders[layer], EXAMPLES_FILE), json_bytes(found))
        scan = self.path(self.folders[layer], SCAN_FILE)
        if os.path.exists(scan):
            os.remove(scan)
        return found

    def write_crops(self, layer, found, channels, image_channels) -> int:
        """Writes each example's crop (`examples.crop_box`) for `channels` where it is missing; returns
        how many were written."""
        folder = self.path(self.folders[layer], EXAMPLES_FOLDER)
        os.makedirs(folder, exist_ok=True)
        size, grid, loaded, written = found["size"], tuple(found["grid"]), {}, 0
        for channel in channels:
            for rank, entry in enumerate(found["units"].get(str(channel), [])):
                path = os.path.join(folder, f"{channel}.{rank}.jpg")
                if os.path.exists(path):
                    continue
                if entry["source"] not in loaded:
                    loaded[entry["source"]] = imaging.load_images(
                        os.path.join(found["folder"], entry["source"]), size=size, channels=image_channels)[0]
                top, left, side = examples_lib.crop_box(entry["y"], entry["x"], grid, size)
                crop = loaded[entry["source"]][top:top + side, left:left + side]
                atomic_write(path, imaging.image_bytes(crop, "JPEG"))
                written += 1
        return written

    # What the gallery reads.

    def write_manifest(self, layer, meta, channels, records) -> dict:
        """Rebuilds `manifest.json` and `manifest.js` of `layer` from its records (as `records` reads
        them) and its examples; returns the manifest."""
        folder = self.path(self.folders[layer])
        found = self.read_examples(layer)
        units = []
        for channel in sorted(records):
            record = records[channel]
            main = record["views"].get("channel") or next(iter(record["views"].values()))
            entry = {"channel": channel, "image": main["image"], "objective": main["value"],
                     "seed": record["seed"], "views": record["views"]}
            if found is not None:
                entry["examples"] = [
                    {"source": example["source"], "image": f"{EXAMPLES_FOLDER}/{channel}.{rank}.jpg",
                     "value": example["value"], "x": example["x"], "y": example["y"]}
                    for rank, example in enumerate(found["units"].get(str(channel), []))
                ]
            units.append(entry)
        planned = len(set(channels) | set(records))
        manifest = {"layer": layer, "folder": self.folders[layer], **meta, "planned": planned,
                    "examples": None if found is None else {"images": found["images"], "top_k": found["top_k"],
                                                            "folder": found["folder"]},
                    "units": units}
        atomic_write(os.path.join(folder, MANIFEST), json_bytes(manifest))
        atomic_write(os.path.join(folder, MANIFEST_SCRIPT), script_bytes(LAYER_CALLBACK, manifest))
        return manifest

    def write_index(self, meta, summaries) -> None:
        """Writes the gallery (static files) and `atlas-index.js` (its list of layers)."""
        for name in GALLERY_FILES:
            atomic_write(self.path(name), (STATIC / name).read_bytes())
        atomic_write(self.path(INDEX_SCRIPT), script_bytes(INDEX_CALLBACK, {**meta, "layers": summaries}))


def layer_summary(manifest, preview=8) -> dict:
    """A layer's line in the index: name, folder, counts and the first few images."""
    return {"name": manifest["layer"], "folder": manifest["folder"], "units": len(manifest["units"]),
            "planned": manifest["planned"], "examples": manifest["examples"] is not None,
            "preview": [unit["image"] for unit in manifest["units"][:preview]]}


def _shown(value) -> str:
    return ",".join(value) if isinstance(value, list) else repr(value)


def open_atlas(root) -> tuple[dict, dict]:
    """An atlas folder's settings and `{layer: manifest}`, for viewers (the notebook's `Atlas`).

    Raises:
        ValueError: `root` holds no atlas.
    """
    store = Store(root)
    settings = store.read_settings()
    if settings is None:
        raise ValueError(f"No atlas in {os.fspath(root)!r} (no {SETTINGS_FILE}); make one with lucidwidget.atlas "
                         f"or `lucidwidget atlas`. Received: directory={os.fspath(root)!r}")
    manifests = {}
    for layer, folder in store.folders.items():
        try:
            with open(store.path(folder, MANIFEST)) as file:
                manifests[layer] = json.load(file)
        except FileNotFoundError:
            continue
    return settings, manifests
