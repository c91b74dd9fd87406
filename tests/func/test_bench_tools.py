#!/usr/bin/python3
"""tools/bench's C helpers: the bare ceiling (sluice-bench-ceiling) and
sluice-inject's --rate/--duration/--loop replay. Counts only: no timed
assertion (tools/bench measures speed, tests never do).

  test_bench_tools.py --build BUILD_DIR --src SOURCE_DIR

1. ceiling_file: sluice-bench-ceiling --file with 2 ingest and 2 pipeline
   processes and 1.5 samples per notification reads every line once and
   decodes exactly 1.5 x lines samples, all made.
2. ceiling_zmq: fed by sluice-inject --peers 2 --rate over ipc, it
   reads every notification sent and decodes every sample made.
3. replay: --loop 3 sends the file three times; --duration with --loop 2
   stops at the loops; --duration on an empty file ends (sent 0) instead
   of replaying nothing forever.

Every process it starts is waited for or killed by PID. Exit 0 if
everything holds; 1 with what was expected and what came instead.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile

FAILS = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        FAILS.append(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--src", required=True)
    a = ap.parse_args()
    inject = a.build + "/tools/sluice-inject"
    ceiling = a.build + "/tools/sluice-bench-ceiling"
    work = tempfile.mkdtemp(prefix="sl-benchtools.")
    procs = []
    try:
        data = work + "/in.jsonl"
        subprocess.run([inject, "--generate", "2000", "--seed", "3", "--output", data], check=True)
        lines = sum(1 for _ in open(data))

        # 1. file inlet
        r = subprocess.run([ceiling, "--count", str(lines), "--run", work, "--file", data,
                            "--ingest", "2", "--pipeline", "2", "--samples", "1.5",
                            "--timeout", "120"], capture_output=True, text=True, timeout=300)
        c = json.loads(r.stdout)
        check(r.returncode == 0 and c["complete"], "ceiling_file: complete, exit 0 (got %d, %s)"
              % (r.returncode, r.stderr.strip()))
        check(c["notifications"] == lines, "ceiling_file: %d notifications read, expected %d"
              % (c["notifications"], lines))
        check(c["samples"] == c["samples_made"] == 3 * lines // 2,
              "ceiling_file: samples decoded %d, made %d, expected %d each"
              % (c["samples"], c["samples_made"], 3 * lines // 2))

        # 2. zmq inlet, paced sends
        ep = "ipc://%s/n.sock" % work
        cp = subprocess.Popen([ceiling, "--count", str(lines), "--run", work, "--endpoint", ep,
                               "--ingest", "2", "--pipeline", "2", "--timeout", "120"],
                              stdout=subprocess.PIPE, text=True)
        procs.append(cp)
        r = subprocess.run([inject, "--json", "--peers", "2", "--rate", "4000", "--endpoint", ep,
                            data], capture_output=True, text=True, timeout=300)
        out, _ = cp.communicate(timeout=300)
        sent = json.loads(r.stdout)
        c = json.loads(out)
        check(r.returncode == 0 and sent["sent"] == lines and sent["rate_offered"] == 4000,
              "replay --rate: exit 0, %d sent, rate_offered 4000 (got %d, %s)"
              % (lines, r.returncode, r.stdout.strip()))
        check(cp.returncode == 0 and c["complete"] and c["notifications"] == lines and
              c["samples"] == c["samples_made"] == lines,
              "ceiling_zmq: %d read and %d samples decoded of %d made, expected %d each"
              % (c["notifications"], c["samples"], c["samples_made"], lines))

        # 3. replay bounds
        small = work + "/small.jsonl"
        with open(data) as f, open(small, "w") as g:
            for _ in range(50):
                g.write(f.readline())
        for extra, want in ((["--loop", "3"], 150), (["--loop", "2", "--duration", "600"], 100)):
            cp = subprocess.Popen([ceiling, "--count", str(want), "--run", work, "--endpoint", ep,
                                   "--timeout", "120"], stdout=subprocess.PIPE, text=True)
            procs.append(cp)
            r = subprocess.run([inject, "--json", "--endpoint", ep] + extra + [small],
                               capture_output=True, text=True, timeout=300)
            out, _ = cp.communicate(timeout=300)
            got = json.loads(r.stdout)["sent"] if r.returncode == 0 else None
            check(got == want and json.loads(out)["notifications"] == want,
                  "replay %s: %d sent and read (got %s sent, ceiling %s)"
                  % (" ".join(extra), want, got, out.strip()))
        empty = work + "/empty.jsonl"
        open(empty, "w").close()
        r = subprocess.run([inject, "--json", "--peers", "0", "--duration", "600", "--endpoint",
                            "ipc://%s/e.sock" % work, empty], capture_output=True, text=True,
                           timeout=300)
        check(r.returncode == 0 and json.loads(r.stdout)["sent"] == 0,
              "replay --duration of an empty file: ends with 0 sent (got %d, %s)"
              % (r.returncode, r.stdout.strip()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
