"""Kill -9 an atlas run once some units are written, rerun the same command: it finishes only what is
missing, re-renders no finished unit, and leaves no truncated image and no unparsable manifest."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from atlas_support import save_tiny_model, unit_files

UNITS = 16
"""2 layers x 8 channels, 2 per chunk: a chunk takes about a second on a 2-core CPU, so a kill after the
first records lands mid-run."""

START_TIMEOUT = 180.0
"""Seconds for the first units to appear: a Python and TensorFlow start on a busy 2-core machine."""


def command(model, directory, steps=40):
    return [sys.executable, "-m", "lucidwidget", "atlas", "--model", model, "--layers", "conv2", "conv3",
            "--channels", "0-7", "--steps", str(steps), "--size", "32", "--batch", "2", "-o", directory]


def records(directory):
    found = []
    for layer in ("conv2", "conv3"):
        folder = os.path.join(directory, layer, "units")
        if os.path.isdir(folder):
            found += [os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".json")]
    return found


def test_kill_9_mid_run_then_rerun_finishes_only_what_is_missing(tmp_path):
    model = save_tiny_model(tmp_path)
    directory = str(tmp_path / "atlas")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.environ.get("PYTHONPATH")]))}
    run = subprocess.Popen(command(model, directory), env=environment, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_TIMEOUT
    while len(records(directory)) < 3 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    done = records(directory)
    assert run.returncode == -signal.SIGKILL, run.stderr.read().decode()[-2000:]
    assert 3 <= len(done) < UNITS, "the kill came too late to interrupt the run"
    before = {layer: unit_files(directory, layer) for layer in ("conv2", "conv3")}
    for path in done:                                                      # every record parses
        json.load(open(path))

    rerun = subprocess.run(command(model, directory), env=environment, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{UNITS - len(done)} units to render, {len(done)} already done" in rerun.stderr
    assert len(records(directory)) == UNITS
    for layer in ("conv2", "conv3"):
        after = unit_files(directory, layer)
        finished = {name for name in before[layer] if name.startswith("units")}
        for record in finished:                                            # untouched: same inode, same time
            channel = os.path.basename(record)[:-len(".json")]
            for name in (record, f"{channel}.png"):
                assert after[name] == before[layer][name], name
        with open(os.path.join(directory, layer, "manifest.json")) as file:
            units = json.load(file)["units"]
        assert [unit["channel"] for unit in units] == list(range(8))
        for unit in units:
            with Image.open(os.path.join(directory, layer, unit["image"])) as picture:
                picture.load()                                             # decodes: no truncated file
                assert picture.size == (32, 32)
    leftovers = [name for _, _, files in os.walk(directory) for name in files if ".partial-" in name]
    assert leftovers == []

    changed = subprocess.run(command(model, directory, steps=41), env=environment, capture_output=True, text=True,
                             timeout=600)
    assert changed.returncode == 2
    message = [line for line in changed.stderr.splitlines() if line.startswith("error:")]
    assert message == [f"error: The atlas in {directory!r} was made with steps=40; rerun with the same settings or "
                       "write to another folder. Received: steps=41"]
