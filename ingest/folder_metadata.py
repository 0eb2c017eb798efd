"""What a folder's pictures are shown with: the licence, its address, the credit and the source address
that an import gives every picture it stores from that folder.

They come from a small JSON file in the folder (METADATA_FILE), from the import's options, or both (an
option wins over the file's key). Every value is checked before anything is imported, and a wrong one is
refused with the file or option it came from and the key. A file may say where its facts come from in
"note", for people: it is checked as text and stored nowhere.

    {"license": "CC BY 4.0", "license_url": "https://creativecommons.org/licenses/by/4.0/",
     "attribution": "Jane Doe, Birds of the Marsh (2024)", "source_url": "https://example.org/birds",
     "note": "From the dataset's own README."}
"""

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from django.core.exceptions import ValidationError

from catalog.models import CatalogImage
from catalog.weburl import web_url_or_none

METADATA_FILE = "revimg-import.json"
# The keys that hold an address: only http(s) ones are stored (catalog.weburl).
ADDRESS_KEYS = ("license_url", "source_url")


class MetadataError(ValueError):
    """A metadata value, file or option that cannot be used; the message names where it came from."""


@dataclass(frozen=True)
class FolderMetadata:
    """The CatalogImage fields of the same names, as given to every picture of an imported folder."""

    license: str = ""
    license_url: str = ""
    attribution: str = ""
    source_url: str = ""

    def as_fields(self):
        return asdict(self)

    def given(self):
        """The values stated, for the record of a run."""
        return {key: value for key, value in asdict(self).items() if value}

    def overridden_by(self, values):
        """self with values (key to text, checked already) in place of its own."""
        return replace(self, **values)


KEYS = tuple(field.name for field in fields(FolderMetadata))
NO_METADATA = FolderMetadata()
NOTE_KEY = "note"


def checked(values, where):
    """A FolderMetadata from a mapping of keys to text, each refused with where (a file or an option) and
    its key when it is unknown, not text, not an http(s) address where one is due, or against its column's
    rules (too long)."""
    for key, value in values.items():
        if key not in (*KEYS, NOTE_KEY):
            raise MetadataError(f'{where}: unknown key "{key}" (known: {", ".join(KEYS)}, {NOTE_KEY})')
        if not isinstance(value, str):
            raise MetadataError(f'{where}: "{key}" must be text, not {json.dumps(value)}')
        if key != NOTE_KEY:
            _check_column_value(key, value, where)
    return FolderMetadata(**{key: value for key, value in values.items() if key != NOTE_KEY})


def _check_column_value(key, value, where):
    if key in ADDRESS_KEYS and value and web_url_or_none(value) != value:
        raise MetadataError(f'{where}: "{key}" must be an http:// or https:// address, not {value!r}')
    try:  # the column's own rules: its length, an address's form
        CatalogImage._meta.get_field(key).run_validators(value)
    except ValidationError as exc:
        raise MetadataError(f'{where}: "{key}": {" ".join(exc.messages)}') from None


def read_file(path):
    """The FolderMetadata of a metadata file; MetadataError naming the file when it cannot be used."""
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise MetadataError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MetadataError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise MetadataError(f"{path}: not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(values, dict):
        raise MetadataError(f"{path}: must be a JSON object with some of the keys {', '.join(KEYS)}")
    return checked(values, path)


def of_folder(folder):
    """The metadata file in folder, read and checked; an empty FolderMetadata when it has none."""
    path = Path(folder) / METADATA_FILE
    return read_file(path) if path.exists() else NO_METADATA


def complete(metadata, where):
    """metadata, refused when it gives a licence address without the licence's name: a card would link
    "Licence unknown" to it."""
    if metadata.license_url and not metadata.license:
        raise MetadataError(f'{where}: "license_url" is given without "license", the licence\'s name')
    return metadata
