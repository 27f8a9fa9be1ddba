"""The atlas gallery in chromium, opened from file:// as a user would: the grid's images load, a deep
link opens its unit, the filters work, and the page logs no error."""

import os
import pathlib

import pytest

import browser_support
import lucidwidget as lw
from atlas_support import make_images, manifest, save_tiny_model

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gallery")
    model = save_tiny_model(folder)
    photos = str(folder / "photos")
    make_images(photos, count=10, duplicates=0)
    directory = str(folder / "my atlas")                      # a space: file:// URLs must be encoded
    lw.atlas(model, ["conv2", "conv3"], directory, channels="0-5", steps=4, size=32, batch=6,
             views="channel,negative", images=photos, verbose=0)
    return directory


def watch_errors(page):
    errors = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("requestfailed", lambda request: aborted(request) or errors.append(f"{request.failure}: {request.url}"))
    return errors


def aborted(request):
    """A load the page itself cancelled (it left the unit before an image arrived), not a missing file."""
    return request.failure == "net::ERR_ABORTED"


def loaded_images(page, selector):
    """(images matched, images decoded with a width) once every lazy image in view has settled."""
    page.wait_for_function(
        f"[...document.querySelectorAll({selector!r})].every((img) => img.complete)", timeout=20_000)
    return page.evaluate(f"""() => {{
        const images = [...document.querySelectorAll({selector!r})];
        return [images.length, images.filter((img) => img.naturalWidth > 0).length];
    }}""")


def test_the_gallery_grid_deep_links_and_filters(gallery, tmp_path):
    browser_support.require_chromium()
    url = "file://" + os.path.join(gallery, "index.html").replace(" ", "%20")
    with browser_support.chromium() as page:
        errors = watch_errors(page)
        page.goto(url)
        page.wait_for_selector(".layer-card")
        assert page.locator(".layer-card").count() == 2
        assert loaded_images(page, ".strip img") == [12, 12]

        page.select_option("#layer-filter", "conv3")
        page.wait_for_selector(".grid .cell")
        assert page.evaluate("location.hash") == "#conv3"
        assert loaded_images(page, ".grid img") == [6, 6]
        page.fill("#channel-filter", "1-2,5")
        page.wait_for_function("document.querySelectorAll('.grid .cell').length === 3")
        shown = page.eval_on_selector_all(".grid .cell", "cells => cells.map((c) => c.dataset.channel)")
        assert shown == ["1", "2", "5"]
        page.screenshot(path=str(tmp_path / "layer.png"))

        page.goto(url + "#conv3/4")                       # a deep link, as pasted into the address bar
        page.reload()
        page.wait_for_selector("article.unit[data-channel='4']")
        unit = manifest(gallery, "conv3")["units"][4]
        assert page.inner_text(".unit-head h1") == "conv3 : 4"
        facts = page.inner_text(".facts")
        assert f"seed {unit['seed']}" in facts and "mean activation" in facts
        assert loaded_images(page, ".views img") == [2, 2]
        assert page.locator(".example").count() == 9
        assert loaded_images(page, ".example img") == [9, 9]
        assert unit["examples"][0]["source"] in page.inner_text(".example-grid")
        page.keyboard.press("ArrowRight")
        page.wait_for_selector("article.unit[data-channel='5']")
        page.keyboard.press("Escape")
        page.wait_for_selector(".grid .cell")
        page.goto(url + "#conv3/99")
        page.wait_for_selector(".missing")
        assert "not in this atlas" in page.inner_text(".missing")
        assert errors == []


FAKE_MODEL = """
(state) => {
  const listeners = {};
  const sent = [];
  const model = {
    get: (name) => state[name],
    set: (name, value) => { state[name] = value; },
    save_changes: () => {},
    send: (content) => sent.push(content),
    on: (event, fn) => { (listeners[event] = listeners[event] || []).push(fn); },
    off: (event, fn) => { listeners[event] = (listeners[event] || []).filter((f) => f !== fn); },
  };
  return { model, sent, listeners };
}
"""


def test_the_notebook_atlas_view_sends_a_click_and_cleans_up(gallery):
    """js/atlas.js alone in chromium with a stand-in for anywidget's model (no JupyterLab needed)."""
    browser_support.require_chromium()
    source = (pathlib.Path(__file__).resolve().parents[1] / "js" / "atlas.js").read_text()
    thumbnails = [open(os.path.join(gallery, "conv2", f"{c}.png"), "rb").read() for c in range(3)]
    with browser_support.chromium() as page:
        errors = watch_errors(page)
        page.goto("about:blank")
        result = page.evaluate("""async ([source, thumbnails, fake]) => {
            const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
            const widget = (await import(url)).default;
            const units = thumbnails.map((bytes, channel) => {
                const buffer = new Uint8Array([0, 0, ...bytes]).buffer;     // a view with an offset
                return { channel, value: channel / 2, thumbnail: new DataView(buffer, 2, bytes.length) };
            });
            const state = { layers: [{ name: "conv2", units: 3, planned: 3 }], layer: "conv2", units, page: 0,
                            pages: 1, channels: "", error: "", selected: {}, model_name: "tiny" };
            const { model, sent, listeners } = eval(fake)(state);
            const el = document.createElement("div");
            document.body.append(el);
            const revoked = [];
            const revoke = URL.revokeObjectURL;
            URL.revokeObjectURL = (u) => { revoked.push(u); revoke(u); };
            const dispose = widget.render({ model, el });
            const images = [...el.querySelectorAll(".lwa-cell img")];
            await Promise.all(images.map((img) => img.decode()));
            el.querySelector(".lwa-cell[data-channel='2']").click();
            dispose();
            return { widths: images.map((img) => img.naturalWidth), sent, left: el.children.length,
                     listening: Object.values(listeners).reduce((n, fns) => n + fns.length, 0),
                     revoked: revoked.length };
        }""", [source, [list(t) for t in thumbnails], FAKE_MODEL])
        assert result["widths"] == [32, 32, 32]
        assert result["sent"] == [{"event": "open", "layer": "conv2", "channel": 2}]
        assert (result["left"], result["listening"], result["revoked"]) == (0, 0, 3)
        assert errors == []
