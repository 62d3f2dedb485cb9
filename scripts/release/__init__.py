"""Releases, from an Approved model version to Prod: create, inspect, approve, promote, roll back, and the gates.

    python -m scripts.release create --from-stage Dev [--package-arn ARN] [--serve gpu=<uri>]
    python -m scripts.release show [RELEASE_ID]            # default: the current release (releases/CURRENT)
    python -m scripts.release diff OLD_ID [NEW_ID]
    python -m scripts.release approve --stage Dev --version 7 [--reason ...]   # or: reject
    python -m scripts.release promote RELEASE_ID           # make it current: the pipeline deploys it Dev -> Prod
    python -m scripts.release rollback --stage Prod [--to RELEASE_ID]
    python -m scripts.release history --stage Prod
    python -m scripts.release preflight --stage Staging [--release-file F] [--stage-role-arn ARN]
    python -m scripts.release verify --stage Dev [--release-file F] [--stage-role-arn ARN] [--load-requests 50]
    python -m scripts.release compare --stage Staging [--last 200] [--out DIR] [--candidate R] [--champion R]
    python -m scripts.release cleanup --stage Prod --keep 3 [--apply]

A release is one immutable record, ``releases/<id>.json`` (infra/release_record.py); ``releases/CURRENT`` names
the one every stage deploys. Promoting or rolling back changes only that pointer: commit it and the pipeline
deploys the record through its gates (docs/releasing.md). Model packages go through the SageMaker Python SDK
(``sagemaker.core.resources``), everything else through boto3. Exit codes: scripts/lib/cli.py (3: a gate said no).

The package: ``__main__`` (the command line), ``records`` (the records of this checkout), ``create`` and
``images`` (a new record), ``promotion`` (show, diff, approve, promote, history, rollback), ``gates``, ``checks`` and
``evidence`` (preflight, verify), ``compare`` (production traffic through candidate and champion; the replay itself
is scripts/lib/replay/), ``cleanup``.
"""
