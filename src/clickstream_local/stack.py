"""The laptop stack: the stack's AWS resources inside moto, shaped as ``template.yaml`` declares them.

One setup for the demo runner, ``clickstream serve``, the pipeline bridge and the tests: :func:`local_stack` starts
moto (with :data:`MOTO_CONFIG`, so the bridge can execute the state machine), creates the resources
(:func:`create_resources`), puts the settings in the environment as Lambda's configuration would
(``Settings.as_env()``) and clears the process's caches of settings, clients and adapters on the way in and out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from clickstream.adapters.aws import client, reset_clients
from clickstream.adapters.factory import adapters_for
from clickstream.core.config import Settings, get_settings
from clickstream_local.template import load_template, resource_properties

REGION = "us-east-1"
ACCOUNT = "123456789012"
# moto as the bridge needs it: Lambda without Docker (the bridge routes invocations to the handlers) and Step
# Functions executing the real ASL.
MOTO_CONFIG: dict[str, Any] = {
    "lambda": {"use_docker": False},
    "stepfunctions": {"execute_state_machine": True},
}


@dataclass
class LocalStack:
    settings: Settings
    queue_url: str = ""
    dlq_url: str = ""
    topic_arn: str = ""
    user_pool_id: str = ""
    user_pool_client_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The functions' environment, as the stack's configuration gives it to them."""
        return self.settings.as_env()


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for ``None``, unset) environment variables for the duration, then restore what was there."""
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def clear_caches() -> None:
    """Forget the settings, boto3 clients and adapters this process built (the environment or moto changed)."""
    get_settings.cache_clear()
    adapters_for.cache_clear()
    reset_clients()


@contextmanager
def local_stack(
    settings: Settings,
    *,
    with_cognito: bool = True,
    setenv: Callable[[str, str], None] | None = None,
) -> Iterator[LocalStack]:
    """moto started, the stack's resources created and its settings in the environment, for the duration.

    ``setenv`` (a test's ``monkeypatch.setenv``) sets the environment instead, and its owner restores it.
    """
    from moto import mock_aws

    with mock_aws(config=MOTO_CONFIG):  # type: ignore[call-overload]
        stack = create_resources(settings, with_cognito=with_cognito)
        with environment({} if setenv else stack.env):
            if setenv is not None:
                for name, value in stack.env.items():
                    setenv(name, value)
            clear_caches()
            try:
                yield stack
            finally:
                clear_caches()


def local_settings(**overrides: Any) -> Settings:
    """The laptop stack's settings: its own resource names, no arrival settle delay, and ``overrides``."""
    base: dict[str, Any] = {
        "stage": "local",
        "raw_bucket": "clickstream-local-raw",
        "lake_bucket": "clickstream-local-lake",
        "state_table": "clickstream-local-state",
        "delivery_stream": "clickstream-local-events",
        "arrival_settle_seconds": 0,
    }
    base.update(overrides)
    return Settings(**base)


def create_resources(settings: Settings, *, with_cognito: bool = True) -> LocalStack:
    """Buckets, Firehose → raw bucket, raw bucket ObjectCreated → SQS (+ DLQ), state table, failure topic."""
    reset_clients()
    s3 = client("s3")
    for bucket in (settings.raw_bucket, settings.lake_bucket):
        s3.create_bucket(Bucket=bucket)

    sqs = client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{settings.raw_bucket}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"{settings.raw_bucket}-objects",
        Attributes={
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=settings.raw_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "raw/"}]}},
                }
            ]
        },
    )

    client("firehose").create_delivery_stream(
        DeliveryStreamName=settings.delivery_stream,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
            "BucketARN": f"arn:aws:s3:::{settings.raw_bucket}",
            "Prefix": "raw/",
            "CompressionFormat": "UNCOMPRESSED",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 300},
        },
    )

    table = resource_properties("StateTable")
    kwargs: dict[str, Any] = {
        "TableName": settings.state_table,
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": table["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if table.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = table["GlobalSecondaryIndexes"]
    client("dynamodb").create_table(**kwargs)

    topic_arn = client("sns").create_topic(Name=f"{settings.stage}-pipeline-failures")["TopicArn"]
    stack = LocalStack(settings=settings, queue_url=queue_url, dlq_url=dlq_url, topic_arn=topic_arn)

    if with_cognito:
        idp = client("cognito-idp")
        pool = idp.create_user_pool(PoolName=f"clickstream-{settings.stage}-shoppers")["UserPool"]
        app = idp.create_user_pool_client(UserPoolId=pool["Id"], ClientName="web", GenerateSecret=False)
        stack.user_pool_id = pool["Id"]
        stack.user_pool_client_id = app["UserPoolClient"]["ClientId"]
    return stack


def template_parameter_default(name: str) -> Any:
    return load_template()["Parameters"][name].get("Default")
