"""Fails when two files of src/ import each other, directly or in a loop.

Edges: paths through `crate::`, `super::` and `self::` (imports and inline paths), and a parent
module's use of a child module it declares. Comments, string literals and `mod tests` blocks are
left out. Run: python3 scripts/check/import_cycles.py [src]"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            t = open(p).read()
            t = re.sub(r'/\*.*?\*/', '', t, flags=re.S)
            t = re.sub(r'//[^\n]*', '', t)
            t = re.sub(r'"(?:[^"\\]|\\.)*"', '""', t)
            files[p] = t
def modpath(p):
    rel = os.path.relpath(p, root)[:-3].split(os.sep)
    if rel[-1] in ('mod', 'lib'): rel = rel[:-1]
    return rel
mods = {tuple(modpath(p)): p for p in files}
def resolve(parts):
    # longest prefix that is a file module
    for n in range(len(parts), -1, -1):
        if tuple(parts[:n]) in mods: return mods[tuple(parts[:n])]
edges = {p: set() for p in files}
for p, text in files.items():
    me = modpath(p)
    text = re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*', '', text, flags=re.S)
    for m in re.finditer(r'\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)', text):
        head = m.group(1); rest = [x for x in m.group(2).split('::') if x and x != '{']
        if head == 'crate': base = []
        elif head == 'super':
            base = me[:-1] if not p.endswith('mod.rs') else me[:-1]
            # super from foo/bar.rs -> foo ; from foo/mod.rs -> parent of foo
            base = me[:-1]
        else: base = me
        if head=='super' and p.endswith('mod.rs'): base = me[:-1]
        # for `use super::{a, b}` handle braces
        tail = text[m.end():m.end()+300]
        cands = []
        if m.group(2).endswith('{') or text[m.end():m.end()+1]=='{' :
            pass
        parts = base + rest
        t = resolve(parts)
        if text[m.end():m.end()+3] == '::{' or m.group(2).endswith('{'):
            inner = re.match(r'(?:::)?\{([^}]*)\}', text[m.end()-(1 if m.group(2).endswith('{') else 0):])
            if inner:
                for item in inner.group(1).split(','):
                    item = item.strip().split('::')[0].split(' ')[0]
                    if item and item != 'self':
                        t2 = resolve(parts + [item])
                        if t2 and t2 != p: edges[p].add(t2)
        if t and t != p: edges[p].add(t)
for p, text in files.items():
    me = modpath(p)
    body = re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*', '', text, flags=re.S)
    for child in re.findall(r'^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_0-9]+)\s*;', body, flags=re.M):
        body2 = re.sub(r'^\s*(?:pub(?:\([a-z]+\))?\s+)?(?:mod|use)\s+[^;]*;', '', body, flags=re.M)
        if re.search(r'(?<![:\w])'+child+r'::', body2) or re.search(r'pub use '+child+'::', body):
            t = mods.get(tuple(me+[child]))
            if t: edges[p].add(t)
# cycles via SCC
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
for v in files:
    if v not in idx: sc(v)
for comp in sccs:
    print('CYCLE:', sorted(comp))
    for a in comp:
        print('   ', a, '->', sorted(x for x in edges[a] if x in comp))
print(len(sccs), 'import cycles in', root)
sys.exit(1 if sccs else 0)
