"""gRPC clients that speak to institutions. Plain library: knows nothing of Temporal.

Retries are Temporal's job, so the channels here never retry on their own; every call has a
deadline; every failure becomes an InstitutionError that says whether a retry can help.
"""
