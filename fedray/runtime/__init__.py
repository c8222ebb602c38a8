"""The Ray shell: actors that wire messages to the pure code (validators, ingress, client pools) and
the driver of `fedray run`. Only this package (and the CLI) imports Ray."""
