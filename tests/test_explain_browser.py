"""The explain panel in a real JupyterLab page, in Debian's chromium: the heat map drawn over the image,
thumbnails of the top channels that send the tiles to their channel when clicked, and files picked or
dropped on the widget (a file that is not an image is one sentence, and the panel keeps working).

Every check waits for something Python wrote back (the status line, `explain_id`, `explain_error`), not
only for what the page itself did.
"""

from __future__ import annotations

import base64
import io
import types

import numpy as np
import pytest
from PIL import Image

import browser_support

pytestmark = pytest.mark.browser

NOTEBOOK = "explain_e2e.ipynb"
CELLS = [
    browser_support.SMALL_CNN + """\
w = lw.LucidWidget(model, layer="conv3", channel=2, size=48, steps=16, seed=0, image="chelsea", autostart=False)
w""",
]
ROUND_TRIP_MS = 60_000
"""Longest wait for Python's answer (the first heat map compiles its passes on a busy CPU)."""
THUMBNAILS_MS = 180_000
"""Longest wait for the top channels' feature visualizations (a Renderer of their own compiles first)."""

# Drops a PNG given as base64 on the widget, as a file dragged from the desktop arrives.
DROP = """(root, [data, name]) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, { type: "image/png" }));
    for (const type of ["dragenter", "dragover", "drop"]) {
        root.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
    }
}"""


def png(height, width, colour):
    picture = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), colour, np.uint8)).save(picture, format="PNG")
    return picture.getvalue()


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """A JupyterLab page that ran the notebook above, once its first heat map is drawn."""
    browser_support.require_chromium()
    root_dir = tmp_path_factory.mktemp("lab-root")
    browser_support.write_notebook(root_dir / NOTEBOOK, CELLS)
    with (browser_support.jupyter_lab(root_dir) as server, browser_support.playwright() as session,
          browser_support.fresh_page(session) as page):
        browser_support.open_and_run_notebook(page, server.url, NOTEBOOK)
        root = page.locator(".lw-root")
        root.wait_for()
        page.wait_for_function("() => (document.querySelector('.lw-root').dataset.heatmapShown || '') !== ''",
                               timeout=ROUND_TRIP_MS)
        yield types.SimpleNamespace(page=page, root=root, folder=root_dir)


def explain_id(root):
    return int(root.evaluate("(el) => el.dataset.explainId"))


def wait_for_heat_map_after(panel, known):
    """Waits until Python has published a heat map newer than `known` and the page has drawn it."""
    panel.page.wait_for_function(
        "(known) => Number(document.querySelector('.lw-root').dataset.heatmapShown || 0) > known", arg=known,
        timeout=ROUND_TRIP_MS,
    )


def test_the_heat_map_is_drawn_over_the_image(panel):
    root = panel.root
    assert root.evaluate("(el) => el.dataset.image") == "true"
    status = root.locator(".lw-explain-status").text_content()
    assert status.startswith("Grad-CAM of conv3:2 at conv2"), status
    canvas = root.locator("canvas.lw-explain-canvas")
    assert canvas.evaluate("(c) => [c.width, c.height]") == [224, 224]
    before = canvas.evaluate("(c) => c.toDataURL()")
    root.locator(".lw-explain input[type=range]").first.evaluate(
        "(el) => { el.value = el.min; el.dispatchEvent(new Event('input', { bubbles: true })); }")
    panel.page.wait_for_function("(before) => document.querySelector('canvas.lw-explain-canvas').toDataURL() "
                                 "!== before", arg=before, timeout=ROUND_TRIP_MS)


def test_clicking_a_top_channel_thumbnail_sends_the_tiles_and_the_heat_map_there(panel):
    page, root = panel.page, panel.root
    page.wait_for_function("() => document.querySelectorAll('.lw-root .lw-channel img.lw-thumb').length === 8",
                           timeout=THUMBNAILS_MS)
    chosen = root.locator(".lw-channel").nth(1)
    channel = int(chosen.get_attribute("data-channel"))
    known = explain_id(root)
    chosen.click()
    wait_for_heat_map_after(panel, known)
    assert root.locator(".lw-explain-status").text_content().startswith(f"Grad-CAM of conv3:{channel} ")
    assert root.locator('.lw-range[data-trait="channel"]').input_value() == str(channel)


def test_a_picked_file_that_is_not_an_image_is_one_sentence_then_a_dropped_png_is_explained(panel):
    page, root = panel.page, panel.root
    notes = panel.folder / "notes.txt"
    notes.write_text("not an image")
    root.locator("input[type=file][data-event=image]").set_input_files(str(notes))
    error = root.locator(".lw-explain-error")
    error.wait_for(state="visible", timeout=ROUND_TRIP_MS)
    assert error.text_content() == ("Could not read 'notes.txt' as an image: expected a PNG, JPEG, WebP, GIF or BMP "
                                    "file. Received: image='notes.txt'")
    assert root.evaluate("(el) => el.dataset.image") == "true"                  # the photo stays
    known = explain_id(root)
    root.evaluate(DROP, [base64.b64encode(png(30, 50, (200, 40, 40))).decode(), "red.png"])
    wait_for_heat_map_after(panel, known)
    assert error.is_hidden()
    pixel = root.locator("canvas.lw-explain-canvas").evaluate(
        "(c) => Array.from(c.getContext('2d').getImageData(0, 0, 1, 1).data)")
    assert pixel[0] > pixel[1] + 60 and pixel[0] > pixel[2] + 60              # the dropped red image is shown
