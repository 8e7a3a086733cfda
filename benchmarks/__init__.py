"""Benchmarks of neural_arch (run them as ``python -m benchmarks.<name>``)."""
