"""Staff: accounts for the console, their sessions, and the audit log of what they did."""
