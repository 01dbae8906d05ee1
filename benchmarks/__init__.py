"""The benchmark (`python -m benchmarks.bench`, run from the repository root) and the seed notebooks'
training loop it measures against; outside the installed packages, which never import them."""
