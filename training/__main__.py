"""``python -m training``."""

import os
import sys

# As for the service (see service/__main__.py): onnxruntime, used for the export's parity
# check, sends no telemetry unless asked to.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from training.cli import main  # after the variable above

sys.exit(main())
