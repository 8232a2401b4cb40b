"""Where the CPU work runs: model processes and a thread pool, sized to the cores."""

from service.execution.executor import Executor
from service.execution.model_process import LoadOrder, ModelProcess, ModelProcessConfig
from service.execution.plan import ThreadPlan, plan_threads

__all__ = [
    "Executor",
    "LoadOrder",
    "ModelProcess",
    "ModelProcessConfig",
    "ThreadPlan",
    "plan_threads",
]
