"""Lambda's context object for handlers called in tests: the laptop stack's one stand-in, named per function."""

from __future__ import annotations

from clickstream_local.bridge import FakeLambdaContext
from clickstream_local.stack import ACCOUNT, REGION


def lambda_context(function: str = "TestFunction", *, memory_mb: int = 1024) -> FakeLambdaContext:
    """A fresh context of the function named ``function`` (a new request id each time)."""
    return FakeLambdaContext(
        function_name=function,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}",
        memory_limit_in_mb=memory_mb,
    )
