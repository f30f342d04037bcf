"""The NVFlare client's training script (copied into the job's custom/ folder).

Every site runs it; it needs ``hematoma-relay[flare]`` installed on the site.
"""

import sys

from core.flare.client import main

if __name__ == "__main__":  # NVFlare runs it as a script; importing it does nothing
    main(sys.argv[1:])
