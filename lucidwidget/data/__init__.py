"""Photos that ship with lucidwidget, so notebooks, tests and the command line work offline.

Three public-domain photographs from scikit-image's sample data (`skimage.data`), re-encoded as small
JPEGs; `ATTRIBUTION.md` beside this file names each source and licence.

Example:

```python
import lucidwidget as lw

cat = lw.data.photo("chelsea")              # float32 (300, 451, 3) in [0, 1]
cat = lw.data.photo("chelsea", size=128)    # scaled to cover 128x128 and centre-cropped
lw.data.photo_names()                       # ['astronaut', 'chelsea', 'coffee']
```
"""

from __future__ import annotations

import os

import numpy as np

from lucidwidget import checks, imaging

FOLDER = os.path.dirname(os.path.abspath(__file__))

PHOTOS = {
    "astronaut": "astronaut.jpg",
    "chelsea": "chelsea.jpg",
    "coffee": "coffee.jpg",
}
"""Photo name -> file in this folder: Eileen Collins in her suit (NASA), Chelsea the cat, a cup of coffee."""


def photo_names() -> list[str]:
    """The names `photo` accepts, sorted."""
    return sorted(PHOTOS)


def photo_path(name) -> str:
    """The file of photo `name`, for APIs and commands that take a path (`--image`)."""
    return os.path.join(FOLDER, PHOTOS[checks.choice(name, "photo", photo_names())])


def photo(name, size=None, channels=3) -> np.ndarray:
    """A bundled photo as float32 (height, width, channels) in [0, 1].

    Args:
        name: one of `photo_names()`: "astronaut", "chelsea" or "coffee" (case-insensitive).
        size: (height, width) or a side: the photo is scaled to cover it and centre-cropped. Defaults to
            None (the photo's own size).
        channels: 1 (grey) or 3 (RGB). Defaults to 3.
    """
    return imaging.load_images(photo_path(name), size=size, channels=channels)[0]
