"""Telling the team: Slack incoming webhooks and plain webhooks (one adapter family, like
``github/`` or ``aws/``).

Layer: adapter (imports only core and notify/).
"""
