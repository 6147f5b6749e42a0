"""One module per ``clickstream`` sub-command, each with ``register(subparsers)``."""
