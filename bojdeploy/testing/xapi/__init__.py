"""An XML-RPC XAPI simulator: the unmodified XenAPI SDK talks to it as to a one-host XCP-ng pool.

`XapiSimulator` serves it from tests; `python -m bojdeploy.testing.xapi` runs it standalone.
"""

from bojdeploy.testing.xapi.faults import XapiError
from bojdeploy.testing.xapi.server import XapiSimulator

__all__ = ["XapiError", "XapiSimulator"]
