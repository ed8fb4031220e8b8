"""Activities: each does one outside effect and is safe to retry (an idempotency key from the
workflow id and step travels with every request). They use adapters/ and trust/, never workflows/.
"""
