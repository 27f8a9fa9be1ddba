"""The atlas: every unit of chosen layers rendered once, browsable, resumable, on one machine or Ray.

`lucidwidget.atlas(model, layers, output, ...)` (see `build.atlas`) renders each unit's views (and, given
a folder of images, its dataset examples) into a folder with a static gallery (`index.html`). The package
itself is callable, so `lw.atlas(...)` calls `atlas` even after `import lucidwidget.atlas` has made
`lucidwidget.atlas` this package.

Modules: `settings` (argument checks), `plan` (units of work, seeds), `work` (the work itself and the
`Worker` that runs it), `examples` (the exact top-k scan and crops), `store` (the folder as state:
atomic files, records, manifests), `batching` (the default batch), `runners` and `ray_runner` (where the
work runs), `build` (the driver).
"""

import sys
import types

from lucidwidget.atlas.build import AtlasResult, atlas
from lucidwidget.atlas.settings import VIEWS, parse_channels

__all__ = ["AtlasResult", "VIEWS", "atlas", "parse_channels"]


class _CallablePackage(types.ModuleType):
    """This package, callable as `atlas` (Python looks special methods up on the module's class)."""

    def __call__(self, *args, **kwargs):
        return atlas(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
