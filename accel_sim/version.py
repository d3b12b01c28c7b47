"""The package version recorded in every result (keys results with the code that made them).

The one place the version is written: ``pyproject.toml`` reads it from here
(``[tool.setuptools.dynamic]``), so reading it costs no package-metadata scan (``cosim
--version`` stays fast). Result keys also carry a digest of the sources
(``studies.source_digest``), so an unchanged version never hides changed code.
"""

__version__ = "0.1.0"
