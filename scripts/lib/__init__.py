"""Libraries the operator commands share (no command here): one-line failures and argument types (cli), the AWS
side (aws), working folders (folders), capacity arithmetic (capacity_checks), the endpoint checks (endpoint_checks),
repository pull access (image_access), the load steps (load), the serving entrypoint as a local process
(local_server), boxes drawn and matched (boxes), a data capture replayed through two models (replay/), and the
demo's champion run (demo_champion)."""
