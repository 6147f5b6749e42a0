"""Create the stack's AWS resources inside moto, shaped as ``template.yaml`` declares them.

Used by the local runner, ``clickstream serve`` and the tests. Call it inside an active ``mock_aws``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from clickstream.adapters.aws import client, reset_clients
from clickstream.core.config import Settings
from clickstream_local.template import load_template, resource_properties

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class LocalStack:
    settings: Settings
    queue_url: str = ""
    dlq_url: str = ""
    topic_arn: str = ""
    user_pool_id: str = ""
    user_pool_client_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def local_settings(**overrides: Any) -> Settings:
    base = {
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
