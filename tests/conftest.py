from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
# The package is installed in editable mode by the README's set-up; this keeps a bare
# checkout importable too.
if str(ROOT / "shared") not in sys.path:
    sys.path.insert(0, str(ROOT / "shared"))

# Real local emulators (moto, Pub/Sub, Firestore, Azurite, GCS) as lazy session fixtures.
pytest_plugins = ["tests.emulators"]
