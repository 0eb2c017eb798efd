"""Issue 12's retrieval levers on the Lite0 vectors, measured with bench/eval_verdict.py's protocol.

    python -m bench.eval_levers --quick    # choose DBA's and alpha-QE's parameters on the tuning classes,
                                           # then every lever on the never-tuned ones (about 25 minutes)
    python -m bench.eval_levers --quick --dba 1,1 --qe 1,8   # the same with the parameters chosen
    python -m bench.eval_levers --rerank   # k-reciprocal re-ranking, tuning classes only

--quick fits each lever's verdict on 10 tuning runs per catalog size instead of eval_verdict's 20. Set
OMP_NUM_THREADS=1 on a shared machine: the many small products run faster on one thread.

Levers (each alone; --keep combines some):
- GeM pooling of the last feature map, p in {2, 3} (p = 1 is the average pooling of model version v1;
  v2 ships GeM with p = 2, chosen here on the tuning classes); Radenović, Tolias, Chum, TPAMI 2018.
- Catalog-side flips: a catalog vector is the normalised mean of its picture's and its mirror's
  embedding; queries are not flipped.
- Database-side augmentation (DBA): each catalog vector replaced by the normalised weighted sum of itself
  and its k nearest catalog neighbours, weights similarity^power (Arandjelović and Zisserman, CVPR 2012;
  Gordo et al., IJCV 2017). Recomputed per run from that run's catalog only.
- Alpha query expansion (alpha-QE): the query replaced by the normalised sum of itself and its n nearest
  catalog vectors weighted by similarity^alpha, then searched again (Radenović et al.).
- k-reciprocal re-ranking of the top 50 (Zhong et al., CVPR 2017): --rerank, on the tuning classes only,
  as it lost on them at 1 and 5 pictures per class and costs O(n^2) per catalog.

The photos are run once through a variant of the Keras model that outputs the 7x7x1280 map before pooling,
and every pooling of the picture and of its mirror is cached in $REVIMG_DATA_DIR/levers/. Exact search in
numpy, as eval_verdict. The verdict's confidence is refitted on the tuning classes for each lever (as
`eval_verdict --fit` does), so each lever is judged with its best constants.
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.eval_verdict import (
    CATALOG_SIZES,
    CONFIDENCE_FEATURES,
    DATASET,
    EMBED_BATCH,
    EVAL_SEEDS,
    FIT_SEEDS,
    auroc,
    best_cut,
    class_groups,
    dataset_files,
    draw_run,
    expected_calibration_error,
    fit_logistic,
    judge_run,
    neighbour_lists,
    pooled,
)
from search import verdict

POOLINGS = {"avg": 1, "gem2": 2, "gem3": 3}
# "1" is the one-picture-per-class catalog, where only the ranking is asked for.
SIZES = ("1",) + CATALOG_SIZES


# --- the data: every pooling of every photo and of its mirror --------------------------------------------


def cache_path():
    from catalog.embedding import MODEL_NAME, MODEL_VERSION

    data_dir = Path(os.environ.get("REVIMG_DATA_DIR", "var"))
    return data_dir / "levers" / f"caltech101-dev-{MODEL_NAME}-{MODEL_VERSION.replace('/', '-')}-pools.npz"


def feature_map_function():
    """The Keras model cut before its pooling: a batch of images in, (n, 7, 7, 1280) out, in a tf.function."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    from catalog.embedding import Embedder, lite

    model = lite.load_or_build(
        Embedder(cache_dir=Path(os.environ.get("REVIMG_DATA_DIR", "var")) / "models").cache_path
    )
    cut = keras.Model(model.inputs, model.get_layer("head_relu6").output)
    graph = tf.function(lambda batch: cut(batch, training=False))
    return lambda batch: graph(tf.convert_to_tensor(batch, tf.float32)).numpy()


def normalised(vectors):
    return (vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def gem(maps, p):
    """Generalised mean over the map's positions, per channel: p = 1 is the average pooling."""
    maps = maps.astype(np.float64)
    return np.mean(maps**p, axis=(1, 2)) ** (1 / p)


def embed_pools(paths):
    """{pooling name: unit vectors} for the photos, and {"flip_" + name: ...} for their mirror images."""
    from catalog.imagefile import open_image, preprocess

    run, pools = feature_map_function(), {}
    for start in range(0, len(paths), EMBED_BATCH):
        batch = np.stack(
            [preprocess(open_image(Path(p).read_bytes())) for p in paths[start : start + EMBED_BATCH]]
        )
        for prefix, inputs in (("", batch), ("flip_", batch[:, :, ::-1, :])):
            maps = run(np.ascontiguousarray(inputs))
            for name, p in POOLINGS.items():
                pools.setdefault(prefix + name, []).append(normalised(gem(maps, p)))
        print(f"\rembedding {start + len(batch)}/{len(paths)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return {name: np.concatenate(parts) for name, parts in pools.items()}


def load_pools(root=DATASET):
    path = cache_path()
    if path.exists():
        cached = np.load(path)
        return {name: cached[name] for name in cached.files if name != "labels"}, cached["labels"]
    files = dataset_files(root)
    pools = embed_pools([p for p, _ in files])
    labels = np.array([label for _, label in files])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, labels=labels, **pools)
    return pools, labels


# --- the levers ---------------------------------------------------------------------------------------


def augmented(catalog, k, power):
    """DBA: each unit vector replaced by the normalised sum of itself and its k nearest others, each
    weighted by its similarity to it raised to power (itself weighs 1)."""
    similarities = catalog @ catalog.T
    nearest = np.argsort(-similarities, axis=1)[:, : k + 1]  # itself first (similarity 1)
    weights = np.maximum(np.take_along_axis(similarities, nearest, axis=1), 0) ** power
    return normalised(np.einsum("nk,nkd->nd", weights, catalog[nearest]))


def expanded(queries, catalog, n, alpha):
    """Alpha-QE: each query replaced by the normalised sum of itself and its n nearest catalog vectors,
    each weighted by its similarity to the query raised to alpha."""
    similarities = queries @ catalog.T
    nearest = np.argsort(-similarities, axis=1)[:, :n]
    weights = np.maximum(np.take_along_axis(similarities, nearest, axis=1), 0) ** alpha
    return normalised(queries + np.einsum("qn,qnd->qd", weights, catalog[nearest]))


# k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, CVPR 2017), for one query at a time against a fixed
# catalog: the catalog's side is computed once per catalog (as an ingest or upkeep job would), each query
# only re-ranks its own top RERANK_DEPTH.
RERANK_DEPTH = 50


def reciprocal(similarities, k):
    """Boolean (n, n): j is among i's k nearest (itself counted first) and i among j's."""
    n = len(similarities)
    member = np.zeros((n, n), bool)
    member[np.arange(n)[:, None], np.argsort(-similarities, axis=1)[:, : k + 1]] = True
    return member & member.T


def expand_sets(sets, halves):
    """Add to each set the half-size reciprocal set of a member when 2/3 of that set is in it already."""
    overlap = halves.astype(np.int32) @ sets.T.astype(np.int32)  # [j, i]: |half(j) & set(i)|
    adopt = (overlap > 2 / 3 * halves.sum(axis=1, keepdims=True)) & sets.T
    return sets | (adopt.T.astype(np.int32) @ halves.astype(np.int32) > 0)


def encode(sets, similarities):
    """Rows: a distribution over the catalog, exp(-squared distance) on each set, summing to 1."""
    weights = np.where(sets, np.exp(-(2 - 2 * similarities)), 0.0)
    # A query with no reciprocal neighbour has an empty set: its encoding stays all zero.
    return weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)


@dataclass
class RerankedCatalog:
    similarities: np.ndarray  # catalog x catalog
    halves: np.ndarray  # reciprocal sets at k1 / 2
    encodings: np.ndarray  # each catalog vector's encoding, before the local expansion
    expanded: np.ndarray  # after it: the mean encoding of its k2 nearest (itself first)
    kth: np.ndarray  # each catalog vector's similarity to its k1-th nearest other

    @classmethod
    def of(cls, catalog, k1, k2):
        similarities = catalog @ catalog.T
        halves = reciprocal(similarities, max(1, k1 // 2))
        encodings = encode(expand_sets(reciprocal(similarities, k1), halves), similarities)
        nearest = np.argsort(-similarities, axis=1)
        kth = np.take_along_axis(similarities, nearest[:, min(k1, len(catalog) - 1)][:, None], 1)[:, 0]
        return cls(similarities, halves, encodings, encodings[nearest[:, :k2]].mean(axis=1), kth)

    def rerank(self, query_similarities, k1, k2, weight):
        """(catalog positions, new similarities) of the query's top RERANK_DEPTH, best first: new similarity
        = weight * cosine similarity + (1 - weight) * (1 - Jaccard distance of the encodings)."""
        order = np.argsort(-query_similarities)
        top = np.zeros(len(order), bool)
        top[order[:k1]] = True
        sets = (top & (query_similarities >= self.kth))[None, :]
        sets = expand_sets(sets, self.halves)
        own = encode(sets, query_similarities[None, :])[0]
        local = (own + self.encodings[order[: k2 - 1]].sum(axis=0)) / k2
        candidates = order[:RERANK_DEPTH]
        shared = np.minimum(local[None, :], self.expanded[candidates]).sum(axis=1)
        jaccard = 1 - shared / (2 - shared)
        similarity = weight * query_similarities[candidates] + (1 - weight) * (1 - jaccard)
        best = np.argsort(-similarity)
        return candidates[best], similarity[best]


@dataclass(frozen=True)
class Lever:
    name: str
    pooling: str = "avg"
    flips: bool = False
    dba_k: int = 0
    dba_power: float = 0.0
    qe_n: int = 0
    qe_alpha: float = 0.0
    rerank_k1: int = 0
    rerank_k2: int = 1
    rerank_weight: float = 1.0

    def vectors(self, pools, run):
        """One matrix for the run: catalog rows as the catalog would store them, query rows as the search
        would send them to the index (eval_verdict indexes both by photo)."""
        base = pools[self.pooling]
        vectors = base.copy()
        catalog = base[run.catalog]
        if self.flips:
            catalog = normalised(catalog + pools["flip_" + self.pooling][run.catalog])
        if self.dba_k:
            catalog = augmented(catalog, self.dba_k, self.dba_power)
        vectors[run.catalog] = catalog
        if self.qe_n:
            vectors[run.queries] = expanded(base[run.queries], catalog, self.qe_n, self.qe_alpha)
        return vectors

    def neighbours(self, vectors, labels, run):
        """eval_verdict.neighbour_lists, re-ranked when the lever says so."""
        if not self.rerank_k1:
            return neighbour_lists(vectors, labels, run)
        class_ids = np.unique(labels, return_inverse=True)[1]
        catalog = RerankedCatalog.of(vectors[run.catalog], self.rerank_k1, self.rerank_k2)
        lists = []
        for similarities in vectors[run.queries] @ vectors[run.catalog].T:
            positions, scores = catalog.rerank(
                similarities, self.rerank_k1, self.rerank_k2, self.rerank_weight
            )
            photos = run.catalog[positions]
            lists.append(
                [
                    verdict.Neighbour(int(p), int(class_ids[p]), float(s))
                    for p, s in zip(photos, scores, strict=True)
                ]
            )
        return lists


# Model version v1's vectors: every lever is compared with them, run by run.
BASELINE = Lever("baseline (avg pool)")


# --- measuring one lever --------------------------------------------------------------------------------


def lever_outcomes(pools, labels, lever, classes, seeds, size):
    """eval_verdict.outcomes with the lever's vectors; also the seconds spent making them per run."""
    groups, runs, seconds = class_groups(labels), [], []
    for seed in seeds:
        run = draw_run(labels, groups, size, np.random.default_rng(seed))
        started = time.perf_counter()
        vectors = lever.vectors(pools, run)
        seconds.append(time.perf_counter() - started)
        runs.append(judge_run(vectors, labels, run, classes, lever.neighbours))
    return runs, float(np.mean(seconds))


def confidence_columns(runs):
    return np.column_stack([pooled(runs, name) for name in CONFIDENCE_FEATURES])


@dataclass
class Verdict:
    """The verdict's confidence refitted for one lever on the tuning classes (as eval_verdict --fit)."""

    weights: np.ndarray
    bias: float
    threshold: float

    @classmethod
    def fit(cls, runs):
        weights, bias = fit_logistic(
            confidence_columns(runs), pooled(runs, "right_class_first").astype(float)
        )
        confidence = 1 / (1 + np.exp(-(confidence_columns(runs) @ weights + bias)))
        return cls(weights, bias, best_cut(np.round(confidence, 2), pooled(runs, "in_catalog")))

    def confidence(self, run):
        return 1 / (1 + np.exp(-(confidence_columns([run]) @ self.weights + self.bias)))


def run_figures(run, fitted):
    confidence, inside = fitted.confidence(run), run.in_catalog
    return {
        "first": np.mean(run.right_class_first[inside]),
        "auroc": auroc(confidence, inside),
        "match accuracy": np.mean((confidence >= fitted.threshold) == inside),
    }


def size_figures(runs, fitted):
    """{figure: (mean, std) over runs}, and the calibration error of the runs pooled."""
    table = [run_figures(run, fitted) for run in runs]
    figures = {
        name: (np.mean([r[name] for r in table]), np.std([r[name] for r in table])) for name in table[0]
    }
    confidence = np.concatenate([fitted.confidence(run) for run in runs])
    ece = expected_calibration_error(confidence, pooled(runs, "right_class_first"))
    figures["ece"] = (ece, float("nan"))
    figures["per_run"] = {name: [r[name] for r in table] for name in table[0]}
    return figures


def measure(pools, labels, lever, seeds, classes, fit_seeds):
    """{size: figures} of the lever on classes, its verdict refitted on the tuning classes first."""
    tuning = class_groups(labels)[0]
    fit_runs = [
        r for size in CATALOG_SIZES for r in lever_outcomes(pools, labels, lever, tuning, fit_seeds, size)[0]
    ]
    fitted = Verdict.fit(fit_runs)
    results, seconds = {}, {}
    for size in SIZES:
        runs, seconds[size] = lever_outcomes(pools, labels, lever, classes, seeds, size)
        results[size] = size_figures(runs, fitted)
    return results, fitted, seconds


def tuning_score(results):
    """What a parameter is chosen by, on the tuning classes: the issue's two headline figures, right class
    first with one picture per class plus the mean AUROC over the catalog sizes."""
    return results["1"]["first"][0] + np.mean([results[size]["auroc"][0] for size in CATALOG_SIZES])


# --- choosing on the tuning classes, reporting on the others -------------------------------------------

SWEEP_SEEDS = range(300, 308)
SINGLES = (
    Lever("GeM p=2", pooling="gem2"),
    Lever("GeM p=3", pooling="gem3"),
    Lever("catalog flips", flips=True),
)
DBA_GRID = [(k, power) for k in (1, 2, 3, 5) for power in (1, 3)] + [(2, 0), (1, 8), (2, 8)]
QE_GRID = [(n, alpha) for n in (1, 2, 3, 5) for alpha in (0, 3)] + [(1, 8), (2, 8)]


RERANK_GRID = ((20, 6, 0.3), (20, 6, 0.7), (10, 3, 0.5), (10, 3, 0.8), (5, 2, 0.8))


def rerank_trial(pools, labels):
    """k-reciprocal re-ranking against the baseline on the tuning classes, right class first at 1 and 5 per
    class only: its catalog side is O(n^2) per run, about a minute a run at 30 per class."""
    tuning = class_groups(labels)[0]
    levers = [BASELINE] + [
        Lever(f"k-reciprocal k1={k1} k2={k2} weight={w}", rerank_k1=k1, rerank_k2=k2, rerank_weight=w)
        for k1, k2, w in RERANK_GRID
    ]
    print("Tuning classes, seeds 300-304: right class first at 1 / 5 per class")
    for lever in levers:
        firsts = []
        for size in ("1", "5"):
            runs, _ = lever_outcomes(pools, labels, lever, tuning, range(300, 305), size)
            firsts.append(np.mean([np.mean(r.right_class_first[r.in_catalog]) for r in runs]))
        print(f"  {lever.name:40s} {firsts[0]:.3f} / {firsts[1]:.3f}", flush=True)


def choose(pools, labels, candidates, fit_seeds):
    """The candidate with the best tuning_score on the tuning classes; prints each."""
    tuning = class_groups(labels)[0]
    scored = []
    for lever in candidates:
        results, _, _ = measure(pools, labels, lever, SWEEP_SEEDS, tuning, fit_seeds)
        scored.append((tuning_score(results), lever))
        first = results["1"]["first"][0]
        aurocs = " / ".join(f"{results[s]['auroc'][0]:.3f}" for s in CATALOG_SIZES)
        print(
            f"  {lever.name:34s} first@1 {first:.3f}  AUROC {aurocs}  score {scored[-1][0]:.3f}", flush=True
        )
    return max(scored, key=lambda pair: pair[0])[1]


def sweep(pools, labels, fit_seeds):
    """The DBA and alpha-QE parameters chosen on the tuning classes."""
    print("Tuning classes: score = right class first at 1/class + mean AUROC at 5, 30, 3-30")
    print("  " + BASELINE.name, end="")
    choose(pools, labels, [BASELINE], fit_seeds)
    gem = choose(pools, labels, SINGLES[:2], fit_seeds)
    dba = choose(
        pools, labels, [Lever(f"DBA k={k} sim^{p}", dba_k=k, dba_power=p) for k, p in DBA_GRID], fit_seeds
    )
    qe = choose(
        pools, labels, [Lever(f"alpha-QE n={n} alpha={a}", qe_n=n, qe_alpha=a) for n, a in QE_GRID], fit_seeds
    )
    print(f"chosen: {gem.name}; {dba.name}; {qe.name}\n")
    return dba, qe


ROWS = (
    ("right class first, 1/class", "1", "first"),
    ("right class first, 5/class", "5", "first"),
    ("AUROC, 5/class", "5", "auroc"),
    ("AUROC, 30/class", "30", "auroc"),
    ("AUROC, 3-30/class", "3-30", "auroc"),
    ("match accuracy, 5/class", "5", "match accuracy"),
    ("match accuracy, 30/class", "30", "match accuracy"),
    ("match accuracy, 3-30/class", "3-30", "match accuracy"),
    ("ECE, 5 / 30 / 3-30 pooled", None, "ece"),
)


def report(measured):
    """One row per figure, one column per lever: mean ± std over runs, never-tuned classes."""
    names = list(measured)
    print("| | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for label, size, figure in ROWS:
        cells = []
        for name in names:
            results = measured[name][0]
            if size is None:
                cells.append(" / ".join(f"{results[s][figure][0]:.3f}" for s in CATALOG_SIZES))
            else:
                mean, std = results[size][figure]
                cells.append(f"{mean:.3f} ± {std:.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    cells = [f"{1000 * np.mean(list(measured[name][2].values())):.1f} ms" for name in names]
    print("| numpy time per run to make the vectors | " + " | ".join(cells) + " |")


def combined(dba, qe, keep):
    parts = {
        "gem2": Lever("", pooling="gem2"),
        "gem3": Lever("", pooling="gem3"),
        "flips": Lever("", flips=True),
    }
    parts.update(dba=dba, qe=qe)
    fields = {}
    for name in keep:
        lever = parts[name]
        fields.update({k: v for k, v in vars(lever).items() if k != "name" and v != getattr(BASELINE, k)})
    return Lever(" + ".join(keep), **fields)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 tuning runs per size for the fits, not 20")
    parser.add_argument("--dba", help="k,power: skip the sweep")
    parser.add_argument("--qe", help="n,alpha: skip the sweep")
    parser.add_argument(
        "--keep", default="", help="levers to combine, e.g. flips,dba (of gem2 gem3 flips dba qe)"
    )
    parser.add_argument("--rerank", action="store_true", help="only the k-reciprocal re-ranking trial")
    args = parser.parse_args()
    pools, labels = load_pools()
    if args.rerank:
        return rerank_trial(pools, labels)
    fit_seeds = FIT_SEEDS[:10] if args.quick else FIT_SEEDS
    if args.dba and args.qe:
        k, power = args.dba.split(",")
        n, alpha = args.qe.split(",")
        dba = Lever(f"DBA k={k} sim^{power}", dba_k=int(k), dba_power=float(power))
        qe = Lever(f"alpha-QE n={n} alpha={alpha}", qe_n=int(n), qe_alpha=float(alpha))
    else:
        dba, qe = sweep(pools, labels, fit_seeds)
    levers = [BASELINE, *SINGLES, dba, qe]
    if args.keep:
        levers.append(combined(dba, qe, args.keep.split(",")))
    evaluation = class_groups(labels)[1]
    measured = {}
    for lever in levers:
        measured[lever.name] = measure(pools, labels, lever, EVAL_SEEDS, evaluation, fit_seeds)
        print(f"measured {lever.name}", file=sys.stderr, flush=True)
    print(
        f"Never-tuned classes, {len(EVAL_SEEDS)} runs per size, verdict refitted per lever on the tuning classes:"
    )
    report(measured)
    paired_gains(measured)


def paired_gains(measured):
    """Each lever minus the baseline, run by run (the same catalogs and queries): mean ± std of the gain."""
    print("\nGain over the baseline, run by run (same seeds): mean ± std of the per-run difference")
    base = measured[BASELINE.name][0]
    for name, (results, _, _) in measured.items():
        if name == BASELINE.name:
            continue
        cells = []
        for label, size, figure in ROWS[:-1]:
            gains = np.array(results[size]["per_run"][figure]) - np.array(base[size]["per_run"][figure])
            cells.append(
                f"{label.split(',')[0].replace('right class first', 'first')}@{size} {gains.mean():+.3f}±{gains.std():.3f}"
            )
        print(f"  {name}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
