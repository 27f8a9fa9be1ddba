"""Every notebook in notebooks/ runs headless from top to bottom (nbclient, the current Python's kernel),
with `LUCIDWIDGET_STEPS` kept small so it finishes quickly. Each runs as a copy in a temporary folder,
which is also the kernel's working directory, so nothing in the repository is written; no output may carry
TensorFlow's start-up log lines."""

import pathlib
import re
import shutil

import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
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


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_headless(source, tmp_path, monkeypatch):
    monkeypatch.setenv("LUCIDWIDGET_STEPS", CI_STEPS)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)   # what a user sees by default
    path = tmp_path / source.name
    shutil.copyfile(source, path)
    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), f"{source.name} is committed with outputs"
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert [output for output in outputs if output.output_type == "error"] == []
    logs = [line for output in outputs for line in TF_LOG_LINE.findall(_output_text(output))]
    assert logs == []
