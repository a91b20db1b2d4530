"""AWS adapters (boto3 clients passed in): secrets, Lambda self-invocation, and next S3, SNS, EC2."""
