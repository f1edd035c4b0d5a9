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

# Big outputs (a student printing a whole matrix in a loop) are cut rather than stored in the gradebook.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60
