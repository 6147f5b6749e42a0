"""What an operator runs against a stack (not a Lambda step): back-fill, quarantine re-drive, erasure."""
