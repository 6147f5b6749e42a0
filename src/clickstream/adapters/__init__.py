"""Adapters: the only code that talks to AWS (boto3) or opens a warehouse connection. Small interfaces, built in
one place (``factory.Adapters``), replaceable by stand-ins in tests (``tests/fakes``)."""
