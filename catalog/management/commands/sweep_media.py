from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from catalog import sweep

DEFAULT_MINUTES = int(sweep.DEFAULT_GRACE.total_seconds() // 60)


class Command(BaseCommand):
    help = (
        "Remove image files in the media storage (MEDIA_ROOT or the S3 bucket) that no row refers to "
        "(left by a killed or failed import), sparing files written within the grace period: safe while "
        "imports run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=DEFAULT_MINUTES,
            help=f"Spare files written less than this long ago: they may be in flight (default {DEFAULT_MINUTES})",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be removed; remove nothing"
        )

    def handle(self, grace_minutes, dry_run=False, **options):
        if grace_minutes < 0:
            raise CommandError(f"--grace-minutes must be 0 or more, not {grace_minutes}")
        grace = timedelta(minutes=grace_minutes)
        if dry_run:
            self.list_orphans(sweep.find_orphans(grace))
            return
        summary = sweep.sweep_media(grace)
        for name, reason in summary.failed:
            self.stderr.write(f"could not remove {name}: {reason}")
        if options["verbosity"] >= 2:
            for name in summary.removed:
                self.stdout.write(f"removed {name}")
        self.stdout.write(self.style.SUCCESS(str(summary)))

    def list_orphans(self, orphans):
        for orphan in orphans:
            self.stdout.write(f"would remove {orphan.name} ({orphan.size} bytes)")
        total = sum(orphan.size for orphan in orphans)
        self.stdout.write(f"dry run: {len(orphans)} files would be removed, {total} bytes freed")
