"""nbgrader settings: the lessons in notebooks/ are the one assignment, named "notebooks".

All of nbgrader's working folders (release, submitted, autograded, feedback, the gradebook)
live under _build/nbgrader, which git ignores, and `make clean` leaves alone. `make release`
writes the student notebooks.
"""

import os

c = get_config()  # noqa: F821  (injected by nbgrader)

# An absolute root (the folder of this file) keeps nbgrader from warning on every command that
# the root "is not absolute".
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "."
c.CourseDirectory.release_directory = "_build/nbgrader/release"
c.CourseDirectory.submitted_directory = "_build/nbgrader/submitted"
c.CourseDirectory.autograded_directory = "_build/nbgrader/autograded"
c.CourseDirectory.feedback_directory = "_build/nbgrader/feedback"
c.CourseDirectory.db_url = "sqlite:///_build/nbgrader/gradebook.db"
c.CourseDirectory.notebook_id = "*"
# Cells run under autograding have the same per-cell limit as the book build.
c.ExecutePreprocessor.timeout = 120
# `nbgrader export` writes the grades next to the gradebook, not into the repository.
c.CsvExportPlugin.to = "_build/nbgrader/grades.csv"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
