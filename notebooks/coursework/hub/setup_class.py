#!/usr/bin/env python3
"""Set up one vglab class on a JupyterHub machine: private homes, the instructor's course, nbgrader's exchange.

Run as root, once, after the users exist (and again when students join: it only tightens and adds)::

    python3 setup_class.py --instructor alice --students bob carol dave \\
        --exchange /srv/nbgrader/exchange --config-dir /etc/jupyter

What it does (README.md, "Running it for a class on JupyterHub", says why):

1. every listed user's home becomes 0700: nobody else reads the instructor's solutions, hidden tests and
   gradebook, or another student's working notebooks (Debian's ``useradd -m`` makes homes 0755);
2. the course (this directory's ``../nbgrader_config.py`` and ``../source/``) is copied to the instructor's
   ``~/<course_id>-course`` (or ``--course-dir``), owned by the instructor, 0700, and the instructor's
   ``~/.jupyter/nbgrader_config.py`` points nbgrader there (``CourseDirectory.root``);
3. the exchange is created: its root 1777, and ``<course_id>/`` with ``outbound/`` 0755, ``feedback/`` 0711
   and ``inbound/`` 3733 (writable by everyone, listable by the instructor only, and sticky: a student
   cannot rename or delete another's submission), all owned by the instructor;
4. the hub-wide nbgrader config (``<config-dir>/nbgrader_config.py``, read by every user's server) names the
   course and the exchange and makes ``nbgrader collect`` refuse submissions not made by the student they
   name, and ``nbgrader submit`` leave each submission changeable by its author only (``vglab_exchange.py``,
   copied next to it).
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COURSE_SOURCE = HERE.parent  # notebooks/coursework

GLOBAL_CONFIG = '''\
"""nbgrader settings for every user of this hub (written by vglab's setup_class.py)."""
import os
import sys

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.Exchange.root = {exchange!r}
# nbgrader collect takes only submissions made by the student they name (vglab_exchange.py, next to this file).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
c.ExchangeFactory.collect = "vglab_exchange.OwnerCheckedCollect"
# nbgrader submit leaves each submission folder 0755, not 0777: only its author can change it.
c.ExchangeFactory.submit = "vglab_exchange.PrivateSubmit"
'''

INSTRUCTOR_CONFIG = '''\
"""The instructor's nbgrader settings (written by vglab's setup_class.py): the course lives here."""
c = get_config()  # noqa: F821
c.CourseDirectory.root = {course_dir!r}
'''


def user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        sys.exit(f"setup_class.py: no Unix user {name!r}; create the accounts first (e.g. useradd -m {name})")


def chown_tree(path: Path, account: pwd.struct_passwd) -> None:
    for directory, _, files in os.walk(path):
        os.chown(directory, account.pw_uid, account.pw_gid)
        for name in files:
            os.chown(os.path.join(directory, name), account.pw_uid, account.pw_gid)


def make_dir(path: Path, mode: int, owner: pwd.struct_passwd | None = None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    os.chmod(path, mode)  # after chown: chown clears the set-group-ID bit


def setup(instructor: str, students: list[str], course_id: str, exchange: Path, config_dir: Path,
          course_dir: Path | None = None) -> Path:
    """Do steps 1–4 of the module docstring; returns the course directory."""
    teacher = user(instructor)
    accounts = [teacher, *(user(name) for name in students)]
    for account in accounts:  # 1. private homes
        os.chmod(account.pw_dir, 0o700)

    course_dir = course_dir or Path(teacher.pw_dir) / f"{course_id}-course"  # 2. the course
    course_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(COURSE_SOURCE / "nbgrader_config.py", course_dir / "nbgrader_config.py")
    shutil.copytree(COURSE_SOURCE / "source", course_dir / "source", dirs_exist_ok=True)
    jupyter_dir = Path(teacher.pw_dir) / ".jupyter"
    jupyter_dir.mkdir(exist_ok=True)
    (jupyter_dir / "nbgrader_config.py").write_text(INSTRUCTOR_CONFIG.format(course_dir=str(course_dir)))
    for path in (course_dir, jupyter_dir):
        chown_tree(path, teacher)
        os.chmod(path, 0o700)

    make_dir(exchange, 0o1777)  # 3. the exchange
    make_dir(exchange / course_id, 0o755, teacher)
    make_dir(exchange / course_id / "outbound", 0o755, teacher)
    make_dir(exchange / course_id / "feedback", 0o711, teacher)
    make_dir(exchange / course_id / "inbound", 0o3733, teacher)

    config_dir.mkdir(parents=True, exist_ok=True)  # 4. the hub-wide nbgrader config
    (config_dir / "nbgrader_config.py").write_text(
        GLOBAL_CONFIG.format(course_id=course_id, exchange=str(exchange)))
    shutil.copy(HERE / "vglab_exchange.py", config_dir / "vglab_exchange.py")
    for name in ("nbgrader_config.py", "vglab_exchange.py"):
        os.chmod(config_dir / name, 0o644)
    return course_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instructor", required=True, help="the instructor's Unix user name")
    parser.add_argument("--students", nargs="+", required=True, help="the students' Unix user names")
    parser.add_argument("--course-id", default="vglab")
    parser.add_argument("--exchange", type=Path, default=Path("/srv/nbgrader/exchange"))
    parser.add_argument("--config-dir", type=Path, default=Path("/etc/jupyter"),
                        help="a directory on every user's Jupyter config path")
    parser.add_argument("--course-dir", type=Path, help="default: ~<instructor>/<course-id>-course")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("setup_class.py must run as root (it changes other users' homes)")
    course_dir = setup(args.instructor, args.students, args.course_id, args.exchange, args.config_dir,
                       args.course_dir)
    print(f"course {args.course_id!r}: {course_dir} (instructor {args.instructor}, {len(args.students)} students), "
          f"exchange {args.exchange}, nbgrader config {args.config_dir / 'nbgrader_config.py'}")


if __name__ == "__main__":
    main()
