"""Sessionization: the rule (``rule``), the bucket state's layout in the lake (``state``), local files (``files``)."""
