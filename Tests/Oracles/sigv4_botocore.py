"""Test oracle: AWS SigV4 (S3) Authorization headers computed by botocore.

Usage: sigv4_botocore.py < cases.jsonl
Each input line: {"method", "url", "body" (text), "access", "secret", "token" (or null), "region",
"timestamp" ("YYYYmmddTHHMMSSZ")}. Prints one line per case: the Authorization header.
"""
import datetime
import json
import sys

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        when = datetime.datetime.strptime(case["timestamp"], "%Y%m%dT%H%M%SZ")
        botocore.auth.get_current_datetime = lambda when=when: when
        request = AWSRequest(method=case["method"], url=case["url"], data=case["body"].encode(), headers={})
        credentials = Credentials(case["access"], case["secret"], case["token"])
        botocore.auth.S3SigV4Auth(credentials, "s3", case["region"]).add_auth(request)
        print(request.headers["Authorization"])


if __name__ == "__main__":
    main()
