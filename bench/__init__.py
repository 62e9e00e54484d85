"""solarsync benchmarks (issue 4): ``python -m bench`` or ``make bench``; see bench/README.md."""
