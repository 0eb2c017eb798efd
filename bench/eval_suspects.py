"""How well does the suspect finder point at planted problems? Prints recall at the top of each list.

Copies ../shared/datasets/caltech101-dev to a temporary folder and plants known problems in the copy:

- wrong class: images moved into another class's folder;
- exact duplicates: the same pixels stored as different bytes (the JPEG decoded and saved again as PNG,
  so the SHA-256 differs and the catalog accepts both);
- resized duplicates: the image scaled to 60 % and saved again as JPEG (quality 85);

half of the duplicates in the original's class, half in another class. It then imports the copy with
`manage.py import_images`, runs `manage.py find_suspects`, and reports, for each kind, the share of the
planted problems found among the first K suspects (recall@K) and their ranks.

    python bench/eval_suspects.py                 # a fresh embedded Postgres in a temporary folder
    python bench/eval_suspects.py --data-dir DIR  # keep the database in DIR; a re-run skips the import

About 3,000 images are embedded once on the CPU (minutes on two cores); later runs with --data-dir reuse them.
"""

import argparse
import io
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "caltech101-dev"
CUTOFFS = (10, 20, 50, 100)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--data-dir", type=Path, help="REVIMG_DATA_DIR to use (default: a temporary one)")
    parser.add_argument("--wrong", type=int, default=15, help="images moved into a wrong class")
    parser.add_argument("--exact", type=int, default=8, help="same-pixel duplicates")
    parser.add_argument("--resized", type=int, default=8, help="resized duplicates")
    parser.add_argument("--seed", type=int, default=101)
    return parser.parse_args()


def plant(dataset, target, wrong, exact, resized, seed):
    """Copy dataset to target with problems planted; returns the manifest (what was planted where)."""
    shutil.copytree(dataset, target, ignore=shutil.ignore_patterns("*.md", ".*"))
    rng = random.Random(seed)
    classes = sorted(p.name for p in target.iterdir() if p.is_dir())
    files = sorted(target.glob("*/*.jpg"))
    chosen = rng.sample(files, wrong + exact + resized)
    manifest = {"wrong": [], "duplicates": []}
    for path in chosen[:wrong]:
        new_class = rng.choice([c for c in classes if c != path.parent.name])
        moved = target / new_class / f"planted_from_{path.parent.name}_{path.name}"
        path.rename(moved)
        manifest["wrong"].append({"path": str(moved), "true_class": path.parent.name, "in_class": new_class})
    for index, path in enumerate(chosen[wrong:]):
        kind = "exact" if index < exact else "resized"
        folder = (
            path.parent
            if index % 2 == 0
            else target / rng.choice([c for c in classes if c != path.parent.name])
        )
        copy = (
            folder / f"planted_{kind}_of_{path.parent.name}_{path.stem}.{'png' if kind == 'exact' else 'jpg'}"
        )
        copy.write_bytes(duplicate_bytes(path, kind))
        manifest["duplicates"].append(
            {"original": str(path), "copy": str(copy), "kind": kind, "cross_class": folder != path.parent}
        )
    return manifest


def duplicate_bytes(path, kind):
    with Image.open(path) as image:
        image.load()
        out = io.BytesIO()
        if kind == "exact":
            image.save(out, format="PNG")  # lossless: the same pixels, other bytes
        else:
            size = (max(1, round(image.width * 0.6)), max(1, round(image.height * 0.6)))
            image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(out, format="JPEG", quality=85)
        return out.getvalue()


def setup_django(data_dir):
    os.environ["REVIMG_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def ranks(manifest):
    """Rank (1-based) in each suspect list of every planted problem, None when not listed."""
    from catalog.models import CatalogImage, Suspect

    ids = dict(CatalogImage.objects.values_list("origin_detail", "id"))
    outliers = list(
        Suspect.objects.open()
        .filter(kind=Suspect.Kind.OUTLIER)
        .order_by("-score", "id")
        .values_list("image_id", flat=True)
    )
    # Each cluster of copies as the pairs it joins, so a planted pair is found where its cluster ranks.
    clusters = [
        [pair for i, a in enumerate(members) for pair in ((a, b) for b in members[i + 1 :])]
        for members in (
            sorted(m.pk for m in suspect.members.all())
            for suspect in Suspect.objects.open()
            .filter(kind=Suspect.Kind.DUPLICATE)
            .order_by("-score", "id")
            .prefetch_related("members")
        )
    ]
    pairs = [pair for cluster in clusters for pair in cluster]
    composition(outliers, pairs, manifest, ids)
    outlier_rank = {image_id: i + 1 for i, image_id in enumerate(outliers)}
    pair_rank = {frozenset(pair): i + 1 for i, cluster in enumerate(clusters) for pair in cluster}
    wrong = [outlier_rank.get(ids.get(item["path"][-255:])) for item in manifest["wrong"]]
    duplicates = [
        pair_rank.get(frozenset((ids.get(item["original"][-255:]), ids.get(item["copy"][-255:]))))
        for item in manifest["duplicates"]
    ]
    return wrong, duplicates, len(outliers), len(clusters)


def composition(outliers, pairs, manifest, ids):
    """What the top of each list holds besides planted problems (precision, roughly)."""
    from catalog.models import CatalogImage, Suspect
    from catalog.phash import hamming

    wrong = {ids.get(item["path"][-255:]) for item in manifest["wrong"]}
    copies = {ids.get(item["copy"][-255:]) for item in manifest["duplicates"] if item["cross_class"]}
    planted_pairs = {
        frozenset((ids.get(item["original"][-255:]), ids.get(item["copy"][-255:])))
        for item in manifest["duplicates"]
    }
    hashes = dict(CatalogImage.objects.values_list("id", "phash"))
    suggested = dict(
        Suspect.objects.filter(kind=Suspect.Kind.OUTLIER, image__in=wrong).values_list(
            "image_id", "suggested_class__label"
        )
    )
    right = sum(
        suggested.get(ids.get(item["path"][-255:])) == item["true_class"].replace("_", " ")
        for item in manifest["wrong"]
    )
    print(f"moved images whose suggested class is their true class: {right}/{len(manifest['wrong'])}")
    for k in (20, 50):
        top = outliers[:k]
        moved, copied = sum(i in wrong for i in top), sum(i in copies for i in top)
        print(
            f"top {k} outliers: {moved} moved, {copied} cross-class planted copies, {k - moved - copied} other"
        )
        top_pairs = pairs[:k]
        planted = sum(frozenset(p) in planted_pairs for p in top_pairs)
        same = sum(
            frozenset(p) not in planted_pairs and hamming(hashes[p[0]], hashes[p[1]]) <= 4 for p in top_pairs
        )
        print(
            f"top {k} pairs: {planted} planted, {same} other pairs with hashes <= 4 bits apart "
            f"(duplicates already in the data set), {len(top_pairs) - planted - same} other"
        )


def recall_line(name, found_ranks, listed):
    total = len(found_ranks)
    cells = [f"@{k}: {sum(1 for r in found_ranks if r and r <= k)}/{total}" for k in CUTOFFS]
    listed_ranks = sorted(r for r in found_ranks if r)
    return f"{name:<22} listed {listed:>5}   recall " + "  ".join(cells) + f"   ranks {listed_ranks}"


def main():
    args = parse_args()
    if not args.dataset.is_dir():
        sys.exit(f"{args.dataset} is absent")
    work = Path(tempfile.mkdtemp(prefix="revimg-suspects-"))
    data_dir = args.data_dir or work / "data"
    setup_django(data_dir)
    from django.core.management import call_command

    from catalog.models import CatalogImage

    call_command("migrate", verbosity=0)
    manifest_file = data_dir / "planted.json"
    if manifest_file.exists() and CatalogImage.objects.exists():
        manifest = json.loads(manifest_file.read_text())
        print(f"reusing the catalog in {data_dir} (planted {manifest_file})")
    else:
        manifest = plant(
            args.dataset, work / "caltech-planted", args.wrong, args.exact, args.resized, args.seed
        )
        manifest_file.parent.mkdir(parents=True, exist_ok=True)
        manifest_file.write_text(json.dumps(manifest, indent=1))
        call_command("import_images", str(work / "caltech-planted"), "--no-progress")
        shutil.rmtree(work / "caltech-planted")  # the catalog keeps its own copies
    call_command("find_suspects")
    wrong, duplicates, n_outliers, n_pairs = ranks(manifest)
    exact = [r for r, item in zip(duplicates, manifest["duplicates"], strict=True) if item["kind"] == "exact"]
    resized = [
        r for r, item in zip(duplicates, manifest["duplicates"], strict=True) if item["kind"] == "resized"
    ]
    print(
        f"catalog: {CatalogImage.objects.count()} images; suspects: {n_outliers} outliers, {n_pairs} duplicate clusters"
    )
    print(recall_line("wrong class (outliers)", wrong, n_outliers))
    print(recall_line("duplicates, all", duplicates, n_pairs))
    print(recall_line("  same pixels", exact, n_pairs))
    print(recall_line("  resized 60%", resized, n_pairs))
    shutil.rmtree(work, ignore_errors=True)  # with --data-dir, the database lives outside it


if __name__ == "__main__":
    main()
