"""A loopback HTTPS Tesla gateway for tests and demos (see ``server.py``)."""

from sandbox.tesla.model import VARIANTS, Meters, Reading
from sandbox.tesla.server import TeslaGatewaySandbox

__all__ = ["VARIANTS", "Meters", "Reading", "TeslaGatewaySandbox"]
