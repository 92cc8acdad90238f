"""The published API description held against the real server.

1. /api/openapi.json validates as OpenAPI (openapi-spec-validator).
2. Open311 GeoReport v2 read by a published client library (open311_client.py).
3. The CKAN Action API read by ckanapi (ckan_client.py), and the DCAT-AP 3 catalogue
   validated with pyshacl against SEMIC's SHACL shapes (dcat_ap.py).
4. schemathesis, with every check (its default; schemathesis.toml names the few operations
   where one check cannot apply, and why), finds no failure: once without credentials, then as
   demo accounts of several roles (their tokens are taken first, before the fuzzed sign-ins
   can slow this address down).

Usage: check.py BASE_URL (a server starting with the demo data: it is waited for). Exits
non-zero on a failure.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pyotp
from openapi_spec_validator import validate

import ckan_client
import dcat_ap
import open311_client

PASSWORD = "Yunling-Demo-2026"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# Residents first; the administrators last, as what they change (roles, accounts) could
# take from the others what they are tested with.
ACCOUNTS = [
    ("citizen.demo", False),
    ("clerk.mingyue", True),
    ("dataofficer.mingyue", True),
    ("auditor", True),
    ("sysadmin.mingyue", True),
]
# Revoking its own token would leave the rest of a run unauthenticated.
EXCLUDED = ["/api/v1/auth/revoke"]
EXAMPLES = "15"


def fetch_json(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def token(base, username, second_factor):
    body = {"username": username, "password": PASSWORD}
    if second_factor:
        body["totp"] = pyotp.TOTP(TOTP_SECRET).now()
    return fetch_json(f"{base}/api/v1/auth/token", body)["access_token"]


def schemathesis(base, label, headers):
    command = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"),
        "--config-file", os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemathesis.toml"),
        "run", f"{base}/api/openapi.json",
        "--url", base, "--max-examples", EXAMPLES,
        "--seed", "20261207", "--no-color", "--request-timeout", "30",
    ]
    for path in EXCLUDED:
        command += ["--exclude-path", path]
    for header in headers:
        command += ["-H", header]
    print(f"\n== schemathesis {label}", flush=True)
    return subprocess.run(command, check=False).returncode


def wait_until_serving(base, seconds=240):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            sys.exit(f"no server answered at {base} within {seconds} s")
        time.sleep(1)


def main():
    base = sys.argv[1].rstrip("/")
    wait_until_serving(base)
    validate(fetch_json(f"{base}/api/openapi.json"))
    print("openapi.json: a valid OpenAPI description", flush=True)
    open311_client.check(base)
    ckan_client.check(base)
    dcat_ap.check(base)
    tokens = [(name, token(base, name, totp)) for name, totp in ACCOUNTS]
    failed = []
    if schemathesis(base, "without credentials", []) != 0:
        failed.append("without credentials")
    for name, bearer in tokens:
        if schemathesis(base, f"as {name}", [f"Authorization: Bearer {bearer}"]) != 0:
            failed.append(name)
    if failed:
        print(f"\nschemathesis found failures: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)
    print("\nschemathesis: no failures")


if __name__ == "__main__":
    main()
