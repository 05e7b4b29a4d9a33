"""In-memory simulator of SBPS (SoftBank Payment Service): the API type's XML endpoint with
Basic auth and sps_hashcode, authorizations, commit, sales, cancel, refunds, lookups, stored
cards, re-authorization, 3-D Secure 2.0 with its browser page, the token scripts, magic cards,
faults and a `_sandbox/` control API. Independent of the client's codec on purpose."""

from app.sandbox.sbps.app import create_sbps_app
from app.sandbox.sbps.config import SbpsConfig

__all__ = ["SbpsConfig", "create_sbps_app"]
