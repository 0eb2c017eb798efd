"""Vectors for bench/search_scale.py: real dev-set embeddings, and catalogs of any size grown from them.

The real vectors are EfficientNet-Lite0 embeddings of ../shared/datasets/caltech101-dev, computed once and
cached as an .npz. A large catalog is grown from the images of each class that are not held out as queries:
each new vector blends a real vector with a class mate and jitters every feature multiplicatively, so it
stays non-negative (the features are averages of ReLU6 outputs), keeps which features are near zero, and
stays inside its class's cluster rather than drifting into uniform noise, where HNSW recall means little.
"""

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "caltech101-dev"
# How far a grown vector moves toward a class mate (uniform up to this share) and how much each feature is
# jittered (log-normal sigma): calibrated so that the nearest neighbour of a held-out real photo in a
# catalog of 100k is about as close as in the real 3,000 (cosine distance 0.27 against 0.29) and gets closer
# as the catalog grows. Around the queries the grown catalog's local intrinsic dimension (maximum-likelihood
# estimate over 20 neighbours) is about 42 against 17 for the real vectors: if anything, it is harder for
# HNSW than real photos would be.
MIX = 0.5
JITTER = 0.35
CHUNK = 50_000


def real_embeddings(cache: Path, dataset: Path = DATASET):
    """(vectors float32 (n, 1280), labels int (n,), class names); embeds the dataset once, then reads cache."""
    if cache.exists():
        data = np.load(cache)
        return data["vectors"], data["labels"], list(data["classes"])
    vectors, labels, classes = _embed_dataset(dataset)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, vectors=vectors, labels=labels, classes=np.array(classes))
    return vectors, labels, classes


def _embed_dataset(dataset: Path):
    if not dataset.is_dir():
        sys.exit(f"{dataset} is absent: the benchmark grows its catalogs from that dataset's embeddings.")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")
    import django

    django.setup()
    from catalog.embedding import get_embedder
    from catalog.imagefile import ImageError, open_image

    classes = sorted(p.name for p in dataset.iterdir() if p.is_dir())
    paths = [
        (path, label) for label, name in enumerate(classes) for path in sorted((dataset / name).glob("*"))
    ]
    embedder, vectors, labels, batch = get_embedder(), [], [], []
    print(f"embedding {len(paths)} images of {dataset.name} once (cached afterwards)...", flush=True)
    for number, (path, label) in enumerate(paths, 1):
        try:
            batch.append((open_image(path.read_bytes()), label))
        except ImageError as error:
            print(f"  skipped {path.name}: {error.message}")
        if len(batch) == 64 or (number == len(paths) and batch):
            vectors.append(embedder.embed([image for image, _ in batch]))
            labels.extend(label for _, label in batch)
            batch = []
            print(f"  {number}/{len(paths)}", end="\r", flush=True)
    print()
    return np.concatenate(vectors), np.array(labels), classes


def split(labels, held_out_per_class, seed=0):
    """Indices (catalog seeds, held-out queries): held_out_per_class of each class are kept out."""
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        held.extend(rng.choice(members, size=min(held_out_per_class, len(members) // 2), replace=False))
    held = np.sort(np.array(held))
    return np.setdiff1d(np.arange(len(labels)), held), held


def perturb(base, mate, rng, mix=MIX, jitter=JITTER):
    """Rows of base moved toward mate by a random share, each feature scaled by a log-normal factor."""
    share = rng.uniform(0, mix, size=(len(base), 1)).astype(np.float32)
    blended = base + share * (mate - base)
    blended *= np.exp(rng.normal(0, jitter, size=blended.shape)).astype(np.float32)
    return blended / np.linalg.norm(blended, axis=1, keepdims=True)


def grow(vectors, labels, n, seed=1, chunk=CHUNK):
    """Yield (labels, vectors) chunks of a catalog of n: the real vectors first, then grown ones.

    Deterministic for a given (vectors, n, seed), so the database table and the in-memory copy that exact
    search runs on are the same vectors without keeping two copies around.
    """
    by_class = {label: np.flatnonzero(labels == label) for label in np.unique(labels)}
    real = min(n, len(vectors))
    yield labels[:real], vectors[:real]
    made, part = real, 0
    while made < n:
        size = min(chunk, n - made)
        rng = np.random.default_rng([seed, part])
        base = rng.integers(0, len(vectors), size)
        mates = np.array([rng.choice(by_class[labels[i]]) for i in base])
        yield labels[base], perturb(vectors[base], vectors[mates], rng)
        made, part = made + size, part + 1


def queries(vectors, labels, per_real=1, seed=2):
    """Held-out real vectors and, for each, per_real perturbed copies: (vectors, labels, kinds)."""
    rng = np.random.default_rng(seed)
    parts, part_labels, kinds = [vectors], [labels], ["real"] * len(vectors)
    for _ in range(per_real):
        parts.append(perturb(vectors, vectors[rng.permutation(len(vectors))], rng, mix=0.0))
        part_labels.append(labels)
        kinds += ["perturbed"] * len(vectors)
    return np.concatenate(parts).astype(np.float32), np.concatenate(part_labels), np.array(kinds)
