"""nbgrader's exchange for a class of Unix users on one machine: private submissions, forgeries refused.

nbgrader's ``nbgrader collect`` takes the student from the name of each folder in ``<exchange>/<course>/inbound/``
(``<student>+<assignment>+<timestamp>+<random>``), and every student can create folders there, so a student can
hand in work under another student's name; nbgrader only logs a warning (``CollectApp.check_owner``).  Each
submission folder is also left 0777, so whoever learns its name can replace its files.  ``OwnerCheckedCollect``
collects a submission only if the folder, and everything in it, is owned by the Unix user it names and contains
no symbolic link; for each student it collects the newest such submission and logs every one it refused.
``PrivateSubmit`` leaves the student's submission folder 0755 instead (readable by the instructor, who collects
it, and by whoever learns its random name; changeable by its author only).

Configured in the hub-wide nbgrader config written by ``setup_class.py``::

    c.ExchangeFactory.collect = "vglab_exchange.OwnerCheckedCollect"
    c.ExchangeFactory.submit = "vglab_exchange.PrivateSubmit"
"""

from __future__ import annotations

import os
import pwd

from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.exchange.default.submit import ExchangeSubmit


def forgery(path: str, student: str) -> str | None:
    """Why the submission folder ``path`` was not made by ``student``, or None if it was.

    Made by the student means: the student is a Unix user, and the folder and every file and folder inside
    it are owned by that user and none is a symbolic link (collect would copy the link's target, read with
    the instructor's rights).
    """
    try:
        uid = pwd.getpwnam(student).pw_uid
    except KeyError:
        return f"{student!r} is not a user of this machine"
    for directory, subdirectories, files in os.walk(path):
        for name in [directory, *(os.path.join(directory, entry) for entry in subdirectories + files)]:
            info = os.lstat(name)
            if os.path.islink(name):
                return f"{os.path.relpath(name, path)} is a symbolic link"
            if info.st_uid != uid:
                try:
                    owner = pwd.getpwuid(info.st_uid).pw_name
                except KeyError:
                    owner = f"uid {info.st_uid}"
                return f"{os.path.relpath(name, path)} is owned by {owner}, not by {student}"
    return None


class OwnerCheckedCollect(ExchangeCollect):
    """nbgrader's collect, keeping only submissions made by the student they name (see :func:`forgery`)."""

    def _path_to_record(self, path):
        record = super()._path_to_record(path)
        record["forgery"] = forgery(path, record["username"])
        if record["forgery"]:
            self.log.error("Refused submission %s: %s", record["filename"], record["forgery"])
        return record

    def _sort_by_timestamp(self, records):
        # Newest first, the genuine ones before any forged one, so each student's pick is their newest
        # genuine submission; forged picks (a student with nothing genuine) are dropped in init_src.
        newest_first = super()._sort_by_timestamp(records)
        return sorted(newest_first, key=lambda record: record["forgery"] is not None)

    def init_src(self):
        super().init_src()
        self.src_records = [record for record in self.src_records if record["forgery"] is None]


class PrivateSubmit(ExchangeSubmit):
    """nbgrader's submit, then the submission folder 0755: nobody but its author can change its files.

    (nbgrader makes it 0777 "so the instructor can delete later"; removing old submissions is then root's job.)
    """

    def copy_files(self):
        super().copy_files()
        os.chmod(os.path.join(self.inbound_path, self.assignment_filename), 0o755)
