"""Adapters: the only code that talks to AWS (boto3). Small interfaces, built lazily, injectable in tests."""
