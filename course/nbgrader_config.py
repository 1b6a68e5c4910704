"""nbgrader configuration of the course.

The grading pipeline (``python -m autograder grade``) copies this file into its own working course
and adds the settings that only grading needs, so release and validation use exactly these.
"""

c = get_config()  # noqa: F821 (nbgrader defines get_config when it loads this file)

c.CourseDirectory.course_id = "cnn-rnn-from-scratch"
c.CourseDirectory.root = __import__("os").path.dirname(__import__("os").path.abspath(__file__))

# Only notebooks are released; run-time caches never are.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# The stub that replaces each "### BEGIN SOLUTION ... ### END SOLUTION" region in the release.
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
