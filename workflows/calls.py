"""How long a workflow lets one call to an institution run, shared by every workflow that makes
one (a stop-payment, a query, a block, a recall, a breach report)."""

from datetime import timedelta

# One try of a call. The adapter's own deadline starts at a few seconds and doubles per retry up
# to 60 s (adapters/channels.py call_deadline), so a slow institution is heard by a later try;
# this leaves room for the audit writes around the call.
CALL_TIMEOUT = timedelta(minutes=2)

# A worker that dies mid-call is noticed by its missing heartbeats in this long (a call still
# waiting heartbeats every few seconds: activities/exchange.py), not after CALL_TIMEOUT: the
# request is then sent again from a live worker, safely, under the same idempotency key.
CALL_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
