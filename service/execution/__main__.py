"""``python -m service.execution FD``: a model process, started by the serving process."""

import sys

from service.execution.model_process import serve_models

serve_models(int(sys.argv[1]))
