"""import_images: a folder of class subfolders becomes classes and embedded images, re-runnably."""

import errno
import io
import json
import os
import shutil
import threading

import numpy as np
import pytest
from django.core.files.storage import FileSystemStorage
from django.core.management import CommandError, call_command
from django.db import connection
from PIL import Image

from catalog import classstats, store
from catalog.models import CatalogImage, WikidataClass
from ingest.folder_metadata import METADATA_FILE
from ingest.models import IngestRun

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def jpeg_bytes(seed, size=(96, 64)):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    for class_name, seeds in {"red_things": (1, 2), "blue_things": (3, 4)}.items():
        (root / class_name).mkdir(parents=True)
        for seed in seeds:
            (root / class_name / f"img_{seed}.jpg").write_bytes(jpeg_bytes(seed))
    (root / "red_things" / "notes.txt").write_text("not an image")
    (root / "blue_things" / "broken.jpg").write_bytes(jpeg_bytes(9)[:200])
    (root / "loose_file.jpg").write_bytes(jpeg_bytes(10))  # not in a class folder: not imported
    return root


def run_import(path):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_images", str(path), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_each_subfolder_becomes_a_class_and_each_image_an_embedded_row(folder):
    out, err = run_import(folder)

    assert "4 created, 0 skipped (already in the catalog), 2 failed" in out
    assert sorted(WikidataClass.objects.values_list("label", flat=True)) == ["blue things", "red things"]
    for image in CatalogImage.objects.all():
        vector = np.asarray(image.embedding)
        assert vector.shape == (1280,)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
        assert image.embedding_model and image.embedded_at and not image.is_stale
        assert image.origin == CatalogImage.Origin.LOCAL
        assert (image.width, image.height) == (96, 64)
        assert image.file.storage.exists(image.file.name) and image.thumbnail.storage.exists(
            image.thumbnail.name
        )


def test_an_import_leaves_its_classes_statistics_current(folder, django_assert_num_queries):
    run_import(folder)

    for wikidata_class in WikidataClass.objects.all():
        with django_assert_num_queries(1):  # read as stored, not recomputed by the first search
            stats = classstats.stats_of(wikidata_class.pk)
        assert stats.count == 2


def test_broken_and_non_image_files_are_reported_by_name(folder):
    _, err = run_import(folder)

    assert "notes.txt" in err and "broken.jpg" in err


def test_running_again_imports_nothing_twice(folder):
    run_import(folder)
    out, _ = run_import(folder)

    assert "0 created, 4 skipped (already in the catalog), 2 failed" in out
    assert CatalogImage.objects.count() == 4
    assert WikidataClass.objects.count() == 2


def test_a_failure_while_storing_leaves_no_row_and_no_file(folder, monkeypatch, settings):
    write = FileSystemStorage._save

    def disk_full_at_thumbnails(storage, name, content):
        # The picture's own file is written first, so the test sees it removed again.
        if name.startswith("thumbs/"):
            raise OSError(28, "No space left on device")
        return write(storage, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", disk_full_at_thumbnails)
    with pytest.raises(CommandError, match="No space left on device"):
        run_import(folder)

    assert CatalogImage.objects.count() == 0
    assert not WikidataClass.objects.exists()
    assert not any(p.is_file() for p in (settings.MEDIA_ROOT).rglob("*"))


@pytest.fixture
def unwritable_media(settings, tmp_path):
    """A media folder the OS refuses files in; yields the errno the storage meets. A normal user gets a
    read-only folder (chmod 0o555). Root writes through permissions, so for root the media folder's parent
    is a regular file: no folder can be made under it, as none can on a read-only disk."""
    if os.geteuid() != 0:
        settings.MEDIA_ROOT.mkdir(parents=True)
        settings.MEDIA_ROOT.chmod(0o555)
        yield errno.EACCES
        settings.MEDIA_ROOT.chmod(0o755)
        return
    blocker = tmp_path / "a-file"
    blocker.write_text("where the media folder's parent should be")
    settings.MEDIA_ROOT = blocker / "media"
    yield errno.ENOTDIR


def test_a_media_folder_that_takes_no_files_stops_with_one_line_and_leaves_no_class(
    folder, unwritable_media, settings
):
    with pytest.raises(CommandError) as stopped:
        run_import(folder)

    message = str(stopped.value)
    assert "\n" not in message
    assert str(settings.MEDIA_ROOT) in message and os.strerror(unwritable_media) in message
    assert not WikidataClass.objects.exists()
    assert not CatalogImage.objects.exists()


def test_a_folder_with_no_usable_image_makes_no_class(folder):
    (folder / "empty_handed").mkdir()
    (folder / "empty_handed" / "broken.jpg").write_bytes(jpeg_bytes(11)[:200])

    _, err = run_import(folder)

    assert "empty_handed" in err
    assert not WikidataClass.objects.filter(label="empty handed").exists()


def test_a_picture_already_in_another_class_makes_no_class(folder):
    # Sorted after red_things, in the same batch: stored only once red_things' copy is in the catalog.
    (folder / "zz_copies").mkdir()
    shutil.copy(folder / "red_things" / "img_1.jpg", folder / "zz_copies")

    out, _ = run_import(folder)

    assert "4 created, 1 skipped" in out
    assert not WikidataClass.objects.filter(label="zz copies").exists()


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="is not a directory"):
        run_import(tmp_path / "nope")


def test_real_photos_land_as_unit_vectors_and_same_class_photos_are_closer(caltech, tmp_path):
    root = tmp_path / "dev"
    for name in ("dalmatian", "laptop"):
        (root / name).mkdir(parents=True)
        for path in sorted((caltech / name).glob("*.jpg"))[:4]:
            shutil.copy(path, root / name / path.name)

    run_import(root)

    images = list(CatalogImage.objects.select_related("wikidata_class"))
    assert len(images) == 8
    vectors = np.array([image.embedding for image in images])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    labels = [image.wikidata_class.label for image in images]
    similarity = vectors @ vectors.T
    for i, label in enumerate(labels):
        same = [similarity[i, j] for j in range(len(labels)) if j != i and labels[j] == label]
        other = [similarity[i, j] for j in range(len(labels)) if labels[j] != label]
        assert np.mean(same) > np.mean(other)


# --- licence and credit: options and the folder's metadata file ------------------------------------------

CC_BY = "https://creativecommons.org/licenses/by/4.0/"
BIRDS = {
    "license": "CC BY 4.0",
    "license_url": CC_BY,
    "attribution": "Ada Lovelace, Birds of the Marsh (2024)",
    "source_url": "https://example.org/birds",
}


def write_metadata(folder, values):
    path = folder / METADATA_FILE
    path.write_text(values if isinstance(values, str) else json.dumps(values))
    return path


def credit_of_every_image():
    return set(CatalogImage.objects.values_list("license", "license_url", "attribution", "source_url"))


def test_options_give_every_picture_its_licence_and_credit(folder):
    call_command(
        "import_images",
        str(folder),
        "--license=CC BY 4.0",
        f"--license-url={CC_BY}",
        "--attribution=Ada Lovelace, Birds of the Marsh (2024)",
        "--source-url=https://example.org/birds",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )

    assert CatalogImage.objects.count() == 4
    assert credit_of_every_image() == {tuple(BIRDS.values())}


def test_the_folders_metadata_file_gives_the_licence_and_options_win_over_it(folder):
    write_metadata(folder, {**BIRDS, "note": "From the dataset's README."})

    call_command(
        "import_images", str(folder), "--attribution=Grace Hopper", stdout=io.StringIO(), stderr=io.StringIO()
    )

    assert credit_of_every_image() == {("CC BY 4.0", CC_BY, "Grace Hopper", "https://example.org/birds")}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"license": "CC BY 4.0",}', "not JSON: Expecting property name enclosed in double quotes (line 1"),
        ('["CC BY 4.0"]', "must be a JSON object with some of the keys license, license_url"),
        ({"licence": "CC BY 4.0"}, 'unknown key "licence" (known: license, license_url'),
        ({"license": 4}, '"license" must be text, not 4'),
        (
            {"license": "CC0", "license_url": "ftp://example.org/cc0"},
            '"license_url" must be an http:// or https://',
        ),
        ({"source_url": " JaVa\tScript:alert(1)"}, '"source_url" must be an http:// or https:// address'),
        ({"license": "x" * 101}, '"license": Ensure this value has at most 100 characters (it has 101).'),
    ],
    ids=[
        "malformed",
        "not-an-object",
        "unknown-key",
        "not-text",
        "ftp",
        "javascript",
        "too-long",
    ],
)
def test_each_wrong_metadata_file_is_refused_naming_the_file_and_key_and_nothing_is_imported(
    folder, content, message
):
    path = write_metadata(folder, content)

    with pytest.raises(CommandError) as refused:
        run_import(folder)

    assert str(refused.value).startswith(f"{path}: ")
    assert message in str(refused.value)
    assert not CatalogImage.objects.exists() and not IngestRun.objects.exists()


def test_a_licence_address_without_the_licences_name_is_refused(folder):
    write_metadata(folder, {"license_url": CC_BY})

    with pytest.raises(CommandError, match='"license_url" is given without "license"'):
        run_import(folder)

    assert not CatalogImage.objects.exists()


def test_a_licence_address_option_that_is_not_http_is_refused_naming_the_option(folder):
    with pytest.raises(CommandError, match=r'^--license-url: "license_url" must be an http:// or https://'):
        call_command("import_images", str(folder), "--license=CC0", "--license-url=data:text/html,hi")

    assert not CatalogImage.objects.exists()


def test_importing_again_with_a_licence_fills_it_in_for_pictures_imported_without_one(folder):
    run_import(folder)
    red = CatalogImage.objects.filter(wikidata_class__label="red things").first()
    CatalogImage.objects.filter(pk=red.pk).update(license="CC0")  # stated since: never overwritten

    out, _ = run_import_with(folder, "--license=CC BY 4.0", f"--license-url={CC_BY}")

    assert (
        "0 created, 4 skipped (already in the catalog), 2 failed; 3 of the skipped given the folder's licence"
        in out
    )
    assert CatalogImage.objects.count() == 4
    assert CatalogImage.objects.filter(license="CC BY 4.0", license_url=CC_BY).count() == 3
    assert CatalogImage.objects.get(pk=red.pk).license == "CC0"


def run_import_with(path, *options):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_images", str(path), *options, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_an_import_is_recorded_as_a_run_with_its_counts_failures_and_metadata(folder):
    run_import_with(folder, "--license=CC BY 4.0")

    run = IngestRun.objects.get()
    assert (run.kind, run.status) == ("import", IngestRun.Status.DONE)
    assert run.arguments == {"directory": str(folder.resolve()), "license": "CC BY 4.0"}
    assert (run.total, run.processed, run.created, run.skipped, run.failed) == (6, 6, 4, 0, 2)
    assert sorted(os.path.basename(path) for path, _ in run.failures) == ["broken.jpg", "notes.txt"]
    assert run.summary == "4 created, 0 skipped (already in the catalog), 2 failed"
    assert run.finished_at is not None


@pytest.mark.django_db(transaction=True)  # another connection stores the picture: committed data only
def test_a_picture_another_process_stored_meanwhile_costs_its_batch_nothing(folder, monkeypatch, settings):
    save_batch = store.save_batch

    def another_process_first(entries):
        # Between the batch's existence check and its COPY, the second picture lands from elsewhere.
        _, candidate, vector = entries[1]
        elsewhere = threading.Thread(target=store_elsewhere, args=(candidate, vector))
        elsewhere.start()
        elsewhere.join()
        return save_batch(entries)

    monkeypatch.setattr(store, "save_batch", another_process_first)
    out, _ = run_import(folder)

    assert "3 created, 1 skipped (already in the catalog), 2 failed" in out
    assert CatalogImage.objects.filter(wikidata_class__label__endswith="things").count() == 3
    assert CatalogImage.objects.filter(wikidata_class__label="elsewhere").count() == 1
    stored = {
        name for image in CatalogImage.objects.all() for name in (image.file.name, image.thumbnail.name)
    }
    on_disk = {str(p.relative_to(settings.MEDIA_ROOT)) for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()}
    assert on_disk == stored


def store_elsewhere(candidate, vector):
    try:
        store.save(WikidataClass.objects.create(label="elsewhere"), candidate, vector)
    finally:
        connection.close()
