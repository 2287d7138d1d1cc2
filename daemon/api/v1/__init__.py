"""Generated code of the ``carddaemon.v1`` gRPC contract (``proto/carddaemon/v1/*.proto``).

Do not edit the ``*_pb2*.py``/``.pyi`` files: run ``python proto/generate.py`` and commit the
result (``--check`` tells whether they are stale). Only this file is written by hand.
"""
