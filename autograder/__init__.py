"""Checks that hidden test cells call, and the pipeline that grades a class with nbgrader."""
