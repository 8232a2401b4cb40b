"""``python -m service``."""

import os
import sys

# onnxruntime (≥ 1.29) on Linux persists a device id and uploads usage events unless this is
# set before it is imported; a server does not phone home. Set it to 0 to opt in.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from service.cli import main  # after the variable above

sys.exit(main())
