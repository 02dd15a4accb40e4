"""d100's checkable exercises (being written)."""
EXERCISES = ()
