"""In-memory stand-ins for the adapters, beside the interfaces they follow."""
