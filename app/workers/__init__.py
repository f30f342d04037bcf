"""Running core progress generators off the GUI thread."""

from .runner import Job, job_from_function, start_job

__all__ = ["Job", "job_from_function", "start_job"]
