"""Running core progress generators off the GUI thread."""
from .runner import Job, job_from_function, running_jobs, start_job

__all__ = ["Job", "job_from_function", "running_jobs", "start_job"]
