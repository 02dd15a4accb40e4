"""d400's checkable exercises (being written)."""
EXERCISES = ()
