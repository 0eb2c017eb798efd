from django.core.management.base import BaseCommand, CommandError

from revimg.backup import make_backup
from revimg.backup_manifest import BackupError


class Command(BaseCommand):
    help = (
        "Back up the database (pg_dump) and the media files its rows refer to, from one snapshot, into DIR "
        "(a new or empty folder). The app may keep running."
    )

    def add_arguments(self, parser):
        parser.add_argument("dir", help="the folder to write the backup into (new, or empty)")

    def handle(self, dir, **options):
        try:
            manifest = make_backup(dir)
        except BackupError as error:
            raise CommandError(str(error)) from None
        counts = manifest["counts"]
        media_bytes = sum(entry["size"] for entry in manifest["media"])
        self.stdout.write(
            f"backed up {counts['classes']} classes and {counts['images']} images into {dir}: "
            f"database {manifest['database']['size']:,} bytes, {len(manifest['media'])} media files "
            f"{media_bytes:,} bytes"
        )
        if manifest["missing_media"]:
            self.stderr.write(
                f"{len(manifest['missing_media'])} media files named by rows were not in the media storage "
                f"(deleted while the backup ran, or lost before): {', '.join(manifest['missing_media'][:5])}"
            )
