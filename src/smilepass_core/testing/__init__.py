"""Test support for hosts: Hypothesis strategies (and, later, repository contract kits).

Nothing in the library imports this package; it needs the ``test`` extra (hypothesis).
"""
