"""``JudgedExecute``: nbgrader's Execute, then the out-of-kernel judges of ``vglab.course.grading``.

The course's nbgrader_config.py puts it in place of ``nbgrader.preprocessors.Execute`` in
``c.Autograde.autograde_preprocessors``, so it runs in nbgrader's process, after the sanitising steps
(ClearOutput, OverwriteCells: outputs cleared, locked cells and hidden tests restored) and before SaveAutoGrades.
For each notebook it

1. gives the kernel that student's key, ``VGLAB_GRADING_KEY = grading_key(secret, assignment, student)``, and
   never the secret itself (``VGLAB_GRADING_SECRET`` is removed from this process's environment when this
   module is imported, i.e. before the first kernel starts);
2. executes the notebook (nbgrader's Execute, unchanged: timeouts, interrupts, errors);
3. judges every autograded code cell that has a judge: its record (a display output of MIME ``grading.MIME``)
   is removed from the outputs and checked with clean references; a wrong, malformed or missing answer puts an
   error output first in the cell (nbgrader scores a cell with an error 0, and reads outputs in order, so no
   student output before it can claim partial credit).  A graded cell without a judge keeps the kernel's
   verdict, with a warning in the log.

The judges import vglab and JAX here, when this module is imported (before any student's kernel runs), and
JAX's persistent compilation cache is switched off in this process: the kernels may share one, and a student
could write into it.  ``c.JudgedExecute.compilation_cache_dir`` gives the judges a cache of their own.
"""

from __future__ import annotations

import os
import time

import jax
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Unicode, default

import vglab  # noqa: F401  (imported now, before any student code runs)
import vglab.course.rescue  # noqa: F401
from vglab.course import grading

_SECRET = os.environ.pop(grading.SECRET_ENV, "")
jax.config.update("jax_enable_compilation_cache", False)


def _failure(grade_id: str, message: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename="GradingError", evalue=message,
                        traceback=[f"\x1b[0;31mGradingError\x1b[0m: {grade_id} (checked outside your kernel): "
                                   f"{message}"])


class JudgedExecute(Execute):
    """nbgrader's Execute followed by the out-of-kernel judges (see the module docstring)."""

    secret = Unicode(help="The instructor's grading secret; defaults to $VGLAB_GRADING_SECRET at start-up. "
                          "Hidden test inputs are derived from it, per assignment and student.").tag(config=True)

    compilation_cache_dir = Unicode(
        "", help="A JAX compilation cache for the judges only (not the kernels'), to compile each program once "
                 "across autograde runs; empty: none.  Like every file, a kernel running as you could write "
                 "into it (README, Threat model).").tag(config=True)

    @default("secret")
    def _secret_default(self):
        return _SECRET

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.compilation_cache_dir and jax.config.jax_compilation_cache_dir != self.compilation_cache_dir:
            os.makedirs(self.compilation_cache_dir, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", self.compilation_cache_dir)
            jax.config.update("jax_enable_compilation_cache", True)

    def preprocess(self, nb, resources=None, km=None):
        info = resources["nbgrader"]
        if not self.secret:
            self.log.warning("No grading secret (set %s or c.JudgedExecute.secret): the hidden tests' inputs "
                             "are the public defaults", grading.SECRET_ENV)
        key = grading.grading_key(self.secret or grading.PUBLIC_SECRET, info["assignment"], info["student"])
        saved = os.environ.get(grading.KEY_ENV)
        os.environ[grading.KEY_ENV] = key
        os.environ.pop(grading.SECRET_ENV, None)
        try:
            nb, resources = super().preprocess(nb, resources, km=km)
        finally:
            if saved is None:
                os.environ.pop(grading.KEY_ENV, None)
            else:
                os.environ[grading.KEY_ENV] = saved
        self.judge_notebook(nb, info["notebook"], key)
        return nb, resources

    def judge_notebook(self, nb, notebook: str, key: str) -> None:
        start = time.perf_counter()
        for cell in nb.cells:
            if cell.cell_type != "code" or not utils.is_grade(cell):
                continue
            grade_id = cell.metadata.nbgrader.get("grade_id")
            outputs = cell.get("outputs", [])
            records = [out for out in outputs if out.get("output_type") == "display_data"
                       and grading.MIME in out.get("data", {})]
            cell.outputs = [out for out in outputs if not any(out is record for record in records)]
            test = grading.JUDGES.get(grade_id)
            if test is None or test.notebook != notebook:
                self.log.warning("%s/%s has no out-of-kernel judge: its score trusts the student's kernel",
                                 notebook, grade_id)
                continue
            if any(out.output_type == "error" or out.output_type == "stream" and out.get("name") == "stderr"
                   for out in cell.outputs):
                continue  # already scored 0 by nbgrader
            mine = [r.data[grading.MIME] for r in records
                    if isinstance(r.data[grading.MIME], dict) and r.data[grading.MIME].get("test") == grade_id]
            failure = grading.judge(grade_id, mine[-1] if mine else None, key)
            if failure is not None:
                self.log.info("%s/%s fails outside the kernel: %s", notebook, grade_id, failure)
                cell.outputs.insert(0, _failure(grade_id, failure))
        self.log.info("Judged %s outside the kernel in %.1f s", notebook, time.perf_counter() - start)
