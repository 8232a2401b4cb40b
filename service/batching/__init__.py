"""Dynamic batching: a bounded queue per model version whose requests share model runs."""

from service.batching.batcher import BatchObserver, DynamicBatcher
from service.batching.config import BatchingOptions, with_overrides

__all__ = ["BatchObserver", "BatchingOptions", "DynamicBatcher", "with_overrides"]
