"""Access declarations of every URL route, one module per portal app (format: ``tests/access_matrix.py``).

These are test scaffolding for the tenant matrix (``tests/test_access_matrix.py``) and live here, out of
the app packages, so that ``portal/<app>/access.py`` holds the real access layer.
"""
