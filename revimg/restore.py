"""`manage.py restore DIR`: a backup (revimg.backup) back into the database and the media storage.

Order, so that a refusal or a failure loses nothing:
1. The backup is checked against its manifest (the dump whole, then each media file while it is copied
   into a staging folder inside MEDIA_ROOT, or read before any is uploaded to the S3 bucket) before
   anything outside that folder changes.
2. The media files are moved into place before the rows that name them are restored, as catalog.store
   writes them. They are named by content, so one already there is the same picture.
3. The database is replaced in one transaction (psql running pg_restore's script after dropping the
   schema's tables, committed only when the script came whole): it ends up as the backup held it, or
   stays as it was.
4. migrate brings a backup of an older revimg forward.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.cache.backends.db import DatabaseCache
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.utils.module_loading import import_string

from catalog import objectstore

from .backup_manifest import DUMP, MEDIA, BackupError, copy_hashed, file_entry, read_manifest, verify_entry
from .pgtools import connection_args, error_gist, server_major, tool_folder

# Tables that migrate fills by itself: rows there are no data a restore would destroy.
FILLED_BY_MIGRATE = {"django_migrations", "django_content_type", "auth_permission"}

# Run before pg_restore's script, in its transaction. A session still using a table (a running app
# server) would hold the restore up forever: lock_timeout turns that into an error.
DROP_TABLES = """
SET LOCAL lock_timeout = '10s';
SET LOCAL client_min_messages = warning;
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', t.tablename);
    END LOOP;
END $$;
"""


def restore(folder, force=False, stdout=None):
    """Restore the backup in folder; refuses a database holding data unless force. Returns the manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    _verify_dump(folder, manifest["database"])
    if not force:
        _refuse_data()
    restore_media(folder, manifest["media"])
    restore_database(folder / DUMP)
    call_command("migrate", interactive=False, verbosity=0 if stdout is None else 1, stdout=stdout)
    return manifest


def _verify_dump(folder, expected):
    path = folder / DUMP
    if not path.is_file():
        raise BackupError(f"the backup does not match its manifest: {DUMP} is missing")
    verify_entry(DUMP, expected, file_entry(path))


def tables_holding_data():
    """The tables of the database that hold rows a restore would replace."""
    ignored = FILLED_BY_MIGRATE | set(_cache_tables())
    held = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if table not in ignored:
                cursor.execute(f"SELECT EXISTS (SELECT FROM {connection.ops.quote_name(table)})")
                if cursor.fetchone()[0]:
                    held.append(table)
    return held


def _cache_tables():
    # The shared cache (rate-limit counts) is disposable.
    for cache in settings.CACHES.values():
        if issubclass(import_string(cache["BACKEND"]), DatabaseCache):
            yield cache["LOCATION"]


def _refuse_data():
    held = tables_holding_data()
    if held:
        raise BackupError(
            f"the database holds data ({', '.join(held)}): restore replaces all of it, and does so only "
            "when told to with --force"
        )


def restore_media(folder, entries):
    """Put the backup's media files into the media storage, each checked against the manifest first."""
    if objectstore.is_object_storage():
        _upload_media(_checked_sources(folder, entries))
        return
    staging = _stage_media(folder, entries)
    try:
        _place_media(staging, entries)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _checked_sources(folder, entries):
    """[(name, path in the backup)] once every file there is what the manifest says."""
    sources = []
    for entry in entries:
        source = _backup_file(folder, entry)
        verify_entry(f"{MEDIA}/{entry['name']}", entry, file_entry(source))
        sources.append((entry["name"], source))
    return sources


def _upload_media(sources):
    """Each file to the bucket: a PUT lands whole or not at all, and one already there is the same picture."""
    for name, source in sources:
        try:
            with open(source, "rb") as reader:
                default_storage.save(name, File(reader))
        except objectstore.STORAGE_ERRORS as error:
            raise BackupError(
                f"cannot write {name} to the media storage {objectstore.describe()}: "
                f"{objectstore.reason(error)}; the database is unchanged"
            ) from error


def _backup_file(folder, entry):
    source = folder / MEDIA / entry["name"]
    if not source.is_file():
        raise BackupError(f"the backup does not match its manifest: {MEDIA}/{entry['name']} is missing")
    return source


def _stage_media(folder, entries):
    """Copy the backup's media into a staging folder inside MEDIA_ROOT, each file checked on the way."""
    root = Path(settings.MEDIA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=root))
    try:
        for entry in entries:
            source = _backup_file(folder, entry)
            size, sha256 = copy_hashed(source, staging / entry["name"])
            verify_entry(f"{MEDIA}/{entry['name']}", entry, {"size": size, "sha256": sha256})
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _place_media(staging, entries):
    root = Path(settings.MEDIA_ROOT)
    for entry in entries:
        target = root / entry["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        (staging / entry["name"]).replace(target)


def restore_database(dump):
    """Replace the database's tables with the dump's, in one transaction."""
    tools = tool_folder(server_major(connection))
    conninfo, env = connection_args(connection)
    # Ours must hold nothing the script's DROP TABLE would wait for, nor cache what it replaces.
    connection.close()
    with tempfile.TemporaryFile() as psql_errors, tempfile.TemporaryFile() as script_errors:
        psql = subprocess.Popen(
            [tools / "psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", f"--dbname={conninfo}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_errors,
            env=env,
        )
        script = subprocess.Popen(
            # Objects end up owned by the user restoring; grants and comments (the extension's) would need
            # the original roles and ownerships, which another server may not have.
            [tools / "pg_restore", "--no-owner", "--no-privileges", "--no-comments", "--file=-", dump],
            stdout=subprocess.PIPE,
            stderr=script_errors,
            env=env,
        )
        _feed(psql, script)
        failure = _restore_failure(psql, _read(psql_errors), script, _read(script_errors))
    if failure:
        raise BackupError(failure)


def _feed(psql, script):
    """Send psql the transaction: BEGIN, DROP_TABLES, pg_restore's script, and COMMIT only once pg_restore
    has finished well. Without the COMMIT (a pg_restore cut short), psql's session ends and the server
    rolls the whole transaction back."""
    try:
        psql.stdin.write(f"BEGIN;\n{DROP_TABLES}\n".encode())
        shutil.copyfileobj(script.stdout, psql.stdin)
        if script.wait() == 0:
            psql.stdin.write(b"COMMIT;\n")
        psql.stdin.close()
    except BrokenPipeError:
        # psql stopped at an error (ON_ERROR_STOP): its stderr says which.
        script.kill()
    script.wait()
    script.stdout.close()
    psql.wait()


def _read(file):
    file.seek(0)
    return file.read().decode(errors="replace")


def _restore_failure(psql, psql_stderr, script, script_stderr):
    # When pg_restore says what went wrong, that is the cause (a script cut short makes psql stumble too);
    # when psql stopped first, _feed ended pg_restore, which then says nothing.
    if script.returncode != 0 and script_stderr.strip():
        return f"pg_restore failed, and the database is unchanged: {error_gist(script_stderr)}"
    if psql.returncode != 0:
        gist = error_gist(psql_stderr)
        if "lock timeout" in gist:
            gist += " (another session is using the database: stop the app and its workers first)"
        return f"restoring the database failed, and it is unchanged: {gist}"
    if script.returncode != 0:
        return f"pg_restore ended with status {script.returncode}, and the database is unchanged"
    return None
