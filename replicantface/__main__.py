from replicantface.cli import main

raise SystemExit(main())
