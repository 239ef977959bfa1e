"""smsdesk: a keyboard-driven terminal desk for Infobip SMS programmes.

The distribution installs this one import name. Its subpackages live in top-level folders of
the repository and are mapped here by pyproject.toml (docs/architecture.md, "Layers"):
smsdesk.store (store/), smsdesk.infobip (infobip/), smsdesk.engine (engine/),
smsdesk.simulator (simulator/), smsdesk.tui (tui/), smsdesk.cli (cli/).
"""

__version__ = "0.3.0"
