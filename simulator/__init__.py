"""A local Infobip for the demo, the tests and the benchmarks: API, faults, webhooks, the demo."""
