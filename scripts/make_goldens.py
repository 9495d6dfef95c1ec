#!/usr/bin/python3
"""Generate PyTorch goldens for moelab's tests (run by hand; CI only reads the committed fixtures).

For each small config, builds the reference model of ../shared/peers/torch/moe_lm.py with a fixed
seed, runs one training batch, and writes fixtures/golden/<name>.safetensors holding:
  the model's state_dict (same names as moelab's checkpoints), `input.x` / `input.y` (int32 [B,S]),
  `out.loss` (cross-entropy), `out.aux` (sum of MoE balancing losses, unweighted),
  `out.logits` ([B,S,V] in eval/no-grad of the same batch), and `grad.<name>` = d(loss + aux_coef*aux)/d(param).
The config is stored in the safetensors metadata as JSON.

Usage:  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 scripts/make_goldens.py
"""
import importlib.util, json, os, struct, sys
from types import SimpleNamespace

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "..", "shared", "peers", "torch", "moe_lm.py")
OUT = os.path.join(HERE, "..", "fixtures", "golden")


def load_reference():
    spec = importlib.util.spec_from_file_location("moe_lm", REF)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def write_safetensors(path, tensors, metadata):
    """Minimal writer of the safetensors format: u64 header length, JSON header, raw little-endian data."""
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dtype = {np.dtype("float32"): "F32", np.dtype("int32"): "I32", np.dtype("int64"): "I64"}[arr.dtype]
        b = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


BASE = dict(ffn="dense", d=16, layers=2, heads=2, seq=12, batch=2, experts=4, topk=2, expert_hidden=24,
            moe_every=2, capacity_factor=0.0, aux_coef=0.01, n_sub=8, peer_heads=2, peer_k=4, d_key=8,
            peer_bn=False, peer_layers="all", peer_sparse=False)

CONFIGS = {
    "dense": {},
    "moe": dict(ffn="moe"),
    "moe_capacity": dict(ffn="moe", capacity_factor=1.0),
    "moe_top1": dict(ffn="moe", topk=1, experts=3),
    "peer": dict(ffn="peer"),
    "peer_bn": dict(ffn="peer", peer_bn=True, peer_layers="1"),
}


def main():
    m = load_reference()
    os.makedirs(OUT, exist_ok=True)
    for name, over in CONFIGS.items():
        a = SimpleNamespace(**{**BASE, **over})
        torch.manual_seed(1234)
        model = m.LM(a)
        if a.ffn == "moe":  # widen the router so top-k choices are far from ties at float32 precision
            for b in model.blocks:
                if isinstance(b.ffn, m.MoE):
                    torch.nn.init.normal_(b.ffn.router.weight, 0.0, 0.5)
                    torch.nn.init.normal_(b.ffn.b1, 0.0, 0.1)
                    torch.nn.init.normal_(b.ffn.b2, 0.0, 0.1)
        g = torch.Generator().manual_seed(99)
        w = torch.randint(0, 256, (a.batch, a.seq + 1), generator=g)
        x, y = w[:, :-1], w[:, 1:]
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.train()
        loss, aux = model(x, y)
        (loss + a.aux_coef * aux).backward()
        grads = {f"grad.{n}": p.grad.detach().numpy().copy() for n, p in model.named_parameters() if p.grad is not None}
        model.eval()
        with torch.no_grad():
            h = model.tok(x) + model.pos.weight[: x.shape[1]]
            for b in model.blocks:
                h = b(h)
            logits = torch.nn.functional.linear(model.ln_f(h), model.tok.weight)
        tensors = {k: (v.numpy().astype(np.int64) if v.dtype == torch.int64 else v.numpy()) for k, v in state.items()}
        tensors.update({"input.x": x.numpy().astype(np.int32), "input.y": y.numpy().astype(np.int32),
                        "out.loss": np.array([loss.item()], np.float32), "out.aux": np.array([float(aux)], np.float32),
                        "out.logits": logits.numpy()})
        tensors.update(grads)
        meta = {"config": json.dumps(vars(a)), "torch": torch.__version__, "generator": "scripts/make_goldens.py"}
        path = os.path.join(OUT, f"{name}.safetensors")
        write_safetensors(path, tensors, meta)
        print(f"{name}: loss {loss.item():.6f} aux {float(aux):.6f} -> {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    sys.exit(main())
