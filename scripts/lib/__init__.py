"""Libraries the operator commands share (no command here): one-line failures and argument types (cli), the AWS
side (aws), working folders (folders), capacity arithmetic (capacity_checks), the endpoint checks (endpoint_checks)
and the load steps (load)."""
