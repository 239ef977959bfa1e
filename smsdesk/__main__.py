"""`python -m smsdesk`: the same as the `smsdesk` command."""

from smsdesk.cli.main import main

main()
