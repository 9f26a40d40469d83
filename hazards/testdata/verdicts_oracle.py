# Independent oracle for testdata/verdicts.json: expected verdicts per identity,
# written from the hazard research notes (HAZARDS-RESEARCH.md, section 0
# "Corrections" first), not from the Go code. Run from the repository root:
# python3 hazards/testdata/verdicts_oracle.py > hazards/testdata/verdicts.json
#
# Each hazard is judged for its first mechanism with the worst-case program
# (reads user memory, takes user stacks, makes tail calls, target under
# seccomp). Identities carry no kallsyms, config or live observations, so
# only the /proc/version preemption flags, distro rows and version ranges
# play.
import json, sys
ids = json.load(open('probe/testdata/identities.json'))

def ver(s):
    if not s: return None
    p = [int(x) for x in s.split('.')]
    return (p[0], p[1], p[2] if len(p) == 3 else None)

def over_line(v, pred):
    """pred returns 'affected'/'unknown'/'not-affected' for a full version;
    for an unknown sublevel all sublevels 0..2000 must agree."""
    if v is None: return 'unknown'
    if v[2] is not None:
        return pred((v[0], v[1], v[2]))
    res = {pred((v[0], v[1], s)) for s in range(0, 2001)}
    if len(res) > 1: return 'unknown'
    return res.pop()

def yes(b): return 'affected' if b else 'not-affected'

def with_doubt(verdict, doubt):
    # A condition that cannot be decided turns affected into unknown.
    return 'unknown' if verdict == 'affected' and doubt else verdict

def is_rhel(d, line): return bool(d.get('rhel')) and d is not None

def nmi_read(v, d):
    # C1/C2, section 1: 0aef499f3172 in 5.19; d319f344561d in 6.1.36, 6.3.10, 6.4.
    if d.get('rhel') and v is not None and v[:2] == (5, 14):
        return 'unknown'  # RHEL 9 backports mm/usercopy (BZ 2211455), unverified
    def p(x):
        line = x[:2]
        return yes(line in [(5,19),(6,0),(6,2)] or (line==(6,1) and x[2] < 36) or (line==(6,3) and x[2] < 10))
    return over_line(v, p)

def nmi_stack(v, d):
    # C2: 59298997df89 in 6.0, backported to 5.19.14.
    if d.get('rhel') and v is not None and v[:2] == (5, 14):
        return 'unknown'
    return over_line(v, lambda x: yes((5,19,0) <= x < (5,19,14)))

def textpoke(v, d, arch):
    # Section 2 and C5.
    if arch not in ('amd64', '386'): return 'not-affected'
    if d.get('id') in ('sles', 'sled', 'opensuse-leap') and v is not None and v[:2] == (5, 3) and (v[2] is None or v[2] >= 18):
        if v[2] is not None: return 'not-affected'  # SUSE shipped the fix (bsc#1152489)
    if d.get('rhel') and v is not None and v[:2] in [(3, 10), (4, 18)]:
        return 'unknown'  # el7: faulty patch then fix, builds unidentified; el8.2+: batched patcher, fixes unverified
    def p(x):
        if x[:2] == (5, 2): return 'unknown'  # nothing puts the bug in 5.2
        return yes((5,3,0) <= x < (5,6,0))
    return over_line(v, p)

def fentry(v, d, preemptible):
    # Section 3, C4: no Tasks RCU without CONFIG_PREEMPTION.
    if preemptible is False:
        return 'not-affected'
    doubt = preemptible is None
    abi = d.get('ubuntu_abi', 0)
    if d.get('id') == 'ubuntu' and 86 <= abi < 1000 and v is not None and v[:2] == (6,8):
        return 'not-affected'
    if d.get('rhel') and v is not None and v[:2] == (4,18):
        return 'unknown'  # RHEL 8: trampolines backported, fix unknown
    r = over_line(v, lambda x: yes((5,5,0) <= x < (6,6,107) or (6,7,0) <= x < (6,9,0)))
    return with_doubt(r, doubt)

def fexit_crash(v, d):
    # C6: e21aa341785c in 5.12, 5.11.11, 5.10.28.
    if d.get('rhel') and v is not None and v[:2] == (4,18):
        return 'unknown'
    return over_line(v, lambda x: yes((5,5,0) <= x < (5,10,28) or (5,11,0) <= x < (5,11,11)))

def tailcall(v):
    # C7: CVE-2024-50063, in 6.1.135, 6.6.57 and 6.11.4 on (OSV record;
    # Debian 6.1.192's BTF has the member).
    return over_line(v, lambda x: yes((6,1,135) <= x < (6,2,0) or (6,6,57) <= x < (6,7,0) or x >= (6,11,4)))

def kret(v, cpus):
    r = over_line(v, lambda x: yes(x < (6,7,0)))
    if r == 'affected':
        if not cpus: return 'unknown'
        if cpus < 64: return 'not-affected'
    if r == 'unknown' and cpus and cpus < 64: return 'not-affected'
    return r

def uprobe(v):
    return over_line(v, lambda x: yes(x < (6,14,0)))

def uret(v, arch):
    # C3: cf6cb56ef244 in 6.12.14 and 6.13.3.
    if arch != 'amd64': return 'not-affected'
    return over_line(v, lambda x: yes((6,11,0) <= x < (6,12,14) or (6,13,0) <= x < (6,13,3)))

out = {}
for i in ids:
    if i.get('want_source') == 'vdso':
        continue  # a Description carries no vDSO: Describe cannot reach this version
    v = ver(i['want_version'])
    d = i.get('want_distro', {})
    arch = i.get('arch') or 'amd64'
    out[i['name']] = {
        'nmi-user-read-deadlock': nmi_read(v, d),
        'nmi-user-stack-deadlock': nmi_stack(v, d),
        'x86-text-poke-race': textpoke(v, d, arch),
        'fentry-zap-pid-ns-deadlock': fentry(v, d, i.get('want_preemptible')),
        'fexit-sleeping-detach-crash': fexit_crash(v, d),
        'fentry-tail-call-break': tailcall(v),
        'kretprobe-contention': kret(v, i.get('cpus', 0)),
        'uprobe-mmap-lock-stall': uprobe(v),
        'uretprobe-seccomp-kill': uret(v, arch),
    }
json.dump(out, sys.stdout, indent=2)
print()
