"""Every notebook in notebooks/ runs headless from top to bottom (nbclient, the current Python's kernel),
with `LUCIDWIDGET_STEPS` kept small so it finishes quickly. Each runs as a copy in a temporary folder,
which is also the kernel's working directory, so nothing in the repository is written; no output may carry
TensorFlow's start-up log lines. The quickstart also runs with Keras on JAX, where JAX is installed."""

import importlib.util
import json
import pathlib
import re
import shutil

import nbclient
import nbformat
import pytest

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 600
"""Seconds per cell: loading TensorFlow and compiling the first step on a busy 2-core machine."""
CI_STEPS = "8"
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN|cuInit|cuda drivers", re.MULTILINE)
"""TensorFlow's C++ log lines (absl's `I0000 ...` prefix) and the notices it prints while loading."""


def _output_text(output):
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return "\n".join(output.traceback)
    return "\n".join(value for value in output.get("data", {}).values() if isinstance(value, str))


def _execute(notebook, folder):
    """Runs `notebook` in place with `folder` as the kernel's working directory; returns its outputs."""
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


def _read_copy(source, folder):
    path = folder / source.name
    shutil.copyfile(source, path)
    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), f"{source.name} is committed with outputs"
    return notebook


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_headless(source, tmp_path, monkeypatch):
    monkeypatch.setenv("LUCIDWIDGET_STEPS", CI_STEPS)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)   # what a user sees by default
    outputs = _execute(_read_copy(source, tmp_path), tmp_path)
    assert [output for output in outputs if output.output_type == "error"] == []
    logs = [line for output in outputs for line in TF_LOG_LINE.findall(_output_text(output))]
    assert logs == []


QUICKSTART_CHECK = f"""
import json, keras, sys
w.steps = {CI_STEPS}          # a setting change restarts the render with the compiled step
w.wait(timeout={CELL_TIMEOUT})
print(json.dumps({{"backend": keras.backend.backend(), "step": w.step, "error": w.error,
                  "tiles": None if w.images is None else list(w.images.shape),
                  "tensorflow_imported": "tensorflow" in sys.modules}}))
"""
"""Appended to the quickstart: a short render to its end, then what a user would check, as JSON."""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (pip install -e '.[jax]')")
def test_quickstart_renders_on_jax_without_tensorflow(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    notebook = _read_copy(NOTEBOOK_DIR / "quickstart.ipynb", tmp_path)
    notebook.cells.append(nbformat.v4.new_code_cell(QUICKSTART_CHECK))
    outputs = _execute(notebook, tmp_path)
    assert [output for output in outputs if output.output_type == "error"] == []
    printed = [output.text for output in outputs if output.output_type == "stream" and output.name == "stdout"]
    report = json.loads(printed[-1])
    assert report == {"backend": "jax", "step": int(CI_STEPS), "error": "", "tiles": [1, 128, 128, 3],
                      "tensorflow_imported": False}
