"""The `lucidwidget` command, run in-process through `main` (and once as `python -m lucidwidget`)."""

import json
import subprocess
import sys
import warnings

import nbformat
import pytest
from PIL import Image

from lucidwidget import cli


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    from conftest import sequential_relu

    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    with warnings.catch_warnings():
        # Keras's own saver converts variables with np.array(x), which NumPy 2 flags; not ours to fix.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="keras")
        sequential_relu().save(path)
    return str(path)


def test_python_m_lucidwidget_help_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "lucidwidget", "--help"], capture_output=True, text=True,
                            check=True)
    assert "usage: lucidwidget" in result.stdout
    for command in ("render", "layers", "lab"):
        assert command in result.stdout


def test_render_writes_a_tiled_sheet_and_a_gif(tiny_model_path, tmp_path, capsys):
    sheet, gif = tmp_path / "sheet.png", tmp_path / "run.gif"
    status = cli.main([
        "render", "--model", tiny_model_path, "--objective", "conv2:3", "--batch", "4", "--steps", "6",
        "--size", "32", "--seed", "0", "-o", str(sheet), "--gif", str(gif), "--gif-every", "2",
    ])
    assert status == 0
    assert Image.open(sheet).size == (2 * 32 + 2, 2 * 32 + 2)
    animation = Image.open(gif)
    assert animation.size == (66, 66) and 1 < animation.n_frames <= 3
    captured = capsys.readouterr()
    assert "6/6" in captured.err and "done: 6 steps" in captured.err
    assert f"wrote {sheet}" in captured.out and f"wrote {gif}" in captured.out


def test_render_options_reach_the_engine(tiny_model_path, tmp_path, capsys):
    sheet, gif = tmp_path / "row.png", tmp_path / "octaves.gif"
    status = cli.main([
        "render", "--model", tiny_model_path, "--objective", "conv3:1 - 0.5*conv1:2", "--batch", "3",
        "--steps", "4", "--size", "24", "--optimizer", "lbfgs", "--param", "pixel", "--no-decorrelate",
        "--transforms", "none", "--diversity", "5", "--octaves", "2", "--columns", "3", "-o", str(sheet),
        "--gif", str(gif), "--gif-every", "1", "--quiet",
    ])
    assert status == 0
    assert Image.open(sheet).size == (3 * 24 + 2 * 2, 24)
    assert Image.open(gif).size == (3 * 24 + 2 * 2, 24) and Image.open(gif).n_frames > 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_a_bad_layer_exits_2_with_a_close_match_and_no_traceback(tiny_model_path, tmp_path, capsys):
    status = cli.main(["render", "--model", tiny_model_path, "--objective", "cnv2:3", "--steps", "2",
                       "-o", str(tmp_path / "x.png"), "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "conv2" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_bad_options_exit_2(tiny_model_path, tmp_path, capsys):
    assert cli.main(["render", "--model", tiny_model_path, "--objective", "conv2:3", "--optimizer", "adma",
                     "--steps", "2", "--quiet", "-o", str(tmp_path / "x.png")]) == 2
    assert "Did you mean 'adam'" in capsys.readouterr().err
    assert cli.main(["layers", "--model", str(tmp_path / "missing.keras")]) == 2
    assert "No model file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["render", "--objective", "conv2:3", "--steps", "0"])
    assert exit_info.value.code == 2


def test_layers_lists_layers_in_forward_order_in_aligned_columns(tiny_model_path, capsys):
    assert cli.main(["layers", "--model", tiny_model_path]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert lines[0].split() == ["layer", "channels", "shape", "kind"]
    names = [line.split()[0] for line in lines[1:]]
    assert [n for n in names if n.startswith("conv")] == ["conv1", "conv2", "conv3"]
    assert [rows[n].split()[1:3] for n in ("conv1", "conv2", "conv3")] == [
        ["8", "spatial"], ["16", "spatial"], ["12", "spatial"]]
    assert len({line.index(line.split()[2]) for line in lines}) == 1


@pytest.mark.vgg
def test_render_and_layers_on_vgg16_hed(tmp_path, capsys):
    sheet = tmp_path / "vgg.png"
    assert cli.main(["render", "--objective", "block3_conv1:5", "--batch", "2", "--steps", "3", "--size", "48",
                     "--seed", "0", "-o", str(sheet), "--quiet"]) == 0
    assert Image.open(sheet).size == (2 * 48 + 2, 48)
    assert cli.main(["layers"]) == 0
    out = capsys.readouterr().out
    assert out.index("block1_conv1") < out.index("block5_conv3")
    assert "512" in next(line for line in out.splitlines() if line.startswith("block5_conv3"))


@pytest.fixture
def exec_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: calls.append((path, argv)))
    return calls


def test_lab_execs_jupyterlab_on_the_repository_notebook(exec_calls, monkeypatch, tmp_path):
    notebook = tmp_path / "quickstart.ipynb"
    notebook.write_text("{}")
    monkeypatch.setattr(cli, "REPO_QUICKSTART", notebook)
    assert cli.main(["lab", "--port", "8899", "--no-browser"]) == 0
    assert exec_calls == [(sys.executable, [sys.executable, "-m", "jupyterlab", str(notebook), "--port=8899",
                                            "--no-browser"])]


def test_lab_writes_the_template_notebook_when_there_is_no_repository(exec_calls, monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "REPO_QUICKSTART", tmp_path / "missing.ipynb")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["lab"]) == 0
    written = tmp_path / cli.QUICKSTART_NAME
    assert exec_calls[0][1] == [sys.executable, "-m", "jupyterlab", str(written)]
    notebook = nbformat.read(written, as_version=4)
    nbformat.validate(notebook)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert '"vgg16-hed"' in code and "LucidWidget" in code
    written.write_text(json.dumps({"edited": True}))
    assert cli.main(["lab"]) == 0
    assert json.loads(written.read_text()) == {"edited": True}


def test_lab_errors_for_a_missing_notebook_or_missing_jupyterlab(exec_calls, monkeypatch, tmp_path, capsys):
    assert cli.main(["lab", "--notebook", str(tmp_path / "nope.ipynb")]) == 2
    assert "No notebook at" in capsys.readouterr().err
    monkeypatch.setattr(cli, "has_jupyterlab", lambda: False)
    assert cli.main(["lab"]) == 2
    assert 'pip install "lucidwidget[lab]"' in capsys.readouterr().err
    assert exec_calls == []
