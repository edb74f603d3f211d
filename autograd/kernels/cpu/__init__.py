"""Numba CPU kernels: pure functions on NumPy arrays, each beside its plain NumPy reference."""
