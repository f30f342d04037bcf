"""Running a model on scans and scoring it: whole-volume prediction in the scan's
own geometry (``hemarelay predict``/``evaluate``), the segmentation and volume
metrics, and the one score type and loop that scores models on cases."""
