from django.core.management.base import BaseCommand, CommandError

from catalog.progress import progress_bar
from catalog.store import MediaWriteError
from ingest import folder_metadata
from ingest.folder_metadata import METADATA_FILE, MetadataError
from ingest.pipeline import run_import


class Command(BaseCommand):
    help = (
        "Import a folder of images: each immediate subfolder is a class (underscores read as spaces). Every "
        f"picture gets the licence and credit of the folder's {METADATA_FILE} (keys: "
        f"{', '.join(folder_metadata.KEYS)}) and of the options, which win over the file."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--license", help='The licence\'s name, e.g. "CC BY 4.0"')
        parser.add_argument("--license-url", help="The licence's text (an http(s) address)")
        parser.add_argument("--attribution", help="The credit the licence asks for: authors, work, year")
        parser.add_argument("--source-url", help="Where the pictures come from (an http(s) address)")
        parser.add_argument("--no-progress", action="store_true", help="Do not show a progress bar")

    def handle(self, directory, no_progress=False, **options):
        try:
            metadata = self.metadata(directory, options)
            summary = run_import(directory, metadata, progress=progress_bar(not no_progress, unit="img"))
        except (MetadataError, MediaWriteError, OSError) as exc:
            # One line naming the file, option or folder and the reason (--traceback shows the rest): wrong
            # metadata, a missing or unreadable import folder, or a media folder that takes no files.
            raise CommandError(str(exc)) from exc
        for path, reason in summary.failures:
            self.stderr.write(f"failed: {path}: {reason}")
        self.stdout.write(self.style.SUCCESS(str(summary)))

    def metadata(self, directory, options):
        """The folder's metadata file with the options given in its place, each checked."""
        given = {key: options[key] for key in folder_metadata.KEYS if options.get(key) is not None}
        for key, value in given.items():
            folder_metadata.checked({key: value}, f"--{key.replace('_', '-')}")
        stated = folder_metadata.of_folder(directory).overridden_by(given)
        return folder_metadata.complete(stated, f"{directory} (its {METADATA_FILE} and the options)")
