"""The Wikimedia crawl, step by step: classes, image plans, files with licences, embeddings.

Each step is a function over ids that both the management commands and the Celery tasks call. Every step
can be stopped at any moment and run again: classes are keyed on their QID, planned images on (class,
Commons file), stored images on their content hash, and what is done is never asked of Wikimedia again.
"""

from contextlib import contextmanager

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from catalog import refresh, store
from catalog.http import crawler as http
from catalog.imagefile import ImageError
from catalog.models import CatalogImage, WikidataClass
from catalog.progress import no_progress
from catalog.weburl import storable_web_url

from . import commons, dump, wikidata, wikipedia
from .locks import advisory_lock
from .models import ClassCrawl, ImageSource

Origin = CatalogImage.Origin
SOURCE_URL_LENGTH = CatalogImage._meta.get_field("source_url").max_length


# --- Classes ---------------------------------------------------------------------------------------------


def save_class(info):
    """Create or update a class from a ClassInfo; blanks never overwrite what we know. Returns it."""
    wikidata_class, created = WikidataClass.objects.get_or_create(
        qid=info.qid, defaults={"label": info.label or info.qid}
    )
    changed = created
    for field, value in (
        ("label", info.label if info.label != info.qid else ""),
        ("description", info.description),
        ("enwiki_title", info.enwiki_title),
        ("instance_count", info.instances),
        ("wikidata_revision", info.revision),
    ):
        if value not in ("", None) and getattr(wikidata_class, field) != value:
            setattr(wikidata_class, field, value)
            changed = True
    if changed:
        wikidata_class.save()
    return wikidata_class


def known_top_classes(limit):
    """The classes already crawled, most instances first, when there are enough of them."""
    classes = list(
        WikidataClass.objects.filter(qid__isnull=False, instance_count__isnull=False).order_by(
            "-instance_count", "qid"
        )[:limit]
    )
    return classes if len(classes) >= limit else None


def crawl_classes(limit, dump_path=None, recorder=None, progress=no_progress, ask_again=False):
    """The top `limit` classes, from a dump file or the SPARQL service; returns their ids, best first.

    Without a dump, classes already in the catalog are reused unless ask_again is set.
    """
    if dump_path is None and not ask_again:
        known = known_top_classes(limit)
        if known is not None:
            if recorder:
                recorder.skipped(len(known))
            return [c.id for c in known]
    if dump_path is not None:
        infos = dump.top_classes_from_dump(dump_path, limit, progress=progress)
    else:
        infos = wikidata.top_classes(limit)
        infos = progress(infos)
    ids = []
    for info in infos:
        existed = WikidataClass.objects.filter(qid=info.qid).exists()
        ids.append(save_class(info).id)
        if recorder:
            (recorder.skipped if existed else recorder.created)()
    return ids


# --- Planning which images a class gets ------------------------------------------------------------------


# The gallery query asks for this many instances per picture wanted: some share a file, some have only
# deprecated images, some prove unusable at fetch time; the extra ones are kept as spares.
INSTANCES_PER_WANTED = 2


def plan_images(class_id, per_class=1, ask_again=False):
    """Decide which Commons files stand for a class: its own image (P18, else its article's first real
    picture), then P18 images of its best-known instances, up to per_class in all; further instances'
    images are kept as spares (top_up). Returns the number of planned images; a class planned before (with
    as large a gallery) is not asked for again, unless ask_again."""
    wikidata_class = WikidataClass.objects.filter(id=class_id, qid__isnull=False).first()
    if wikidata_class is None:
        return 0
    state, _ = ClassCrawl.objects.get_or_create(wikidata_class=wikidata_class)
    if state.planned_at and state.per_class >= per_class and not ask_again:
        return wikidata_class.image_sources.planned().count()
    entity = wikidata.get_entities([wikidata_class.qid]).get(wikidata_class.qid)
    if entity is None:
        return _planned(state, per_class, f"{wikidata_class.qid} is deleted or missing on Wikidata")
    info = wikidata.class_from_entity(entity, wikidata_class.instance_count)
    save_class(info)
    own = _plan_own_image(wikidata_class, info)
    wanted = per_class - (1 if own else 0)
    if wanted > 0:
        _plan_spares(state, wanted * INSTANCES_PER_WANTED, {own})
    _planned(state, per_class, "")
    top_up(class_id)
    return wikidata_class.image_sources.planned().count()


def _plan_own_image(wikidata_class, info):
    """Plan the class's own picture; its file name, or "" when it has none."""
    if info.image:
        return _add_source(wikidata_class, info.image, Origin.WIKIDATA_P18, info.qid, 0)
    if info.enwiki_title:
        name = wikipedia.first_picture(wikipedia.article_wikitext(info.enwiki_title))
        if name:
            return _add_source(wikidata_class, name, Origin.WIKIPEDIA, info.enwiki_title, 0)
    return ""


def _plan_spares(state, limit, planned_names, skip=frozenset()):
    """Ask for up to limit well-known instances with an image and keep each one's P18 image as a spare,
    best known first (instances in skip are not read again)."""
    wikidata_class = state.wikidata_class
    instances = wikidata.instances_with_images(wikidata_class.qid, limit=limit)
    state.instances_asked, state.more_instances = limit, len(instances) >= limit
    state.save(update_fields=["instances_asked", "more_instances", "updated_at"])
    pictures = wikidata.pictures([i for i in instances if i.qid not in skip])
    rank = (wikidata_class.image_sources.aggregate(top=Max("rank"))["top"] or 0) + 1
    for qid, picture in pictures.items():
        if not picture or picture[:255] in planned_names:
            continue
        status = ImageSource.Status.SPARE
        planned_names.add(_add_source(wikidata_class, picture, Origin.INSTANCE_P18, qid, rank, status))
        rank += 1


def top_up(class_id):
    """Promote spares of a planned class to be fetched, best known first, until its images still to fetch
    and the pictures it got make per_class; when spares run out, ask for more instances while the query
    service may know more. Records the reason when the class stays short. Returns the promoted ids."""
    state = ClassCrawl.objects.select_related("wikidata_class").filter(wikidata_class_id=class_id).first()
    if state is None or state.planned_at is None:
        return []
    promoted, missing = _promote_spares(state)
    while missing > 0 and state.more_instances and state.instances_asked < wikidata.INSTANCES_SAMPLE:
        sources = state.wikidata_class.image_sources
        known = set(sources.filter(origin=Origin.INSTANCE_P18).values_list("origin_detail", flat=True))
        names = set(sources.values_list("commons_file", flat=True))
        limit = min(wikidata.INSTANCES_SAMPLE, state.instances_asked + missing * INSTANCES_PER_WANTED)
        _plan_spares(state, limit, names, skip=known)
        more, missing = _promote_spares(state)
        promoted += more
    got = state.per_class - missing
    reason = "" if missing <= 0 else "no image found" if got == 0 else f"only {got} usable pictures found"
    ClassCrawl.objects.filter(id=state.id).exclude(reason=reason).update(reason=reason)
    return promoted


def _promote_spares(state):
    """Promote as many spares as the class lacks; returns (their ids, how many it still lacks). The class's
    crawl row is locked meanwhile, so that two workers never promote for the same missing picture."""
    with transaction.atomic():
        ClassCrawl.objects.select_for_update().filter(id=state.id).first()
        sources = ImageSource.objects.filter(wikidata_class_id=state.wikidata_class_id)
        missing = state.per_class - sources.pictures_counted(state.wikidata_class_id)
        ids = list(sources.spares().values_list("id", flat=True)[: max(missing, 0)])
        sources.filter(id__in=ids).update(status=ImageSource.Status.PENDING, updated_at=timezone.now())
    return ids, missing - len(ids)


def _add_source(wikidata_class, name, origin, detail, rank, status=ImageSource.Status.PENDING):
    """Plan a file for a class (once: re-planning finds the same row); returns the file name."""
    ImageSource.objects.get_or_create(
        wikidata_class=wikidata_class,
        commons_file=name[:255],
        defaults={"origin": origin, "origin_detail": str(detail)[:255], "rank": rank, "status": status},
    )
    return name[:255]


def _planned(state, per_class, reason):
    state.planned_at = timezone.now()
    state.per_class = per_class
    state.reason = reason
    state.save()
    return 0


# --- Fetching files --------------------------------------------------------------------------------------


def fetch_source(source_id):
    """Fetch one planned image: licence from Commons, thumbnail, stored (not yet embedded).

    Returns (outcome, detail) with outcome one of "created", "skipped", "failed". Transient HTTP errors
    propagate (the image stays pending for the next run or the task's retry). An image another process is
    fetching at the moment is left to it.
    """
    with claimed_source(source_id) as (source, outcome):
        return outcome if source is None else store_fetched(source, lambda: download(source))


# The first key of the advisory locks that claim planned images (the second is the ImageSource id).
CLAIM_LOCK_SPACE = 7_304_001


@contextmanager
def claimed_source(source_id):
    """Claim a planned image for as long as it is fetched, so that two workers never fetch the same one;
    yields (the ImageSource, None) when it is this caller's to fetch, else (None, (outcome, detail)).

    An advisory lock rather than a status column: the fetch commits more than once, and a worker killed
    mid-fetch leaves no claim behind (ingest.locks).
    """
    # Ids past 2**31 wrap and may share a lock, which only leaves one fetch to a later run.
    with advisory_lock(CLAIM_LOCK_SPACE, source_id & 0x7FFFFFFF) as claimed:
        yield _to_fetch(source_id) if claimed else (None, ("skipped", "being fetched by another process"))


def _to_fetch(source_id):
    source = ImageSource.objects.select_related("wikidata_class").filter(id=source_id).first()
    if source is None or source.status != ImageSource.Status.PENDING:
        return None, ("skipped", "already handled")
    ImageSource.objects.filter(id=source.id).update(attempts=source.attempts + 1)
    # The same file planned for another class, or a run killed after storing it: never fetched twice.
    existing = CatalogImage.objects.filter(commons_file=source.commons_file).first()
    if existing is not None:
        _finish(source, ImageSource.Status.DONE, "", existing)
        return None, ("skipped", "already in the catalog")
    return source, None


def download(source):
    """(FileInfo, the thumbnail's bytes) of a planned image, from Commons. Network only, no database: a
    download thread may run it while the caller stores the image before."""
    info = commons.file_info(source.commons_file)
    return info, commons.download(info)


def store_fetched(source, fetched, stored=None):
    """Store a claimed planned image from fetched() -> download(source)'s answer (without its vector);
    returns (outcome, detail) as fetch_source does, and raises its transient errors. A new image is handed
    to stored(image, candidate) too, with its decoded picture (to embed it)."""
    try:
        info, data = fetched()
        candidate = store.prepare(data, **_metadata(source, info))
    except commons.NotUsable as exc:
        _finish(source, ImageSource.Status.SKIPPED, str(exc))
        return "skipped", str(exc)
    except ImageError as exc:
        _finish(source, ImageSource.Status.FAILED, f"not a usable image: {exc.message}")
        return "failed", exc.message
    except http.PermanentHTTPError as exc:
        _finish(source, ImageSource.Status.FAILED, str(exc))
        return "failed", str(exc)
    except http.TransientHTTPError as exc:
        ImageSource.objects.filter(id=source.id).update(reason=str(exc)[:1000])
        raise
    image, created = store.save(source.wikidata_class, candidate, None)
    _finish(source, ImageSource.Status.DONE, "", image)
    if created and stored is not None:
        stored(image, candidate)
    return ("created" if created else "skipped"), image.id


def save_vectors(embedded):
    """Save the vectors of (stored image, vector) pairs: the model's answer for images stored before."""
    for image, vector in embedded:
        store.set_embedding(image, vector)
        image.save(update_fields=store.EMBEDDING_FIELDS)


def _metadata(source, info):
    return {
        "origin": source.origin,
        "origin_detail": source.origin_detail,
        # The file we fetched, so the curation admin can fetch it again; the Commons page is commons_file's.
        "source_url": storable_web_url(info.download_url, SOURCE_URL_LENGTH),
        "commons_file": source.commons_file,
        "license": info.license,
        "license_url": info.license_url,
        "artist": info.artist,
        "attribution": info.credit,
        "attribution_required": info.attribution_required,
    }


def _finish(source, status, reason, image=None):
    with transaction.atomic():
        ImageSource.objects.filter(id=source.id).update(
            status=status, reason=reason, image=image, updated_at=timezone.now()
        )
        if image is not None and image.wikidata_class_id == source.wikidata_class_id:
            # The class's own picture (rank 0) becomes its main image; a gallery image only if none yet.
            classes = WikidataClass.objects.filter(id=source.wikidata_class_id)
            if source.rank == 0:
                classes.update(main_image=image)
            else:
                classes.filter(main_image__isnull=True).update(main_image=image)


def replacements(source_id):
    """The ids of the spares promoted to stand in for a planned image that gave its class no picture of its
    own (skipped, failed, or a file another class has): none while it is still to fetch."""
    source = ImageSource.objects.filter(id=source_id).exclude(status=ImageSource.Status.PENDING).first()
    return top_up(source.wikidata_class_id) if source is not None else []


def image_to_embed(source_id):
    """The id of the image fetched for a planned image while it has no vector from the current model, else
    None. A worker killed between storing an image and asking for its embedding leaves such an image."""
    fetched = ImageSource.objects.filter(id=source_id).values("image_id")
    return (
        CatalogImage.objects.needing_embedding().filter(id__in=fetched).values_list("id", flat=True).first()
    )


def pending_sources(class_ids=None):
    sources = ImageSource.objects.to_fetch()
    if class_ids is not None:
        sources = sources.filter(wikidata_class_id__in=class_ids)
    return sources


def retry_failed(class_ids=None):
    """Put failed images back to pending (after the cause was fixed); returns how many."""
    sources = ImageSource.objects.filter(status=ImageSource.Status.FAILED)
    if class_ids is not None:
        sources = sources.filter(wikidata_class_id__in=class_ids)
    return sources.update(status=ImageSource.Status.PENDING, reason="")


# --- Embeddings ------------------------------------------------------------------------------------------


def embed_images(image_ids=None, batch_size=16, recorder=None, progress=no_progress):
    """Embed images that have no vector from the current model (all such images, or those ids)."""
    images = CatalogImage.objects.needing_embedding()
    if image_ids is not None:
        images = images.filter(id__in=image_ids)
    ids = list(images.order_by("id").values_list("id", flat=True))
    if recorder:
        recorder.set_total(len(ids))
    steps = range(0, len(ids), batch_size)
    for start in progress(steps):
        embed_batch(ids[start : start + batch_size], recorder)
    return len(ids)


def embed_batch(ids, recorder=None):
    """Embed these images with the current model, counting each as created or failed on the recorder."""
    # catalog.refresh embeds from the stored files, the same way the curation admin re-embeds.
    summary = refresh.reembed(ids, batch_size=len(ids))
    if recorder:
        recorder.created(summary.done)
        for image_id, why in summary.failures:
            recorder.failed(f"image {image_id}", why)
    return summary
