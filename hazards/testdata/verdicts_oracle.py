# Independent oracle for testdata/verdicts.json: expected verdicts per identity,
# written from the issue-2 hazard text, not from the Go code. Run from the
# repository root: python3 hazards/testdata/verdicts_oracle.py > hazards/testdata/verdicts.json
import json, sys
ids = json.load(open('probe/testdata/identities.json'))

def ver(s):
    if not s: return None
    p = [int(x) for x in s.split('.')]
    return (p[0], p[1], p[2] if len(p) == 3 else None)

def over_line(v, pred):
    """Evaluate pred over v; for unknown sublevel, all sublevels 0..2000."""
    if v is None: return 'unknown'
    if v[2] is not None:
        return 'affected' if pred((v[0], v[1], v[2])) else 'not-affected'
    res = {pred((v[0], v[1], s)) for s in range(0, 2001)}
    if len(res) == 2: return 'unknown'
    return 'affected' if res.pop() else 'not-affected'

def nmi(v):
    def p(x):
        line = x[:2]
        return line in [(5,19),(6,0),(6,2)] or (line==(6,1) and x[2] < 36) or (line==(6,3) and x[2] < 10)
    return over_line(v, p)

def textpoke(v, arch):
    if arch not in ('amd64', '386'): return 'not-affected'
    return over_line(v, lambda x: (5,2,0) <= x < (5,6,0))

def fentry(v, d):
    abi = d.get('ubuntu_abi', 0)
    if d.get('id') == 'ubuntu' and 86 <= abi < 1000 and v is not None and v[:2] == (6,8):
        return 'not-affected'
    if d.get('rhel') and v is not None and v[:2] == (4,18):
        return 'unknown'  # RHEL 8: trampolines backported, fix unknown
    return over_line(v, lambda x: (5,5,0) <= x < (6,6,107) or (6,7,0) <= x < (6,9,0))

def kret(v, cpus):
    r = over_line(v, lambda x: x < (6,7,0))
    if r == 'affected':
        if not cpus: return 'unknown'
        if cpus < 64: return 'not-affected'
    if r == 'unknown' and cpus and cpus < 64: return 'not-affected'
    return r

def uprobe(v):
    return over_line(v, lambda x: x < (6,14,0))

def uret(v, arch):
    if arch != 'amd64': return 'not-affected'
    return over_line(v, lambda x: (6,11,0) <= x < (6,13,3))

out = {}
for i in ids:
    if i.get('want_source') == 'vdso':
        continue  # a Description carries no vDSO: Describe cannot reach this version
    v = ver(i['want_version'])
    d = i.get('want_distro', {})
    arch = i.get('arch') or 'amd64'
    out[i['name']] = {
        'nmi-user-read-deadlock': nmi(v),
        'x86-text-poke-race': textpoke(v, arch),
        'fentry-zap-pid-ns-deadlock': fentry(v, d),
        'kretprobe-contention': kret(v, i.get('cpus', 0)),
        'uprobe-mmap-lock-stall': uprobe(v),
        'uretprobe-seccomp-kill': uret(v, arch),
    }
json.dump(out, sys.stdout, indent=2)
print()
