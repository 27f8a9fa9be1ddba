"""`python -m lucidwidget`: the same as the `lucidwidget` command."""

from lucidwidget.cli import main

raise SystemExit(main())
