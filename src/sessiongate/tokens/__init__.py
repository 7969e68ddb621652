"""Credentials: opaque secrets kept as keyed digests, and HS256 JWTs from a key ring."""
