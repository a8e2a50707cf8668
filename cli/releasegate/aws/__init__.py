"""Adapters for AWS: ECR (image lookup, registry login) and SigV4 signing for Amazon Managed Prometheus.

Layer: adapter for AWS (imports only core).
"""
