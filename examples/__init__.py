"""Runnable examples of chronopype processors (not part of the installed packages)."""
