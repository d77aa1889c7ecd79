#!/usr/bin/env python3
"""The Python task-queue anchors of concur's cluster tier: Celery, Dramatiq and RQ,
each measured on a given Redis with its own worker processes, deployed the way each
is normally deployed.

    <venv python> cluster_anchors.py --framework {celery,dramatiq,rq} \
        --redis redis://127.0.0.1:PORT/DB --tasks N --workers 2 [--timeout SECONDS]
    <venv python> cluster_anchors.py --framework F --redis URL --latency K --workers 2

The venv comes from scripts/bench-venv.sh (exact versions in
scripts/bench-requirements.txt). One task, ``add(x, y) -> x + y``; the workers are
started as

    celery:   celery -A <module> worker --pool=prefork --concurrency=W
    dramatiq: dramatiq <module> --processes W --threads 1
    rq:       W x `rq worker` (each forks a work horse per job, RQ's default Worker)

all on the given Redis URL and under a key prefix unique to the run (Celery: kombu's
and the result backend's ``global_keyprefix`` plus its own queue; Dramatiq: the
broker's and the results backend's namespace plus its own queue; RQ: ``RQ_KEY_PREFIX``
plus its own queue), so that runs never mix. Once every worker is up (polled, bounded)
and a few untimed warm-up tasks went through, the harness times submitting N tasks and
collecting all N results (each checked), or with ``--latency K`` K round trips one at a
time (submit, wait for the result, next), and prints ONE line of JSON on stdout:

    {"framework": ..., "version": ..., "tasks": N, "workers": W, "seconds": ..., "tasks_per_sec": ...}
    {"framework": ..., "version": ..., "mode": "latency", "tasks": K, "workers": W,
     "median_round_trip_us": ..., "p90_round_trip_us": ..., "min_round_trip_us": ..., "seconds": ...}

or, exiting non-zero (1 on an error, 124 on --timeout, 130 on Ctrl-C/SIGTERM),
``{"framework": ..., "error": "..."}`` (a usage error too, with status 2). Everything
else goes to stderr. Every process it started is stopped (SIGTERM to each worker's main
process, SIGKILL to its process group after a grace period) and reaped, and every Redis
key under the run's prefix is deleted, on success, error, Ctrl-C, SIGTERM and timeout
alike. Only a SIGKILL of the harness itself leaves keys behind (the workers then get
SIGTERM from the kernel, PR_SET_PDEATHSIG); see cluster_anchors.md.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

FRAMEWORKS = ("celery", "dramatiq", "rq")
MODULE = "concur_anchor_tasks"  # the generated task module the workers import
READY_TIMEOUT = 60.0  # seconds for the workers to come up (within --timeout)
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL of a worker's process group
WARMUP_PER_WORKER = 2  # untimed tasks per worker before the measurement
RESULT_SLICE = 2.0  # seconds a result wait blocks before checking that the workers live
PENDING = object()  # Framework.result(): no result yet

# The task module, one per framework, exactly as a user of each would write it. The
# Redis URL and the run's prefix come from the environment so that the workers and the
# submitting harness share one definition.
MODULES = {
    "celery": '''
import os

from celery import Celery

URL = os.environ["CONCUR_ANCHOR_REDIS"]
PREFIX = os.environ["CONCUR_ANCHOR_PREFIX"]
QUEUE = PREFIX

app = Celery("concur_anchor_tasks", broker=URL, backend=URL)
app.conf.update(
    task_default_queue=QUEUE,
    # every kombu key (queue lists, bindings, unacked, pidbox) and channel, prefixed
    broker_transport_options={"global_keyprefix": PREFIX + ":"},
    # every celery-task-meta-* key and its pub/sub channel, prefixed
    result_backend_transport_options={"global_keyprefix": PREFIX + ":"},
    broker_connection_retry_on_startup=True,
)


@app.task(name="concur_anchor_tasks.add")
def add(x, y):
    return x + y
''',
    "dramatiq": '''
import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

URL = os.environ["CONCUR_ANCHOR_REDIS"]
PREFIX = os.environ["CONCUR_ANCHOR_PREFIX"]
QUEUE = PREFIX

broker = RedisBroker(url=URL, namespace=PREFIX)
# use_namespace_prefix_keys: result keys are <namespace>:<queue>:<actor>:<id> instead of
# bare MD5 digests, so that the run's keys can be found (and deleted) by prefix
results_backend = RedisBackend(url=URL, namespace=PREFIX + ":results", use_namespace_prefix_keys=True)
broker.add_middleware(Results(backend=results_backend))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, store_results=True)
def add(x, y):
    return x + y
''',
    "rq": '''
import os

URL = os.environ["CONCUR_ANCHOR_REDIS"]
PREFIX = os.environ["CONCUR_ANCHOR_PREFIX"]  # also RQ_KEY_PREFIX, set before rq is imported
QUEUE = PREFIX


def add(x, y):
    return x + y
''',
}


def log(msg):
    print(f"cluster_anchors: {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A failure to report as {"framework": ..., "error": ...}."""


class RunTimeout(BaseException):
    """--timeout elapsed (raised from SIGALRM)."""


class Interrupted(BaseException):
    """SIGTERM or SIGHUP."""


# ---------------------------------------------------------------------------------------
# Processes


def _linux_prctl(option, arg):
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, arg, 0, 0, 0) == 0
    except Exception:  # not Linux, or no libc: best effort only
        return False


PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _child_setup():
    # In the child, before exec: if the harness dies without cleaning up (SIGKILL), the
    # worker's main process gets SIGTERM and shuts its own children down.
    _linux_prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _reap_orphans():
    """Reap grandchildren reparented to us (we are a child subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Workers:
    """The framework's worker processes, each the leader of its own process group."""

    def __init__(self, logdir, verbose):
        self.logdir = logdir
        self.verbose = verbose
        self.procs = []  # (Popen, log path or None)
        self.last_check = 0.0

    def spawn(self, argv, env, cwd):
        index = len(self.procs)
        path = None
        if self.verbose:
            out = None  # inherit our stderr (see below)
        else:
            path = os.path.join(self.logdir, f"worker-{index}.log")
            out = open(path, "wb")
        log(f"starting worker {index}: {' '.join(argv)}")
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out if out is not None else sys.stderr.fileno(),
                stderr=subprocess.STDOUT if out is not None else sys.stderr.fileno(),
                start_new_session=True,  # own session and process group: killpg reaches all
                preexec_fn=_child_setup,
            )
        except OSError as e:
            raise BenchError(f"cannot start {argv[0]}: {e}") from None
        finally:
            if out is not None:
                out.close()
        self.procs.append((proc, path))
        return proc

    def check_alive(self, every=0.0):
        """Raise if a worker's main process exited; at most once per `every` seconds."""
        now = time.monotonic()
        if every and now - self.last_check < every:
            return
        self.last_check = now
        for i, (proc, _) in enumerate(self.procs):
            rc = proc.poll()
            if rc is not None:
                last = self.tail(i, 1)
                raise BenchError(
                    f"worker {i} ({os.path.basename(proc.args[0])}) exited early with status {rc}"
                    + (f" ({last[0]})" if last else "")
                )

    def tail(self, index, lines=15):
        """The last lines of worker `index`'s log (none when --verbose)."""
        path = self.procs[index][1]
        if not path:
            return []
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return []
        return [line.rstrip() for line in text if line.strip()][-lines:]

    def dump_logs(self, lines=20):
        for i in range(len(self.procs)):
            text = self.tail(i, lines)
            if text:
                log(f"last lines of worker {i}'s log:")
                for line in text:
                    print(f"    {line}", file=sys.stderr)

    def stop(self):
        """SIGTERM each worker's main process (the frameworks' own warm shutdown, which
        stops their pool children: a SIGTERM to the whole group would reach those too,
        and Dramatiq takes a second SIGTERM as "kill now"), SIGKILL each process group
        that still has members after STOP_GRACE, then reap the workers and any orphaned
        grandchildren."""
        if not self.procs:
            return
        for proc, _ in self.procs:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline:
            for proc, _ in self.procs:
                proc.poll()
            _reap_orphans()
            if not any(_group_alive(proc.pid) for proc, _ in self.procs):
                break
            time.sleep(0.05)
        killed = []
        for i, (proc, _) in enumerate(self.procs):
            if _group_alive(proc.pid):
                killed.append(i)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if killed:
            log(f"workers {killed} did not stop within {STOP_GRACE:.0f} s of SIGTERM: killed")
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log(f"worker pid {proc.pid} still not reaped after SIGKILL")
        deadline = time.monotonic() + 5
        while any(_group_alive(proc.pid) for proc, _ in self.procs) and time.monotonic() < deadline:
            _reap_orphans()
            time.sleep(0.02)
        _reap_orphans()
        left = [proc.pid for proc, _ in self.procs if _group_alive(proc.pid)]
        if left:
            log(f"process groups {left} still have members")


def find_program(name):
    """The framework's console script from the same venv as this interpreter."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(here, os.X_OK):
        return here
    found = shutil.which(name)
    if found:
        return found
    raise BenchError(f"'{name}' not found next to {sys.executable} nor on PATH (run scripts/bench-venv.sh)")


# ---------------------------------------------------------------------------------------
# Frameworks: start workers, wait for them, submit, collect


class Framework:
    name = ""

    def __init__(self, args, prefix, moddir, env):
        self.args = args
        self.prefix = prefix
        self.moddir = moddir
        self.env = env
        self.tasks = None  # the imported task module

    def import_tasks(self):
        sys.path.insert(0, self.moddir)
        import importlib

        self.tasks = importlib.import_module(MODULE)

    def version(self):
        raise NotImplementedError

    def start(self, workers):
        raise NotImplementedError

    def ready(self):
        """True once every worker consumes from the run's queue."""
        raise NotImplementedError

    def submit(self, x, y):
        raise NotImplementedError

    def result(self, handle, timeout):
        """The task's result, or PENDING if none came within `timeout` seconds."""
        raise NotImplementedError

    def close(self):
        pass


class Celery(Framework):
    name = "celery"

    def version(self):
        import celery

        return celery.__version__

    def start(self, workers):
        self.nodename = f"{self.prefix}@bench"
        argv = [
            find_program("celery"),
            "-A",
            MODULE,
            "worker",
            "--pool=prefork",
            f"--concurrency={self.args.workers}",
            "-n",
            self.nodename,
            "-Q",
            self.tasks.QUEUE,
            "--loglevel=WARNING",
        ]
        workers.spawn(argv, self.env, self.moddir)

    def ready(self):
        replies = self.tasks.app.control.ping(destination=[self.nodename], timeout=0.5)
        return any(self.nodename in r for r in replies)

    def submit(self, x, y):
        return self.tasks.add.delay(x, y)

    def result(self, handle, timeout):
        from celery.exceptions import TimeoutError

        try:
            return handle.get(timeout=timeout)
        except TimeoutError:
            return PENDING

    def close(self):
        try:
            self.tasks.app.close()
        except Exception:
            pass


class Dramatiq(Framework):
    name = "dramatiq"

    def version(self):
        import dramatiq

        return dramatiq.__version__

    def start(self, workers):
        argv = [
            find_program("dramatiq"),
            MODULE,
            "--processes",
            str(self.args.workers),
            "--threads",
            "1",
            "--queues",
            self.tasks.QUEUE,
            "--path",
            self.moddir,
        ]
        workers.spawn(argv, self.env, self.moddir)

    def ready(self):
        # Every worker process's consumer heartbeats into <namespace>:__heartbeats__ on
        # each fetch; the harness's own broker only does so once it enqueues, and ready()
        # is only asked before the first enqueue.
        client = self.tasks.broker.client
        return client.zcard(f"{self.prefix}:__heartbeats__") >= self.args.workers

    def submit(self, x, y):
        return self.tasks.add.send(x, y)

    def result(self, handle, timeout):
        from dramatiq.results import ResultTimeout

        try:
            # The backend blocks in whole seconds (BRPOPLPUSH): at least 1 s.
            return handle.get_result(block=True, timeout=max(1000, int(timeout * 1000)))
        except ResultTimeout:
            return PENDING

    def close(self):
        try:
            self.tasks.broker.close()
        except Exception:
            pass


class RQ(Framework):
    name = "rq"

    def import_tasks(self):
        super().import_tasks()
        import redis
        from rq import Queue

        self.conn = redis.Redis.from_url(self.args.redis)
        self.queue = Queue(self.tasks.QUEUE, connection=self.conn)

    def version(self):
        import rq

        return rq.__version__

    def start(self, workers):
        rq_bin = find_program("rq")
        for i in range(self.args.workers):
            argv = [
                rq_bin,
                "worker",
                "--url",
                self.args.redis,
                "--name",
                f"{self.prefix}-w{i}",
                "--path",
                self.moddir,
                self.tasks.QUEUE,
            ]
            workers.spawn(argv, self.env, self.moddir)

    def ready(self):
        from rq import Worker

        return Worker.count(connection=self.conn, queue=self.queue) >= self.args.workers

    def submit(self, x, y):
        return self.queue.enqueue(self.tasks.add, x, y)

    def result(self, handle, timeout):
        from rq.results import Result

        # Blocks on the job's result stream (XREAD BLOCK) for up to `timeout` whole seconds.
        res = handle.latest_result(timeout=max(1, int(timeout)))
        if res is None:
            return PENDING
        if res.type != Result.Type.SUCCESSFUL:
            raise BenchError(f"job {handle.id} did not succeed: {res.type.name}: {res.exc_string}")
        return res.return_value

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


CLASSES = {"celery": Celery, "dramatiq": Dramatiq, "rq": RQ}


# ---------------------------------------------------------------------------------------
# Redis bookkeeping


def redis_client(url):
    import redis

    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def scan_keys(client, pattern="*", limit=None):
    keys = set()
    for key in client.scan_iter(match=pattern, count=1000):
        keys.add(key)
        if limit is not None and len(keys) > limit:
            return None
    return keys


SNAPSHOT_LIMIT = 200_000  # keys; a bigger database is not diffed afterwards


def delete_prefix(client, prefix):
    """Delete every key under the run's prefix; returns how many."""
    # The prefix is [A-Za-z0-9_] only, so it needs no glob escaping.
    n = 0
    batch = []
    for key in client.scan_iter(match=prefix + "*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            n += client.unlink(*batch)
            batch = []
    if batch:
        n += client.unlink(*batch)
    return n


# ---------------------------------------------------------------------------------------
# The run


def expected(i):
    return i, 2 * i + 1, 3 * i + 1  # x, y, x + y


def wait_ready(fw, workers, deadline):
    t0 = time.monotonic()
    while True:
        workers.check_alive()
        try:
            if fw.ready():
                log(f"workers ready after {time.monotonic() - t0:.1f} s")
                return
        except (ConnectionError, OSError) as e:
            log(f"readiness poll failed ({e}); retrying")
        except Exception as e:  # a framework's own connection error type
            if "connect" not in type(e).__name__.lower():
                raise
            log(f"readiness poll failed ({e}); retrying")
        if time.monotonic() >= deadline:
            raise BenchError(f"workers not ready within {READY_TIMEOUT:.0f} s")
        time.sleep(0.1)


def check(i, got):
    x, y, want = expected(i)
    if got != want:
        raise BenchError(f"task {i}: add({x}, {y}) returned {got!r}, expected {want}")


def await_result(fw, workers, handle):
    """Wait for one result in slices of RESULT_SLICE seconds, checking between slices
    that no worker died, and once a second while results flow (a dead worker fails the
    run instead of skewing it or waiting for --timeout, which SIGALRM enforces)."""
    while True:
        got = fw.result(handle, RESULT_SLICE)
        if got is not PENDING:
            workers.check_alive(every=1.0)
            return got
        workers.check_alive()


def run_throughput(fw, workers, n):
    t0 = time.perf_counter()
    handles = [fw.submit(*expected(i)[:2]) for i in range(n)]
    for i, h in enumerate(handles):
        check(i, await_result(fw, workers, h))
    return time.perf_counter() - t0


def run_latency(fw, workers, k):
    rtts = []
    t0 = time.perf_counter()
    for i in range(k):
        x, y, _ = expected(i)
        s = time.perf_counter_ns()
        got = await_result(fw, workers, fw.submit(x, y))
        rtts.append(time.perf_counter_ns() - s)
        check(i, got)
    return rtts, time.perf_counter() - t0


class Parser(argparse.ArgumentParser):
    """Usage errors too end with the one line of JSON on stdout (exit status 2)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        argv = sys.argv[1:]
        fw = None
        for i, a in enumerate(argv):
            if a == "--framework" and i + 1 < len(argv):
                fw = argv[i + 1]
            elif a.startswith("--framework="):
                fw = a.split("=", 1)[1]
        print(json.dumps({"framework": fw, "error": f"usage: {message}"}), flush=True)
        sys.exit(2)


def parse_args(argv):
    p = Parser(
        description="Celery / Dramatiq / RQ throughput or latency on a Redis, one JSON line on stdout."
    )
    p.add_argument("--framework", required=True, choices=FRAMEWORKS)
    p.add_argument("--redis", required=True, help="redis://HOST:PORT/DB")
    p.add_argument("--tasks", type=int, help="tasks to submit and collect (throughput mode)")
    p.add_argument("--latency", type=int, metavar="K", help="K sequential round trips (latency mode)")
    p.add_argument("--workers", type=int, default=2, help="worker concurrency (default 2)")
    p.add_argument("--timeout", type=float, default=300.0, help="whole-run bound in seconds (default 300)")
    p.add_argument("--verbose", action="store_true", help="workers' output to stderr instead of log files")
    args = p.parse_args(argv)
    if (args.tasks is None) == (args.latency is None):
        p.error("give exactly one of --tasks N and --latency K")
    if (args.tasks is not None and args.tasks < 1) or (args.latency is not None and args.latency < 1):
        p.error("--tasks and --latency must be >= 1")
    if args.workers < 1:
        p.error("--workers must be >= 1")
    if args.timeout <= 0:
        p.error("--timeout must be > 0")
    if not args.redis.startswith(("redis://", "rediss://", "unix://")):
        p.error("--redis must be a redis:// (or rediss://, unix://) URL")
    return args


def main(argv=None):
    args = parse_args(argv)
    fwname = args.framework

    def fail(msg, code):
        print(json.dumps({"framework": fwname, "error": msg}), flush=True)
        return code

    def on_alarm(signum, frame):
        raise RunTimeout()

    def on_term(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    # The run's deadline: SIGALRM interrupts whatever blocks (a result wait included).
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    deadline = time.monotonic() + args.timeout
    _linux_prctl(PR_SET_CHILD_SUBREAPER, 1)

    prefix = f"concur_bench_{fwname}_{uuid.uuid4().hex[:12]}"
    moddir = None
    workers = None
    fw = None
    client = None
    before = None
    code = 0
    try:
        try:
            probe = redis_client(args.redis)
            probe.ping()
        except Exception as e:
            raise BenchError(f"cannot reach Redis at {args.redis}: {e}") from None
        client = probe
        before = scan_keys(client, limit=SNAPSHOT_LIMIT)
        log(f"run prefix {prefix}; Redis db holds {client.dbsize()} keys before the run")

        moddir = tempfile.mkdtemp(prefix="concur-anchor-")
        with open(os.path.join(moddir, MODULE + ".py"), "w") as f:
            f.write(MODULES[fwname].lstrip())
        env = dict(os.environ)
        env.update(
            CONCUR_ANCHOR_REDIS=args.redis,
            CONCUR_ANCHOR_PREFIX=prefix,
            RQ_KEY_PREFIX=prefix,
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join([moddir] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])),
        )
        # The harness imports the same module (and, for RQ, rq itself) with the same
        # environment, so that both sides agree on queues and prefixes.
        os.environ.update(CONCUR_ANCHOR_REDIS=args.redis, CONCUR_ANCHOR_PREFIX=prefix, RQ_KEY_PREFIX=prefix)

        fw = CLASSES[fwname](args, prefix, moddir, env)
        try:
            fw.import_tasks()
            version = fw.version()
        except ImportError as e:
            raise BenchError(f"cannot import {fwname} ({e}); run with the venv from scripts/bench-venv.sh") from None

        workers = Workers(moddir, args.verbose)
        fw.start(workers)
        wait_ready(fw, workers, min(deadline, time.monotonic() + READY_TIMEOUT))

        warm = WARMUP_PER_WORKER * args.workers
        for i, h in enumerate([fw.submit(*expected(i)[:2]) for i in range(warm)]):
            check(i, await_result(fw, workers, h))
        workers.check_alive()

        if args.latency is not None:
            rtts, secs = run_latency(fw, workers, args.latency)
            rtts.sort()
            out = {
                "framework": fwname,
                "version": version,
                "mode": "latency",
                "tasks": args.latency,
                "workers": args.workers,
                "median_round_trip_us": round(statistics.median(rtts) / 1000, 1),
                "p90_round_trip_us": round(rtts[min(len(rtts) - 1, int(len(rtts) * 0.9))] / 1000, 1),
                "min_round_trip_us": round(rtts[0] / 1000, 1),
                "seconds": round(secs, 4),
            }
        else:
            secs = run_throughput(fw, workers, args.tasks)
            out = {
                "framework": fwname,
                "version": version,
                "tasks": args.tasks,
                "workers": args.workers,
                "seconds": round(secs, 4),
                "tasks_per_sec": round(args.tasks / secs, 1) if secs > 0 else None,
            }
        workers.check_alive()
        result_line = json.dumps(out)
    except RunTimeout:
        result_line = None
        code = fail(f"timed out after {args.timeout:g} s", 124)
    except (KeyboardInterrupt, Interrupted) as e:
        result_line = None
        code = fail(f"interrupted ({str(e) or 'SIGINT'})", 130)
    except BenchError as e:
        result_line = None
        code = fail(str(e), 1)
    except Exception as e:
        result_line = None
        code = fail(f"{type(e).__name__}: {e}", 1)
    finally:
        # Cleanup is not to be cut short: no alarm, and a second Ctrl-C only says so.
        signal.setitimer(signal.ITIMER_REAL, 0)

        def patience(signum, frame):
            log("cleaning up (stopping workers, deleting keys); please wait")

        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, patience)
        code = cleanup(fw, workers, client, prefix, before, moddir, code)

    if code == 0:
        print(result_line, flush=True)
    elif result_line is not None:  # measured, but cleanup failed
        print(json.dumps({"framework": fwname, "error": "cleanup failed (see stderr)"}), flush=True)
    return code


def cleanup(fw, workers, client, prefix, before, moddir, code):
    if workers is not None:
        if code != 0 and not workers.verbose:
            workers.dump_logs()
        try:
            workers.stop()
        except Exception as e:
            log(f"stopping workers failed: {e}")
            code = code or 1
    if fw is not None:
        fw.close()
    if client is not None:
        try:
            n = delete_prefix(client, prefix)
            log(f"deleted {n} keys under {prefix}")
            if before is not None:
                after = scan_keys(client, limit=SNAPSHOT_LIMIT)
                if after is not None:
                    new = sorted(k.decode("utf-8", "replace") for k in after - before)
                    if new:
                        # Not ours by name; another client of this db may have made them.
                        log(f"{len(new)} keys appeared during the run outside the prefix (left alone): {new[:10]}")
        except Exception as e:
            log(f"deleting the run's keys failed: {e}")
            code = code or 1
        finally:
            try:
                client.close()
            except Exception:
                pass
    if moddir is not None:
        shutil.rmtree(moddir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
