"""``python -m tenantwatch.cli``: the same as the ``tenantwatch`` command."""

from __future__ import annotations

import sys

from tenantwatch.cli import main

sys.exit(main())
