"""Quality-gated promotion: a version label (``stable``) moves to a candidate version only when
the candidate, measured as the service serves it (its own calibration applied), is no worse than
the version the label names, on the same labelled rows, through the evaluation pipeline.

``python -m service.promotion --candidate 2 --label stable --dataset …`` (see
docs/calibration.md). The move is an atomic rewrite of the model's ``config.json``, which the
running service follows (at its next look, or at once with ``--server``).
"""
