"""Safe handling of the files users give and get: atomic writes that never leave a torn or
half-written file, and one-line messages for validation errors in what was loaded.

It imports nothing from the other packages, so every one of them can use it.
"""
