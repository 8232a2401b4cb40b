"""Several replicas of the service behind nginx on one machine (see replicas.py)."""
