"""d200's checkable exercises (being written)."""
EXERCISES = ()
