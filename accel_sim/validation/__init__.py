"""Reference simulators and analytical bounds the engine is checked against."""
