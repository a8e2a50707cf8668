"""Adapters for the Kubernetes API: the client, rollout following and diagnosis, the ledger, the
lock, autoscalers, permissions and smoke checks through the API server's proxy.

Layer: adapter for the Kubernetes API (imports only core and kube/).
"""
