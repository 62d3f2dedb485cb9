"""CDK stacks: deploy units of a stage."""
