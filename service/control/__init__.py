"""Model control: what is loaded, how it changes while the service runs, and who may change it.

:class:`ModelManager` loads, routes and retires versions; :class:`ModelControl` decides when
(start-up, polling, orders); :mod:`~service.control.orders` carries orders to every serving
process; :class:`VersionStatistics` counts what each version served.
"""

from service.control.control import ControlMode, ModelControl
from service.control.manager import ModelManager
from service.control.orders import CONTROL_DIR, LocalOrders, Orders, SharedOrders
from service.control.statistics import VersionStatistics

__all__ = [
    "CONTROL_DIR",
    "ControlMode",
    "LocalOrders",
    "ModelControl",
    "ModelManager",
    "Orders",
    "SharedOrders",
    "VersionStatistics",
]
