"""Emitters: pure functions from the checked model to LaTeX, RST/HTML and vectors."""
