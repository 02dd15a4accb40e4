"""d300's checkable exercises (being written)."""
EXERCISES = ()
