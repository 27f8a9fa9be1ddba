"""Image parameterisations: what the renderer optimises instead of raw pixels (Lucid's `optvis.param`).

An `ImageParam` holds `keras.Variable`s and computes an image batch from them with `keras.ops`, on every
Keras backend. Building blocks compose:

```python
raw = param.fft_image((1, 128, 128, 3)) + param.lowres_tensor((1, 128, 128, 3), (1, 16, 16, 3))
images = param.to_valid_rgb(raw, decorrelate=True)   # an ImageParam with values in [0, 1]
```

`param.image` (FFT spectrum, decorrelated colour, sigmoid) is the renderer's default.
"""

from lucidwidget.optvis.param.base import DEFAULT_SD, ImageParam, SumParam, check_item_seeds, is_seed_list
from lucidwidget.optvis.param.color import (
    ASSIGN_EPSILON,
    COLOR_CORRELATION_NORMALIZED,
    COLOR_CORRELATION_SVD_SQRT,
    COLOR_MEAN,
    ValidRGB,
    decorrelated_to_rgb,
    rgb_to_decorrelated,
    to_valid_rgb,
)
from lucidwidget.optvis.param.generator import GeneratorParam, generator
from lucidwidget.optvis.param.images import aligned_image, image
from lucidwidget.optvis.param.lowres import LowresTensor, lowres_tensor
from lucidwidget.optvis.param.sample import ImageSampler, image_sample, random_background
from lucidwidget.optvis.param.spatial import (
    FFT_OUTPUT_SCALE,
    FFTImage,
    PixelImage,
    fft_image,
    pixel_image,
    spectrum_scale,
)

__all__ = [
    "ASSIGN_EPSILON",
    "COLOR_CORRELATION_NORMALIZED",
    "COLOR_CORRELATION_SVD_SQRT",
    "COLOR_MEAN",
    "DEFAULT_SD",
    "FFTImage",
    "FFT_OUTPUT_SCALE",
    "GeneratorParam",
    "ImageParam",
    "ImageSampler",
    "LowresTensor",
    "PixelImage",
    "SumParam",
    "ValidRGB",
    "aligned_image",
    "check_item_seeds",
    "decorrelated_to_rgb",
    "fft_image",
    "generator",
    "image",
    "image_sample",
    "is_seed_list",
    "lowres_tensor",
    "pixel_image",
    "random_background",
    "rgb_to_decorrelated",
    "spectrum_scale",
    "to_valid_rgb",
]
