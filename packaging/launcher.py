"""Entry point of the frozen desktop bundle: the same ``wadesk`` command as ``pip install`` gives."""

from wadesk.cli import main

raise SystemExit(main())
