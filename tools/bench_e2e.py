"""tools/bench's end-to-end pieces for issue 14: the bare ceiling run in the
same session (sluice-bench-ceiling), the file source, the per-stage CPU
table (sluice-monitor --stages), the scaling curve with its projection, the
cross-agent hop through memcached, and the latency and overload runs.

Every figure printed here is measured in the run that prints it; the
machine is shared, so only ratios within one run mean anything.
`bench` is the tools/bench module itself (run_agent, monitor, proc_usage,
tree, stop_tree): passed in, not imported, since tools/bench has no .py name.
"""
import json
import os
import resource
import signal
import socket
import subprocess
import tempfile
import threading
import time

STAGES = ("read", "decode", "convert", "serialise", "send", "receive", "transform", "publish")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def stages(bench, run):
    """sluice-monitor --stages RUN_DIR (helper B's contract), or None when
    this build's monitor has no such option."""
    mon = bench.B + "/tools/sluice-monitor"
    for args in (["--stages", run], ["--run-dir", run, "--stages"]):
        r = subprocess.run([mon] + args, capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            try:
                return json.loads(r.stdout.strip().splitlines()[-1])
            except ValueError:
                pass
    return None


# ------------------------------------------------------------------ sluiced

def write_config(run, ingest, pipeline, source, root, extra=""):
    with open(run + "/pipeline.yaml", "w") as f:
        f.write("sources: [{name: s, meters: ['*'], sinks: [k]}]\n")
        f.write("sinks: [{name: k, publishers: ['file://%s/samples.jsonl']}]\n" % run)
    with open(run + "/sluice.yaml", "w") as f:
        f.write("run_dir: %s\nworkers: {ingest: %d, pipeline: %d}\nsources: [%s]\n"
                "ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml}\n"
                "logging: {level: warn}\n%s" % (run, ingest, pipeline, source, root, extra))


def wait_running(bench, run, proc, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("sluiced exited (%s) at start: see %s/log" % (proc.returncode, run))
        m = bench.monitor(run)
        if m and m["workers"] and all(w["state"] == "running" for w in m["workers"]):
            return m
        time.sleep(0.02)
    raise RuntimeError("sluiced in %s did not start within %d s: see its log" % (run, timeout))


def done(t, n):
    return t["received"] >= n and t["samples_received"] == t["samples_routed"] and \
        t["samples_published"] == t["samples_routed"]


def wait_done(bench, runs, n, timeout=600):
    """Sum of the agents' totals once every notification is received and
    every routed sample published."""
    t0 = time.time()
    while True:
        ms = [bench.monitor(r) for r in runs]
        if all(ms):
            tot = {}
            for m in ms:
                for k, v in m["totals"].items():
                    if isinstance(v, (int, float)):
                        tot[k] = tot.get(k, 0) + v
            if done(tot, n):
                return ms, tot
        if time.time() - t0 > timeout:
            raise RuntimeError("agents %s did not publish everything within %d s" % (runs, timeout))
        time.sleep(0.02)


def split_cpu(bench, agent_pid, m):
    """CPU seconds of (supervisor, ingest workers, pipeline workers)."""
    sup, _ = bench.proc_usage([agent_pid])
    ing, _ = bench.proc_usage([w["pid"] for w in m["workers"] if w["role"] == "ingest"])
    pip, _ = bench.proc_usage([w["pid"] for w in m["workers"] if w["role"] == "pipeline"])
    return sup, ing, pip


def run_sluiced(bench, work, data, n, ingest, pipeline, source="zmq", rate=0, duration=0,
                sample_rss=False):
    """One sluiced run: zmq (sluice-inject, as tools/bench's classic row,
    optionally paced and for a duration) or file source (clock from the
    launch of sluiced: its start-up is counted). Returns figures and the
    per-stage line."""
    run = tempfile.mkdtemp(prefix="e2e-%s-%dx%d." % (source, ingest, pipeline), dir=work)
    if source == "file":
        src = "{type: file, path: '%s'}" % data
    else:
        src = "{type: zmq, endpoint: 'ipc://%s/notify.sock'}" % run
    write_config(run, ingest, pipeline, src, bench.ROOT)
    t_launch = time.time()
    agent = subprocess.Popen([bench.B + "/supervisor/sluiced", "-c", run + "/sluice.yaml"] +
                             bench.set_args(),
                             stderr=open(run + "/log", "w"))
    rss = {"peak_total_kib": 0, "peak_inject_kib": 0, "samples": 0}
    stop_rss = threading.Event()
    try:
        wait_running(bench, run, agent)
        startup = time.time() - t_launch
        if sample_rss:
            # the same sums with every worker running and nothing sent yet
            time.sleep(1.0)
            pids = bench.tree(agent.pid)
            rss["idle_total_kib"] = sum(vm_rss_kib(q) for q in pids)
            rss["idle_total_pss_kib"] = sum(pss_kib(q) for q in pids)
        sent = None
        inj_cpu = 0.0
        if source == "zmq":
            cmd = [bench.B + "/tools/sluice-inject", "--json", "--peers", str(ingest),
                   "--run-dir", run, "--endpoint", "ipc://%s/notify.sock" % run,
                   "--linger", "600"]
            if rate:
                cmd += ["--rate", "%.0f" % rate]
            if duration:
                cmd += ["--duration", str(duration)]
            c0 = children_cpu()
            inj = subprocess.Popen(cmd + [data], stdout=subprocess.PIPE, text=True)
            if sample_rss:
                th = threading.Thread(target=rss_sampler, args=(bench, agent.pid, inj.pid, rss, stop_rss))
                th.start()
            out, _ = inj.communicate()
            if sample_rss:
                stop_rss.set()
                th.join()
            inj_cpu = children_cpu() - c0
            if inj.returncode != 0:
                raise RuntimeError("sluice-inject failed (rc %d): see %s/log" % (inj.returncode, run))
            sent = json.loads(out)
            n = sent["sent"]
            t_start = sent["first_send"]
        else:
            t_start = t_launch
        ms, t = wait_done(bench, [run], n)
        m = ms[0]
        last_write = os.stat(run + "/samples.jsonl").st_mtime
        st = stages(bench, run)
        sup, ing, pip = split_cpu(bench, agent.pid, m)
        _, hwm = bench.proc_usage([agent.pid] + [w["pid"] for w in m["workers"]])
    finally:
        stop_rss.set()
        bench.stop_tree(agent)
        bench.drop_output(run)      # as soon as it is measured (tools/bench)
    dt = last_write - t_start
    cpu = sup + ing + pip
    res = {"source": source, "ingest": ingest, "pipeline": pipeline, "n": n, "seconds": dt,
           "startup_s": startup,
           "notif_per_s": n / dt, "samples": t["samples_published"],
           "samples_per_s": t["samples_published"] / dt,
           "samples_per_notification": t["samples_published"] / max(n, 1),
           "cpu_s": cpu, "cpu_us_per_notif": 1e6 * cpu / n,
           "cpu_ingest_us": 1e6 * ing / n, "cpu_pipeline_us": 1e6 * pip / n,
           "cpu_supervisor_us": 1e6 * sup / n, "max_rss_mib": hwm / 1024,
           "inject_cpu_us": 1e6 * inj_cpu / n if sent else None,
           "stages": st, "totals": t, "sent": sent, "rss": rss}
    return res


def vm_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    """Proportional set size: shared pages (the stats region, libraries)
    divided among the processes that map them, so a sum over processes
    counts them once."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def title(pid):
    try:
        with open("/proc/%d/cmdline" % pid) as f:
            return f.read().replace("\0", " ").strip()[:40]
    except OSError:
        return str(pid)


def rss_sampler(bench, agent_pid, inject_pid, rss, stop):
    """Every second: the sum of VmRSS over sluiced and its workers, and
    sluice-inject's own; keeps the peaks and the series."""
    rss["series"] = []
    while not stop.wait(1.0):
        pids = bench.tree(agent_pid)
        tot = sum(vm_rss_kib(p) for p in pids)
        pss = sum(pss_kib(p) for p in pids)
        rss["peak_total_pss_kib"] = max(rss.get("peak_total_pss_kib", 0), pss)
        inj = vm_rss_kib(inject_pid)
        rss["series"].append(tot)
        if tot > rss["peak_total_kib"]:
            rss["peak_breakdown"] = [(title(p), vm_rss_kib(p), pss_kib(p)) for p in pids]
        rss["peak_total_kib"] = max(rss["peak_total_kib"], tot)
        rss["peak_inject_kib"] = max(rss["peak_inject_kib"], inj)
        rss["samples"] += 1


# ------------------------------------------------------------------ ceiling

def run_ceiling(bench, work, data, n, ingest, pipeline, k, source="zmq"):
    """sluice-bench-ceiling with the same inlet: zmq = PULL from the
    sluice-inject that also feeds sluiced (clock: first send to last sample
    decoded); file = reads the input file (clock: launch to last decoded)."""
    run = tempfile.mkdtemp(prefix="ceil-%dx%d." % (ingest, pipeline), dir=work)
    cmd = [bench.B + "/tools/sluice-bench-ceiling", "--count", str(n), "--run", run,
           "--ingest", str(ingest), "--pipeline", str(pipeline), "--samples", "%.3f" % k,
           "--timeout", "30"]
    c0 = children_cpu()
    t_launch = time.time()
    if source == "file":
        r = subprocess.run(cmd + ["--file", data], capture_output=True, text=True)
        out, t_start, inj_cpu = r.stdout, t_launch, 0.0
    else:
        ep = "ipc://%s/notify.sock" % run
        ceil = subprocess.Popen(cmd + ["--endpoint", ep], stdout=subprocess.PIPE, text=True)
        inj = subprocess.run([bench.B + "/tools/sluice-inject", "--json", "--peers", str(ingest),
                              "--endpoint", ep, "--linger", "60", data],
                             capture_output=True, text=True)
        inj_cpu = children_cpu() - c0
        out, _ = ceil.communicate(timeout=600)
        if inj.returncode != 0:
            raise RuntimeError("sluice-inject into the ceiling failed: %s" % inj.stderr.strip())
        t_start = json.loads(inj.stdout)["first_send"]
    cpu_all = children_cpu() - c0
    c = json.loads(out.strip().splitlines()[-1])
    if not c["complete"]:
        raise RuntimeError("the ceiling did not see every notification: %s" % c)
    dt = c["last_decoded"] - t_start
    cpu = c["cpu_ingest_s"] + c["cpu_pipeline_s"]
    c.update({"notif_per_s": n / dt, "seconds_e2e": dt, "cpu_us_per_notif": 1e6 * cpu / n,
              "cpu_ingest_us": 1e6 * c["cpu_ingest_s"] / n,
              "cpu_pipeline_us": 1e6 * c["cpu_pipeline_s"] / n,
              "inject_cpu_us": 1e6 * inj_cpu / n, "cpu_all_s": cpu_all})
    return c


# ------------------------------------------------------------------ tables

def fmt(x, f="%.0f"):
    return "n/a" if x is None else f % x


def print_stage_table(rows):
    """rows: [(label, sluiced result)]."""
    print()
    print("CPU µs per notification by stage (sluice-monitor --stages: sampled timing in the "
          "workers, summed over all live workers; pipeline stages divided by notifications, so "
          "samples per notification is folded in), and from /proc:")
    print()
    print("| run | " + " | ".join(STAGES) + " | stages total | /proc total (ingest + pipeline "
          "+ supervisor) | latency p50 / p99 ms |")
    print("|---" * (len(STAGES) + 4) + "|")
    for label, r in rows:
        st = r.get("stages") or {}
        cu = st.get("cpu_us_per_notification") or {}
        lat = st.get("latency_ms") or {}
        cells = [fmt(cu.get(s), "%.2f") for s in STAGES]
        print("| %s | %s | %s | %.1f (%.1f + %.1f + %.1f) | %s |" % (
            label, " | ".join(cells), fmt(cu.get("total"), "%.2f"), r["cpu_us_per_notif"],
            r["cpu_ingest_us"], r["cpu_pipeline_us"], r["cpu_supervisor_us"],
            "%s / %s" % (fmt(lat.get("p50"), "%.2f"), fmt(lat.get("p99"), "%.2f")) if lat else "n/a"))


def e2e_main(bench, a, work, data, parse):
    """The default run's rows: sluiced and the ceiling alternately, for each
    configuration, from the zmq source and from the file source."""
    print()
    print("End to end against the bare ceiling (tools/sluice-bench-ceiling: SAX capture, "
          "yajl_gen, ipc PUSH/PULL, no definitions), same input, same inlet, same worker "
          "counts, runs alternating:")
    print()
    print("| workers | source | sluiced notif/s | samples/notif | ceiling notif/s (K) | "
          "sluice / ceiling (target >= 0.8) | sluiced CPU µs/notif | ceiling CPU µs/notif | "
          "CPU ratio ceiling / sluiced | sluiced peak RSS | sluiced start-up s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    results = []
    stage_rows = []
    sources = [s for s in a.sources.split(",") if s]
    for cfg in a.configs.split(","):
        i, p = (int(x) for x in cfg.split("x"))
        for src in sources:
            s, c = pair(bench, a, work, data, i, p, src)
            k = c["samples_per_notification"]
            ratio = median(s["ratios"])   # of the paired runs, not of the medians
            cpu_ratio = c["cpu_us_per_notif"] / s["cpu_us_per_notif"]
            print("| %d+%d | %s | %.0f | %.2f | %.0f (%.2f) | %.2f | %.1f | %.1f | %.2f | %.0f MiB | %.2f%s |" % (
                i, p, src, s["notif_per_s"], s["samples_per_notification"], c["notif_per_s"], k,
                ratio, s["cpu_us_per_notif"], c["cpu_us_per_notif"], cpu_ratio, s["max_rss_mib"],
                s["startup_s"], " (counted)" if src == "file" else ""), flush=True)
            results.append({"config": cfg, "source": src, "sluiced": slim(s), "ceiling": c,
                            "ratio": ratio, "ratios": s.get("ratios"), "cpu_ratio": cpu_ratio})
            if s.get("ratios") and len(s["ratios"]) > 1:
                print("|  | (%d runs each, alternating: ratios %s) | | | | | | | | | |" % (
                    len(s["ratios"]), ", ".join("%.2f" % x for x in s["ratios"])), flush=True)
            stage_rows.append(("%d+%d %s" % (i, p, src), s))
    print()
    print("sluiced: zmq = first send by sluice-inject to the last sample written; file = launch "
          "of sluiced (start-up counted: launch to every worker running, polled every 20 ms, is the last column) to the last sample written. Ceiling: the same clock, "
          "K samples per notification = sluiced's own ratio in that row (--ceiling-k), routed "
          "by resource id, 64 per message. notif/s: the median run of each; sluice / ceiling: "
          "the median of the paired runs' ratios. CPU ratio: the ceiling's CPU per "
          "notification over sluiced's (/proc and rusage): steadier than rates on a loaded "
          "machine; the 0.8 throughput target needs about 0.8 here once both are CPU-bound.")
    print_stage_table(stage_rows)
    return results


def pair(bench, a, work, data, i, p, src):
    """sluiced then the ceiling, --repeat times alternating; the median run
    of each (by notif/s), with every run's ratio."""
    ss, cs = [], []
    for _ in range(max(1, a.repeat)):
        s = run_sluiced(bench, work, data, a.n, i, p, src)
        k = s["samples_per_notification"] if a.ceiling_k == "ratio" else float(a.ceiling_k)
        ss.append(s)
        cs.append(run_ceiling(bench, work, data, a.n, i, p, k, src))
    ratios = [x["notif_per_s"] / y["notif_per_s"] for x, y in zip(ss, cs)]
    s = dict(sorted(ss, key=lambda r: r["notif_per_s"])[len(ss) // 2])
    c = dict(sorted(cs, key=lambda r: r["notif_per_s"])[len(cs) // 2])
    s["ratios"] = ratios
    s["rates"] = [x["notif_per_s"] for x in ss]
    c["rates"] = [x["notif_per_s"] for x in cs]
    return s, c


def slim(r):
    return {k: v for k, v in r.items() if k not in ("totals",)}


# ------------------------------------------------------------------ scaling

def scaling_main(bench, a, work, data):
    print()
    print("Scaling: sluiced (zmq source) and the ceiling for each worker configuration, %d "
          "CPUs, same input, same run:" % os.cpu_count())
    print()
    print("| workers | sluiced notif/s | ceiling notif/s | ratio (each run) | CPU µs/notif ingest | "
          "pipeline | supervisor | sluice-inject | ceiling ingest + pipeline |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for cfg in a.scaling.split(","):
        i, p = (int(x) for x in cfg.split("x"))
        s, c = pair(bench, a, work, data, i, p, "zmq")
        print("| %d+%d | %.0f | %.0f | %.2f (%s) | %.1f | %.1f | %.2f | %.1f | %.1f + %.1f |" % (
            i, p, s["notif_per_s"], c["notif_per_s"], median(s["ratios"]),
            ", ".join("%.2f" % x for x in s["ratios"]),
            s["cpu_ingest_us"], s["cpu_pipeline_us"], s["cpu_supervisor_us"],
            s["inject_cpu_us"] or 0, c["cpu_ingest_us"], c["cpu_pipeline_us"]), flush=True)
        rows.append({"config": cfg, "sluiced": slim(s), "ceiling": c})
    print_stage_table([(r["config"], r["sluiced"]) for r in rows])
    proj = projection(rows)
    print()
    print("Projection (model, not a measurement): per notification sluice needs c_i µs of "
          "ingest CPU and c_p µs of pipeline CPU (the median over the configurations above, "
          "from /proc), c_i = %.1f, c_p = %.1f. Ingest and pipeline workers share nothing "
          "but the ipc hop, so with N cores split in the ratio c_i : c_p the work is parallel "
          "up to the serial parts: one zmq inlet (a single sluice-inject PUSH socket: %.1f µs "
          "of its CPU per notification, so at most %.0f notif/s), one agent's supervisor "
          "(%.2f µs, negligible), and per pipeline worker its own file publisher (no shared "
          "writer). Efficiency e = the best measured rate here / the model's rate for this "
          "machine's cores (e = %.2f: it folds in this shared machine's load, the ipc hop's "
          "queues and the whole-worker split)."
          % (proj["c_i"], proj["c_p"], proj["inlet_us"], proj["inlet_max"], proj["sup_us"],
             proj["efficiency"]))
    print()
    print("| cores | ingest : pipeline workers | ideal notif/s (e = 1) | with e | limited by |")
    print("|---|---|---|---|---|")
    for n in (2, 16, 64):
        r = proj["cores"][str(n)]
        print("| %d | %d : %d | %.0f | %.0f | %s |" % (n, r["ingest"], r["pipeline"], r["ideal"],
                                                      r["with_e"], r["limit"]))
    print()
    print("One zmq inlet caps every host size above: beyond it, several producers (one "
          "sluice-inject or notifier per ingest worker, or a zmq source in bind mode) or "
          "RabbitMQ queues spread over ingest workers are needed; the same holds for the "
          "ceiling.")
    return {"rows": rows, "projection": proj}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def projection(rows):
    c_i = median([r["sluiced"]["cpu_ingest_us"] for r in rows])
    c_p = median([r["sluiced"]["cpu_pipeline_us"] for r in rows])
    sup = median([r["sluiced"]["cpu_supervisor_us"] for r in rows])
    inlet = median([r["sluiced"]["inject_cpu_us"] or 0 for r in rows]) or 1e-9
    def ideal_at(n):
        """Whole workers, one per core, split as close to c_i : c_p as they go."""
        ing = max(1, min(n - 1, round(n * c_i / (c_i + c_p))))
        return ing, n - ing, min(ing * 1e6 / c_i, (n - ing) * 1e6 / c_p)
    ncpu = os.cpu_count()
    best = max(rows, key=lambda r: r["sluiced"]["notif_per_s"])
    e = min(best["sluiced"]["notif_per_s"] / ideal_at(ncpu)[2], 1.0)
    out = {"c_i": c_i, "c_p": c_p, "sup_us": sup, "inlet_us": inlet, "inlet_max": 1e6 / inlet,
           "efficiency": e, "cores": {}}
    for n in (2, 16, 64):
        ing, pip, ideal = ideal_at(n)
        with_e = ideal * e
        limit = "CPU"
        if with_e > out["inlet_max"]:
            with_e, limit = out["inlet_max"], "one zmq inlet"
        out["cores"][str(n)] = {"ingest": ing, "pipeline": pip, "ideal": ideal, "with_e": with_e,
                                "limit": limit}
    return out


# ------------------------------------------------------------------ cluster

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_memcached():
    port = free_port()
    import pwd
    user = pwd.getpwuid(os.getuid()).pw_name
    p = subprocess.Popen(["/usr/bin/memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0",
                          "-u", user], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p, port
        except OSError:
            time.sleep(0.02)
    p.kill()
    p.wait()
    raise RuntimeError("memcached did not start on 127.0.0.1:%d (apt-get install memcached)" % port)


def run_agents(bench, work, data, n, k, ingest, pipeline, mc_port, tcp=False):
    """k agents on this host, one memcached group (partitions 16), fed by
    one sluice-inject whose lines ZeroMQ spreads over every ingest worker of
    every agent."""
    base = tempfile.mkdtemp(prefix="cluster-%d." % k, dir=work)
    ep = "ipc://%s/notify.sock" % base
    with open(base + "/secret", "w") as f:
        f.write("bench-cluster-secret-0123456789abcdef\n")
    runs, agents = [], []
    coord = "partitions: 16\n" if mc_port is None else ("partitions: 16\ncoordination: {backend: 'memcached://127.0.0.1:%d', group: bench%d, "
             "heartbeat: 200, lease_ttl: 1000, secret_file: %s/secret%s}\n"
             % (mc_port, k, base, ", same_host_ipc: 0" if tcp else ""))
    try:
        for j in range(k):
            run = tempfile.mkdtemp(prefix="a%d." % j, dir=base)
            write_config(run, ingest, pipeline, "{type: zmq, endpoint: '%s', mode: connect}" % ep,
                         bench.ROOT, coord)
            agents.append(subprocess.Popen([bench.B + "/supervisor/sluiced", "-c",
                                            run + "/sluice.yaml"] + bench.set_args(),
                                           stderr=open(run + "/log", "w")))
            runs.append(run)
        for run, ag in zip(runs, agents):
            wait_running(bench, run, ag)
        # every partition owned before the clock starts (leases settle in a few heartbeats)
        if mc_port is not None:
            time.sleep(2.0)
        cpu0 = 0.0
        for ag in agents:
            cpu0 += bench.cpu_s(bench.tree(ag.pid))
        cmd = [bench.B + "/tools/sluice-inject", "--json", "--peers", str(k * ingest),
               "--endpoint", ep, "--linger", "600"]
        for run in runs:
            cmd += ["--run-dir", run]
        inj = subprocess.run(cmd + [data], capture_output=True, text=True)
        if inj.returncode != 0:
            raise RuntimeError("sluice-inject into %d agents failed: %s" % (k, inj.stderr.strip()))
        sent = json.loads(inj.stdout)
        ms, t = wait_done(bench, runs, n)
        last = max(os.stat(r + "/samples.jsonl").st_mtime for r in runs
                   if os.path.exists(r + "/samples.jsonl"))
        cpu = -cpu0   # start-up and the settling heartbeats are not counted
        for ag, m in zip(agents, ms):
            c, _ = bench.proc_usage([ag.pid] + [w["pid"] for w in m["workers"]])
            cpu += c
    finally:
        for ag in agents:
            bench.stop_tree(ag)
        for run in runs:
            bench.drop_output(run)
    dt = last - sent["first_send"]
    return {"agents": k, "coordination": "local" if mc_port is None else "memcached",
            "ingest": ingest, "pipeline": pipeline, "notif_per_s": n / dt,
            "samples": t["samples_published"], "cpu_s": cpu,
            "cpu_us_per_sample": 1e6 * cpu / max(t["samples_published"], 1),
            "frames_sent": t.get("frames_sent"), "frames_resent": t.get("frames_resent")}


def cluster_main(bench, a, work, data):
    k = a.cluster
    i, p = (int(x) for x in a.cluster_workers.split("x"))
    mc, port = start_memcached()
    try:
        local = run_agents(bench, work, data, a.n, 1, k * i, k * p, None)
        one = run_agents(bench, work, data, a.n, 1, k * i, k * p, port, a.cluster_tcp)
        many = run_agents(bench, work, data, a.n, k, i, p, port, a.cluster_tcp)
    finally:
        mc.terminate()
        mc.wait()
    hop = many["cpu_us_per_sample"] - local["cpu_us_per_sample"]
    cross = (k - 1) / k
    print()
    print("Cross-agent hop: the same input through 1 agent with %d+%d workers (local "
          "coordination, then memcached) and through %d agents with %d+%d workers each sharing "
          "16 partitions through one memcached on loopback (heartbeat 200 ms, %s between the "
          "coordinated workers), fed by one sluice-inject:"
          % (k * i, k * p, k, i, p, "tcp (same_host_ipc: 0, as between hosts)"
             if a.cluster_tcp else "ipc (same host)"))
    print()
    print("| agents | coordination | workers each | notif/s | samples | CPU µs per sample "
          "(all processes, from the first send) |")
    print("|---|---|---|---|---|---|")
    for r in (local, one, many):
        print("| %d | %s | %d+%d | %.0f | %d | %.2f |" % (
            r["agents"], r["coordination"], r["ingest"], r["pipeline"], r["notif_per_s"],
            r["samples"], r["cpu_us_per_sample"]))
    print()
    print("Difference K agents - 1 agent (local): %.2f µs of CPU per sample; about %.0f%% of samples cross agents (a "
          "partition's owner is another agent for (K-1)/K of them), so %.2f µs per crossing "
          "sample: the hop's cost (negative or near 0 = within this run's noise)."
          % (hop, 100 * cross, hop / cross if cross else 0))
    return {"local": local, "one": one, "many": many, "hop_us_per_sample": hop,
            "hop_us_per_crossing_sample": hop / cross if cross else None}


# ------------------------------------------------------------------ latency, overload

def latency_main(bench, a, work, data, max_rate=None):
    i, p = (int(x) for x in a.load_workers.split("x"))
    if not max_rate:
        max_rate = run_sluiced(bench, work, data, a.n, i, p, "zmq")["notif_per_s"]
    rate = 0.5 * max_rate
    r = run_sluiced(bench, work, data, a.n, i, p, "zmq", rate=rate, duration=a.latency_seconds)
    lat = (r.get("stages") or {}).get("latency_ms")
    print()
    print("Latency at 50%% of the measured maximum (%d+%d workers, max %.0f notif/s, offered "
          "%.0f for %d s, achieved %.0f):" % (i, p, max_rate, rate, a.latency_seconds,
                                              r["sent"]["notif_per_s"]))
    print()
    print("| count | p50 ms | p90 ms | p99 ms (target <= 10) | max ms |")
    print("|---|---|---|---|---|")
    if lat:
        print("| %s | %s | %s | %s | %s |" % (lat.get("count"), fmt(lat.get("p50"), "%.2f"),
                                             fmt(lat.get("p90"), "%.2f"), fmt(lat.get("p99"), "%.2f"),
                                             fmt(lat.get("max"), "%.2f")))
    else:
        print("| n/a | n/a | n/a | n/a | n/a |")
        print()
        print("(this build's sluice-monitor has no --stages: the latency histogram is helper "
              "B's part of issue 14)")
    return {"max_rate": max_rate, "offered": rate, "achieved": r["sent"]["notif_per_s"],
            "latency_ms": lat, "sent": r["sent"]["sent"]}


def overload_main(bench, a, work, data, max_rate=None):
    i, p = (int(x) for x in a.load_workers.split("x"))
    if not max_rate:
        max_rate = run_sluiced(bench, work, data, a.n, i, p, "zmq")["notif_per_s"]
    offered = a.overload_factor * max_rate   # 0: as fast as sluice-inject can send
    r = run_sluiced(bench, work, data, a.n, i, p, "zmq", rate=offered,
                    duration=a.overload_seconds, sample_rss=True)
    t = r["totals"]
    sent = r["sent"]["sent"]
    drops = {k: v for k, v in t.items() if (k.startswith("drop") or k in (
        "publish_errors", "frames_failed", "lost_in_crash", "samples_unrouted")) and v}
    lost = sent - t["received"]
    ok = lost == 0 and t["samples_published"] == t["samples_routed"] and not drops
    peak = r["rss"]["peak_total_kib"] / 1024
    print()
    print("Overload: %d+%d workers, offered %s notif/s for %d s (measured maximum %.0f); "
          "sluice-inject blocks on back-pressure (ZeroMQ high-water marks), achieved %.0f notif/s "
          "(sent / send time):" % (i, p, "%g x %.0f = %.0f" % (a.overload_factor, max_rate, offered)
                                   if offered else "as many as possible", a.overload_seconds,
                                   max_rate, r["sent"]["notif_per_s"]))
    print()
    pss = r["rss"].get("peak_total_pss_kib", 0) / 1024
    print("| sent | received | processed notif/s (first send to last sample written) | "
          "samples routed | published | drops/errors | peak total RSS (sum of VmRSS of sluiced "
          "+ workers, 1 s samples) | peak total PSS | sluice-inject peak RSS | target (<= 64 "
          "MiB, no loss) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("| %d | %d | %.0f | %d | %d | %s | %.1f MiB | %.1f MiB | %.1f MiB | RSS: %s, PSS: %s |" % (
        sent, t["received"], r["notif_per_s"], t["samples_routed"], t["samples_published"],
        json.dumps(drops) if drops else "0", peak, pss, r["rss"]["peak_inject_kib"] / 1024,
        "met" if ok and peak <= 64 else "NOT met", "met" if ok and pss <= 64 else "NOT met"))
    if r["rss"].get("peak_breakdown"):
        print()
        print("At the RSS peak (VmRSS / PSS): " + ", ".join(
            "%s %.1f / %.1f MiB" % (t, k / 1024, q / 1024) for t, k, q in r["rss"]["peak_breakdown"]))
        print("A sum of VmRSS counts the shared pages (the stats region, libraries, the "
              "supervisor's pages its forked workers still share) once per process; PSS "
              "divides them among the processes.")
    if "idle_total_kib" in r["rss"]:
        print("Before the load (every worker running, nothing sent): summed VmRSS %.1f MiB, "
              "summed PSS %.1f MiB." % (r["rss"]["idle_total_kib"] / 1024,
                                        r["rss"]["idle_total_pss_kib"] / 1024))
    return {"max_rate": max_rate, "offered": offered, "achieved": r["sent"]["notif_per_s"],
            "processed_notif_per_s": r["notif_per_s"], "sent": sent, "received": t["received"], "published": t["samples_published"],
            "routed": t["samples_routed"], "drops": drops, "no_loss": ok,
            "peak_total_rss_mib": peak, "peak_total_pss_mib": pss, "peak_inject_rss_mib": r["rss"]["peak_inject_kib"] / 1024,
            "rss_series_kib": r["rss"].get("series"),
            "idle_total_rss_mib": r["rss"].get("idle_total_kib", 0) / 1024,
            "idle_total_pss_mib": r["rss"].get("idle_total_pss_kib", 0) / 1024,
            "rss_peak_breakdown_kib": r["rss"].get("peak_breakdown")}
