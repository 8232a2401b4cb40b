"""``python -m service.promotion`` (see :mod:`service.promotion.cli`)."""

import os
import sys

# As for the server: onnxruntime must not phone home (set before it is imported).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from service.promotion.cli import main  # after the variable above

sys.exit(main())
