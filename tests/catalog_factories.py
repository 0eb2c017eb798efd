"""Catalog rows with synthetic vectors, for tests that must not load the image model.

Each picture is random noise (so unrelated pictures have unrelated perceptual hashes), stored through
catalog.store like a real import; only the vector is made up, around a per-class centre.
"""

import io

import numpy as np
from PIL import Image

from catalog import store
from catalog.embedding import EMBEDDING_DIM
from catalog.models import CatalogImage, WikidataClass


def picture_bytes(seed, size=(64, 48), format="JPEG"):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=format)
    return out.getvalue()


def same_pixels_other_bytes(data):
    """The decoded picture saved again losslessly as PNG: equal pixels, another SHA-256."""
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, format="PNG")
    return out.getvalue()


def unit(vector):
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def centre(seed):
    return unit(np.random.default_rng(10_000 + seed).standard_normal(EMBEDDING_DIM))


def near(point, seed, spread=0.6):
    """A unit vector around point (cosine distance about 0.14 to it, about 0.26 between two such)."""
    noise = np.random.default_rng(20_000 + seed).standard_normal(EMBEDDING_DIM) / np.sqrt(EMBEDDING_DIM)
    return unit(point + spread * noise)


def make_class(label, qid=None):
    return WikidataClass.objects.create(label=label, qid=qid)


def make_image(wikidata_class, seed, vector=None, data=None, **metadata):
    """Store a picture for wikidata_class with vector (default: near the class's centre)."""
    data = data or picture_bytes(seed)
    if vector is None:
        vector = near(centre(wikidata_class.pk), seed)
    metadata.setdefault("origin", CatalogImage.Origin.LOCAL)
    image, created = store.save(wikidata_class, store.prepare(data, **metadata), vector)
    assert created
    return image


def make_catalog(classes=3, per_class=8, seed=0):
    """classes classes of per_class images each, every image near its own class's centre."""
    made = {}
    for c in range(classes):
        label = f"class {c}" if seed == 0 else f"class {seed}.{c}"
        wikidata_class = make_class(label, qid=f"Q{900 + 100 * seed + c}")
        made[wikidata_class] = [
            make_image(wikidata_class, seed * 1000 + c * 100 + i) for i in range(per_class)
        ]
    return made


def toward(point, similarity, seed):
    """A unit vector whose cosine similarity to the unit vector point is similarity."""
    other = np.random.default_rng(30_000 + seed).standard_normal(len(point))
    other -= other.dot(point) * point
    return unit(similarity * point + np.sqrt(1 - similarity**2) * unit(other))
