# The ThreadPoolExecutor example from Python's concurrent.futures documentation
# (https://docs.python.org/3/library/concurrent.futures.html#threadpoolexecutor-example),
# changed only to read its URLs from the file named by the first argument (skipping blank lines
# and '#' comments, as fetchall does) and to take max_workers from the second, so that the
# HTTP benchmark can run it at W=5 and W=50. fixtures/python_example.py is the same program
# with the docs' max_workers=5.
import concurrent.futures
import sys
import urllib.request

with open(sys.argv[1]) as f:
    URLS = [line.strip() for line in f if line.strip() and not line.strip().startswith('#')]
MAX_WORKERS = int(sys.argv[2]) if len(sys.argv) > 2 else 5

# Retrieve a single page and report the URL and contents
def load_url(url, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as conn:
        return conn.read()

# We can use a with statement to ensure threads are cleaned up promptly
with concurrent.futures.ThreadPoolExecutor(max_workers=MAX_WORKERS) as executor:
    # Start the load operations and mark each future with its URL
    future_to_url = {executor.submit(load_url, url, 60): url for url in URLS}
    for future in concurrent.futures.as_completed(future_to_url):
        url = future_to_url[future]
        try:
            data = future.result()
        except Exception as exc:
            print('%r generated an exception: %s' % (url, exc))
        else:
            print('%r page is %d bytes' % (url, len(data)))
