"""Backup and restore of the messaging homeserver's state: its database and its media.

On AWS the homeserver's state is an RDS PostgreSQL instance (AWS Backup takes RDS
snapshots; a restore is ``RestoreDBInstanceFromDBSnapshot`` into a **new** instance)
and the media bucket (S3 versions, as for the shard bucket: :mod:`infra.recovery`).
The emulator has no RDS snapshot restore, and the local homeserver runs on SQLite, so
the drill (``tests/app/messaging/test_messaging_restore_drill.py``, the runbook in
``docs/disaster-recovery.md``) stands in for the snapshot with SQLite's online backup
API: a consistent copy of the database taken while Synapse runs and writes (Synapse runs
SQLite in WAL mode, so a plain copy of the file can miss committed transactions still in
the write-ahead log; the backup API reads through SQLite and cannot). The media bucket
uses :func:`infra.recovery.inventory_bucket` and :func:`infra.recovery.restore_bucket`
unchanged, as on AWS.

Guarantees: a restore writes only a new database file (it refuses an existing one);
the backup and the restored copy pass SQLite's integrity check; the restored copy holds
exactly the rooms, current memberships and events the backup held (compared, not
assumed), or :class:`infra.recovery.RestoreError` is raised and nothing is reported as
restored. What the database holds of a message is what the homeserver held: Megolm
ciphertext (end-to-end encryption: the keys are on the doctors' devices, never in the
backup).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from infra.recovery import RestoreError


@dataclass(frozen=True)
class HomeserverState:
    """What a homeserver database holds that a restore must bring back (identifiers only,
    never content): its rooms, who is in which room and how, and every event."""

    rooms: frozenset[str]
    # (room id, user id, membership) for every local user's current membership
    memberships: frozenset[tuple[str, str, str]]
    events: frozenset[str]


@dataclass(frozen=True)
class HomeserverDatabaseBackup:
    """A consistent copy of the homeserver's database and what it holds."""

    path: Path
    state: HomeserverState


def homeserver_state(database: Path) -> HomeserverState:
    """The rooms, current memberships and event ids in a Synapse SQLite database (read
    only).

    Raises:
        RestoreError: the file is not a Synapse database SQLite can read.
    """
    try:
        with _read_only(database) as db:
            rooms = frozenset(r for (r,) in db.execute("SELECT room_id FROM rooms"))
            memberships = frozenset(
                (str(room), str(user), str(membership))
                for room, user, membership in db.execute(
                    "SELECT room_id, user_id, membership FROM local_current_membership"
                )
            )
            events = frozenset(e for (e,) in db.execute("SELECT event_id FROM events"))
    except sqlite3.Error as error:
        raise RestoreError(
            f"{database.name}: not a readable homeserver database ({error})"
        ) from None
    return HomeserverState(rooms, memberships, events)


def backup_homeserver_database(database: Path, target: Path) -> HomeserverDatabaseBackup:
    """Copy the homeserver's SQLite database to ``target`` with SQLite's online backup
    API, while the homeserver runs (the emulator's stand-in for an RDS snapshot).

    Raises:
        RestoreError: ``target`` exists, the database cannot be read, or the copy fails
            SQLite's integrity check.
    """
    if target.exists():
        raise RestoreError(f"{target}: a backup is never written over an existing file")
    if not database.is_file():
        raise RestoreError(f"{database}: no homeserver database to back up")
    target.parent.mkdir(parents=True, exist_ok=True)
    _online_copy(database, target)
    return HomeserverDatabaseBackup(target, homeserver_state(target))


def restore_homeserver_database(
    backup: HomeserverDatabaseBackup, database: Path
) -> HomeserverState:
    """Restore ``backup`` into a new database file ``database`` (for a new homeserver:
    never over a live one) and check it holds what the backup held.

    Returns:
        What the restored database holds (equal to ``backup.state``).

    Raises:
        RestoreError: ``database`` exists, the backup file is missing or damaged, or
            the restored copy does not hold the backup's rooms, memberships and events.
    """
    if database.exists():
        raise RestoreError(f"{database}: a restore never writes over an existing database")
    if not backup.path.is_file():
        raise RestoreError(f"{backup.path}: the backup is missing")
    database.parent.mkdir(parents=True, exist_ok=True)
    _online_copy(backup.path, database)
    restored = homeserver_state(database)
    if restored != backup.state:
        database.unlink()
        raise RestoreError(
            f"{database.name}: the restored copy differs from the backup "
            f"({len(restored.rooms)}/{len(backup.state.rooms)} rooms, "
            f"{len(restored.events)}/{len(backup.state.events)} events)"
        )
    return restored


def _online_copy(source: Path, target: Path) -> None:
    """SQLite's backup API: one consistent snapshot of ``source`` (committed
    transactions, the write-ahead log's included), checked before it is kept."""
    try:
        with _read_only(source) as src:
            copy = sqlite3.connect(target)
            try:
                src.backup(copy)
                (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
            finally:
                copy.close()
    except sqlite3.Error as error:
        target.unlink(missing_ok=True)
        raise RestoreError(f"{source.name}: the copy failed ({error})") from None
    if verdict != "ok":
        target.unlink(missing_ok=True)
        raise RestoreError(f"{source.name}: the copy fails SQLite's integrity check")


def _read_only(database: Path) -> closing[sqlite3.Connection]:
    """A read-only connection, closed on exit (sqlite3's own context manager only
    commits)."""
    return closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True))
