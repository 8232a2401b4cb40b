"""Deployment files: containers (top level), Kubernetes and KServe manifests (k8s/, kserve/),
and local replicas behind nginx (local/)."""
