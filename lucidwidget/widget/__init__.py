"""The live widget: `LucidWidget` (traits and API), its render thread and its settings mapping; `Atlas`, the
notebook view of an atlas folder."""

from lucidwidget.widget.atlas import Atlas
from lucidwidget.widget.core import LucidWidget

__all__ = ["Atlas", "LucidWidget"]
