"""Storing images in the catalog: one file per distinct content, one row per file, never half-written."""

import hashlib
import io
import logging
from dataclasses import dataclass, field
from functools import cached_property

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from . import copyrows, objectstore
from .embedding import MODEL_NAME, MODEL_VERSION, get_embedder
from .imagefile import open_image
from .mediarefs import is_referenced
from .models import CatalogImage
from .phash import phash_hex

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = (320, 320)
FORMAT_EXTENSIONS = {
    "JPEG": "jpg",
    "MPO": "jpg",  # phone cameras' multi-picture JPEG
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "AVIF": "avif",
    "BMP": "bmp",
    "TIFF": "tif",
}


def content_hash(data):
    return hashlib.sha256(data).hexdigest()


@dataclass
class ImageCandidate:
    """An image decoded and checked, ready to be embedded and saved."""

    data: bytes
    sha256: str
    image: Image.Image
    extension: str
    size: tuple[int, int]  # the file's own width and height, as stored (before EXIF orientation)
    metadata: dict = field(default_factory=dict)

    # Computed on first use, so an import can make them in its decoding threads instead of while storing.
    @cached_property
    def thumbnail(self):
        return thumbnail_of(self.image)

    @cached_property
    def thumbnail_jpeg(self):
        return jpeg_bytes(self.thumbnail)

    @cached_property
    def phash(self):
        return phash_hex(self.thumbnail)

    def make_derived(self):
        """Make the thumbnail and perceptual hash now (an import does so in its decoding threads)."""
        return self.thumbnail_jpeg, self.phash


def prepare(data, **metadata):
    """Decode untrusted bytes into a candidate; raises catalog.imagefile.ImageError when they are no image."""
    image = open_image(data)
    with Image.open(io.BytesIO(data)) as original:
        extension = FORMAT_EXTENSIONS.get(original.format, "img")
        size = original.size
    return ImageCandidate(data, content_hash(data), image, extension, size, metadata)


def embed(candidates):
    """Vectors for candidates, in one batched pass through the model."""
    if not candidates:
        return []
    return get_embedder().embed([c.image for c in candidates])


# The columns set_embedding sets: what a save of a re-embedded row writes (update_fields).
EMBEDDING_FIELDS = ("embedding", "embedding_model", "embedding_version", "embedded_at")


def set_embedding(image, vector):
    image.embedding = vector
    image.embedding_model = MODEL_NAME
    image.embedding_version = MODEL_VERSION
    image.embedded_at = timezone.now()


def save(wikidata_class, candidate, vector):
    """Write the files and the row together; returns (image, created). An existing hash wins."""
    existing = CatalogImage.objects.filter(sha256=candidate.sha256).first()
    if existing:
        return existing, False
    image = new_image(wikidata_class, candidate, vector)
    try:
        with transaction.atomic():
            write_files(image, candidate)
            image.save()
    except IntegrityError:
        # Another process stored the same content meanwhile; its row and file are the ones to keep.
        _delete_files(image)
        return CatalogImage.objects.get(sha256=candidate.sha256), False
    except BaseException:
        _delete_files(image)
        raise
    return image, True


def new_image(wikidata_class, candidate, vector):
    """The unsaved row of candidate in wikidata_class, embedded with vector unless it is None."""
    image = CatalogImage(
        wikidata_class=wikidata_class,
        sha256=candidate.sha256,
        phash=candidate.phash,
        **candidate.metadata,
    )
    if vector is not None:
        set_embedding(image, vector)
    return image


def save_batch(entries):
    """Store (wikidata_class, candidate, vector) entries of distinct content the catalog does not hold yet:
    every file written, then every row in one COPY and one commit. Returns the stored images.

    All or nothing: on any failure no row of the batch is committed and the files written for it are
    removed (those another row already refers to stay), and the error is raised; IntegrityError means some
    content was stored meanwhile, and a caller then stores the batch one picture at a time with save().
    """
    images = [new_image(wikidata_class, candidate, vector) for wikidata_class, candidate, vector in entries]
    try:
        with transaction.atomic():
            for image, (_, candidate, _) in zip(images, entries, strict=True):
                write_files(image, candidate)
            copyrows.insert_images(images)
    except BaseException:
        for image in images:
            _delete_files(image)
        raise
    return images


class MediaWriteError(Exception):
    """The media storage would not take a file: a folder read-only, full or not ours to write; a bucket
    missing, refusing our credentials or not answering. No image can be stored until someone fixes it, so
    callers stop instead of failing image after image."""

    def __init__(self, storage, error):
        self.storage = objectstore.describe(storage)
        self.reason = objectstore.reason(error)
        setting = "REVIMG_S3_BUCKET" if objectstore.is_object_storage(storage) else "REVIMG_MEDIA_ROOT"
        super().__init__(
            f"cannot store images in the media storage {self.storage} ({setting}): {self.reason}"
        )


def write_files(image, candidate):
    """Write candidate's file and thumbnail for image (not saved yet), with the file's width and height.
    Raises MediaWriteError when the storage refuses them."""
    _write(image.file, f"{candidate.sha256}.{candidate.extension}", candidate.data)
    # Django leaves width/height empty for a file saved from a ContentFile; without them every load of the
    # row opens the file again to measure it (a search loads 50 rows). The decoded header knows them.
    image.width, image.height = candidate.size
    _write(image.thumbnail, "thumb.jpg", candidate.thumbnail_jpeg)


def _write(field_file, name, data):
    try:
        field_file.save(name, ContentFile(data), save=False)
    except objectstore.STORAGE_ERRORS as error:
        raise MediaWriteError(field_file.storage, error) from error


def delete_unreferenced(names, storage):
    """Delete the files among names that no row refers to; names are content-addressed, so a file another
    row already references must stay."""
    for name in names:
        if name and not is_referenced(name):
            storage.delete(name)


def add_image(wikidata_class, data, **metadata):
    """Decode, embed and store one image; returns (image, created)."""
    sha = content_hash(data)
    existing = CatalogImage.objects.filter(sha256=sha).first()
    if existing:
        return existing, False
    candidate = prepare(data, **metadata)
    return save(wikidata_class, candidate, embed([candidate])[0])


def thumbnail_bytes(image):
    return jpeg_bytes(thumbnail_of(image))


def thumbnail_of(image):
    """image fitted into THUMBNAIL_SIZE (never enlarged). Lanczos, from a copy first box-reduced by a whole
    factor to no less than 1.5 times the thumbnail's size (reducing_gap): for a 960 px picture that halves
    the cost (Lanczos over every pixel took 10-13 ms) for a mean difference of 1 in 255 per pixel; 2.0
    would not reduce a 960 px picture at all."""
    width, height = image.size
    scale = min(1.0, THUMBNAIL_SIZE[0] / width, THUMBNAIL_SIZE[1] / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.5)


def perceptual_hash(image):
    """The catalog's perceptual hash of a decoded picture: that of its thumbnail. The hash shrinks the
    picture to 32x32 anyway; shrinking the thumbnail instead of the whole picture costs a fraction, and
    the bits stay those of the whole picture or within a few (bench/embed_throughput.py --mode store-parts)."""
    return phash_hex(thumbnail_of(image))


def jpeg_bytes(image):
    # optimize=True (Huffman tables fitted to the picture) costs a second pass, about 0.1-0.7 ms for a dev
    # photo's thumbnail, and saves 12.7% of its bytes (14.9 against 17.0 kB), which every results page sends.
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def _delete_files(image):
    """Undo a write that did not become a row; a storage that refuses this too already said why."""
    try:
        delete_unreferenced([image.file.name, image.thumbnail.name], image.file.storage)
    except objectstore.STORAGE_ERRORS:
        log.warning("could not remove the files of an image that was not stored", exc_info=True)
