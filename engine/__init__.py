"""The receiver and engine behind `smsdesk serve`: webhooks, the inbox poller, the outbox sender."""
