"""Runtime code that runs in AWS (containers, Lambda) and locally. Never imports aws_cdk or infra."""
