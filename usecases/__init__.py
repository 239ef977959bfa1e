"""What an operator does, written once and called by both front ends (the TUI and the CLI):
guarded sends and their audit, exports, review decisions, credential changes."""
