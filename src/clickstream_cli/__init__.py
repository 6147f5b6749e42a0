"""The operator CLI: the ``clickstream`` command (no Lambda layer ships it)."""
