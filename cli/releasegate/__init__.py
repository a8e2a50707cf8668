"""releasegate: validate, render, deploy and verify a release on Kubernetes.

The folders are the layers, each importing only those below it (``tests/test_layout.py``):
``core/`` (pure) < ``aws/``, ``github/``, ``kube/``, ``deploy/`` (one per outside system) <
``run.py`` (one command's state) < ``strategies/``, ``report.py`` < ``commands/`` <
``invocation.py``, ``app.py`` (the CLI).
"""

__version__ = "0.1.0"
