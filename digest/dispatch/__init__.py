"""Dispatch: an edition's recipients, personal links, and the transport that delivers."""
