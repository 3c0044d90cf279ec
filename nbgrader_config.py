"""nbgrader settings: the lessons in notebooks/ are the one assignment, named "notebooks".

All of nbgrader's working folders (release, submitted, autograded, feedback, the gradebook)
live under _build/nbgrader, which git ignores. `make release` writes the student notebooks.
"""

c = get_config()  # noqa: F821  (injected by nbgrader)

c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "."
c.CourseDirectory.release_directory = "_build/nbgrader/release"
c.CourseDirectory.submitted_directory = "_build/nbgrader/submitted"
c.CourseDirectory.autograded_directory = "_build/nbgrader/autograded"
c.CourseDirectory.feedback_directory = "_build/nbgrader/feedback"
c.CourseDirectory.db_url = "sqlite:///_build/nbgrader/gradebook.db"
c.CourseDirectory.notebook_id = "*"
# Cells run under autograding have the same per-cell limit as the book build.
c.ExecutePreprocessor.timeout = 120
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
