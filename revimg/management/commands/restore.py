from django.core.management.base import BaseCommand, CommandError

from catalog.embedding import MODEL_NAME, MODEL_VERSION
from revimg.backup_manifest import BackupError
from revimg.restore import restore


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup` into the database and the media storage (MEDIA_ROOT "
        "or the S3 bucket), then migrate. Stop the app and its workers first. Refuses a database that holds "
        "data unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("dir", help="the backup's folder")
        parser.add_argument(
            "--force", action="store_true", help="replace the data the database holds with the backup's"
        )

    def handle(self, dir, force, **options):
        try:
            manifest = restore(dir, force=force, stdout=self.stdout if options["verbosity"] > 1 else None)
        except BackupError as error:
            raise CommandError(str(error)) from None
        counts = manifest["counts"]
        self.stdout.write(
            f"restored {counts['classes']} classes and {counts['images']} images "
            f"({len(manifest['media'])} media files) from {dir}, backed up {manifest['created_at']}"
        )
        model = manifest["model"]
        if (model["name"], model["version"]) != (MODEL_NAME, MODEL_VERSION):
            self.stdout.write(
                f"its vectors were made by {model['name']} {model['version']}, not this revimg's model: "
                "`manage.py embed_images` makes them again"
            )
