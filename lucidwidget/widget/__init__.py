"""The live widget: `LucidWidget` (traits and API), its render thread and its settings mapping."""

from lucidwidget.widget.core import LucidWidget

__all__ = ["LucidWidget"]
