"""The pure core: configuration, versions, errors, the rollout verdict, template values and
placement types; no I/O but reading the project's files.

Layer: core (pure logic and data; imports only core).
"""
