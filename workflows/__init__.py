"""Durable orchestration. Deterministic: no I/O, no wall clock, no randomness but Temporal's.

Imports only Temporal's workflow API, the hub's data types and the activities' names.
"""
