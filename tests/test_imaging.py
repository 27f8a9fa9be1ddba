"""imaging: exact pixels for conversion, tiling and alpha compositing; PNG/GIF files decode right."""

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lucidwidget import imaging


def test_to_uint8_scales_rounds_half_up_and_clips():
    images = np.array([[-0.5, 0.0, 0.5], [1.0 / 255, 1.0, 7.0]], np.float32)
    np.testing.assert_array_equal(imaging.to_uint8(images), [[0, 0, 128], [1, 255, 255]])
    assert imaging.to_uint8(images).dtype == np.uint8
    already = np.array([3, 200], np.uint8)
    assert imaging.to_uint8(already) is already


def test_to_uint8_rejects_nan_and_non_float():
    with pytest.raises(ValueError, match="NaN"):
        imaging.to_uint8(np.array([0.2, np.nan]))
    with pytest.raises(ValueError, match="Received: dtype=int64"):
        imaging.to_uint8(np.array([1, 2], np.int64))


def test_tile_lays_out_rows_with_padding_and_background():
    batch = np.arange(1, 4, dtype=np.float32).reshape(3, 1, 1, 1) / 10  # three 1x1 grey images
    sheet = imaging.tile(batch, columns=2, padding=1, background=0.9)
    expected = np.array([[0.1, 0.9, 0.2], [0.9, 0.9, 0.9], [0.3, 0.9, 0.9]], np.float32)
    np.testing.assert_allclose(sheet[..., 0], expected)
    assert sheet.shape == (3, 3, 1)


def test_tile_default_grid_is_near_square_and_uint8_stays_uint8():
    batch = np.zeros((5, 2, 3, 3), np.uint8)
    sheet = imaging.tile(batch, padding=0, background=1.0)
    assert sheet.shape == (2 * 2, 3 * 3, 3) and sheet.dtype == np.uint8
    assert sheet[2:, 6:].min() == 255 and sheet[:2, :].max() == 0
    assert imaging.tile(np.ones((4, 4, 3), np.float32)).shape == (4, 4, 3)
    assert imaging.tile(np.zeros((2, 4, 4, 3), np.float32), columns=10).shape == (4, 10, 3)


def test_composite_alpha_over_white_black_and_checkerboard():
    rgba = np.array([[[1.0, 0.0, 0.0, 0.5], [0.0, 0.0, 1.0, 0.0]]], np.float32)  # 1x2 image
    np.testing.assert_allclose(imaging.composite_alpha(rgba, "white"), [[[1.0, 0.5, 0.5], [1.0, 1.0, 1.0]]])
    np.testing.assert_allclose(imaging.composite_alpha(rgba, "black"), [[[0.5, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    np.testing.assert_allclose(imaging.composite_alpha(rgba, (0.0, 1.0, 0.0))[0, 1], [0.0, 1.0, 0.0])
    clear = np.zeros((1, 16, 16, 4), np.float32)
    board = imaging.composite_alpha(clear)[0, ..., 0]
    light, dark = imaging.CHECKER_SHADES[1], imaging.CHECKER_SHADES[0]
    assert board[0, 0] == light and board[0, 8] == dark and board[8, 0] == dark and board[8, 8] == light
    rgb = np.full((1, 2, 2, 3), 0.25, np.float32)
    np.testing.assert_array_equal(imaging.composite_alpha(rgb), rgb)


def test_composite_alpha_rejects_a_bad_background():
    with pytest.raises(ValueError, match="Received: background='grey'"):
        imaging.composite_alpha(np.zeros((2, 2, 4)), "grey")
    with pytest.raises(ValueError, match=r"Received: background=\(2, 0, 0\)"):
        imaging.composite_alpha(np.zeros((2, 2, 4)), (2, 0, 0))


def test_png_bytes_tiles_scales_and_keeps_alpha():
    batch = np.random.default_rng(0).random((4, 5, 6, 3)).astype(np.float32)
    picture = Image.open(io.BytesIO(imaging.png_bytes(batch, scale=3, padding=1)))
    assert picture.format == "PNG" and picture.mode == "RGB"
    assert picture.size == (3 * (2 * 6 + 1), 3 * (2 * 5 + 1))
    pixels = np.asarray(picture)
    np.testing.assert_array_equal(pixels[:3, :3], np.broadcast_to(imaging.to_uint8(batch[0, 0, 0]), (3, 3, 3)))
    rgba = Image.open(io.BytesIO(imaging.png_bytes(np.full((2, 2, 4), 0.5, np.float32))))
    assert rgba.mode == "RGBA" and np.asarray(rgba)[0, 0, 3] == 128
    grey = Image.open(io.BytesIO(imaging.png_bytes(np.zeros((3, 2, 1), np.float32))))
    assert grey.mode == "L" and grey.size == (2, 3)


def test_save_png_and_save_gif_write_decodable_files(tmp_path):
    batch = np.random.default_rng(1).random((2, 8, 8, 4)).astype(np.float32)
    png = imaging.save_png(tmp_path / "sheet.png", batch, padding=0)
    assert Image.open(png).size == (16, 8)
    frames = [np.full((2, 8, 8, 3), level, np.float32) for level in (0.0, 0.5, 1.0)]
    gif = Image.open(imaging.save_gif(tmp_path / "run.gif", frames, duration_ms=50, padding=0))
    assert gif.format == "GIF" and gif.n_frames == 3 and gif.size == (16, 8)
    assert gif.info["duration"] == 50 and gif.info["loop"] == 0
    gif.seek(1)
    assert np.asarray(gif.convert("RGB"))[0, 0, 0] in (127, 128)
    single = Image.open(imaging.save_gif(tmp_path / "one.gif", [batch[0]], scale=2))
    assert single.n_frames == 1 and single.size == (16, 16)


def test_save_image_picks_the_format_from_the_extension(tmp_path):
    rgba = np.random.default_rng(2).random((2, 8, 8, 4)).astype(np.float32)
    for name, format, mode in [("a.png", "PNG", "RGBA"), ("a.webp", "WEBP", "RGBA"), ("a.jpeg", "JPEG", "RGB"),
                               ("a.JPG", "JPEG", "RGB"), ("a.gif", "GIF", "P")]:
        picture = Image.open(imaging.save_image(tmp_path / name, rgba, padding=0))
        assert (picture.format, picture.mode, picture.size) == (format, mode, (16, 8))
    white = np.zeros((4, 4, 4), np.float32)           # fully transparent: JPEG shows the white behind it
    assert np.asarray(Image.open(imaging.save_image(tmp_path / "clear.jpg", white))).min() >= 250
    with pytest.raises(ValueError, match=r"ending in .png, .jpg, .jpeg, .webp or .gif. Received: path='a.bmp'"):
        imaging.save_image("a.bmp", rgba)
    assert not (tmp_path / "a.bmp").exists()
    with pytest.raises(ValueError, match="Received: format='TIFF'"):
        imaging.image_bytes(rgba, "TIFF")


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((4, 4)), r"Received: images with shape=\(4, 4\)"),
        (np.zeros((1, 4, 4, 2)), r"Expected 1 or 3 or 4 channels.*shape=\(1, 4, 4, 2\)"),
        (np.zeros((0, 4, 4, 3)), "at least one non-empty image"),
        (np.zeros((2, 2, 3), bool), "Received: dtype=bool"),
    ],
)
def test_bad_shapes_and_dtypes_are_named(images, message):
    with pytest.raises(ValueError, match=message):
        imaging.png_bytes(images)


def test_bad_arguments_are_named(tmp_path):
    images = np.zeros((2, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match="Received: columns=0"):
        imaging.tile(images, columns=0)
    with pytest.raises(ValueError, match="Received: padding=-1"):
        imaging.tile(images, padding=-1)
    with pytest.raises(ValueError, match="Received: background=2"):
        imaging.tile(images, background=2)
    with pytest.raises(ValueError, match="Received: scale=0"):
        imaging.png_bytes(images, scale=0)
    with pytest.raises(ValueError, match="Received: frames=\\[\\]"):
        imaging.save_gif(tmp_path / "x.gif", [])
    with pytest.raises(ValueError, match="frame shapes"):
        imaging.save_gif(tmp_path / "x.gif", [images, images[:1]])
    with pytest.raises(ValueError, match="Received: duration_ms=0"):
        imaging.save_gif(tmp_path / "x.gif", [images], duration_ms=0)


def test_imaging_does_not_import_tensorflow():
    code = "import sys, lucidwidget.imaging; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_load_images_reads_paths_bytes_pil_and_arrays_to_one_size(tmp_path):
    rgba = np.zeros((30, 60, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :30, 3] = 255                                   # left half opaque red, right half clear
    path = tmp_path / "wide.png"
    Image.fromarray(rgba).save(path)
    grey = Image.fromarray(np.full((40, 20), 128, np.uint8))
    batch = imaging.load_images([str(path), path.read_bytes(), grey, rgba[..., :3]], size=20)
    assert batch.shape == (4, 20, 20, 3) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, 10, 0], [1, 0, 0], atol=0.02)     # centre crop keeps the middle
    np.testing.assert_allclose(batch[0, 10, -1], [1, 1, 1], atol=0.02)    # transparency over white
    np.testing.assert_allclose(batch[2], 128 / 255, atol=0.01)           # grey becomes RGB
    assert imaging.load_images(str(path), channels=1).shape == (1, 30, 60, 1)


def test_load_images_says_what_is_wrong(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    with pytest.raises(ValueError, match="Could not read .*notes.txt' as an image"):
        imaging.load_images(str(text))
    with pytest.raises(ValueError, match="No image file at"):
        imaging.load_images(str(tmp_path / "missing.jpg"))
    with pytest.raises(TypeError, match="Received: image of type int"):
        imaging.load_images(3)
    with pytest.raises(ValueError, match="one size"):
        imaging.load_images([np.zeros((4, 4, 3)), np.zeros((5, 4, 3))])
