#!/usr/bin/python3
"""Generate PyTorch goldens for moelab's tests (run by hand; CI only reads the committed fixtures).

For each small config, builds the reference model of ../shared/peers/torch/moe_lm.py with a fixed
seed, runs one training batch, and writes fixtures/golden/<name>.safetensors holding:
  the model's state_dict (same names as moelab's checkpoints), `input.x` / `input.y` (int32 [B,S]),
  `out.loss` (cross-entropy), `out.aux` (sum of MoE balancing losses, unweighted),
  `out.logits` ([B,S,V] in eval/no-grad of the same batch), and `grad.<name>` = d(loss + aux_coef*aux)/d(param).
The config is stored in the safetensors metadata as JSON.

It also writes fixtures/golden/mc_loglik.json: per-choice log-likelihoods of multiple-choice requests
under the weights of dense.safetensors, computed the way lm-evaluation-harness does (byte tokens;
context whitespace moved to the continuation; an empty context reads "\n"; inputs cut from the left
to the window; a continuation longer than the window scored in blocks of `seq` targets, each read
with the `seq` tokens before its last target).

Usage:  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 scripts/make_goldens.py [mc]
        (with `mc`: only mc_loglik.json, from the committed dense.safetensors)
"""
import importlib.util, json, os, struct, sys
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.environ.get("MOELAB_TORCH_REF", os.path.join(HERE, "..", "..", "shared", "peers", "torch", "moe_lm.py"))  # override from a worktree
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


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    dt = {"F32": np.float32, "I32": np.int32, "I64": np.int64}
    out = {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dt[v["dtype"]]).reshape(v["shape"]) for k, v in header.items()}
    return out, meta


MC_REQUESTS = [
    ("The cat", [" sat", " ran away", " \u00e9t\u00e9"]),
    ("Q: 2+2?\nA:", [" 4", " 5"]),
    ("Answer: ", ["yes", "no"]),                                   # trailing space moves to the continuation
    ("", ["hello", "x"]),                                          # empty context reads "\n"
    ("a context much longer than the window", [" fits", " also"]),  # cut from the left
    ("Q:", [" a continuation of thirty bytes.", " b"]),            # longer than the window: blocks
]


def mc_golden(m):
    tensors, meta = read_safetensors(os.path.join(OUT, "dense.safetensors"))
    a = SimpleNamespace(**json.loads(meta["config"]))
    model = m.LM(a)
    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items() if not k.split(".")[0] in ("input", "out", "grad")}
    model.load_state_dict(state)
    model.eval()
    seq = a.seq

    def logprobs(ids):  # log p(ids[t+1] | ids[..t]) for t < len-1
        x = torch.tensor([ids[:-1]], dtype=torch.long)
        with torch.no_grad():
            h = model.tok(x) + model.pos.weight[: x.shape[1]]
            for b in model.blocks:
                h = b(h)
            logits = F.linear(model.ln_f(h), model.tok.weight)[0]
            return torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:]).unsqueeze(1))[:, 0].double().numpy()

    out = []
    for context, conts in MC_REQUESTS:
        ctx = context.rstrip()
        moved = context[len(ctx):]
        ctx_ids = list(ctx.encode()) or list(b"\n")
        lls, toks = [], []
        for c in conts:
            whole = ctx_ids + list((moved + c).encode())
            first = len(ctx_ids)
            ll = 0.0
            for f in range(first, len(whole), seq):
                e = min(f + seq, len(whole)) - 1
                start = max(0, e - seq)
                lp = logprobs(whole[start:e + 1])
                ll += float(lp[f - 1 - start:].sum())
            lls.append(ll)
            toks.append(len(whole) - first)
        out.append({"context": context, "continuations": conts, "logLik": lls, "tokens": toks})
    path = os.path.join(OUT, "mc_loglik.json")
    with open(path, "w") as f:
        json.dump({"weights": "dense.safetensors", "seq": seq, "torch": torch.__version__,
                   "generator": "scripts/make_goldens.py", "requests": out}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"mc_loglik: {sum(len(r['logLik']) for r in out)} choices -> {path}")


if __name__ == "__main__":
    if sys.argv[1:] == ["mc"]:
        sys.exit(mc_golden(load_reference()))
    rc = main()
    mc_golden(load_reference())
    sys.exit(rc)
