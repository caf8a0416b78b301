"""The benchmarks of mfgsolve: one file per benchmark, listed in :mod:`.registry`.

This folder is not an installed package: ``mfgsolve bench`` (:mod:`mfgsolve._bench`) finds it in
the source checkout (the current folder or a parent, or ``--root DIR``) and loads its files by
path. Each benchmark file defines ``run(out_dir, quick=False, *, root) -> rows``, where ``root``
is the checkout holding ``benchmarks/`` and ``problems/``.
"""
