"""Talking to Infobip: the HTTP client, its typed errors, and the socket helpers shared by the servers."""
