"""d500's checkable exercises (being written)."""
EXERCISES = ()
