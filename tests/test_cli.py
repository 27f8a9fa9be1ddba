"""The `lucidwidget` command, run in-process through `main` (and as `python -m lucidwidget` where the
process's own output matters: TensorFlow's start-up lines, an installed wheel)."""

import importlib.util
import json
import os
import re
import pathlib
import subprocess
import sys
import warnings
import zipfile

import h5py
import numpy as np
import pytest
from PIL import Image

from lucidwidget import _tf_startup, cli

REPO = pathlib.Path(__file__).resolve().parents[1]


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
    for command in ("render", "layers", "models", "lab"):
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
    progress = [line for line in captured.err.split("\r") if "/6  " in line]
    assert progress[0].startswith("[........................] 0/6  compiling…")   # shown while it compiles
    assert all("compiling…" in line for line in progress if " 1/6 " in line)   # step 1's time was the compile
    assert progress[-1].splitlines()[0].endswith(" steps/s")


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


def test_a_bad_layer_names_the_model_as_typed_and_the_layers_command(tiny_model_path, tmp_path, capsys):
    status = cli.main(["render", "--model", tiny_model_path, "--objective", "cnv2:3", "--steps", "2",
                       "-o", str(tmp_path / "x.png"), "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No layer 'cnv2'") and "Did you mean 'conv2'" in err and "Traceback" not in err
    assert f"`lucidwidget layers --model {tiny_model_path}`" in err
    assert "Received: objective='cnv2:3'" in err
    assert not (tmp_path / "x.png").exists()
    assert cli.main(["render", "--model", tiny_model_path, "--objective", "conv2:3", "--batch", "2",
                     "--diversity", "1", "--diversity-layer", "conv9", "-o", str(tmp_path / "x.png")]) == 2
    assert "Received: diversity_layer='conv9'" in capsys.readouterr().err


def test_bad_options_exit_2(tiny_model_path, tmp_path, capsys):
    assert cli.main(["render", "--model", tiny_model_path, "--objective", "conv2:3", "--optimizer", "adma",
                     "--steps", "2", "--quiet", "-o", str(tmp_path / "x.png")]) == 2
    assert "Did you mean 'adam'" in capsys.readouterr().err
    assert cli.main(["layers", "--model", str(tmp_path / "missing.keras")]) == 2
    assert "No model file" in capsys.readouterr().err
    assert cli.main(["layers", "--model", "missing.hdf5"]) == 2    # a file name, not a zoo name
    assert "No model file 'missing.hdf5'" in capsys.readouterr().err
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


@pytest.mark.parametrize(
    "output, gif, message",
    [
        ("missing/sheet.png", None, "The folder '{tmp}/missing' for --output does not exist; create it first. "
                                    "Received: output='missing/sheet.png'"),
        ("sheet.bmp", None, "Expected --output to end in .png, .jpg, .jpeg, .webp or .gif"),
        (".", None, "--output names a folder"),
        ("sheet.png", "run.png", "Expected --gif to end in .gif (the extension picks the format). Received: gif='run.png'"),
        ("sheet.png", "missing/run.gif", "The folder '{tmp}/missing' for --gif does not exist"),
        ("run.gif", "run.gif", "--gif and --output name the same file"),
    ],
)
def test_outputs_are_checked_before_anything_loads(output, gif, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["render", "--model", "no-such-model", "--objective", "conv2:3", "-o", output]
    assert cli.main(argv + (["--gif", gif] if gif else [])) == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err and "no-such-model" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_output_format_follows_the_extension(tiny_model_path, tmp_path):
    for name, format in [("a.jpg", "JPEG"), ("a.JPEG", "JPEG"), ("a.webp", "WEBP"), ("a.gif", "GIF"), ("a.png", "PNG")]:
        assert cli.main(["render", "--model", tiny_model_path, "--objective", "conv2:3", "--steps", "1",
                         "--size", "16", "--batch", "2", "-o", str(tmp_path / name), "--quiet"]) == 0
        picture = Image.open(tmp_path / name)
        assert (picture.format, picture.size) == (format, (2 * 16 + 2, 16))


def test_unknown_models_get_close_matches_and_the_models_command(capsys):
    assert cli.main(["layers", "--model", "vgg17"]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 'vgg17'. Did you mean" in err and "'VGG16'" in err and "'VGG19'" in err
    assert "`lucidwidget models`" in err and "ConvNeXtBase" not in err and len(err) < 300
    assert cli.main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("vgg16-hed") and "no download" in lines[0]
    listed = " ".join(lines[1:])
    assert all(name in listed for name in ("InceptionV3", "ResNet50", "VGG16", "Xception"))
    assert max(map(len, lines)) <= cli.layers.LIST_WIDTH


def test_legacy_h5_with_keras2_optimizer_settings_loads_without_compiling(tiny_model_path, tmp_path, capsys):
    import keras

    model = keras.saving.load_model(tiny_model_path)
    model.compile(optimizer="adam", loss="mse")
    legacy = tmp_path / "legacy.hdf5"
    weights = tmp_path / "only.weights.h5"
    with warnings.catch_warnings():
        # Keras warns that HDF5 is a legacy format (that is the point here), and its saver trips NumPy 2.
        warnings.simplefilter("ignore")
        model.save(legacy)
        model.save_weights(weights)
    with h5py.File(legacy, "r+") as file:    # what a Keras 2 file holds: the optimizer's `lr` argument
        config = json.loads(file.attrs["training_config"])
        config["optimizer_config"]["config"]["lr"] = 0.001
        file.attrs["training_config"] = json.dumps(config)
    with pytest.raises(Exception, match="lr"):
        keras.saving.load_model(legacy)      # compiling it fails, as Keras 2 files did
    assert cli.main(["layers", "--model", str(legacy)]) == 0
    assert "conv3" in capsys.readouterr().out
    assert cli.main(["layers", "--model", str(weights)]) == 2
    err = capsys.readouterr().err
    assert f"Keras could not load {str(weights)!r}" in err and "weights-only" in err


def test_cli_output_has_no_tensorflow_log_lines(tiny_model_path, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "lucidwidget", "render", "--model", tiny_model_path, "--objective", "conv2:3",
         "--steps", "2", "--size", "16", "-o", str(tmp_path / "x.png")],
        capture_output=True, text=True, env=env, check=True,
    )
    assert result.stderr.startswith("rendering channel conv2:3 at 16x16")
    assert not [line for line in result.stderr.splitlines() if _tf_startup.LOG_LINE.match(line) or "absl" in line]


def test_explain_output_has_no_tensorflow_log_lines(tiny_model_path, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "lucidwidget", "explain", "--model", tiny_model_path, "--image", "chelsea",
         "--size", "24", "--target", "conv3:1", "--top-channels", "conv2", "--top-outputs", "-o",
         str(tmp_path / "heat.png")], capture_output=True, text=True, env=env, check=True,
    )
    assert result.stderr == "" and "wrote" in result.stdout


def test_startup_lines_are_kept_only_when_they_matter():
    captured = (
        f"{_tf_startup.ABSL_NOTICE}\n"
        "I0000 00:00:1.0  1 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1.0  1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n"
        "E0000 00:00:1.0  1 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n"
        "E0000 00:00:1.0  1 other.cc:1] something is really wrong\n"
        "a line from Python\n"
    )
    assert _tf_startup.kept_lines(captured, 2) == [
        "E0000 00:00:1.0  1 other.cc:1] something is really wrong\n", "a line from Python\n"]
    assert len(_tf_startup.kept_lines(captured, 0)) == 6              # the user asked for everything
    with_driver = captured.replace("Could not find cuda drivers", "Found a driver")
    assert sum("cuInit" in line for line in _tf_startup.kept_lines(with_driver, 2)) == 1


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


@pytest.mark.vgg
def test_a_size_too_small_for_the_layer_says_the_smallest_before_rendering(tmp_path, capsys):
    status = cli.main(["render", "--objective", "block5_conv1:7", "--size", "8", "-o", str(tmp_path / "x.png")])
    assert status == 2
    captured = capsys.readouterr()
    assert "too small for layer 'block5_conv1' of 'vgg16-hed': it needs at least 16x16" in captured.err
    assert "Received: size=8" in captured.err and "rendering" not in captured.err
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def exec_calls(monkeypatch, tmp_path):
    """Records `lab`'s exec of JupyterLab instead of doing it; notebooks are signed in a temporary data dir."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    calls = []
    monkeypatch.setattr(cli.lab.os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    return calls


def test_lab_command_opens_the_notebook_offline_and_passes_jupyter_arguments(tmp_path):
    notebook = tmp_path / "work" / "quickstart.ipynb"
    argv = cli.lab.lab_command(notebook, port=9000, browser=False, extra=["--ServerApp.ip=0.0.0.0"], as_root=True)
    assert argv[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={tmp_path / 'work'}" in argv
    assert "--LabApp.default_url=/lab/tree/quickstart.ipynb" in argv     # the printed URL opens the notebook
    assert "--LabApp.news_url=None" in argv
    assert argv[-4:] == ["--port=9000", "--no-browser", "--allow-root", "--ServerApp.ip=0.0.0.0"]
    assert cli.lab.lab_command(notebook, extra=["--allow-root"], as_root=True).count("--allow-root") == 1
    assert "--allow-root" not in cli.lab.lab_command(notebook, as_root=False)


def test_lab_copies_the_notebooks_once_and_execs_jupyterlab_on_the_quickstart(exec_calls, tmp_path, monkeypatch,
                                                                                capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["lab", "--port", "9000", "--allow-root", "--ServerApp.token=abc"]) == 0
    work = tmp_path / cli.lab.WORK_DIR
    shipped = sorted(path.name for path in (REPO / "notebooks").glob("*.ipynb"))
    assert sorted(path.name for path in work.iterdir()) == shipped and "quickstart.ipynb" in shipped
    assert f"copied {len(shipped)} notebooks" in capsys.readouterr().out
    (path, argv, _), = exec_calls
    assert path == sys.executable and f"--ServerApp.root_dir={work}" in argv
    assert argv[-3:] == ["--port=9000", "--allow-root", "--ServerApp.token=abc"]
    edited = work / "quickstart.ipynb"
    edited.write_text(json.dumps({"edited": True}))
    assert cli.main(["lab", "--dry-run"]) == 0
    assert json.loads(edited.read_text()) == {"edited": True}          # a user's copy is never overwritten
    assert "jupyterlab" in capsys.readouterr().out and len(exec_calls) == 1


def test_lab_trusts_its_copies_and_gives_jupyterlab_defaults_the_user_can_change(exec_calls, tmp_path,
                                                                                  monkeypatch):
    import jsonschema
    import nbformat
    from jupyter_core.paths import jupyter_data_dir
    from jupyterlab.commands import get_app_dir
    from nbformat.sign import NotebookNotary

    work = tmp_path / "nb"
    work.mkdir()
    (work / "quickstart.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))    # the user's own copy
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(tmp_path / "user-config"))
    assert cli.main(["lab", "--dir", str(work)]) == 0
    with NotebookNotary(data_dir=jupyter_data_dir()) as notary:                # where JupyterLab checks
        trusted = {path.name: notary.check_signature(nbformat.read(path, as_version=4)) for path in work.iterdir()}
    assert trusted.pop("quickstart.ipynb") is False                    # not ours to sign: left as it was
    assert trusted and all(trusted.values())                            # every copy made now is trusted
    (_, _, env), = exec_calls
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep) == [str(tmp_path / "user-config"), str(cli.lab.LAB_CONFIG)]
    # The defaults name settings the installed JupyterLab has, with values its schemas allow.
    defaults = json.loads((cli.lab.LAB_CONFIG / "labconfig" / "default_setting_overrides.json").read_text())
    assert defaults["@jupyterlab/apputils-extension:kernels-settings"] == {"commsOverSubshells": "disabled"}
    assert defaults["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    for plugin, values in defaults.items():
        package, name = plugin.split(":")
        schema = json.loads((pathlib.Path(get_app_dir()) / "schemas" / package / f"{name}.json").read_text())
        jsonschema.validate(values, schema)


def test_lab_opens_another_notebook_by_name_or_path(exec_calls, tmp_path, capsys):
    work = tmp_path / "nb"
    assert cli.main(["lab", "--dir", str(work), "--notebook", "keras_vis.ipynb", "--no-browser"]) == 0
    assert "--LabApp.default_url=/lab/tree/keras_vis.ipynb" in exec_calls[-1][1]
    own = tmp_path / "mine.ipynb"
    own.write_text("{}")
    assert cli.main(["lab", "--dir", str(work), "--notebook", str(own)]) == 0
    assert f"--ServerApp.root_dir={tmp_path}" in exec_calls[-1][1]
    assert cli.main(["lab", "--dir", str(work), "--notebook", "kerasvis.ipynb"]) == 2
    assert "Did you mean 'keras_vis.ipynb'" in capsys.readouterr().err
    assert len(exec_calls) == 2


def test_lab_without_jupyterlab_says_how_to_fix_it(exec_calls, monkeypatch, capsys):
    monkeypatch.setattr(cli.lab, "has_jupyterlab", lambda: False)
    assert cli.main(["lab"]) == 2
    assert "JupyterLab is not installed" in capsys.readouterr().err and exec_calls == []


def test_other_commands_refuse_unknown_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["layers", "--port", "9000"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --port 9000" in capsys.readouterr().err


def test_an_installed_wheel_ships_the_notebooks_and_lab_opens_its_copy(tmp_path):
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (a dev dependency)")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True)
    wheel, = (tmp_path / "dist").glob("lucidwidget-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lucidwidget/notebooks/quickstart.ipynb" in names and "lucidwidget/static/widget.js" in names
    assert {"lucidwidget/data/chelsea.jpg", "lucidwidget/data/ATTRIBUTION.md"} <= set(names)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", "import lucidwidget.cli.lab as c; print(c.__file__); print(c.shipped_notebooks())"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    module, notebooks = result.stdout.split()
    assert module.startswith(str(site)) and notebooks == str(site / "lucidwidget" / "notebooks")
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "jupyter-data")                # where the copies are signed
    result = subprocess.run([sys.executable, "-m", "lucidwidget", "lab", "--dry-run", "--port", "9000"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    work = tmp_path / cli.lab.WORK_DIR
    assert (work / "quickstart.ipynb").read_bytes() == (REPO / "notebooks" / "quickstart.ipynb").read_bytes()
    assert f"--ServerApp.root_dir={work}" in result.stdout and "--port=9000" in result.stdout
    assert f"JUPYTER_CONFIG_PATH={site / 'lucidwidget' / 'cli' / 'jupyter_config'}" in result.stdout
    assert "lucidwidget/cli/jupyter_config/labconfig/default_setting_overrides.json" in names
    result = subprocess.run([sys.executable, "-c", "import lucidwidget.data as d; print(d.photo('coffee').shape)"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    assert result.stdout.strip() == "(300, 450, 3)"


def test_render_from_photos_binds_image_style_and_start(tiny_model_path, tmp_path, capsys):
    from lucidwidget import data, imaging

    photo = tmp_path / "photo.png"
    imaging.save_png(photo, data.photo("coffee", size=40))
    sheet = tmp_path / "caricature.png"
    assert cli.main(["render", "--model", tiny_model_path, "--objective", "caricature(conv2)", "--image", str(photo),
                     "--size", "32", "--steps", "4", "--seed", "0", "-o", str(sheet)]) == 0
    assert Image.open(sheet).size == (32, 32)
    assert "rendering caricature conv2 at 32x32" in capsys.readouterr().err
    assert cli.main(["render", "--model", tiny_model_path, "--objective", "style(conv1, conv2) + 10*content(conv3)",
                     "--image", "chelsea", "--style-image", str(photo), "--size", "32", "--steps", "4", "--quiet",
                     "-o", str(tmp_path / "style.png")]) == 0
    dream = tmp_path / "dream.png"
    assert cli.main(["render", "--model", tiny_model_path, "--objective", "deepdream(conv2)", "--init-image", "chelsea",
                     "--size", "32", "--steps", "1", "--lr", "1e-4", "--transforms", "none", "--quiet",
                     "-o", str(dream)]) == 0
    rendered = imaging.read_image(str(dream))
    assert np.abs(rendered - data.photo("chelsea", size=32)).mean() < 0.02     # it started from the photo


@pytest.mark.parametrize("options, message", [
    (["--objective", "caricature(conv2)"],
     "compares with a photo: give it with --image PATH (a file, or a bundled photo: astronaut, chelsea or coffee). "
     "Received: image=None"),
    (["--objective", "style(conv1)", "--image", "chelsea"], "compares with a style image: give it with --style-image"),
    (["--objective", "conv2:3", "--image", "chelsea"],
     "--image is given, but the objective 'conv2:3' does not compare with it (caricature(layer) and content(layer) "
     "do); to start from the photo, use --init-image. Received: image='chelsea'"),
    (["--objective", "caricature(conv2)", "--image", "chelsa"],
     "No image file at 'chelsa' for --image: give a PNG, JPEG, WebP, GIF or BMP file, or a bundled photo"),
    (["--objective", "conv2:3", "--init-image", "NOTES"], "Could not read"),
    (["--objective", "style(conv1)", "--style-image", "NOTES"], "Received: style_image="),
])
def test_image_options_are_checked_before_any_work(options, message, tiny_model_path, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    options = [str(notes) if option == "NOTES" else option for option in options]
    sheet = tmp_path / "x.png"
    assert cli.main(["render", "--model", tiny_model_path, "--steps", "2", "--size", "32", "-o", str(sheet),
                     *options]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not sheet.exists()




def save(model, path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="keras")
        model.save(path)
    return str(path)


def test_preprocess_presets_reach_the_model_and_a_wrong_one_gets_close_matches(tiny_model_path, tmp_path, capsys):
    from lucidwidget.models import PRESET_NAMES

    sheets = {}
    for preset in (None, "caffe"):
        sheets[preset] = tmp_path / f"{preset}.png"
        extra = [] if preset is None else ["--preprocess", preset]
        assert cli.main(["render", "--model", tiny_model_path, "--objective", "conv2:3", "--steps", "4",
                         "--size", "24", "--seed", "0", "--quiet", "-o", str(sheets[preset]), *extra]) == 0
    assert Image.open(sheets[None]).tobytes() != Image.open(sheets["caffe"]).tobytes()
    assert cli.main(["render", "--model", tiny_model_path, "--objective", "conv2:3", "--preprocess", "cafe",
                     "-o", str(tmp_path / "x.png")]) == 2
    assert "Did you mean 'caffe'" in capsys.readouterr().err
    named = [name.strip('"') for name in re.findall(r'"[^"]+"|\b[a-z]+\b(?= \(| or|,)', cli.common.PREPROCESS_HELP)]
    assert named and set(named) <= set(PRESET_NAMES), named


def test_layer_names_with_a_minus_and_a_dead_unit_note(dead_unit_model, tmp_path, capsys):
    import keras

    hyphenated = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3, name="fc6-3")])
    assert cli.main(["render", "--model", save(hyphenated, tmp_path / "odd.keras"), "--objective",
                     "fc6-3:1 - 0.5*fc6-3:2", "--steps", "3", "--size", "16", "-o", str(tmp_path / "a.png")]) == 0
    assert cli.main(["render", "--model", save(dead_unit_model, tmp_path / "dead.keras"), "--objective", "conv:2",
                     "--steps", "10", "--size", "16", "--transforms", "none", "-o", str(tmp_path / "b.png")]) == 0
    assert "note: The objective channel conv:2 stayed at" in capsys.readouterr().err


def test_the_fast_schedule_reaches_the_engine(tiny_model_path, tmp_path):
    sheets = {name: tmp_path / f"{name}.png" for name in ("constant", "fast")}
    for name, sheet in sheets.items():
        extra = ["--schedule", "fast"] if name == "fast" else []
        assert cli.main(["render", "--model", tiny_model_path, "--objective", "conv2:3", "--steps", "4",
                         "--size", "24", "--seed", "0", "--quiet", "-o", str(sheet), *extra]) == 0
    assert Image.open(sheets["constant"]).tobytes() != Image.open(sheets["fast"]).tobytes()
    with pytest.raises(SystemExit):
        cli.main(["render", "--objective", "conv2:3", "--schedule", "quick"])


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (pip install -e '.[jax]')")
def test_render_on_jax_writes_the_sheet_without_importing_tensorflow(tiny_model_path, tmp_path):
    sheet = tmp_path / "jax.png"
    script = ("import json, sys; from lucidwidget import cli; status = cli.main(sys.argv[1:]); "
              "import keras; print(json.dumps([status, keras.backend.backend(), 'tensorflow' in sys.modules]))")
    result = subprocess.run(
        [sys.executable, "-c", script, "render", "--model", tiny_model_path, "--objective", "conv2:3", "--batch", "2",
         "--steps", "4", "--size", "24", "--seed", "0", "--quiet", "-o", str(sheet)],
        capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [0, "jax", False]
    assert Image.open(sheet).size == (2 * 24 + 2, 24)


@pytest.fixture
def photo_file(tmp_path):
    """A 40x60 PNG photo (wider than tall, so the aspect-kept model view differs from a square crop)."""
    from lucidwidget import data, imaging

    path = tmp_path / "photo.png"
    imaging.save_png(path, data.photo("coffee", size=(40, 60)))
    return path


def test_explain_writes_the_heat_map_over_the_photo_and_the_raw_map(tiny_model_path, photo_file, tmp_path, capsys):
    import keras

    import lucidwidget as lw
    from lucidwidget import heatmap, imaging

    raw = tmp_path / "map.npy"
    assert cli.main(["explain", "--model", tiny_model_path, "--image", str(photo_file), "--target", "conv3:1",
                     "--size", "24", "-o", str(raw)]) == 0
    assert f"wrote {raw} (gradcam of conv3:1 on photo.png; the target's score " in capsys.readouterr().out
    values = np.load(raw)
    photo = imaging.read_image(str(photo_file))
    view = imaging.resize(photo, (24, 36))                       # shorter side 24, aspect kept
    expected = lw.attribute(keras.saving.load_model(tiny_model_path), view, "conv3:1")[0]
    np.testing.assert_allclose(values, imaging.resize(expected[None, ..., None], (40, 60))[0, ..., 0], rtol=1e-4,
                               atol=1e-6 * expected.max())
    assert values.shape == (40, 60) and values.max() > 0
    picture = tmp_path / "heat.png"
    assert cli.main(["explain", "--model", tiny_model_path, "--image", str(photo_file), "--target", "conv3:1",
                     "--size", "24", "--opacity", "0.5", "-o", str(picture)]) == 0
    shown = imaging.read_image(str(picture))
    assert shown.shape == (40, 60, 3)
    np.testing.assert_allclose(shown, heatmap.overlay(photo, values, 0.5), atol=1 / 255 + 1e-6)
    assert np.abs(shown - photo)[values > 0].mean() > np.abs(shown - photo)[values == 0].mean()


def test_explain_lists_a_layers_top_channels_and_the_top_outputs(tiny_model_path, photo_file, capsys):
    import keras

    from lucidwidget import imaging
    from lucidwidget.attribution import Explainer, summary

    assert cli.main(["explain", "--model", tiny_model_path, "--image", str(photo_file), "--size", "24",
                     "--top-channels", "conv2", "--top", "4", "--target", "conv3:1", "--top-outputs"]) == 0
    out = capsys.readouterr().out.splitlines()
    view = imaging.resize(imaging.read_image(str(photo_file)), (24, 36))
    explainer = Explainer(keras.saving.load_model(tiny_model_path))
    ranked = summary.top_channels(explainer, view, "conv2", "conv3:1", 4)
    assert out[0].startswith("The output of model") and "is a feature map, not classes" in out[0]
    table = out[out.index(next(line for line in out if line.startswith("Channels of 'conv2'"))):]
    assert table[0] == ("Channels of 'conv2' by attribution to the target (activation times gradient, summed over "
                        "positions), on photo.png:")
    assert table[1].split() == ["rank", "channel", "activation", "attribution"]
    assert [int(line.split()[1]) for line in table[2:6]] == list(ranked.channels)
    assert not any(line.startswith("wrote") for line in out)        # no -o and --top-channels: nothing written


@pytest.mark.parametrize("options, message", [
    ([], "Nothing to do: give --target to write a heat map"),
    (["--target", "conv3:1", "--samples", "8"], "--samples applies to smoothgrad, not 'gradcam'. Received: samples=8"),
    (["--target", "conv3:1", "--method", "gradient", "--layer", "conv1"],
     "--layer applies to gradcam, gradcam++ or scorecam, not 'gradient'"),
    (["--target", "conv3:1", "--opacity", "2"], "Expected --opacity in [0, 1]. Received: opacity=2.0"),
    (["--top-channels", "conv2", "-o", "OUT"], "-o writes the heat map of a target: give --target too"),
    (["--target", "conv3:1", "-o", "heat.bmp"], "Expected --output to end in .png, .jpg, .jpeg, .webp or .gif"),
    (["--target", "conv3:1", "--image", "chelsa"], "No image file at 'chelsa' for --image"),
    (["--target", "conv9:1"], "conv9"),
    (["--target", "conv3:99"], "Received: channel=99"),
    (["--top-channels", "conv22"], "conv22"),
])
def test_explain_arguments_are_checked_with_one_sentence(options, message, tiny_model_path, photo_file, tmp_path,
                                                          capsys):
    output = tmp_path / "heat.png"
    options = [str(output) if option == "OUT" else option for option in options]
    image = [] if "--image" in options else ["--image", str(photo_file)]
    assert cli.main(["explain", "--model", tiny_model_path, *image, "--size", "24", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not output.exists()


def test_explain_names_the_library_methods():
    from lucidwidget.attribution import METHODS

    assert set(cli.explain.METHODS) == set(METHODS)


@pytest.mark.vgg
def test_explain_on_vgg16_hed_and_a_bundled_photo(tmp_path, capsys):
    picture = tmp_path / "heat.png"
    assert cli.main(["explain", "--image", "chelsea", "--target", "block4_conv3:42", "--size", "96",
                     "-o", str(picture)]) == 0
    assert Image.open(picture).size == (451, 300)                    # the photo's own resolution
    assert "gradcam of block4_conv3:42 on chelsea" in capsys.readouterr().out
