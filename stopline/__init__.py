"""Stopline: the hub of an anti-fraud centre."""
