"""Adapters for GitHub: releases, deployments, and the Actions event and step summary.

Layer: adapter for GitHub (imports only core and github/).
"""
