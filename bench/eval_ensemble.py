"""Measure EfficientNet-Lite ensembles against Lite0 alone on caltech101-dev: quality and cost.

    REVIMG_DATA_DIR=/work/benchdata-ensemble python -m bench.eval_ensemble [--seeds 20] [--repeats 5]

Embedders: Lite0, Lite2, Lite0+Lite2 and Lite0+Lite1+Lite2; an ensemble's vector is its members' unit
vectors side by side, normalised again (catalog.embedding.ensemble). Each member embeds the dataset once,
cached in $REVIMG_DATA_DIR/verdict/ as bench/eval_verdict.py caches it, and an ensemble combines the cached
vectors.

Quality, with bench/eval_verdict.py's protocol and functions: for each embedder the verdict's constants
are refit on the 25 tuning classes (eval_verdict.fitted_constants), then each figure is taken per run on
the 25 never-tuned classes, over the same seeds for every embedder, and printed as mean ± std over runs.
Since every embedder sees the same catalogs and queries in a run, the difference from Lite0 is also taken
per run: its mean ± std says whether a gain stands out from the run-to-run spread.

Cost, side by side in one run (repeats interleave the embedders; medians): ms per picture for one image
(Embedder.embed on a decoded photo: crop, resize and model, as a search runs it) and images/s for
batches of 32 preprocessed images (the model alone in ONNX Runtime, as an import runs it).
"""

import argparse
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bench import embed_throughput, eval_verdict
from search import verdict

EMBEDDERS = {
    "lite0": ("efficientnet-lite0",),
    "lite2": ("efficientnet-lite2",),
    "lite0+lite2": ("efficientnet-lite0", "efficientnet-lite2"),
    "lite0+lite1+lite2": ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"),
}
BASELINE = "lite0"
SIZES = ("1", "5", "30", "3-30")
# (label, Outcome-based figure, the catalog sizes it is reported at)
FIGURES = (
    ("right class first", "first", ("1", "5", "30")),
    ("AUROC confidence", "auroc", ("5", "30", "3-30")),
    ("match accuracy", "match", ("5", "30", "3-30")),
    ("calibration error", "ece", ("5", "30", "3-30")),
)
BATCH = 32


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="runs per catalog size (eval_verdict: 10)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the cost measurement")
    parser.add_argument("--no-cost", action="store_true", help="quality figures only")
    parser.add_argument("--no-quality", action="store_true", help="cost figures only")
    return parser.parse_args()


def model_cache_dir():
    return Path(os.environ.get("REVIMG_DATA_DIR", "var")) / "models"


def member_embedder(name):
    from catalog.embedding import Embedder
    from catalog.embedding.variants import VARIANTS

    return Embedder(cache_dir=model_cache_dir(), variant=VARIANTS[name])


def make_embedder(members):
    """One member's Embedder, or an EnsembleEmbedder of several."""
    from catalog.embedding.ensemble import EnsembleEmbedder

    embedders = [member_embedder(name) for name in members]
    return embedders[0] if len(embedders) == 1 else EnsembleEmbedder(embedders)


def dataset_vectors():
    """{embedder label: unit vectors of every photo}, and the photos' class names."""
    from catalog.embedding.ensemble import concatenate_normalised

    members, labels = {}, None
    for name in dict.fromkeys(name for names in EMBEDDERS.values() for name in names):
        members[name], labels = eval_verdict.load_vectors(embedder=member_embedder(name))
    vectors = {
        label: concatenate_normalised([members[name] for name in names]) for label, names in EMBEDDERS.items()
    }
    return vectors, labels


# --- quality -----------------------------------------------------------------------------------------


@contextmanager
def verdict_constants(constants):
    """search.verdict judging with the given constants (fitted for one embedder), restored afterwards."""
    before = {name: getattr(verdict, name) for name in constants}
    for name, value in constants.items():
        setattr(verdict, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(verdict, name, value)


def run_figures(run):
    """The figures of one run's Outcome, by FIGURES key."""
    inside = run.in_catalog
    return {
        "first": np.mean(run.right_class_first[inside]),
        "auroc": eval_verdict.auroc(run.confidence, inside),
        "match": np.mean(run.match == inside),
        "ece": eval_verdict.expected_calibration_error(run.confidence, run.right_class_first),
    }


def quality(vectors, labels, seeds):
    """{embedder: {size: {figure key: per-run values}}} on the never-tuned classes, and the constants."""
    _, evaluation = eval_verdict.class_groups(labels)
    table, fitted = {}, {}
    for label, embedding in vectors.items():
        fitted[label], _, _ = eval_verdict.fitted_constants(embedding, labels)
        table[label] = {}
        with verdict_constants(fitted[label]):
            for size in SIZES:
                runs = eval_verdict.outcomes(embedding, labels, evaluation, seeds, size)
                per_run = [run_figures(run) for run in runs]
                table[label][size] = {key: np.array([row[key] for row in per_run]) for key in per_run[0]}
                # As eval_verdict reports it: over all runs' queries (a run's ~500 queries fill 10 bins thinly).
                table[label][size]["ece pooled"] = eval_verdict.expected_calibration_error(
                    eval_verdict.pooled(runs, "confidence"), eval_verdict.pooled(runs, "right_class_first")
                )
    return table, fitted


def print_quality(table, fitted, seeds):
    print(f"Never-tuned classes, {len(seeds)} runs per catalog size (seeds {seeds.start}-{seeds.stop - 1});")
    print(f"mean ± std over runs; [difference from {BASELINE} per run: mean ± std, runs it is ahead]\n")
    for title, key, sizes in FIGURES:
        for size in sizes:
            print(f"{title}, {size} per class")
            base = table[BASELINE][size][key]
            for label in table:
                values = table[label][size][key]
                line = f"  {label:18s} {values.mean():.3f} ± {values.std():.3f}"
                if label != BASELINE:
                    diff = values - base
                    better = np.sum(diff < 0 if key == "ece" else diff > 0)
                    line += f"   [{diff.mean():+.3f} ± {diff.std():.3f}, ahead in {better}/{len(diff)}]"
                print(line)
    print("calibration error pooled over the runs' queries (eval_verdict's figure)")
    for size in FIGURES[-1][2]:
        print(
            f"  {size:>4s} per class  "
            + "  ".join(f"{label} {table[label][size]['ece pooled']:.3f}" for label in table)
        )
    print("\nVerdict constants refit on the tuning classes, per embedder:")
    for label, constants in fitted.items():
        print(f"  {label:18s} " + ", ".join(f"{name} {value:g}" for name, value in constants.items()))


# --- cost --------------------------------------------------------------------------------------------


def sample_photos(count=64):
    from catalog.imagefile import open_image

    files = eval_verdict.dataset_files(eval_verdict.DATASET)[:: max(1, 2999 // count)][:count]
    return [open_image(path.read_bytes()) for path, _ in files]


def batch_rate(embedder, images):
    """Images/s of the model alone on batches of BATCH preprocessed images (members one after another)."""
    from catalog.imagefile import preprocess

    members = getattr(embedder, "members", [embedder])
    inputs = [np.stack([preprocess(image, member.input_size) for image in images]) for member in members]
    start = time.perf_counter()
    for member, batch in zip(members, inputs, strict=True):
        for offset in range(0, len(batch), BATCH):
            member.embed_batch(batch[offset : offset + BATCH])
    return len(images) / (time.perf_counter() - start)


def cost(repeats):
    embedders = {label: make_embedder(names) for label, names in EMBEDDERS.items()}
    for embedder in embedders.values():
        embedder.load()
        for member in getattr(embedder, "members", [embedder]):
            member.batch_size = BATCH
    images = sample_photos()
    print(f"\nCost: {len(images)} photos, ONNX Runtime; load average at the start {os.getloadavg()[0]:.2f}")
    rows = {label: [] for label in embedders}
    labels = list(embedders)
    for repeat in range(repeats):
        # Each repeat starts with another embedder, so none always runs while the machine's load climbs.
        for label in labels[repeat % len(labels) :] + labels[: repeat % len(labels)]:
            embedder = embedders[label]
            embedder.embed(images[:2])  # warm
            rows[label].append(
                (
                    embed_throughput.single_image_latency_ms(embedder, images[:20]),
                    batch_rate(embedder, images),
                )
            )
        print(f"  repeat {repeat + 1}: load average {os.getloadavg()[0]:.2f}")
    print(f"  {'embedder':18s} {'dim':>5s} {'ms/picture':>11s} {'batch img/s':>12s}   (ratios to {BASELINE})")
    for label, embedder in embedders.items():
        # Ratios per repeat, then their median: the load drifts between repeats more than within one.
        pairs = list(zip(rows[label], rows[BASELINE], strict=True))
        time_ratio = statistics.median(ms / base_ms for (ms, _), (base_ms, _) in pairs)
        rate_ratio = statistics.median(rate / base_rate for (_, rate), (_, base_rate) in pairs)
        ms = statistics.median(m for m, _ in rows[label])
        rate = statistics.median(r for _, r in rows[label])
        print(
            f"  {label:18s} {embedder.dim:5d} {ms:11.1f} {rate:12.1f}"
            f"   ({time_ratio:.2f}x time, {rate_ratio:.2f}x rate)"
        )
    print(f"  load average at the end {os.getloadavg()[0]:.2f}")


def main():
    args = parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    if not args.no_quality:
        vectors, labels = dataset_vectors()
        seeds = range(args.seeds)
        table, fitted = quality(vectors, labels, seeds)
        print_quality(table, fitted, seeds)
    if not args.no_cost:
        cost(args.repeats)


if __name__ == "__main__":
    main()
