"""Checks an edition passes before it goes (issue 15): accessibility so far."""
