"""Numba kernels: private functions over raw arrays and scalars.

Public, checked wrappers live in the modules of :mod:`socialgraph`; kernels trust their inputs.
"""
