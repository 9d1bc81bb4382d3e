"""devicelab's benchmarks: each figure next to a ceiling measured in the same run on the same
machine. `make bench` (or `python -m bench`) runs them; docs/performance.md has the results."""
