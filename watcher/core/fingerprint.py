"""A 128-bit fingerprint of bytes: to know a value again (an API page, an item, a stored row)
without keeping it. Pure.

XXH3-128 (`xxhash`): 6 µs for a 338 KB page, where BLAKE2b took 365 µs. Two different inputs
share a fingerprint about as often as two random 128-bit numbers match; XXH3 is not built to
resist a forger, but whoever could forge the API's answers or the store's rows could simply
change them.
"""

from __future__ import annotations

from xxhash import xxh3_128_digest


def fingerprint(data: bytes) -> bytes:
    """16 bytes that differ for different `data` (see the module)."""
    return xxh3_128_digest(data)
