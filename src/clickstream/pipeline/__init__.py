"""The Step Functions workflow's steps (Plan, Sessionize, LoadWarehouse, Aggregate, Commit) and their payloads."""
