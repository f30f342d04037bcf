"""A CT as numbers: the one in-memory volume type, the RAS orientation every step
works in (and the exact way back), brain extraction, and the HU range a scan's
stored values really cover. Reading and writing files is :mod:`core.io`."""
