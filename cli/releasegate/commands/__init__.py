"""The commands, one module per family (deploy/check/render, rollback/status/history/recover,
promote/abort, the promotion gate, ecr-login), each a function returning a Result.

Layer: commands (above the strategies; the CLI calls them).
"""
