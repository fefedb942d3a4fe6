"""SQL lives here, behind small named queries; service code never builds SQL."""

from digest.store.db import open_engine

__all__ = ["open_engine"]
