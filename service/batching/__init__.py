"""Dynamic batching: a bounded queue per model version whose requests share model runs."""

from service.batching.batcher import DynamicBatcher
from service.batching.config import BatchingOptions
from service.batching.observer import BatchObserver, Observers, RunTimes

__all__ = ["BatchObserver", "BatchingOptions", "DynamicBatcher", "Observers", "RunTimes"]
