"""Test support for hosts: Hypothesis strategies (``strategies``), the repository contract
kit (``contracts``) and a complete minimal store to start from (``minimal``).

Nothing in the library imports this package; it needs the ``test`` extra (pytest and
hypothesis).
"""
