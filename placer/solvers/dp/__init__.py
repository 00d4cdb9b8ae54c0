"""The exact dynamic program over ideals (Tarnawski et al., NeurIPS 2020, Section 4): the
lattice, the search, its charges per link, the sweep over linear orders, the bracket,
and their numba kernels.
"""
