"""The `rbdvm` command: parses, calls rbdvm.helpers, prints."""
