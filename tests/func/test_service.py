#!/usr/bin/python3
"""sluice as a service: what `meson install` puts in place, the LSB init
script, systemd's notify protocol and the worker-count environment.

  test_service.py --build BUILD_DIR --src SOURCE_DIR [--keep] [PART...]

PART is one or more of verify, init, init-plain, notify, env (default: all).

1. verify: `meson install --destdir` of the build puts sluiced and the
   tools, the man pages, sluice.service, /etc/init.d/sluice,
   /etc/default/sluice and sluice.yaml with every Ceilometer file it
   names; the installed sluice.yaml passes the installed `sluiced -t`;
   `systemd-analyze verify` of the installed unit (its paths moved under
   the destdir, MANPATH at the installed man pages, so Documentation= is
   checked too) prints nothing and exits 0; the unit has the settings the
   service depends on (Type=notify, NotifyAccess=main, the -t check before
   start and reload, KillMode=mixed, RestartPreventExitStatus=2,
   RuntimeDirectory=sluice, NoNewPrivileges, ProtectSystem);
   `systemd-analyze security --offline` rates it at most 5.0; every man
   page renders without a warning; every installed tool answers --help.
2. init: the init script (as meson configures it) with SLUICE_DEFAULTS at
   a copy of /etc/default/sluice that names the build's sluiced, a
   sluice.yaml on a temporary run_dir and 3 ingest + 2 pipeline workers:
   status before start (3), start (0; the workers run, 3 + 2 of them as
   the defaults file says, not what auto gives), start again (0, same
   pid), notifications sent through it all counted, reload after a change
   to sluice.yaml (generation 2, the change applied), reload of a broken
   sluice.yaml refused by the script with sluiced -t's error (the agent
   keeps running generation 2), restart (a new pid), stop (0, process and
   pidfile gone), status (3), stop again (0), start with a broken
   configuration (fails with the error, nothing runs).
   init-plain: the same without /lib/lsb/init-functions and without
   start-stop-daemon (the script's own fallbacks).
3. notify: sluiced started with NOTIFY_SOCKET at a datagram socket this
   test listens on, WATCHDOG_USEC=1 s and WATCHDOG_PID its own pid:
   READY=1 once, and when it comes every worker runs (sluice-monitor);
   STATUS= lines every 5 s; WATCHDOG=1 pings about every 0.5 s; HUP gives
   RELOADING=1 then READY=1 once generation 2 runs; a HUP with a broken
   configuration RELOADING=1 then READY=1 (the old one kept); TERM gives
   STOPPING=1 and exit 0. With WATCHDOG_PID naming another process: no
   pings.
4. env: SLUICE_INGEST_WORKERS / SLUICE_PIPELINE_WORKERS override
   workers.* of sluice.yaml (sluiced -t and --dump-config say so), -o wins
   over them, auto and empty are accepted, bad values (0, 65, -1, abc, 2x,
   1.5) exit 2 with a message naming the variable.

Every sluiced is started here on a temporary run_dir and stopped by its
pid. Exit 0 if all hold; 1 with what was expected and what came instead.
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from sluice_functest import FAILURES, check, log

ARGS = None
STARTED = []          # pids this test started (killed at the end if alive)


def sluiced():
    return os.path.join(ARGS.build, 'supervisor', 'sluiced')


def monitor_json(run_dir):
    p = subprocess.run([os.path.join(ARGS.build, 'tools', 'sluice-monitor'),
                        '--run-dir', run_dir, '--json'],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        return None
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


def all_running(d, generation=None):
    """(every worker of the layout runs, n_ingest, n_pipeline)."""
    if not d:
        return False, 0, 0
    ws = d.get('workers', [])
    ni = sum(1 for w in ws if w.get('role') == 'ingest')
    np_ = sum(1 for w in ws if w.get('role') == 'pipeline')
    ok = bool(ws) and all(w.get('state') == 'running' for w in ws)
    if generation is not None:
        ok = ok and d.get('generation') == generation
    return ok, ni, np_


def wait_running(run_dir, generation=None, timeout=60):
    end = time.time() + timeout
    d = None
    while time.time() < end:
        d = monitor_json(run_dir)
        if all_running(d, generation)[0]:
            return d
        time.sleep(0.2)
    return None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie of ours counts as gone
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


def write_config(tmp, run_dir, extra=''):
    """sluice.yaml of conf/ on run_dir, the Ceilometer files next to it."""
    for f in glob.glob(os.path.join(ARGS.src, 'conf', '*.yaml')):
        shutil.copy(f, tmp)
    path = os.path.join(tmp, 'sluice.yaml')
    with open(os.path.join(ARGS.src, 'conf', 'sluice.yaml')) as f:
        text = f.read()
    text = re.sub(r'(?m)^run_dir:.*$', 'run_dir: %s' % run_dir, text)
    with open(path, 'w') as f:
        f.write(text + extra)
    return path


def set_partitions(path, n):
    with open(path) as f:
        text = f.read()
    text = re.sub(r'(?m)^partitions:.*$', 'partitions: %d' % n, text)
    with open(path, 'w') as f:
        f.write(text)


# ---------------------------------------------------------------- verify

def part_verify(tmp):
    dest = os.path.join(tmp, 'dest')
    p = subprocess.run(['meson', 'install', '-C', ARGS.build, '--destdir', dest,
                        '--no-rebuild', '--quiet'], capture_output=True, text=True,
                       timeout=300)
    if not check(p.returncode == 0, 'meson install --destdir exits 0', 0,
                 '%d: %s' % (p.returncode, (p.stdout + p.stderr)[-2000:])):
        return
    inst = json.loads(subprocess.run(['meson', 'introspect', ARGS.build, '--installed'],
                                     capture_output=True, text=True, check=True).stdout)
    where = {os.path.basename(v): v for v in inst.values()}
    files = {}
    for root, _, names in os.walk(dest):
        for n in names:
            files.setdefault(n, os.path.join(root, n))
    for name in ['sluiced', 'sluice-monitor', 'sluice-inject', 'sluice-transform',
                 'sluice-convert', 'sluice-ctl', 'sluice.service', 'sluiced.8',
                 'sluice-monitor.1', 'sluice-inject.1', 'sluice-transform.1',
                 'sluice-convert.1', 'sluice-ctl.1']:
        check(name in files, 'meson install puts %s in place' % name, name,
              sorted(files))
    unit = files.get('sluice.service')
    # two files are named sluice (default/ and init.d/): take the script by its dir
    init = next((os.path.join(r, 'sluice') for r, _, ns in os.walk(dest)
                 if r.endswith('/init.d') and 'sluice' in ns), None)
    bindir = os.path.dirname(files.get('sluiced', '/nonexistent/x'))
    prefix_bindir = os.path.dirname(where.get('sluiced', '/usr/bin/sluiced'))
    if unit:
        check('/systemd/system/' in unit, 'the unit goes to a systemd system unit dir',
              '.../systemd/system/sluice.service', unit)
    if init:
        check(os.access(init, os.X_OK), 'the init script is init.d/sluice, executable',
              'init.d/sluice 0755', oct(os.stat(init).st_mode))
    check(init is not None, 'meson install puts init.d/sluice in place')
    # the configuration, with every file it names
    confs = glob.glob(os.path.join(dest, '**', 'sluice', 'sluice.yaml'), recursive=True)
    if check(len(confs) == 1, 'one sluice.yaml installed', 1, confs):
        conf_dir = os.path.dirname(confs[0])
        for n in ['pipeline.yaml', 'meters.yaml', 'event_definitions.yaml',
                  'event_pipeline.yaml', 'gnocchi_resources.yaml']:
            check(os.path.exists(os.path.join(conf_dir, n)), '%s installed next to '
                  'sluice.yaml' % n, n, os.listdir(conf_dir))
        check(os.path.exists(os.path.join(os.path.dirname(conf_dir), 'default', 'sluice')),
              '/etc/default/sluice installed next to /etc/sluice', 'default/sluice',
              os.listdir(os.path.dirname(conf_dir)))
        p = subprocess.run([os.path.join(bindir, 'sluiced'), '-t', '-c', confs[0]],
                           capture_output=True, text=True, timeout=60)
        check(p.returncode == 0 and 'is valid' in p.stderr and 'warning' in p.stderr,
              'the installed sluiced -t accepts the installed sluice.yaml', 'exit 0, valid',
              '%d: %s' % (p.returncode, p.stderr))
        d = subprocess.run([os.path.join(bindir, 'sluiced'), '--dump-config', '-c',
                            confs[0]], capture_output=True, text=True, timeout=60).stdout
        for key in ['pipeline', 'meters', 'event_definitions', 'event_pipeline']:
            m = re.search(r'(?m)^ceilometer:\n  %s: "([^"]*)"' % key, d)
            check(m and m.group(1) == os.path.join(conf_dir, key + '.yaml'),
                  'installed sluice.yaml names the installed %s.yaml' % key,
                  os.path.join(conf_dir, key + '.yaml'), m and m.group(1))
        # a reinstall keeps an operator's edit and leaves the new default beside it
        with open(confs[0], 'a') as f:
            f.write('# edited by the operator\n')
        subprocess.run(['meson', 'install', '-C', ARGS.build, '--destdir', dest,
                        '--no-rebuild', '--quiet'], capture_output=True, timeout=300)
        with open(confs[0]) as f:
            check(f.read().endswith('# edited by the operator\n'),
                  'a reinstall keeps an edited sluice.yaml')
        check(os.path.exists(confs[0] + '.dist'), 'a reinstall leaves sluice.yaml.dist '
              'beside an edited sluice.yaml', 'sluice.yaml.dist', os.listdir(conf_dir))
    if not unit:
        return
    with open(unit) as f:
        text = f.read()
    settings = {}
    for line in text.splitlines():
        if '=' in line and not line.startswith('#'):
            k, v = line.split('=', 1)
            settings.setdefault(k.strip(), []).append(v.strip())
    want = {
        'Type': 'notify', 'NotifyAccess': 'main', 'KillMode': 'mixed',
        'RestartPreventExitStatus': '2', 'RuntimeDirectory': 'sluice',
        'NoNewPrivileges': 'yes', 'ProtectSystem': 'strict', 'PrivateTmp': 'yes',
        'ProtectHome': 'yes',
    }
    for k, v in want.items():
        check(settings.get(k) == [v], 'unit: %s=%s' % (k, v), v, settings.get(k))
    sd = os.path.join(prefix_bindir, 'sluiced')
    check(settings.get('ExecStartPre', [''])[0].startswith(sd + ' -t '),
          'unit: ExecStartPre runs sluiced -t', sd + ' -t ...', settings.get('ExecStartPre'))
    check(settings.get('ExecStart', [''])[0].startswith(sd + ' -c '),
          'unit: ExecStart runs the installed sluiced', sd + ' -c ...',
          settings.get('ExecStart'))
    rel = settings.get('ExecReload', [])
    check(len(rel) == 2 and rel[0].startswith(sd + ' -t ') and 'kill -HUP $MAINPID' in rel[1],
          'unit: ExecReload checks the configuration, then sends HUP',
          ['sluiced -t ...', '/bin/kill -HUP $MAINPID'], rel)
    # systemd-analyze verify on a copy whose programs are the installed ones
    vdir = os.path.join(tmp, 'verify')
    os.makedirs(vdir)
    copy = os.path.join(vdir, 'sluice.service')
    with open(copy, 'w') as f:
        f.write(text.replace(prefix_bindir + '/', bindir + '/'))
    mandir = os.path.dirname(os.path.dirname(files.get('sluiced.8', '/x/man8/x')))
    env = dict(os.environ, MANPATH=mandir, SYSTEMD_LOG_COLOR='0')
    p = subprocess.run(['systemd-analyze', 'verify', copy], capture_output=True,
                       text=True, env=env, timeout=120)
    check(p.returncode == 0 and not (p.stdout + p.stderr).strip(),
          'systemd-analyze verify of the installed unit: exit 0, nothing to say',
          'exit 0, no output', '%d: %s' % (p.returncode, p.stdout + p.stderr))
    # and it does catch a broken unit (the check above can fail)
    broken = os.path.join(vdir, 'broken.service')
    with open(broken, 'w') as f:
        f.write(text.replace(prefix_bindir + '/', bindir + '/').replace(
            'Type=notify', 'Type=notfy'))
    p = subprocess.run(['systemd-analyze', 'verify', broken], capture_output=True,
                       text=True, env=env, timeout=120)
    check((p.stdout + p.stderr).strip() != '', 'systemd-analyze verify reports Type=notfy',
          'a complaint', 'nothing')
    p = subprocess.run(['systemd-analyze', 'security', '--offline=true', '--threshold=50',
                        '--no-pager', copy], capture_output=True, text=True, env=env,
                       timeout=120)
    m = re.search(r'exposure level for \S+: ([0-9.]+)', p.stdout)
    check(p.returncode == 0 and m and float(m.group(1)) <= 5.0,
          'systemd-analyze security rates the unit at most 5.0', '<= 5.0',
          '%d: %s' % (p.returncode, m.group(1) if m else p.stdout[-500:] + p.stderr))
    for page in glob.glob(os.path.join(mandir, 'man*', '*')):
        p = subprocess.run(['man', '--warnings', '-l', page], capture_output=True,
                           text=True, env=dict(env, MANWIDTH='80', LC_ALL='C.UTF-8'),
                           timeout=60)
        check(p.returncode == 0 and not p.stderr.strip() and 'NAME' in p.stdout,
              'man page %s renders without warnings' % os.path.basename(page),
              'exit 0, no warnings', '%d: %s' % (p.returncode, p.stderr[-500:]))
    for tool in ['sluiced', 'sluice-monitor', 'sluice-inject', 'sluice-transform',
                 'sluice-convert', 'sluice-ctl']:
        p = subprocess.run([os.path.join(bindir, tool), '--help'], capture_output=True,
                           text=True, timeout=30)
        check(p.returncode == 0 and p.stdout.startswith('usage: ' + tool),
              '%s --help prints its usage and exits 0' % tool, 'usage: %s ...' % tool,
              '%d: %s' % (p.returncode, (p.stdout + p.stderr)[:200]))
    if init:
        p = subprocess.run(['sh', '-n', init], capture_output=True, text=True)
        check(p.returncode == 0, 'the installed init script is valid sh', 0, p.stderr)


# ------------------------------------------------------------------ init

def part_init_plain(tmp):
    part_init(tmp, plain=True)


def part_init(tmp, plain=False):
    run_dir = os.path.join(tmp, 'run')
    conf = write_config(tmp, run_dir)
    defaults = os.path.join(tmp, 'default-sluice')
    logf = os.path.join(tmp, 'log', 'sluiced.log')
    with open(os.path.join(ARGS.src, 'dist', 'sluice.default')) as f:
        text = f.read()
    text = re.sub(r'(?m)^SLUICE_INGEST_WORKERS=.*$', 'SLUICE_INGEST_WORKERS=3', text)
    text = re.sub(r'(?m)^SLUICE_PIPELINE_WORKERS=.*$', 'SLUICE_PIPELINE_WORKERS=2', text)
    text += ('DAEMON=%s\nSLUICE_CONFIG=%s\nSLUICE_LOG=%s\nSLUICE_STOP_TIMEOUT=60\n'
             'SLUICE_INIT_STATE=%s\n' % (sluiced(), conf, logf, os.path.join(tmp, 'init-state')))
    if plain:    # neither /lib/lsb/init-functions nor start-stop-daemon
        text += 'LSB_FUNCTIONS=\nUSE_START_STOP_DAEMON=no\n'
    with open(defaults, 'w') as f:
        f.write(text)
    script = os.path.join(ARGS.build, 'dist', 'sluice.init')
    env = dict(os.environ, SLUICE_DEFAULTS=defaults, SYSTEMCTL_SKIP_REDIRECT='1')
    for v in ['SLUICE_INGEST_WORKERS', 'SLUICE_PIPELINE_WORKERS', 'NOTIFY_SOCKET']:
        env.pop(v, None)
    pidfile = os.path.join(run_dir, 'sluiced.pid')

    def run(action, timeout=120):
        p = subprocess.run(['sh', script, action], capture_output=True, text=True,
                           env=env, timeout=timeout)
        log('init %s -> %d %s' % (action, p.returncode,
                                  (p.stdout + p.stderr).strip().replace('\n', ' | ')))
        return p

    def pid_now():
        try:
            with open(pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    p = run('status')
    check(p.returncode == 3, 'status before start exits 3 (not running)', 3, p.returncode)
    p = run('start')
    if not check(p.returncode == 0, 'start exits 0', 0, '%d: %s' % (p.returncode, p.stdout +
                                                                    p.stderr)):
        if os.path.exists(logf):
            log('sluiced log:\n' + open(logf).read()[-3000:])
        return
    pid = pid_now()
    if pid:
        STARTED.append(pid)
    check(pid and pid_alive(pid), 'start: the pidfile names a live sluiced', 'a pid', pid)
    d = wait_running(run_dir)
    check(d is not None, 'start: every worker runs within 60 s', 'running', monitor_json(run_dir))
    _, ni, np_ = all_running(d)
    check((ni, np_) == (3, 2), 'the worker counts of the defaults file took effect '
          '(SLUICE_INGEST_WORKERS=3, SLUICE_PIPELINE_WORKERS=2)', (3, 2), (ni, np_))
    p = run('status')
    check(p.returncode == 0 and str(pid) in p.stdout, 'status while running exits 0 and '
          'names the pid', '0, pid %s' % pid, '%d: %s' % (p.returncode, p.stdout))
    p = run('start')
    check(p.returncode == 0 and pid_now() == pid, 'start while running exits 0 and starts '
          'nothing new', (0, pid), (p.returncode, pid_now()))
    # it works: notifications sent are counted
    inj = subprocess.run([os.path.join(ARGS.build, 'tools', 'sluice-inject'), '--endpoint',
                          'ipc://%s/notify.sock' % run_dir, '--generate', '300',
                          '--peers', '3', '--run-dir', run_dir, '--linger', '60'],
                         capture_output=True, text=True, timeout=180)
    d = monitor_json(run_dir) or {}
    got = sum(w['counters'].get('received', 0) for w in d.get('workers', [])
              if w.get('role') == 'ingest')
    check(inj.returncode == 0 and got == 300, 'the started agent counts every notification '
          'sent', 300, '%d (inject %d: %s)' % (got, inj.returncode, inj.stderr[-300:]))
    # reload after a change
    set_partitions(conf, 8)
    p = run('reload')
    check(p.returncode == 0, 'reload exits 0', 0, '%d: %s' % (p.returncode, p.stderr))
    d = wait_running(run_dir, generation=2)
    check(d is not None and d.get('partitions') == 8 and pid_now() == pid,
          'reload: generation 2 runs with the new partitions, same supervisor',
          (2, 8, pid), d and (d.get('generation'), d.get('partitions'), pid_now()))
    # a broken configuration is refused by the script before any HUP
    with open(conf, 'a') as f:
        f.write('\nno_such_setting: 1\n')
    p = run('reload')
    check(p.returncode != 0 and 'no_such_setting' in p.stderr,
          'reload of a broken sluice.yaml fails with sluiced -t\'s error',
          'non-zero, the error', '%d: %s' % (p.returncode, p.stdout + p.stderr))
    time.sleep(1)
    d = monitor_json(run_dir) or {}
    check(d.get('generation') == 2 and pid_alive(pid) and
          d.get('supervisor', {}).get('reload_failures', 0) == 0,
          'after the refused reload the agent runs generation 2 untouched (no HUP sent)',
          (2, 0), (d.get('generation'), d.get('supervisor', {}).get('reload_failures')))
    p = run('status')
    check(p.returncode == 0 and str(pid) in p.stdout, 'status with a broken sluice.yaml '
          'still finds the running agent', '0, pid %s' % pid, '%d: %s' % (p.returncode,
                                                                        p.stdout + p.stderr))
    p = run('restart')
    check(p.returncode != 0 and pid_alive(pid) and pid_now() == pid,
          'restart with a broken sluice.yaml is refused and keeps the running agent',
          'non-zero, same pid', '%d: %s' % (p.returncode, pid_now()))
    with open(conf) as f:
        text = f.read().replace('\nno_such_setting: 1\n', '')
    with open(conf, 'w') as f:
        f.write(text)
    p = run('restart')
    new = pid_now()
    if new:
        STARTED.append(new)
    check(p.returncode == 0 and new and new != pid and not pid_alive(pid),
          'restart: exit 0, the old sluiced gone, a new one running', 'a new pid',
          '%d: old %s new %s' % (p.returncode, pid, new))
    check(wait_running(run_dir) is not None, 'restart: every worker runs again')
    pid = new
    with open(conf, 'a') as f:     # stop must work whatever the configuration says now
        f.write('\nno_such_setting: 1\n')
    t0 = time.time()
    p = run('stop')
    check(p.returncode == 0 and not pid_alive(pid) and not os.path.exists(pidfile),
          'stop: exit 0, sluiced gone, its pidfile removed', (0, False, False),
          (p.returncode, pid_alive(pid), os.path.exists(pidfile)))
    log('stop took %.1f s' % (time.time() - t0))
    with open(logf) as f:
        lg = f.read()
    check('graceful stop' in lg and 'stopped:' in lg, 'stop was graceful (TERM, drained)',
          'graceful stop ... stopped:', lg[-800:])
    p = run('status')
    check(p.returncode == 3, 'status after stop exits 3', 3, p.returncode)
    p = run('stop')
    check(p.returncode == 0, 'stop when not running exits 0', 0, p.returncode)
    # a broken configuration: start fails with the error, nothing runs
    with open(conf) as f:
        text = f.read().replace('\nno_such_setting: 1\n', '')
    with open(conf, 'w') as f:
        f.write(text + '\npartitions: many\n')
    p = run('start')
    check(p.returncode != 0 and 'partitions' in p.stderr and pid_now() is None,
          'start with a broken sluice.yaml fails with the error and starts nothing',
          'non-zero, the error, no pidfile', '%d: %s' % (p.returncode, p.stdout + p.stderr))
    p = run('bogus')
    check(p.returncode == 2 and 'usage' in p.stderr, 'an unknown action prints the usage, '
          'exit 2', 2, p.returncode)


# ---------------------------------------------------------------- notify

class Notify:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.msgs = []        # (time, {key: value})

    def read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536).decode()
        except socket.timeout:
            return None
        kv = {}
        for line in data.split('\n'):
            if '=' in line:
                k, v = line.split('=', 1)
                kv[k] = v
        self.msgs.append((time.time(), kv))
        return kv

    def until(self, pred, timeout, on_msg=None):
        """Reads until a message satisfies pred; it, or None."""
        end = time.time() + timeout
        while time.time() < end:
            kv = self.read(max(0.05, end - time.time()))
            if kv is None:
                continue
            if on_msg:
                on_msg(kv)
            if pred(kv):
                return kv
        return None


def start_sluiced(conf, env, log_path):
    # sh sets WATCHDOG_PID to its own pid, which exec keeps for sluiced
    lf = open(log_path, 'ab')
    p = subprocess.Popen(['sh', '-c', 'WATCHDOG_PID=${WATCHDOG_PID:-$$}; export WATCHDOG_PID; '
                          'exec "$0" -c "$1"', sluiced(), conf], env=env, stdout=lf,
                         stderr=lf)
    STARTED.append(p.pid)
    return p


def stop_proc(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(90)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait()
    return p.returncode


def part_notify(tmp):
    run_dir = os.path.join(tmp, 'run')
    conf = write_config(tmp, run_dir)
    sock_path = os.path.join(tmp, 'notify.sock')
    n = Notify(sock_path)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC='1000000',
               SLUICE_INGEST_WORKERS='2', SLUICE_PIPELINE_WORKERS='2')
    env.pop('WATCHDOG_PID', None)
    logf = os.path.join(tmp, 'sluiced.log')
    p = start_sluiced(conf, env, logf)
    ready_state = {}

    def at_ready(kv):
        if kv.get('READY') == '1' and 'state' not in ready_state:
            ready_state['state'] = monitor_json(run_dir)

    kv = n.until(lambda kv: kv.get('READY') == '1', 60, at_ready)
    if not check(kv is not None, 'READY=1 within 60 s of the start'):
        stop_proc(p)
        log('sluiced log:\n' + open(logf).read()[-3000:])
        return
    ok, ni, np_ = all_running(ready_state.get('state'))
    check(ok and (ni, np_) == (2, 2), 'when READY=1 arrives every worker (2 + 2) runs',
          'all 4 running', ready_state.get('state') and
          [(w['role'], w['state']) for w in ready_state['state']['workers']])
    check(re.match(r'4/4 workers running', kv.get('STATUS', '')) is not None,
          'READY=1 comes with a STATUS= saying 4/4 workers running', '4/4 workers running...',
          kv.get('STATUS'))
    before = [m for t, m in n.msgs[:-1]]
    check(not any(m.get('READY') for m in before), 'READY=1 is sent once', 'once',
          n.msgs)
    # STATUS lines and watchdog pings over ~11 s, 2000 notifications sent first
    n.msgs = []
    inj = subprocess.run([os.path.join(ARGS.build, 'tools', 'sluice-inject'), '--endpoint',
                          'ipc://%s/notify.sock' % run_dir, '--generate', '2000',
                          '--peers', '2', '--run-dir', run_dir, '--linger', '60'],
                         capture_output=True, text=True, timeout=180)
    check(inj.returncode == 0, 'sluice-inject delivers 2000 notifications', 0, inj.stderr[-300:])
    t0 = time.time()
    while time.time() - t0 < 11:
        n.read(0.5)
    statuses = [m['STATUS'] for _, m in n.msgs if 'STATUS' in m]
    pings = [t for t, m in n.msgs if m.get('WATCHDOG') == '1']
    check(len(statuses) >= 2, 'a STATUS= line every 5 s (>= 2 in 11 s)', '>= 2', statuses)
    rx = re.compile(r'^\d+/\d+ workers running \(\d+ ingest, \d+ pipeline\), \S+ '
                    r'notifications, \S+/s, \d+ dropped, \d+ errors, \d+ worker crashes, '
                    r'generation \d+$')
    check(all(rx.match(s) for s in statuses), 'STATUS= lines are one-line summaries',
          rx.pattern, statuses)
    check(statuses and ' 2000 notifications' in statuses[-1], 'STATUS= counts the '
          'notifications received', '... 2000 notifications ...', statuses[-1:])
    check(len(pings) >= 10, 'WATCHDOG=1 about every 0.5 s with WATCHDOG_USEC=1 s '
          '(>= 10 in 11 s)', '>= 10', len(pings))
    check(not any(m.get('READY') for _, m in n.msgs), 'no READY=1 without a reload',
          'none', n.msgs)
    # HUP: RELOADING=1, then READY=1 once generation 2 runs
    set_partitions(conf, 8)
    ready_state.clear()
    n.msgs = []
    p.send_signal(signal.SIGHUP)
    kv = n.until(lambda kv: kv.get('READY') == '1', 90, at_ready)
    seq = [m for _, m in n.msgs]
    rel = [i for i, m in enumerate(seq) if m.get('RELOADING') == '1']
    check(kv is not None and rel and rel[0] < len(seq) - 1,
          'HUP: RELOADING=1, then READY=1', 'RELOADING=1 ... READY=1', seq)
    st = ready_state.get('state')
    check(all_running(st, 2)[0] and st.get('partitions') == 8,
          'READY=1 after the reload comes once generation 2 runs all its workers',
          'generation 2, all running, 8 partitions',
          st and (st.get('generation'), st.get('partitions'),
                  [w['state'] for w in st['workers']]))
    # a rejected reload: RELOADING=1 then READY=1 at once, old config kept
    with open(conf, 'a') as f:
        f.write('\nno_such_setting: 1\n')
    n.msgs = []
    p.send_signal(signal.SIGHUP)
    kv = n.until(lambda kv: kv.get('READY') == '1', 30)
    seq = [m for _, m in n.msgs]
    check(kv is not None and any(m.get('RELOADING') == '1' for m in seq),
          'a rejected reload: RELOADING=1 then READY=1', 'RELOADING=1 ... READY=1', seq)
    d = monitor_json(run_dir) or {}
    check(d.get('generation') == 2 and d.get('supervisor', {}).get('reload_failures') == 1,
          'the rejected reload kept generation 2 and counted a reload failure', (2, 1),
          (d.get('generation'), d.get('supervisor', {}).get('reload_failures')))
    # TERM: STOPPING=1, exit 0
    n.msgs = []
    p.send_signal(signal.SIGTERM)
    kv = n.until(lambda kv: kv.get('STOPPING') == '1', 30)
    check(kv is not None, 'TERM: STOPPING=1', 'STOPPING=1', [m for _, m in n.msgs])
    rc = stop_proc(p)
    check(rc == 0, 'sluiced exits 0 after TERM', 0, rc)
    while n.read(0.2) is not None:
        pass
    after = [m for _, m in n.msgs]
    i = next((k for k, m in enumerate(after) if m.get('STOPPING') == '1'), len(after))
    check(not any(m.get('READY') for m in after[i:]), 'no READY=1 after STOPPING=1',
          'none', after[i:])
    # WATCHDOG_PID naming another process: no pings (systemd watches someone else)
    with open(conf) as f:
        text = f.read().replace('\nno_such_setting: 1\n', '')
    with open(conf, 'w') as f:
        f.write(text)
    env2 = dict(env, WATCHDOG_PID='1')
    n.msgs = []
    p = start_sluiced(conf, env2, logf)
    kv = n.until(lambda kv: kv.get('READY') == '1', 60)
    t0 = time.time()
    while time.time() - t0 < 3:
        n.read(0.5)
    check(kv is not None and not any(m.get('WATCHDOG') for _, m in n.msgs),
          'WATCHDOG_PID of another process: READY=1 but no WATCHDOG=1 pings',
          'READY, no pings', [m for _, m in n.msgs])
    rc = stop_proc(p)
    check(rc == 0, 'that sluiced exits 0 after TERM', 0, rc)
    n.sock.close()


# ------------------------------------------------------------------- env

def part_env(tmp):
    run_dir = os.path.join(tmp, 'run')
    conf = write_config(tmp, run_dir)
    with open(conf) as f:
        text = f.read()
    text = re.sub(r'(?m)^  ingest: auto', '  ingest: 5', text)
    text = re.sub(r'(?m)^  pipeline: auto', '  pipeline: 4', text)
    with open(conf, 'w') as f:
        f.write(text)
    base = {k: v for k, v in os.environ.items() if not k.startswith('SLUICE_')}

    def t(env, *extra):
        p = subprocess.run([sluiced(), '-t', '-c', conf] + list(extra), capture_output=True,
                           text=True, env=dict(base, **env), timeout=60)
        m = re.search(r'(\d+) ingest \+ (\d+) pipeline workers', p.stderr)
        return p.returncode, (int(m.group(1)), int(m.group(2))) if m else None, p.stderr

    rc, w, err = t({})
    check((rc, w) == (0, (5, 4)), 'without the variables sluice.yaml counts', (0, (5, 4)),
          (rc, w, err))
    rc, w, err = t({'SLUICE_INGEST_WORKERS': '3', 'SLUICE_PIPELINE_WORKERS': '2'})
    check((rc, w) == (0, (3, 2)), 'SLUICE_*_WORKERS override sluice.yaml', (0, (3, 2)),
          (rc, w, err))
    rc, w, err = t({'SLUICE_INGEST_WORKERS': '3', 'SLUICE_PIPELINE_WORKERS': '2'},
                   '-o', 'workers.ingest=7')
    check((rc, w) == (0, (7, 2)), '-o on the command line wins over the environment',
          (0, (7, 2)), (rc, w, err))
    auto = t({}, '-o', 'workers.ingest=auto', '-o', 'workers.pipeline=auto')[1]
    rc, w, err = t({'SLUICE_INGEST_WORKERS': 'auto', 'SLUICE_PIPELINE_WORKERS': 'auto'})
    check((rc, w) == (0, auto), 'auto in the environment is what auto in sluice.yaml gives',
          (0, auto), (rc, w, err))
    rc, w, err = t({'SLUICE_INGEST_WORKERS': '', 'SLUICE_PIPELINE_WORKERS': ''})
    check((rc, w) == (0, (5, 4)), 'empty variables are ignored', (0, (5, 4)), (rc, w, err))
    p = subprocess.run([sluiced(), '--dump-config', '-c', conf], capture_output=True,
                       text=True, env=dict(base, SLUICE_PIPELINE_WORKERS='3'), timeout=60)
    check('pipeline: "3"' in p.stdout, '--dump-config shows the environment override',
          'pipeline: "3"', re.findall(r'pipeline: .*', p.stdout))
    for var in ['SLUICE_INGEST_WORKERS', 'SLUICE_PIPELINE_WORKERS']:
        for bad in ['0', '65', '-1', 'abc', '2x', '1.5', ' 2']:
            rc, w, err = t({var: bad})
            check(rc == 2 and var in err and bad in err and 'auto' in err,
                  '%s=%r: exit 2 with a message naming the variable' % (var, bad),
                  'exit 2, "%s"' % var, (rc, err.strip()))
        # also when running, not only with -t
        p = subprocess.run([sluiced(), '-c', conf], capture_output=True, text=True,
                           env=dict(base, **{var: 'many'}), timeout=60)
        check(p.returncode == 2 and var in p.stderr and not os.path.exists(run_dir),
              'sluiced with %s=many exits 2 before touching run_dir' % var, 2,
              (p.returncode, p.stderr.strip()))
    p = subprocess.run([sluiced(), '--help'], capture_output=True, text=True, timeout=30)
    check('SLUICE_INGEST_WORKERS' in p.stdout and 'SLUICE_PIPELINE_WORKERS' in p.stdout,
          'sluiced --help documents the variables')


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', required=True)
    ap.add_argument('--src', required=True)
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('parts', nargs='*',
                    default=['verify', 'init', 'init-plain', 'notify', 'env'])
    ARGS = ap.parse_args()
    ARGS.build = os.path.abspath(ARGS.build)
    ARGS.src = os.path.abspath(ARGS.src)
    parts = {'verify': part_verify, 'init': part_init, 'init-plain': part_init_plain,
             'notify': part_notify, 'env': part_env}
    for name in ARGS.parts:
        if name not in parts:
            ap.error('unknown part %s (%s)' % (name, ', '.join(parts)))
        tmp = tempfile.mkdtemp(prefix='sluice-service-%s.' % name)
        t0 = time.time()
        try:
            parts[name](tmp)
        finally:
            for pid in STARTED:
                if pid_alive(pid):
                    log('killing sluiced pid %d this test started' % pid)
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            STARTED.clear()
            if ARGS.keep:
                log('kept ' + tmp)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        log('%s: %.1f s' % (name, time.time() - t0))
    if FAILURES:
        log('%d check(s) failed' % len(FAILURES))
        return 1
    log('all checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
