"""kernels/cuda/emu/launches.py IN OUT: copy a CUDA source, rewriting each
launch `K<<<grid, block, smem, stream>>>(args)` into
`emu_launch(dim3(grid), dim3(block), [&]() { K(args); })` for the host
emulation (see run.sh)."""
import sys


def split_top(s):
    """Split s at the commas outside brackets."""
    parts, depth, cur = [], 0, ''
    for ch in s:
        if ch in '([{':
            depth += 1
        if ch in ')]}':
            depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def kernel_start(src, j):
    """Index where the kernel name (with its template arguments) before src[j] begins."""
    s = j
    if src[s - 1] == '>':
        depth, s = 0, s - 1
        while True:
            depth += {'>': 1, '<': -1}.get(src[s], 0)
            if depth == 0:
                break
            s -= 1
    while s > 0 and (src[s - 1].isalnum() or src[s - 1] in '_:'):
        s -= 1
    return s


def closing_paren(src, p):
    """Index of the parenthesis closing the one at src[p]."""
    depth = 0
    for q in range(p, len(src)):
        depth += {'(': 1, ')': -1}.get(src[q], 0)
        if depth == 0:
            return q
    raise ValueError('unbalanced parentheses after ' + src[p:p + 40])


def rewrite(src):
    out, i = '', 0
    while (j := src.find('<<<', i)) >= 0:
        s = kernel_start(src, j)
        e = src.find('>>>', j)
        cfg = split_top(src[j + 3:e])
        p = e + 3
        if src[p] != '(':
            raise ValueError('launch without arguments: ' + src[s:p + 20])
        q = closing_paren(src, p)
        out += src[i:s] + 'emu_launch(dim3(%s), dim3(%s), [&]() { %s(%s); })' % (cfg[0], cfg[1], src[s:j], src[p + 1:q])
        i = q + 1
    return out + src[i:]


if __name__ == '__main__':
    with open(sys.argv[1]) as f:
        text = f.read()
    with open(sys.argv[2], 'w') as f:
        f.write(rewrite(text))
