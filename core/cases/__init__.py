"""A site's cases and their state: the one naming rule for a case's files, the
site folder layout, the worklist and each case's review status, which model
made a prediction (provenance), a case's measurements, and the state every view
of an open case shows."""
