"""This site's side of the ring outside the turn protocol itself.

What the desktop application needs to keep a hospital in step with the ring: the site's set-up and its server
(:mod:`.setup`, :mod:`.hostkey`, :mod:`.connection`), the ring's state as
seen from here and new weights brought home (:mod:`.sync`), every model
version the site has seen, with its origin and local scores (:mod:`.versions`,
:mod:`.evaluate`), and this site's training turn on its approved cases
(:mod:`.training`). Nothing here imports Qt.
"""
