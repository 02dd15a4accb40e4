"""d380's checkable exercises (being written)."""
EXERCISES = ()
