"""The atlas end to end on a tiny model: files, manifests, seeds that make units independent of their
batch, dataset examples equal to a brute-force pass, refusals of changed settings, argument checks."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

import lucidwidget as lw
from atlas_support import SMALL, make_images, manifest, save_tiny_model, unit_files
from lucidwidget import cli, imaging
from lucidwidget.atlas import batching, examples, plan, settings, work
from lucidwidget.models import FeatureTap, load_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    return str(folder), make_images(folder)


@pytest.fixture(scope="module")
def small_atlas(tmp_path_factory, model_path, photos, monkeypatch_module):
    """Three views and dataset examples, the scan in shards of 5 images so that it merges 4 of them."""
    monkeypatch_module.setattr(plan, "SCAN_SHARD_IMAGES", 5)
    directory = str(tmp_path_factory.mktemp("atlas") / "out")
    result = lw.atlas(model_path, output=directory, batch=4, views="channel,negative,diversity", images=photos[0],
                      verbose=0, **SMALL)
    return directory, result


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_a_small_atlas_writes_every_unit_a_manifest_and_a_gallery(small_atlas, model_path):
    directory, result = small_atlas
    assert (result.rendered, result.skipped, result.batch) == (16, 0, 4)
    for name in ("index.html", "gallery.js", "gallery.css", "atlas-index.js", "atlas.json"):
        assert os.path.isfile(os.path.join(directory, name)), name
    for layer in SMALL["layers"]:
        found = manifest(directory, layer)
        assert found["layer"] == layer and found["steps"] == 8 and found["size"] == 32
        assert found["model"] == model_path and found["version"] == lw.__version__
        assert [unit["channel"] for unit in found["units"]] == list(range(8))
        for unit in found["units"]:
            assert unit["image"] == f"{unit['channel']}.png"
            assert unit["seed"] == plan.unit_seed(0, layer, unit["channel"])
            assert unit["objective"] == unit["views"]["channel"]["value"]
            assert Image.open(os.path.join(directory, layer, unit["image"])).size == (32, 32)
            strip = Image.open(os.path.join(directory, layer, unit["views"]["diversity"]["image"]))
            assert strip.size[1] == 32 and strip.size[0] > 4 * 32        # four images side by side
            assert len(unit["views"]["diversity"]["values"]) == 4
            assert os.path.isfile(os.path.join(directory, layer, unit["views"]["negative"]["image"]))
            assert len(unit["examples"]) == examples.TOP_K
    index = open(os.path.join(directory, "atlas-index.js")).read()
    assert index.startswith("window.LUCIDWIDGET_ATLAS = {") and '"name":"conv3"' in index


def test_views_push_the_unit_both_ways(small_atlas):
    directory, _ = small_atlas
    for unit in manifest(directory, "conv3")["units"]:
        views = unit["views"]
        assert views["channel"]["value"] > views["negative"]["value"]


def test_a_unit_does_not_depend_on_its_batch(small_atlas, model_path, tmp_path):
    """The same units rendered 3 and 1 at a time (other chunks, other batch sizes) match the atlas's."""
    directory, _ = small_atlas
    other = str(tmp_path / "other")
    lw.atlas(model_path, ["conv3"], other, channels="1-3", steps=8, size=32, batch=3, verbose=0)
    single = str(tmp_path / "single")
    lw.atlas(model_path, ["conv3"], single, channels="2", steps=8, size=32, batch=1, verbose=0)
    values = {unit["channel"]: unit["objective"] for unit in manifest(directory, "conv3")["units"]}
    for folder, channels in ((other, (1, 2, 3)), (single, (2,))):
        for unit in manifest(folder, "conv3")["units"]:
            assert unit["channel"] in channels
            assert unit["objective"] == pytest.approx(values[unit["channel"]], rel=1e-4, abs=1e-5)
            mine = np.asarray(Image.open(os.path.join(directory, "conv3", unit["image"])), np.int16)
            theirs = np.asarray(Image.open(os.path.join(folder, "conv3", unit["image"])), np.int16)
            assert np.abs(mine - theirs).max() <= 1     # uint8 rounding of float noise at most


def brute_force(model_path, folder, names, layer, size, k=examples.TOP_K):
    """Each image alone through the pre-activation tap; each unit's largest value over positions; the best
    k per unit sorted by value, then by file name."""
    tap = FeatureTap(load_model(model_path), [layer], preactivation=True)
    rows = []
    for name in names:
        image = imaging.load_images(os.path.join(folder, name), size=size)
        activation = keras.ops.convert_to_numpy(tap(image)[layer])[0]
        flat = activation.reshape(-1, activation.shape[-1])
        where = flat.argmax(axis=0)
        rows.append((name, flat.max(axis=0), where // activation.shape[1], where % activation.shape[1]))
    best = {}
    for unit in range(rows[0][1].size):
        ranked = sorted(rows, key=lambda row: (-row[1][unit], row[0]))[:k]
        best[unit] = [(name, float(values[unit]), int(y[unit]), int(x[unit])) for name, values, y, x in ranked]
    return best


def test_dataset_examples_equal_a_brute_force_pass(small_atlas, model_path, photos):
    directory, result = small_atlas
    folder, names = photos
    assert result.scanned == len(names)
    ties = 0
    for layer in SMALL["layers"]:
        expected = brute_force(model_path, folder, names, layer, SMALL["size"])
        with open(os.path.join(directory, layer, "examples.json")) as file:
            table = json.load(file)
        assert table["images"] == len(names)
        for unit, ranked in expected.items():
            found = table["units"][str(unit)]
            assert [entry["source"] for entry in found] == [name for name, *_ in ranked]
            np.testing.assert_allclose([entry["value"] for entry in found], [v for _, v, *_ in ranked], rtol=1e-5,
                                       atol=1e-5)
            assert [(entry["y"], entry["x"]) for entry in found] == [(y, x) for *_, y, x in ranked]
            ties += sum(a[1] == b[1] for a, b in zip(ranked, ranked[1:]))
    assert ties > 0       # the duplicated images tie, and the order broke them by name as the brute force


def test_example_crops_show_where_the_unit_fired(small_atlas, photos):
    directory, _ = small_atlas
    folder, _ = photos
    unit = manifest(directory, "conv3")["units"][4]
    grid = tuple(json.load(open(os.path.join(directory, "conv3", "examples.json")))["grid"])
    assert grid == (16, 16)
    for example in unit["examples"][:3]:
        top, left, side = examples.crop_box(example["y"], example["x"], grid, SMALL["size"])
        crop = imaging.load_images(os.path.join(directory, "conv3", example["image"]))[0]
        assert crop.shape[:2] == (side, side)
        source = imaging.load_images(os.path.join(folder, example["source"]), size=SMALL["size"])[0]
        # Brightness only: JPEG keeps it (about 0.01 off) and subsamples the colours of these noisy images.
        crop, window = crop.mean(-1), source[top:top + side, left:left + side].mean(-1)
        assert np.abs(crop - window).mean() < 0.03
        assert np.corrcoef(crop.ravel(), window.ravel())[0, 1] > 0.95


def test_crop_box_centres_on_the_cell_and_stays_inside():
    assert examples.crop_box(8, 8, (16, 16), 128) == (44, 44, 48)        # 6 cells of 8 px around (68, 68)
    assert examples.crop_box(0, 15, (16, 16), 128) == (0, 80, 48)        # pushed inside at the corner
    assert examples.crop_box(3, 3, (128, 128), 128) == (0, 0, 32)        # at least a quarter of the side
    assert examples.crop_box(0, 0, (2, 2), 128) == (0, 0, 128)           # at most the whole image
    assert examples.crop_box(0, 0, (1, 1), 64) == (0, 0, 64)             # a vector layer: the image


def test_top_k_merge_is_exact_in_any_order():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 6, size=(40, 5)).astype(np.float32)          # many ties
    rows = rng.integers(0, 4, size=(40, 5)).astype(np.int32)
    whole = examples.top_k_of(values, np.arange(40), rows, rows, (4, 4), k=9)
    for order in (range(0, 40, 7), [35, 0, 14, 28, 7, 21]):
        merged = None
        for start in order:
            part = examples.top_k_of(values[start:start + 7], np.arange(start, min(start + 7, 40)),
                                     rows[start:start + 7], rows[start:start + 7], (4, 4), k=9)
            merged = part if merged is None else merged.merge(part)
        for mine, theirs in zip(merged.arrays(), whole.arrays()):
            np.testing.assert_array_equal(mine, theirs)
    expected = np.lexsort((np.arange(40), -values[:, 0]))[:9]
    np.testing.assert_array_equal(whole.index[:, 0], expected)


def test_rerun_renders_nothing_and_changed_settings_are_refused(small_atlas, model_path, photos):
    directory, _ = small_atlas
    before = unit_files(directory, "conv3")
    again = lw.atlas(model_path, output=directory, batch=2, views="channel,negative,diversity", images=photos[0],
                     verbose=0, **SMALL)
    assert (again.rendered, again.skipped, again.scanned) == (0, 16, 0)
    assert unit_files(directory, "conv3") == before
    for change, message in [({"steps": 9}, "was made with steps=8"), ({"views": "channel"},
                            "was made with views=channel,negative,diversity"), ({"seed": 1}, "was made with seed=0")]:
        with pytest.raises(ValueError, match=message):
            lw.atlas(model_path, output=directory, **{**SMALL, "views": "channel,negative,diversity", **change},
                     verbose=0)
    other = make_images(os.path.join(str(directory) + "-photos"), count=4, duplicates=0)
    with pytest.raises(ValueError, match=r"come from 18 images of .*rerun with that folder"):
        lw.atlas(model_path, output=directory, images=str(directory) + "-photos", verbose=0,
                 views="channel,negative,diversity", **SMALL)
    assert len(other) == 4


def test_more_channels_later_render_only_the_new_ones(small_atlas, model_path, photos, tmp_path):
    directory = str(tmp_path / "grow")
    lw.atlas(model_path, ["conv2"], directory, channels="0-1", steps=8, size=32, batch=4, verbose=0)
    before = unit_files(directory)
    grown = lw.atlas(model_path, ["conv2"], directory, channels="0-3", steps=8, size=32, batch=4, verbose=0,
                     images=photos[0])
    assert (grown.rendered, grown.skipped) == (2, 2)
    after = unit_files(directory)
    assert {name: after[name] for name in before} == before
    units = manifest(directory, "conv2")["units"]
    assert [unit["channel"] for unit in units] == [0, 1, 2, 3] and all(len(u["examples"]) == 9 for u in units)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"layers": ["conv9"]}, ValueError, r"No visualizable layer 'conv9' in model .* Did you mean 'conv3' or 'conv2'"),
    ({"channels": "0-6x"}, ValueError, r"channels such as '0-63,100'.*Received: channels='0-6x'"),
    ({"channels": "10-20"}, ValueError, r"channels in \[0, 15\] for layer 'conv2'. Received: channels='10-20'"),
    ({"views": "chanel"}, ValueError, r"Unknown view 'chanel'.*Did you mean 'channel'"),
    ({"steps": 0}, ValueError, r"`steps` to be a whole number >= 1"),
    ({"images": "/no/such/folder"}, ValueError, r"No folder at '/no/such/folder'"),
    ({"ray": "not an address"}, ValueError, r"ray='auto' or a Ray address"),
    ({"workers": 2}, ValueError, r"give `ray` too"),
    ({"format": "jpg"}, ValueError, r"Unknown format"),
    ({"size": 1}, ValueError, r"too small for layer"),
])
def test_bad_arguments_fail_before_any_work(model_path, tmp_path, kwargs, error, message):
    directory = tmp_path / "never"
    settings_ = {"layers": ["conv2"], "steps": 8, "size": 32, **kwargs}
    with pytest.raises(error, match=message):
        lw.atlas(model_path, output=str(directory), verbose=0, **settings_)
    assert not directory.exists()


def test_an_image_folder_without_images_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"holds no images"):
        settings.check_image_folder(str(tmp_path))


def test_channel_specs_and_unit_seeds():
    assert settings.parse_channels("0-3, 7,5-6") == [0, 1, 2, 3, 5, 6, 7]
    assert settings.parse_channels([3, 1, 3]) == [1, 3] and settings.parse_channels(4) == [4]
    with pytest.raises(ValueError, match="low <= high"):
        settings.parse_channels("5-2")
    seeds = {plan.unit_seed(0, "conv2", c) for c in range(100)}
    assert len(seeds) == 100 and all(0 <= s < 2**31 for s in seeds)
    assert plan.unit_seed(0, "conv2", 7) == 2109551976      # the same in every process and release
    assert plan.unit_seed(1, "conv2", 7) != plan.unit_seed(0, "conv2", 7)
    assert plan.layer_folders(["a/b", "a_b", "c d"]) == {"a/b": "a_b", "a_b": "a_b_2", "c d": "c_d"}


def test_cli_atlas_writes_the_same_and_reports_bad_input(model_path, tmp_path, capsys):
    directory = tmp_path / "cli"
    status = cli.main(["atlas", "--model", model_path, "--layers", "conv2", "--channels", "0-2", "--steps", "8",
                       "--size", "32", "--batch", "2", "-o", str(directory)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "3 units to render, 0 already done, batch 2" in captured.err
    assert "units/min" in captured.out + captured.err and "worker " in captured.err
    assert f"wrote {directory}/index.html (3 units rendered" in captured.out
    assert [u["channel"] for u in manifest(str(directory), "conv2")["units"]] == [0, 1, 2]
    status = cli.main(["atlas", "--model", model_path, "--layers", "conv2", "--steps", "9", "--size", "32",
                       "-o", str(directory)])
    assert status == 2
    assert "error: The atlas in" in capsys.readouterr().err
    status = cli.main(["atlas", "--model", "vgg16-hd", "--layers", "conv2", "-o", str(tmp_path / "x")])
    assert status == 2 and "Did you mean 'vgg16-hed'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_batch_that_runs_out_of_memory_is_halved_until_it_fits(model_path, monkeypatch):
    worker = work.Worker(work.Job(model_path, None, 32, 2, ("channel",)))
    calls, render = [], work.render_chunk

    def scarce(renderer, chunk, size, steps, views):
        calls.append(len(chunk.channels))
        if len(chunk.channels) > 2:
            raise RuntimeError("RESOURCE_EXHAUSTED: OOM when allocating tensor with shape[5,32,32,8]")
        return render(renderer, chunk, size, steps, views)

    monkeypatch.setattr(work, "render_chunk", scarce)
    result = worker.run(plan.render_chunks("conv2", range(5), 5, 0)[0])
    assert [unit.channel for unit in result.units] == [0, 1, 2, 3, 4]
    assert calls == [5, 2, 3, 1, 2]
    monkeypatch.setattr(work, "render_chunk", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):                       # other errors are not retried
        worker.run(plan.render_chunks("conv2", range(4), 4, 0)[0])


def test_the_default_batch_fits_the_memory_and_the_fastest_cpu_batch(model_path, monkeypatch):
    model = load_model(model_path)
    per_image = batching.activation_values(model, ["conv3"], 32)
    assert per_image == 32 * 32 * 8 + 16 * 16 * 8 + 16 * 16 * 16 + 16 * 16 * 12   # conv1, pool1, conv2, conv3
    assert batching.default_batch(model, ["conv2", "conv3"], 32) == batching.CPU_BATCH
    budget = 3 * per_image * batching.MEMORY_PER_ACTIVATION / batching.HOST_MEMORY_FRACTION
    monkeypatch.setattr(batching, "host_memory", lambda: budget)
    assert batching.default_batch(model, ["conv3"], 32) == 3
    monkeypatch.setattr(batching, "on_accelerator", lambda: True)
    assert batching.default_batch(model, ["conv3"], 32) == batching.ACCELERATOR_BATCH
