"""Perceptual hashes: a 64-bit fingerprint that survives re-encoding and resizing of the same picture."""

import imagehash


def phash_hex(image):
    """The DCT perceptual hash (imagehash.phash) of a decoded PIL image, as 16 hex digits."""
    return str(imagehash.phash(image))


def hamming(a, b):
    """How many of the 64 bits two hex hashes differ in."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
