"""Measure search.verdict on ../shared/datasets/caltech101-dev: class ranking, confidence, match.

    python -m bench.eval_verdict           # figures on the evaluation classes (never tuned on)
    python -m bench.eval_verdict --fit     # refit the verdict's constants on the tuning classes
    python -m bench.eval_verdict --closest # choose CLOSEST_CONFIDENCE on tuning, figures on evaluation

The photos are embedded once with the project's embedder and cached in $REVIMG_DATA_DIR/verdict/ (an
.npz keyed by model name and version). Nearest neighbours come from exact cosine search in numpy, not
from Postgres' HNSW index, so the figures measure the verdict and not the index's recall.

Protocol. The 50 classes are split once (seed TUNING_SEED) into 25 tuning classes and 25 evaluation
classes; every design choice and constant was made on the tuning classes only. Within a group, each run
draws a third of the classes as "not in the catalog" and puts CATALOG_SIZE images of each other class in
the catalog; queries are up to QUERIES_PER_CLASS other images of every class. Runs repeat over seeds and
catalog sizes (5, 30, and a random 3-30 per class) and figures are the mean and spread over runs.
Class statistics (search.verdict.class_stats) come from each run's catalog photos, as the service computes
them from the catalog's searchable images.

Baselines, each given its best chance on the tuning classes: raw top-1 similarity (a fixed cut, a Platt
scaling), and the former verdict, a logistic regression on the neighbour list alone (closeness and vote
share, no class statistics).
"""

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search import verdict

DATASET = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "caltech101-dev"
TUNING_SEED = 2017
OUT_FRACTION = 1 / 3
QUERIES_PER_CLASS = 20
CATALOG_SIZES = ("5", "30", "3-30")
EVAL_SEEDS = range(10)
FIT_SEEDS = range(100, 120)
EMBED_BATCH = 32


# --- the data ---------------------------------------------------------------------------------------


def cache_path(embedder=None):
    """Where the dataset's vectors by embedder (the project's own unless given) are cached."""
    from catalog.embedding import MODEL_NAME, MODEL_VERSION

    name, version = (embedder.name, embedder.version) if embedder else (MODEL_NAME, MODEL_VERSION)
    data_dir = Path(os.environ.get("REVIMG_DATA_DIR", "var"))
    return data_dir / "verdict" / f"caltech101-dev-{name}-{version}.npz"


def dataset_files(root):
    """(path, class name) of every photo, in a stable order."""
    return [
        (path, folder.name)
        for folder in sorted(root.iterdir())
        if folder.is_dir()
        for path in sorted(folder.glob("*.jpg"))
    ]


def embed_files(paths, progress=lambda done, total: None, embedder=None):
    from catalog.embedding import get_embedder
    from catalog.imagefile import open_image

    embedder, vectors = embedder or get_embedder(), []
    for start in range(0, len(paths), EMBED_BATCH):
        batch = [open_image(Path(p).read_bytes()) for p in paths[start : start + EMBED_BATCH]]
        vectors.append(embedder.embed(batch))
        progress(start + len(batch), len(paths))
    return np.concatenate(vectors).astype(np.float32)


def load_vectors(root=DATASET, embedder=None):
    """(vectors, class names per photo), embedding the dataset on first use (with the project's embedder
    unless another is given)."""
    path = cache_path(embedder)
    if path.exists():
        cached = np.load(path)
        return cached["vectors"], cached["labels"]
    files = dataset_files(root)
    vectors = embed_files(
        [p for p, _ in files],
        lambda d, t: print(f"\rembedding {d}/{t}", end="", file=sys.stderr),
        embedder,
    )
    print(file=sys.stderr)
    labels = np.array([label for _, label in files])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, vectors=vectors, labels=labels)
    return vectors, labels


def class_groups(labels):
    """The fixed split of classes: (tuning classes, evaluation classes)."""
    names = np.unique(labels)
    order = np.random.default_rng(TUNING_SEED).permutation(len(names))
    half = len(names) // 2
    return sorted(names[order[:half]]), sorted(names[order[half:]])


# --- one run: a catalog and its queries ---------------------------------------------------------------


@dataclass
class Run:
    catalog: np.ndarray  # indices of catalog photos
    queries: np.ndarray  # indices of query photos
    in_catalog: np.ndarray  # per query: is its class in the catalog?


def draw_run(labels, groups, catalog_size, rng):
    """A third of each group's classes stay out; the others put catalog_size photos in the catalog."""
    out = set()
    for group in groups:
        out.update(rng.choice(group, round(len(group) * OUT_FRACTION), replace=False))
    catalog, queries, inside = [], [], []
    for name in sorted(set().union(*groups)):
        photos = rng.permutation(np.flatnonzero(labels == name))
        size = 0
        if name not in out:
            size = rng.integers(3, 31) if catalog_size == "3-30" else int(catalog_size)
            size = min(size, len(photos) - 1)
            catalog.extend(photos[:size])
        chosen = photos[size : size + QUERIES_PER_CLASS]
        queries.extend(chosen)
        inside.extend([name not in out] * len(chosen))
    return Run(np.array(catalog), np.array(queries), np.array(inside))


def neighbour_lists(vectors, labels, run):
    """Each query's NEIGHBOURS nearest catalog photos by exact cosine similarity, best first."""
    class_ids = np.unique(labels, return_inverse=True)[1]
    similarities = vectors[run.queries] @ vectors[run.catalog].T
    nearest = np.argsort(-similarities, axis=1)[:, : verdict.NEIGHBOURS]
    return [
        [verdict.Neighbour(int(run.catalog[j]), int(class_ids[run.catalog[j]]), float(row[j])) for j in order]
        for row, order in zip(similarities, nearest, strict=True)
    ]


@dataclass
class Outcome:
    """Per query of a run: what the verdict and the raw baseline said, and the truth."""

    in_catalog: np.ndarray
    right_class_first: np.ndarray  # in the catalog and the verdict's best class is the query's class
    nearest_right: np.ndarray  # in the catalog and the single nearest photo is of the query's class
    confidence: np.ndarray
    match: np.ndarray
    top_similarity: np.ndarray
    closeness: np.ndarray
    share: np.ndarray
    centroid_similarity: np.ndarray
    tightness: np.ndarray


def catalog_stats(vectors, labels, run):
    """search.verdict.class_stats of every class in the run's catalog, by class id."""
    class_ids = np.unique(labels, return_inverse=True)[1][run.catalog]
    return {int(c): verdict.class_stats(vectors[run.catalog[class_ids == c]]) for c in np.unique(class_ids)}


def judge_run(vectors, labels, run, keep_classes, neighbours=neighbour_lists):
    """Judge the queries of run whose class is in keep_classes.

    neighbours(vectors, labels, run): each query's neighbour list (bench/eval_levers.py re-ranks them).
    """
    keep = np.isin(labels[run.queries], keep_classes)
    run = Run(run.catalog, run.queries[keep], run.in_catalog[keep])
    true_ids = np.unique(labels, return_inverse=True)[1][run.queries]
    stats = catalog_stats(vectors, labels, run)
    names = ("first", "nearest", "confidence", "match", "top", "closeness", "share", "centroid", "tightness")
    columns = {name: [] for name in names}
    lists = neighbours(vectors, labels, run)
    for query, neighbours, true_id in zip(run.queries, lists, true_ids, strict=True):
        result = verdict.judge(neighbours, vectors[query], stats.get)
        similarities = np.array([n.similarity for n in neighbours])
        ranked, shares, closeness = verdict.features(similarities, np.array([n.class_id for n in neighbours]))
        centroid, tightness = verdict.confidence_features(closeness, vectors[query], stats[int(ranked[0])])
        columns["first"].append(result.classes[0].class_id == true_id)
        columns["nearest"].append(neighbours[0].class_id == true_id)
        columns["confidence"].append(result.confidence)
        columns["match"].append(result.match)
        columns["top"].append(similarities[0])
        columns["closeness"].append(closeness)
        columns["share"].append(shares[0])
        columns["centroid"].append(centroid)
        columns["tightness"].append(tightness)
    c = {name: np.array(values) for name, values in columns.items()}
    inside = run.in_catalog
    return Outcome(
        inside,
        c["first"] & inside,
        c["nearest"] & inside,
        c["confidence"],
        c["match"],
        c["top"],
        c["closeness"],
        c["share"],
        c["centroid"],
        c["tightness"],
    )


def outcomes(vectors, labels, classes, seeds, catalog_size):
    """One Outcome per seed, for the queries of `classes`, over catalogs drawn from all classes."""
    groups = class_groups(labels)
    return [
        judge_run(
            vectors, labels, draw_run(labels, groups, catalog_size, np.random.default_rng(seed)), classes
        )
        for seed in seeds
    ]


# --- metrics ------------------------------------------------------------------------------------------


def auroc(scores, positive):
    """Probability that a random positive scores above a random negative (ties count half)."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2 + 1
    ranks[order] = np.repeat(average, counts)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def reliability(confidence, correct, bins=10):
    """Per bin of confidence: (low, high, count, mean confidence, share correct)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append(
                (edges[b], edges[b + 1], int(mask.sum()), confidence[mask].mean(), correct[mask].mean())
            )
    return rows


def expected_calibration_error(confidence, correct, bins=10):
    rows = reliability(confidence, correct, bins)
    return sum(count * abs(conf - acc) for _, _, count, conf, acc in rows) / len(confidence)


def fit_logistic(features, target, l2=1e-4, steps=50):
    """Logistic regression by Newton's method: (weights, bias) maximising the log-likelihood."""
    x = np.hstack([features, np.ones((len(features), 1))])
    w = np.zeros(x.shape[1])
    penalty = l2 * np.diag([1.0] * features.shape[1] + [0.0])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
        w -= np.linalg.solve(hessian, x.T @ (p - target) + penalty @ w)
    return w[:-1], w[-1]


def best_cut(scores, positive):
    """The threshold on scores that classifies positive best (accuracy)."""
    candidates = np.unique(scores)
    accuracy = [np.mean((scores >= t) == positive) for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def pooled(runs, name):
    return np.concatenate([getattr(r, name) for r in runs])


# --- the two modes ------------------------------------------------------------------------------------


def tuning_outcomes(vectors, labels):
    tuning, _ = class_groups(labels)
    return [o for size in CATALOG_SIZES for o in outcomes(vectors, labels, tuning, FIT_SEEDS, size)]


CONFIDENCE_FEATURES = ("centroid_similarity", "share", "tightness")
FORMER_FEATURES = ("closeness", "share")


def fit_confidence(runs, names):
    """Logistic regression of "right class first" on the named Outcome columns: (weights, bias)."""
    features = np.column_stack([pooled(runs, name) for name in names])
    return fit_logistic(features, pooled(runs, "right_class_first").astype(float))


def fitted_constants(vectors, labels):
    """The verdict's constants fitted on the tuning classes' queries at every catalog size, by name,
    with the number of queries and runs they were fitted on."""
    runs = tuning_outcomes(vectors, labels)
    weights, bias = fit_confidence(runs, CONFIDENCE_FEATURES)
    features = np.column_stack([pooled(runs, name) for name in CONFIDENCE_FEATURES])
    confidence = 1 / (1 + np.exp(-(features @ weights + bias)))
    w_centroid, w_share, w_tightness = weights
    constants = {
        "WEIGHT_CENTROID": round(float(w_centroid), 3),
        "WEIGHT_SHARE": round(float(w_share), 3),
        "WEIGHT_TIGHTNESS": round(float(w_tightness), 3),
        "BIAS": round(float(bias), 3),
        "MATCH_THRESHOLD": best_cut(np.round(confidence, 2), pooled(runs, "in_catalog")),
        "TYPICAL_TIGHTNESS": round(float(np.median(pooled(runs, "tightness"))), 3),
    }
    return constants, len(confidence), len(runs)


def fit(vectors, labels):
    """Print the verdict's constants, fitted on the tuning classes' queries at every catalog size."""
    constants, queries, runs = fitted_constants(vectors, labels)
    for name, value in constants.items():
        print(f"{name} = {value:.2f}" if name == "MATCH_THRESHOLD" else f"{name} = {value:.3f}")
    print(f"({queries} queries of {len(class_groups(labels)[0])} tuning classes, {runs} runs)")


def baseline(vectors, labels):
    """The baselines fitted on tuning: (top-1 similarity cut, its Platt scaling, the former verdict)."""
    runs = tuning_outcomes(vectors, labels)
    top = pooled(runs, "top_similarity")
    (a,), b = fit_logistic(top[:, None], pooled(runs, "nearest_right").astype(float))
    weights, bias = fit_confidence(runs, FORMER_FEATURES)

    def former(run):
        return np.column_stack([getattr(run, name) for name in FORMER_FEATURES]) @ weights + bias

    return best_cut(top, pooled(runs, "in_catalog")), lambda s: 1 / (1 + np.exp(-(a * s + b))), former


def figures(run, cut, platt, former):
    inside, match = run.in_catalog, run.match
    return {
        "AUROC confidence": auroc(run.confidence, inside),
        "AUROC former verdict": auroc(former(run), inside),
        "AUROC top-1 sim": auroc(run.top_similarity, inside),
        "match accuracy": np.mean(match == inside),
        "match precision": np.mean(inside[match]) if match.any() else float("nan"),
        "match recall": np.mean(match[inside]),
        "top-1 sim cut accuracy": np.mean((run.top_similarity >= cut) == inside),
        "class top-1 (vote)": np.mean(run.right_class_first[inside]),
        "class top-1 (nearest)": np.mean(run.nearest_right[inside]),
    }


def evaluate(vectors, labels):
    cut, platt, former = baseline(vectors, labels)
    _, evaluation = class_groups(labels)
    print(f"Evaluation classes (never tuned on): {', '.join(evaluation)}")
    print(
        f"Runs: seeds {EVAL_SEEDS.start}-{EVAL_SEEDS.stop - 1}; a third of each class group out of the catalog;"
    )
    print(
        f"{QUERIES_PER_CLASS} queries per class at most; exact cosine search in numpy; top-1 sim cut {cut:.3f}\n"
    )
    everything = []
    for size in CATALOG_SIZES:
        runs = outcomes(vectors, labels, evaluation, EVAL_SEEDS, size)
        everything += runs
        table = [figures(r, cut, platt, former) for r in runs]
        correct = pooled(runs, "right_class_first")
        print(
            f"catalog of {size} photos per class ({len(pooled(runs, 'in_catalog'))} queries over {len(runs)} runs)"
        )
        for name in table[0]:
            values = np.array([row[name] for row in table])
            print(f"  {name:24s} {np.nanmean(values):.3f} ± {np.nanstd(values):.3f}")
        ece = expected_calibration_error(pooled(runs, "confidence"), correct)
        ece_platt = expected_calibration_error(
            platt(pooled(runs, "top_similarity")), pooled(runs, "nearest_right")
        )
        ece_raw = expected_calibration_error(pooled(runs, "top_similarity"), pooled(runs, "nearest_right"))
        print(
            f"  {'ECE confidence':24s} {ece:.3f}   (top-1 sim: raw {ece_raw:.3f}, Platt-scaled {ece_platt:.3f})\n"
        )
    print("Reliability of confidence, all catalog sizes pooled (correct = in the catalog, right class first)")
    print("  confidence   queries   mean confidence   share correct")
    for low, high, count, mean, share in reliability(
        pooled(everything, "confidence"), pooled(everything, "right_class_first")
    ):
        print(f"  {low:.1f}-{high:.1f}     {count:7d}   {mean:15.3f}   {share:13.3f}")


# --- the "closest" state ------------------------------------------------------------------------------

CLOSEST_CANDIDATES = np.round(np.arange(0.05, 0.36, 0.05), 2)
SHARE_CANDIDATES = np.round(np.arange(0.3, 0.96, 0.1), 1)


def closest_counts(runs, closest):
    """Of the non-matches, by what closest(confidence, share) -> bool tells them: absent queries kept
    "no match", and catalog queries told their right class, a wrong one, or "no match"."""
    below = ~pooled(runs, "match")
    inside, right = pooled(runs, "in_catalog")[below], pooled(runs, "right_class_first")[below]
    told = closest(pooled(runs, "confidence")[below], pooled(runs, "share")[below])
    return {
        "absent, no match": int((~inside & ~told).sum()),
        "absent, closest": int((~inside & told).sum()),
        "in catalog, closest right class": int((inside & told & right).sum()),
        "in catalog, closest wrong class": int((inside & told & ~right).sum()),
        "in catalog, no match": int((inside & ~told).sum()),
    }


def group_sizes(counts):
    return counts["absent, no match"] + counts["absent, closest"], sum(
        v for k, v in counts.items() if k.startswith("in catalog")
    )


def closest_balance(counts):
    """Mean of two rates: absent queries kept "no match", catalog queries told their right class."""
    absent, inside = group_sizes(counts)
    return (counts["absent, no match"] / absent + counts["in catalog, closest right class"] / inside) / 2


def print_closest(counts):
    absent, inside = group_sizes(counts)
    for name, count in counts.items():
        whole = absent if name.startswith("absent") else inside
        print(f"  {name:34s} {count:6d} of {whole:6d}  {count / whole:.3f}")


def by_confidence(threshold):
    def closest(confidence, share):
        return np.array([verdict.state_of(c, threshold) == verdict.CLOSEST for c in confidence], bool)

    return closest


def by_share(threshold):
    return lambda confidence, share: share >= threshold


def choose_closest(vectors, labels):
    """The closest rule's constant chosen on the tuning classes, then its counts on the never-tuned ones;
    the best class's vote share, the other rule tried, beside it."""
    tuning = tuning_outcomes(vectors, labels)
    rules = [("confidence", t, by_confidence(t)) for t in CLOSEST_CANDIDATES]
    rules += [("vote share", t, by_share(t)) for t in SHARE_CANDIDATES]
    print("Tuning classes, non-matches: balance = (absent kept no match + catalog told its class) / 2")
    balances = {}
    for name, threshold, rule in rules:
        balances[name, threshold] = closest_balance(closest_counts(tuning, rule))
        print(f"  {name} >= {threshold:.2f}   {balances[name, threshold]:.3f}")
    _, evaluation = class_groups(labels)
    runs = [o for size in CATALOG_SIZES for o in outcomes(vectors, labels, evaluation, EVAL_SEEDS, size)]
    for kind in ("confidence", "vote share"):
        name, threshold, rule = max((r for r in rules if r[0] == kind), key=lambda r: balances[r[0], r[1]])
        counts = closest_counts(runs, rule)
        print(
            f"\nEvaluation classes (never tuned on), {len(runs)} runs, non-matches, {name} >= {threshold:.2f}:"
        )
        print_closest(counts)
        print(f"  balance {closest_balance(counts):.3f}")
    print(f"\n(search.verdict has CLOSEST_CONFIDENCE = {verdict.CLOSEST_CONFIDENCE})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", action="store_true", help="print constants fitted on the tuning classes")
    parser.add_argument(
        "--closest", action="store_true", help="choose CLOSEST_CONFIDENCE, report its figures"
    )
    args = parser.parse_args()
    vectors, labels = load_vectors()
    if args.fit:
        fit(vectors, labels)
    elif args.closest:
        choose_closest(vectors, labels)
    else:
        evaluate(vectors, labels)


if __name__ == "__main__":
    main()
