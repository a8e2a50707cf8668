"""``python -m releasegate``: the CLI.

Layer: the CLI, the top.
"""

from releasegate.app import main

main()
