"""The project's REST API over the data plane."""

from service.rest.app import create_app

__all__ = ["create_app"]
