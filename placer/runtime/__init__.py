"""Running a plan: one process per stage, activations passed through shared memory
(``placer run``).
"""
