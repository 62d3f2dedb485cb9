"""AWS CDK app: composition root, typed stage config, stacks and constructs. Imports app.contracts only."""
