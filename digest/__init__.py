"""digest: a weekly newsletter and digest generator for a grassroots coalition."""

__version__ = "0.1.0"
