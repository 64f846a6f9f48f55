from wadesk.cli import main

raise SystemExit(main())
