"""Benchmarks of the template: render time against Copier's floor, time from `copier copy` to a
green test run, and each flavour's production server under load against a bare app of the same
framework and server.

Run them all with `uv run python -m bench` (`--help` lists the options). tests/test_load.py runs
the load part, small, on every flavour: the same code, so the benchmark cannot rot.
"""
