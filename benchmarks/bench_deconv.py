"""The stride-2 4x4 up-convolution alone, at the conv-VAE decoder's shapes (batch 128).

    python benchmarks/bench_deconv.py            # full run
    python benchmarks/bench_deconv.py --quick    # smoke run

Layers: ``[128, 7, 7, 64] -> [128, 14, 14, 32]`` and ``[128, 14, 14, 32] -> [128, 28, 28, 1]``
(NHWC for JAX, the same in NCHW for PyTorch), each as

* flax ``nn.ConvTranspose(C_out, (4, 4), (2, 2), padding="SAME")``;
* jaxgen ``SubPixelConvTranspose(C_out, method=...)`` (same parameters) with ``method="subpixel"``
  (per-phase products + depth-to-space) and ``"matmul"`` (one GEMM + col2im overlap-add, the CPU
  default since issue 21);
* PyTorch ``nn.ConvTranspose2d(C_in, C_out, 4, stride=2, padding=1)`` with the flax kernel
  flipped in both spatial dimensions (the same function; checked below).

Columns (ms per call, median of ``--repeats`` timings of ``--calls`` calls each, after warm-up):

* ``forward``: y = f(x; W, b).
* ``weight grad``: (dW, db) from x and a fixed cotangent dy, without the forward pass
  (JAX: ``jax.grad`` of <f(x; W, b), dy> w.r.t. the parameters, jitted -- the forward is
  dead code for a linear map; PyTorch: ``aten.convolution_backward`` with only the weight and
  bias outputs requested).
* ``input grad``: dx from dy alone (the same two ways).
* ``fwd+bwd``: what a training step pays: y, then dx, dW and db (JAX: ``jax.value_and_grad``
  of <f, dy> w.r.t. x and the parameters; PyTorch: ``y = m(x); y.backward(dy)``).
* ``wgrad/fwd``: the weight-gradient time over the forward time.

JAX timings call the compiled executable (``jit(..).lower(..).compile()``) and block on its
outputs; PyTorch runs eagerly with ``--threads`` intra-op threads (default 2).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if "--omp-passive" in sys.argv:  # must precede the first import of torch (OpenMP reads it at start-up)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import _timing as T  # noqa: E402
from jaxgen.nets.conv import SubPixelConvTranspose  # noqa: E402

SHAPES = (((128, 7, 7, 64), 32), ((128, 14, 14, 32), 1))  # (input NHWC, C_out)
HEADERS = ["layer", "implementation", "forward ms", "weight grad ms", "input grad ms", "fwd+bwd ms",
           "wgrad/fwd", "max |y - flax y|"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few calls and repeats: a smoke run")
    p.add_argument("--repeats", type=int, default=None, help="timings per figure (default 7; quick 3)")
    p.add_argument("--calls", type=int, default=None, help="calls per timing (default 20; quick 3)")
    p.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads")
    p.add_argument("--omp-passive", action="store_true",
                   help="OMP_WAIT_POLICY=PASSIVE for PyTorch (on a machine shared with busy processes)")
    a = p.parse_args(argv)
    a.repeats = a.repeats or (3 if a.quick else 7)
    a.calls = a.calls or (3 if a.quick else 20)
    return a


def ms_per_call(fn, args) -> T.Stats:
    def many():
        for _ in range(args.calls):
            out = fn()
        jax.block_until_ready(out)

    st = T.repeat(many, args.repeats, warmup=1)
    return T.Stats(tuple(1e3 * t / args.calls for t in st.times))


def jax_rows(module, x, dy, args):
    """Figures (Stats) for one flax module; also its output and parameters."""
    params = module.init(jax.random.PRNGKey(0), x)["params"]
    f = lambda p, x: module.apply({"params": p}, x)
    inner = lambda p, x: jnp.vdot(f(p, x), dy)
    fns = {
        "forward": jax.jit(f),
        "weight grad": jax.jit(jax.grad(inner, argnums=0)),
        "input grad": jax.jit(jax.grad(inner, argnums=1)),
        "fwd+bwd": jax.jit(jax.value_and_grad(inner, argnums=(0, 1))),
    }
    out = {}
    for name, fn in fns.items():
        c = fn.lower(params, x).compile()
        out[name] = ms_per_call(lambda c=c: c(params, x), args)
    y = np.asarray(fns["forward"](params, x))
    return out, y, params


def torch_rows(kernel, bias, x_nhwc, dy_nhwc, args):
    """Figures for torch.nn.ConvTranspose2d with the flax kernel [4, 4, C_in, C_out] (flipped)."""
    c_in, c_out = kernel.shape[2], kernel.shape[3]
    m = torch.nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(np.array(kernel)[::-1, ::-1].transpose(2, 3, 0, 1).copy()))
        m.bias.copy_(torch.from_numpy(np.array(bias)))
    x = torch.from_numpy(np.array(x_nhwc).transpose(0, 3, 1, 2).copy())
    dy = torch.from_numpy(np.array(dy_nhwc).transpose(0, 3, 1, 2).copy())
    w = m.weight.detach()

    def backward(mask):
        return lambda: torch.ops.aten.convolution_backward(
            dy, x, w, [c_out], [2, 2], [1, 1], [1, 1], True, [0, 0], 1, mask)

    def fwd():
        with torch.no_grad():
            return m(x)

    xg = x.clone().requires_grad_(True)

    def fwd_bwd():
        m.zero_grad(set_to_none=True)
        xg.grad = None
        y = m(xg)
        y.backward(dy)
        return y

    fns = {"forward": fwd, "weight grad": backward([False, True, True]),
           "input grad": backward([True, False, False]), "fwd+bwd": fwd_bwd}
    out = {name: ms_per_call(fn, args) for name, fn in fns.items()}
    y = fwd().numpy().transpose(0, 2, 3, 1)
    # Check the weight gradient too: dW of torch (flipped back) == dW of flax.
    _, dw, _ = backward([False, True, True])()
    dw = dw.numpy().transpose(2, 3, 0, 1)[::-1, ::-1]
    return out, y, dw


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    head = (T.header("jax", "flax", "torch") + f" | torch.set_num_threads({torch.get_num_threads()}), "
            f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'default')}")
    print(head, flush=True)
    rows, notes = [], []
    rng = np.random.default_rng(0)
    for shape, c_out in SHAPES:
        x = jnp.asarray(rng.standard_normal(shape).astype(np.float32))
        out_shape = (shape[0], 2 * shape[1], 2 * shape[2], c_out)
        dy = jnp.asarray(rng.standard_normal(out_shape).astype(np.float32))
        layer = f"{list(shape)} -> {list(out_shape)}"
        flax_t, y_ref, params = jax_rows(nn.ConvTranspose(c_out, (4, 4), (2, 2), padding="SAME"), x, dy, args)
        sub_t, _, _ = jax_rows(SubPixelConvTranspose(c_out, method="subpixel"), x, dy, args)
        mm_t, _, _ = jax_rows(SubPixelConvTranspose(c_out, method="matmul"), x, dy, args)
        # Same parameters in all of them, so outputs must agree.
        y_sub = np.asarray(SubPixelConvTranspose(c_out, method="subpixel").apply({"params": params}, x))
        y_mm = np.asarray(SubPixelConvTranspose(c_out, method="matmul").apply({"params": params}, x))
        dw_ref = np.asarray(jax.grad(lambda p: jnp.vdot(
            nn.ConvTranspose(c_out, (4, 4), (2, 2), padding="SAME").apply({"params": p}, x), dy))(params)["kernel"])
        torch_t, y_torch, dw_torch = torch_rows(params["kernel"], params["bias"], x, dy, args)
        for name, t, y in (("flax ConvTranspose", flax_t, y_ref), ("jaxgen subpixel", sub_t, y_sub), ("jaxgen matmul (col2im)", mm_t, y_mm),
                           (f"torch ConvTranspose2d ({torch.get_num_threads()} thr)", torch_t, y_torch)):
            row = [layer, name] + [t[k].median for k in ("forward", "weight grad", "input grad", "fwd+bwd")]
            row += [t["weight grad"].median / t["forward"].median, f"{float(np.max(np.abs(y - y_ref))):.1e}"]
            rows.append(row)
            print("  " + " | ".join(c if isinstance(c, str) else T.fmt(c) for c in row), flush=True)
            worst = max(t[k].spread for k in t)
            if worst > 0.25:
                notes.append(f"{layer} {name}: a spread (max-min)/median of {100 * worst:.0f} % (noisy)")
        notes.append(f"{layer}: max |dW torch - dW flax| = {float(np.max(np.abs(dw_torch - dw_ref))):.1e} "
                     f"(|dW| max {float(np.max(np.abs(dw_ref))):.1e})")
    notes.append(f"load average at the end: {T.load_average()}")
    print("\n" + T.text_table(HEADERS, rows))
    for n in notes:
        print("note:", n)
    md = [f"**bench_deconv.py** {' '.join(sys.argv[1:])}", "", head, "",
          f"ms per call, median of {args.repeats} timings of {args.calls} calls:", "",
          T.markdown_table(HEADERS, rows), ""] + [f"- {n}" for n in notes]
    print("\n----- Markdown -----\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
