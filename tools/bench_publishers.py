"""tools/bench --publishers N: each publisher's throughput to a local
destination, and isolation of a sink whose destination stalls.

Imported by tools/bench (the sluiced runs, the monitor and the process
accounting live there). For each publisher named in --pub-list, one run:
sluiced (1 ingest + 1 pipeline worker, zmq source) with one sink whose only
publisher is that URL, pointed at a destination started here on
127.0.0.1 (a fast HTTP sink answering every request at once, UDP and TCP
receivers that count, or the real servers the tests use: tools/zaqar-node,
tools/gnocchi-node, prometheus-pushgateway); sluice-inject sends the N
generated notifications as fast as it can, and the clock runs from the first
send until the publisher's counters (sluice-monitor) account for every
sample routed to the sink (sent + dropped). The file:// run is the
reference each rate is compared with.

--isolation: two sinks fed by the same source, sink `a` writing to a file
and sink `b` posting to an HTTP destination. Run twice in one go: with `b`'s
destination healthy, then stalled (it accepts connections and never
answers; `b` has timeout=1, policy=queue, max_queue_length=8). Reported: sink
a's samples/s in both runs and their ratio (1.00 = the stall costs the
other sink nothing), and what `b` dropped. With policy=default a stalled
destination is meant to stop the source (back-pressure, nothing lost),
which is why the stalled sink uses policy=queue here."""
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time


class _Sink(http.server.BaseHTTPRequestHandler):
    """Answers every request at once (204), or never (stall)."""
    protocol_version = "HTTP/1.1"

    def _any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.server.requests += 1
        if self.server.stall:
            time.sleep(3600)
        self.send_response(204 if self.command != "GET" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_PATCH = do_GET = _any

    def log_message(self, *a):
        pass


class _HTTPSink(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(self, stall=False):
        super().__init__(("127.0.0.1", 0), _Sink)
        self.stall, self.requests = stall, 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]

    def stop(self):
        self.shutdown()
        self.server_close()


class _UDPCount:
    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.s.bind(("127.0.0.1", 0))
        self.port, self.n, self.run = self.s.getsockname()[1], 0, True
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        self.s.settimeout(0.2)
        while self.run:
            try:
                self.s.recv(65536)
                self.n += 1
            except socket.timeout:
                pass

    def stop(self):
        self.run = False


class _TCPCount:
    """Reads and discards whatever arrives on every connection."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(16)
        self.port, self.bytes, self.run = self.s.getsockname()[1], 0, True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.run:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c):
        while True:
            b = c.recv(1 << 16)
            if not b:
                return
            self.bytes += len(b)

    def stop(self):
        self.run = False
        self.s.close()


def _node(root, tool, work):
    """Starts tools/<tool> start DIR; returns (env dict, stop function)."""
    d = tempfile.mkdtemp(prefix="sl-%s." % tool[:2])   # short: unix socket paths
    r = subprocess.run([root + "/tools/" + tool, "start", d], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s start failed: %s" % (tool, r.stderr.strip()[-500:]))
    env = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    if not env and os.path.exists(d + "/node.env"):
        env = dict(l.strip().split("=", 1) for l in open(d + "/node.env") if "=" in l)
    def stop():
        subprocess.run([root + "/tools/" + tool, "stop", d], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
    return env, stop


def _pushgateway(work):
    port = _free_port()
    d = tempfile.mkdtemp(prefix="pushgw.", dir=work)
    p = subprocess.Popen(["/usr/bin/prometheus-pushgateway",
                          "--web.listen-address=127.0.0.1:%d" % port],
                         stdout=open(d + "/log", "w"), stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        p.kill()
        raise RuntimeError("prometheus-pushgateway did not start (see %s/log)" % d)

    def stop():
        p.terminate()
        p.wait()
    return port, stop


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def destinations(root, work):
    """name -> function(work) returning (url, stop, description)."""
    def file_(w):
        return "file://%s/out.jsonl" % w, lambda: None, "a local file"

    def http_(w):
        s = _HTTPSink()
        return ("http://127.0.0.1:%d/samples" % s.port, s.stop,
                "local HTTP sink (Python, 204 at once)")

    def udp_(w):
        s = _UDPCount()
        return "udp://127.0.0.1:%d" % s.port, s.stop, "local UDP receiver"

    def tcp_(w):
        s = _TCPCount()
        return "tcp://127.0.0.1:%d" % s.port, s.stop, "local TCP receiver"

    def otlp_(w):
        s = _HTTPSink()
        # post=batch: Ceilometer's one POST per sample is bound by the
        # Python sink's requests/s, not by sluice
        return ("opentelemetryhttp://127.0.0.1:%d/v1/metrics?post=batch" % s.port, s.stop,
                "local HTTP sink (Python, 204 at once), post=batch")

    def prometheus_(w):
        port, stop = _pushgateway(w)
        return ("prometheus://127.0.0.1:%d/metrics/job/sluice" % port, stop,
                "prometheus-pushgateway (Debian)")

    def zaqar_(w):
        env, stop = _node(root, "zaqar-node", w)
        url = env.get("ZAQAR_URL", "")
        host = url.split("://", 1)[-1].rstrip("/")
        return ("zaqar://%s?queue=bench&ttl=3600&project_id=bench" % host, stop,
                "Zaqar (Debian, redis store)")

    def gnocchi_(w):
        env, stop = _node(root, "gnocchi-node", w)
        url = env.get("GNOCCHI_URL", "")
        return ("gnocchi://?endpoint=%s&auth=basic&user=admin" % url, stop,
                "Gnocchi (Debian, PostgreSQL + file storage)")

    return {"file": file_, "http": http_, "udp": udp_, "tcp": tcp_,
            "opentelemetryhttp": otlp_, "prometheus": prometheus_, "zaqar": zaqar_,
            "gnocchi": gnocchi_}


def _run(bench, work, data, n, sinks, pub_done_sink, limit_s=600):
    """sluiced 1+1 with `sinks` (name -> [urls]) all fed by one source;
    waits until the publishers of sink pub_done_sink account for every
    sample routed to it, or limit_s passed (then the rate is what was sent
    by then); returns (seconds, monitor json, run dir, CPU s, peak RSS)."""
    run = tempfile.mkdtemp(prefix="run-pub.", dir=work)
    with open(run + "/pipeline.yaml", "w") as f:
        f.write("sources: [{name: s, meters: ['*'], sinks: [%s]}]\nsinks:\n" % ", ".join(sinks))
        for name, urls in sinks.items():
            f.write("  - name: %s\n    publishers: [%s]\n"
                    % (name, ", ".join("'%s'" % u for u in urls)))
    with open(run + "/sluice.yaml", "w") as f:
        f.write("run_dir: %s\nworkers: {ingest: 1, pipeline: 1}\n"
                "sources: [{type: zmq, endpoint: 'ipc://%s/notify.sock'}]\n"
                "ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml}\n"
                "logging: {level: warn}\n" % (run, run, bench.ROOT))
    agent = subprocess.Popen([bench.B + "/supervisor/sluiced", "-c", run + "/sluice.yaml"] +
                             bench.set_args(),
                             stderr=open(run + "/log", "w"))
    try:
        deadline = time.time() + 30
        while True:
            m = bench.monitor(run)
            if m and all(w["state"] == "running" for w in m["workers"]):
                break
            if agent.poll() is not None or time.time() > deadline:
                raise RuntimeError("sluiced did not start: %s" % open(run + "/log").read()[-800:])
            time.sleep(0.02)
        # sluice-inject sends everything, then waits (30 s at most) for
        # sluiced to count it; a stalled sink may hold the source: the
        # clock is ours, from its first send
        inj = subprocess.Popen([bench.B + "/tools/sluice-inject", "--json", "--peers", "1",
                                "--run-dir", run, "--endpoint", "ipc://%s/notify.sock" % run,
                                data], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = time.time()
        deadline = first + limit_s
        while True:
            m = bench.monitor(run)
            t = m["totals"]
            routed = m["sinks"].get(pub_done_sink, {}).get("routed", None)
            pubs = [p for p in m["publishers"] if p["sink"] == pub_done_sink]
            done = sum(p["sent"] + p["dropped"] for p in pubs)
            end = time.time()
            if t["received"] >= n and t["samples_received"] == t["samples_routed"] and pubs and \
                    routed is not None and done >= routed and routed > 0:
                break
            if end > deadline:
                break
            time.sleep(0.2)   # each poll is a sluice-monitor process: keep them rare
        out, _ = inj.communicate()
        try:
            first = json.loads(out)["first_send"]
        except (ValueError, KeyError):
            pass   # it gave up waiting: keep our own clock
        pids = [agent.pid] + [w["pid"] for w in m["workers"]]
        cpu, rss = bench.proc_usage(pids)
        return end - first, m, run, cpu, rss
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def publishers_main(bench, a, work, data):
    dests = destinations(bench.ROOT, work)
    names = [x for x in a.pub_list.split(",") if x]
    if not names:
        return isolation(bench, a, work, data) if a.isolation else None
    print()
    print("Publishers, 1 ingest + 1 pipeline worker, %d notifications (zmq source), one sink "
          "with one publisher each, same run:" % a.n)
    print()
    print("| publisher | destination | samples/s | vs file:// | sent | dropped | publish calls | "
          "mean call ms | CPU s | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ref = None
    # the real servers (Python under one process) take thousands of samples
    # a second at best: they get the first --pub-slow-n notifications
    slow = {"gnocchi", "zaqar"}
    small = None
    for name in names:
        if name not in dests:
            print("| %s | (unknown: use %s) | | | | | | | | |" % (name, ",".join(dests)))
            continue
        w = tempfile.mkdtemp(prefix="dest-%s." % name, dir=work)
        try:
            url, stop, what = dests[name](w)
        except (RuntimeError, OSError) as e:
            print("| %s | could not start: %s | | | | | | | | |" % (name, e))
            continue
        inp, n = data, a.n
        if name in slow and a.pub_slow_n < a.n:
            if small is None:
                small = os.path.join(work, "input-small.jsonl")
                with open(data) as f, open(small, "w") as g:
                    for i, line in enumerate(f):
                        if i >= a.pub_slow_n:
                            break
                        g.write(line)
            inp, n = small, a.pub_slow_n
        try:
            dt, m, run, cpu, rss = _run(bench, work, inp, n, {"k": [url]}, "k")
        except RuntimeError as e:
            print("| %s | %s | failed: %s | | | | | | | |" % (name, what, str(e)[:300]))
            continue
        finally:
            stop()
        p = [x for x in m["publishers"] if x["sink"] == "k"][0]
        rate = p["sent"] / dt if dt > 0 else 0
        if name == "file":
            ref = rate
        print("| %s | %s | %.0f | %s | %d | %d | %d | %.2f | %.1f | %.0f MiB |" % (
            name + (" (%d notif.)" % n if n != a.n else ""), what, rate, "%.2f" % (rate / ref) if ref else "-", p["sent"], p["dropped"],
            p["publishes"], p["latency_ms_sum"] / max(p["publishes"], 1), cpu, rss / 1024))
        shutil.rmtree(run, ignore_errors=True)
    if a.isolation:
        isolation(bench, a, work, data)


def isolation(bench, a, work, data):
    rounds = max(1, a.repeat)
    print()
    print("Isolation: sink a = file://, sink b = http:// to a local sink; the same %d "
          "notifications feed both; b's destination healthy, then stalled (accepts, never "
          "answers) with b's policy=queue, then with policy=drop (b: timeout=1, "
          "max_queue_length=64, confirm=auto: queued); each run stops after 60 s; %s:"
          % (a.n, "%d rounds, the three runs interleaved in each (rotated), medians shown" % rounds
             if rounds > 1 else "one round"))
    print()
    print("| b's destination | b's policy | sink a samples/s | sink a sent | sink b sent | "
          "sink b dropped | a's rate vs healthy run |")
    print("|---|---|---|---|---|---|---|")
    cases = ((False, "queue"), (True, "queue"), (True, "drop"))
    runs = {c: [] for c in cases}
    for r in range(rounds):   # interleaved, each round in another order, so that load
        for i in range(len(cases)):   # drifts and after-effects hit every case alike
            stall, policy = cases[(i + r) % len(cases)]
            s = _HTTPSink(stall=stall)
            url_b = ("http://127.0.0.1:%d/b?timeout=1&policy=%s&max_queue_length=64"
                     % (s.port, policy))
            try:
                dt, m, run, _, _ = _run(bench, work, data, a.n,
                                        {"a": ["file://%s/a.jsonl" % work], "b": [url_b]}, "a",
                                        limit_s=60)
            finally:
                s.stop()
                try:
                    os.unlink("%s/a.jsonl" % work)   # each run writes a file of its own
                except OSError:
                    pass
            pa = [x for x in m["publishers"] if x["sink"] == "a"][0]
            pb = [x for x in m["publishers"] if x["sink"] == "b"][0]
            runs[(stall, policy)].append((pa["sent"] / dt, pa["sent"], pb["sent"], pb["dropped"]))
            shutil.rmtree(run, ignore_errors=True)
    base = None
    for stall, policy in cases:
        r = sorted(runs[(stall, policy)])
        rate, sa, sb, db = r[len(r) // 2]
        base = base or rate
        print("| %s | %s | %.0f | %d | %d | %d | %.2f |" % (
            "stalled" if stall else "healthy", policy, rate, sa, sb, db, rate / base))
    if rounds > 1:
        print()
        print("All runs, sink a samples/s: " + "; ".join(
            "%s %s: %s" % ("stalled" if st else "healthy", po,
                           ", ".join("%.0f" % x[0] for x in runs[(st, po)]))
            for st, po in cases))
