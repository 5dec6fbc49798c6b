# Runs the Python docs example, fixtures/python_example.py, with max_workers set to W instead
# of the docs' 5, and nothing else changed: python3 python_workers.py URLS_FILE W
import concurrent.futures
import runpy
import sys
from pathlib import Path

WORKERS = int(sys.argv.pop(2))


class Executor(concurrent.futures.ThreadPoolExecutor):
    """The docs' ThreadPoolExecutor(max_workers=5), with WORKERS workers."""

    def __init__(self, max_workers=None, *args, **kwargs):
        super().__init__(WORKERS, *args, **kwargs)


# The example looks the class up on the module when it runs, so it gets this one.
concurrent.futures.ThreadPoolExecutor = Executor
EXAMPLE = Path(__file__).resolve().parents[4] / "fixtures" / "python_example.py"
runpy.run_path(str(EXAMPLE), run_name="__main__")
