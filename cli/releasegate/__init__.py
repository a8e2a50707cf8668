"""releasegate: validate, render, deploy and verify a release on Kubernetes."""

__version__ = "0.1.0"
