"""Where the database lives and how its file and directory are created (0600 in 0700)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import platformdirs

ENV_DB = "SMSDESK_DB"


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("smsdesk", appauthor=False)) / "smsdesk.db"


def resolve_db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env).expanduser()
    return default_db_path()


def beside_database(db_path: Path | str, suffix: str) -> Path:
    """The file `<database><suffix>` next to the database itself, whatever name it was opened by.

    SQLite follows a symlink to find the database's WAL, so the files that belong to the
    database (the sender lock, the answer journal, the pull spool) follow it too: two serves on
    one file by two names must find the same lock, and a restart by the other name the journal.
    """
    return Path(os.path.realpath(db_path) + suffix)


def beside_database_name(db_path: Path | str, suffix: str) -> Path | None:
    """Where smsdesk 0.2 kept that file: beside the name the database was opened by, when that
    name is a symlink (None when it is the same place). A spool or journal left there by 0.2
    must still be read, and a 0.2 serve started by that name still holds its lock there."""
    absolute = os.path.abspath(db_path)
    named = Path(os.path.realpath(os.path.dirname(absolute))) / (os.path.basename(absolute) + suffix)
    return None if named == beside_database(db_path, suffix) else named


def _make_private_dirs(directory: Path) -> None:
    """Create `directory` and each missing ancestor 0700, whatever the umask.

    mkdir(parents=True) gives the ancestors it creates the umask's mode (0777 under umask 000),
    and only the last one `mode`: here every directory created is made, and then chmod-ed, 0700.
    """
    missing: list[Path] = []
    current = directory
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made by someone else in between: theirs, left alone
        os.chmod(created, 0o700)


def prepare_private_file(path: Path) -> None:
    """Create the parent directory 0700 and the file 0600 before SQLite opens it.

    SQLite gives its -wal and -shm files the mode of the main file, so they stay private too.
    An existing directory we did not create is left alone (it may be /tmp); every directory
    created here, ancestors included, is forced to 0700.

    The file is opened here only when it does not exist yet. Closing any descriptor of a file
    drops every POSIX lock this process holds on it, including the locks of SQLite connections
    already open, after which another process may take itself for the last user and delete
    the WAL under us (found by the SIGKILL test). So an existing file is only chmod-ed.
    """
    _make_private_dirs(path.parent)
    if path.exists() and not path.is_file():
        # a directory or a device such as /dev/null: not a database, and never ours to chmod
        raise OSError(f"{path} is not a regular file")
    if not path.exists():
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # created by someone else in between: it is theirs to have made, we only chmod
        else:
            os.close(fd)
    if (path.stat().st_mode & 0o777) != 0o600:
        os.chmod(path, 0o600)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists() and (side.stat().st_mode & 0o077):
            os.chmod(side, 0o600)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data`: a short write (a full disk, a signal) is continued where it
    stopped, and a write that writes nothing is ENOSPC, never taken for done. The answer journal
    and the pull spool write through it."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no byte could be written")
        view = view[written:]
