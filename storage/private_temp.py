"""Work folders in the system's temp space that only this user can enter (downloads, tracks, spill files).

A remote data root's videos, audio tracks, demo benchmark files and query spill files live in the temp
space under names every process of this machine can find again. A fixed name there (`/tmp/howto-videos`)
is one any user of the machine can create first: the stages then reused the videos planted in it as
downloads (`<id>.mp4`: features of someone else's files), wrote through the links planted in it (a
`<id>.noaudio` linked to a file of yours was emptied), and let others read the spill files of your queries.
Each user now gets their own folder (`howto-videos-<uid>`), made 0700, and one found there that is not
that (a link, another user's, open to others) is refused, never used.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


class UnsafeTempFolder(Exception):
    """A work folder in the temp space that another user could have made or can write: not used."""


def private_temp_dir(name: str) -> Path:
    """`<temp>/<name>-<uid>`, created 0700 if missing; UnsafeTempFolder when what is there is not a folder
    of this user's that only this user can enter (checked without following a link)."""
    path = Path(tempfile.gettempdir()) / f"{name}-{os.getuid()}"
    try:
        os.mkdir(path, 0o700)  # the umask cannot widen it; an existing one is checked below
    except FileExistsError:
        pass
    check_private(path)
    return path


def check_private(path: Path) -> None:
    """UnsafeTempFolder unless `path` is a real folder (not a link) owned by this user, closed to others."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a folder"
        raise UnsafeTempFolder(f"{path}: {what}; remove it (another user may have made it) and run again")
    if info.st_uid != os.getuid():
        raise UnsafeTempFolder(
            f"{path}: owned by another user (uid {info.st_uid}), who could plant files in it; remove it and "
            "run again"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH | stat.S_IRWXO):
        raise UnsafeTempFolder(
            f"{path}: open to other users (mode {stat.S_IMODE(info.st_mode):o}); chmod 700 it and run again"
        )
