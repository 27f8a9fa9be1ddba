"""The atlas on a local two-worker Ray cluster that loses a worker mid-run: its task runs again on a new
actor, the atlas completes, and its units equal a one-process run's."""

import json
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

import lucidwidget as lw
from atlas_support import make_images, manifest, save_tiny_model
from lucidwidget.atlas import plan

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("ray", reason='Ray is an optional extra (pip install "lucidwidget[ray]"); CI installs it')
import ray  # noqa: E402

SETTINGS = {"layers": ["conv2", "conv3"], "channels": "0-7", "steps": 8, "size": 32, "batch": 2}
"""16 units in 8 chunks: both workers stay busy long after the first units are written."""

KILL_TIMEOUT = 240.0
"""Seconds for the first unit to appear: Ray's start and two actors importing TensorFlow, 2 cores."""


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="lucidwidget-tests")
    yield
    ray.shutdown()


def kill_a_worker_once_units_appear(directory, killed):
    """Waits for the first unit record, then kills worker 1 with `ray.kill` (it holds a chunk then)."""
    deadline = time.monotonic() + KILL_TIMEOUT
    folder = os.path.join(directory, "conv2", "units")
    while time.monotonic() < deadline:
        if os.path.isdir(folder) and os.listdir(folder):
            name = next(name for name in ray.util.list_named_actors() if name.startswith("lucidwidget-atlas-worker-1"))
            ray.kill(ray.get_actor(name))
            killed.append(name)
            return
        time.sleep(0.05)


def test_two_workers_lose_one_and_still_equal_a_one_process_run(cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(plan, "SCAN_SHARD_IMAGES", 4)          # the scan is a map over several shards
    model = save_tiny_model(tmp_path)
    photos = str(tmp_path / "photos")
    make_images(photos, count=10, duplicates=2)
    distributed, local = str(tmp_path / "ray"), str(tmp_path / "local")
    killed = []
    killer = threading.Thread(target=kill_a_worker_once_units_appear, args=(distributed, killed))
    killer.start()
    result = lw.atlas(model, output=distributed, ray="auto", workers=2, images=photos, verbose=0, **SETTINGS)
    killer.join()
    assert killed, "no unit appeared before the timeout"
    assert result.lost_workers >= 1 and result.rendered == 16
    assert len(result.workers) >= 2                             # both workers rendered, plus the replacement

    alone = lw.atlas(model, output=local, images=photos, verbose=0, **SETTINGS)
    assert alone.lost_workers == 0
    for layer in SETTINGS["layers"]:
        mine, theirs = manifest(distributed, layer), manifest(local, layer)
        assert [u["channel"] for u in mine["units"]] == [u["channel"] for u in theirs["units"]] == list(range(8))
        for a, b in zip(mine["units"], theirs["units"]):
            assert a["seed"] == b["seed"]
            # The same chunks on the same CPU: bit-equal images are expected; the tolerance only allows a
            # thread count that changes a reduction's order (float rounding, a uint8 level at most).
            assert a["objective"] == pytest.approx(b["objective"], rel=1e-4, abs=1e-5)
            pixels = [np.asarray(Image.open(os.path.join(folder, layer, a["image"])), np.int16)
                      for folder in (distributed, local)]
            assert np.abs(pixels[0] - pixels[1]).max() <= 1
        for name in ("examples.json",):
            with open(os.path.join(distributed, layer, name)) as file, open(os.path.join(local, layer, name)) as other:
                ours, reference = json.load(file), json.load(other)
            assert ours["units"].keys() == reference["units"].keys()
            for unit, ranked in reference["units"].items():
                assert [e["source"] for e in ours["units"][unit]] == [e["source"] for e in ranked]
