"""The seeds' Python programs, run by `concur tour` beside concur's versions of them.

Each command prints one JSON object on stdout. The tour gives the same sizes to both
sides, so the figures are comparable: the GIL's cost is measured here, not asserted.

    seeds.py cpu ITEMS ROUNDS WORKERS        the hash chain: sequential, threads, processes
    seeds.py queue URLS DELAY_MS WORKERS     queue.Queue feeding daemon worker threads
    seeds.py downloads PAGES UNIT_MS MISSING ThreadPoolExecutor + as_completed
"""

import json
import multiprocessing
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

MASK = (1 << 64) - 1


def chain(x, rounds):
    """SplitMix64's finaliser applied `rounds` times, as the tour's Rust `chain`."""
    for _ in range(rounds):
        x = (x + 0x9E3779B97F4A7C15) & MASK
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
        x ^= x >> 31
    return x


def sum_range(lo, hi, rounds):
    total = 0
    for i in range(lo, hi):
        total = (total + chain(i, rounds)) & MASK
    return total


def cpu(items, rounds, workers):
    parts = [(w * items // workers, (w + 1) * items // workers) for w in range(workers)]

    t = time.perf_counter()
    sequential = sum_range(0, items, rounds)
    seq_s = time.perf_counter() - t

    results = [0] * workers

    def run(w):
        results[w] = sum_range(parts[w][0], parts[w][1], rounds)

    t = time.perf_counter()
    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    threads_s = time.perf_counter() - t
    threads_sum = sum(results) & MASK

    # The pool's start is counted in, as in the multiprocessing tutorials.
    t = time.perf_counter()
    with multiprocessing.Pool(workers) as pool:
        got = pool.starmap(sum_range, [(lo, hi, rounds) for lo, hi in parts])
    processes_s = time.perf_counter() - t
    processes_sum = sum(got) & MASK

    return {
        "sequential_s": seq_s,
        "threads_s": threads_s,
        "processes_s": processes_s,
        "checksum": sequential,
        "threads_checksum": threads_sum,
        "processes_checksum": processes_sum,
    }


def queue_workers(urls, delay_ms, workers):
    q = queue.Queue(maxsize=64)
    done = []
    lock = threading.Lock()

    def worker():
        while True:
            url = q.get()
            time.sleep(delay_ms / 1000)  # download(url)
            with lock:
                done.append(url)
            q.task_done()

    t = time.perf_counter()
    for _ in range(workers):
        threading.Thread(target=worker, daemon=True).start()
    for i in range(urls):
        q.put(f"https://img.example/{i}.png")
    q.join()
    elapsed = time.perf_counter() - t
    return {"elapsed_s": elapsed, "done": len(done), "distinct": len(set(done))}


def downloads(pages, unit_ms, missing):
    def fetch(i, delay):
        time.sleep(delay)
        if i == missing:
            raise OSError(f"https://page-{i}.example/: name does not resolve")
        return 4096 + i * 97

    delays = [unit_ms / 1000 * ((i * 5 % pages) + 1) for i in range(pages)]
    t = time.perf_counter()
    ok = errors = 0
    with ThreadPoolExecutor(max_workers=pages) as pool:
        futures = {pool.submit(fetch, i, d): i for i, d in enumerate(delays)}
        for f in as_completed(futures, timeout=30):
            try:
                f.result()
                ok += 1
            except OSError:
                errors += 1
    elapsed = time.perf_counter() - t
    return {"elapsed_s": elapsed, "ok": ok, "errors": errors}


def main(argv):
    cmd, args = argv[1], [int(a) for a in argv[2:]]
    out = {"cpu": cpu, "queue": queue_workers, "downloads": downloads}[cmd](*args)
    out["python"] = sys.version.split()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
