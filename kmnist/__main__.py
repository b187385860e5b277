from kmnist.cli import main

raise SystemExit(main())
