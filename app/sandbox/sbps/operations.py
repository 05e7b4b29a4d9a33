"""The request ids the simulator answers, with their required elements (paths below the root)."""

from __future__ import annotations

from app.sandbox.sbps import credit, info, manage
from app.sandbox.sbps.calls import Operation

OPERATIONS: dict[str, Operation] = {
    "ST01-00131-101": Operation(credit.token_authorization, credit.TOKEN_REQUIRED, money=True),
    "ST01-00133-101": Operation(credit.reauthorization, credit.REAUTH_REQUIRED, money=True),
    "TA02-00101-101": Operation(credit.tds_start, credit.TDS_START_REQUIRED, money=False),
    "ST01-00118-101": Operation(credit.tds_authorization, credit.TDS_AUTH_REQUIRED, money=True),
    "ST02-00101-101": Operation(manage.commit, manage.REQUIRED, money=True),
    "ST02-00201-101": Operation(manage.sales, manage.REQUIRED, money=True),
    "ST02-00305-101": Operation(manage.cancel, manage.REQUIRED, money=True),
    "ST02-00303-101": Operation(manage.refund, manage.REQUIRED, money=True),
    "ST02-00307-101": Operation(manage.partial_refund, manage.PARTIAL_REQUIRED, money=True),
    "MG01-00101-101": Operation(info.lookup, info.LOOKUP_REQUIRED, money=False),
    "MG02-00131-101": Operation(info.save, info.SAVE_REQUIRED, money=False),
    "MG02-00104-101": Operation(info.card, info.CARD_REQUIRED, money=False),
    "MG02-00103-101": Operation(info.delete, info.CARD_REQUIRED, money=False),
}
