"""nbgrader configuration of the vglab course.  Run every nbgrader command from this directory.

See README.md here for the release → collect → autograde → grade → feedback workflow.
"""

import os

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

# The course: source/<assignment>/<notebook>.ipynb live next to this file; nbgrader creates release/,
# submitted/, autograded/, feedback/ and gradebook.db here too.
c.CourseDirectory.course_id = "vglab"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))

# Released notebooks get this stub where the solution was.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading runs every notebook top to bottom on CPU (no GPU needed); a cell that runs longer than this many
# seconds (an infinite loop, a huge network) is interrupted, scored zero, and grading goes on with the next.
# Each reference solution runs in well under a minute in total.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
# A cell's last outputs may arrive seconds after its reply on a busy grading machine; nbgrader's 4 s default
# then fails the whole notebook ("Timeout waiting for IOPub output"), not just the cell.
c.Execute.iopub_timeout = 30

# Big outputs (a student printing a whole matrix in a loop) are cut rather than stored in the gradebook.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60

# Grades that cannot be faked from the notebook (README, "Threat model"): nbgrader's Execute is replaced by
# vglab's JudgedExecute, which runs the notebook the same way and then checks the answers each test cell
# recorded, outside the student's kernel, on inputs drawn from the instructor's secret.  Set the secret in the
# environment of `nbgrader autograde` (export VGLAB_GRADING_SECRET=...) or here: c.JudgedExecute.secret = "...".
# The kernel never sees it (only a key derived per assignment and student).
# A test cell the student deleted or un-tagged is put back (nbgrader would otherwise leave its score empty, not 0),
# and runs and is judged like the others.
c.OverwriteCells.add_missing_cells = True

from nbgrader.converters.autograde import Autograde  # noqa: E402
from nbgrader.preprocessors import Execute  # noqa: E402

c.Autograde.autograde_preprocessors = [
    "vglab.course.autograde.JudgedExecute" if step is Execute else step
    for step in Autograde.class_traits()["autograde_preprocessors"].default()
]

# nbgrader 0.9's gradebook under SQLAlchemy 2 warns "SAWarning: Object of type <SubmittedAssignment> not in
# session, add operation along 'Student.submissions' will not proceed" when autograde creates a submission:
# it builds the submission's rows (nbgrader/api.py, add_submission) and reading assignment.notebooks on the way
# makes SQLAlchemy flush before nbgrader adds them to the session a few lines later.  The rows and scores are
# stored all the same (tests read them back), so that message, and only it, is silenced.
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session", module="nbgrader")
