"""JupyterHub for one vglab class on one machine: Unix users, the local-process spawner, nbgrader's formgrader.

Run as root (the hub starts each user's server as that user): ``jupyterhub -f jupyterhub_config.py``, after
``setup_class.py`` (README.md, "Running it for a class on JupyterHub").  Set the class here or in the
environment.  tests/test_hub.py starts a hub from exactly this file.
"""

import os
import pwd

c = get_config()  # noqa: F821

COURSE_ID = os.environ.get("VGLAB_COURSE_ID", "vglab")
INSTRUCTOR = os.environ.get("VGLAB_INSTRUCTOR", "instructor")
STUDENTS = os.environ.get("VGLAB_STUDENTS", "").split()  # Unix user names, separated by spaces
PREFIX = os.environ.get("VGLAB_HUB_PREFIX", "/opt/vglab-hub")  # `make hub-deps HUB_PREFIX=...`
COURSE_DIR = os.environ.get("VGLAB_COURSE_DIR") or os.path.join(pwd.getpwnam(INSTRUCTOR).pw_dir,
                                                                 f"{COURSE_ID}-course")
FORMGRADER_PORT = int(os.environ.get("VGLAB_FORMGRADER_PORT", "9999"))
BIN = os.path.join(PREFIX, "venv", "bin")

# Who may log in: the class.  The default authenticator checks the users' Unix passwords (PAM).
c.Authenticator.allowed_users = {INSTRUCTOR, *STUDENTS}
c.ConfigurableHTTPProxy.command = [os.path.join(PREFIX, "proxy", "node_modules", ".bin", "configurable-http-proxy")]

# Each user's JupyterLab runs as that user (the default LocalProcessSpawner) from the class venv; JAX on the CPU.
c.Spawner.cmd = [os.path.join(BIN, "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {
    "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
    "JAX_PLATFORMS": "cpu",
    # One CPU thread pool per kernel, not one per core: a class shares the machine's cores (benchmarks/README.md).
    "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
}

# The formgrader, as the hub service nbgrader documents: named after the course, run as the instructor in the
# course directory (its nbgrader_config.py sets CourseDirectory.root; without it the formgrader lists nothing),
# at /services/<course_id>/formgrader.  Open it in its own browser tab: JupyterHub >= 4.1 forbids showing
# it inside another page (the Formgrader menu's iframe), and only users with the role below may open it.
c.JupyterHub.services = [{
    "name": COURSE_ID,
    "url": f"http://127.0.0.1:{FORMGRADER_PORT}",
    "command": [os.path.join(BIN, "jupyterhub-singleuser"), f"--ServerApp.root_dir={COURSE_DIR}"],
    "user": INSTRUCTOR,
    "cwd": COURSE_DIR,
    "environment": {"PATH": c.Spawner.environment["PATH"], "JAX_PLATFORMS": "cpu",
                    "JUPYTERHUB_DEFAULT_URL": "/formgrader"},
    "oauth_no_confirm": True,
}]
c.JupyterHub.load_groups = {f"formgrade-{COURSE_ID}": {"users": [INSTRUCTOR]},
                            f"nbgrader-{COURSE_ID}": {"users": STUDENTS}}
c.JupyterHub.load_roles = [{
    "name": f"formgrade-{COURSE_ID}",
    "groups": [f"formgrade-{COURSE_ID}"],
    "scopes": [f"access:services!service={COURSE_ID}"],
}]
