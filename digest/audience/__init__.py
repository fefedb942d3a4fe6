"""The audience: subscribers, lists, CSV import and signed links."""
