"""One rank of the method's multi-process tests (see test_method_dist.py)."""
from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist

from avvp_dist.method.losses import agreement_sum, infonce_sum
from avvp_dist.distributed.collectives import gather_rows
from method_setup import build, local_slice


def cma_grad(args: dict) -> dict:
    """Cross-video InfoNCE over pair embeddings gathered with gradient; returns the loss and
    the gradient of each local embedding, times the world size (what DeepSpeed's averaging undoes)."""
    dist.init_process_group("gloo")
    g = torch.Generator().manual_seed(0)
    n_per_rank = args["pairs"]
    total = sum(n_per_rank)
    e_a = torch.nn.functional.normalize(torch.randn(total, 6, generator=g), dim=1)
    e_v = torch.nn.functional.normalize(torch.randn(total, 6, generator=g), dim=1)
    cls = torch.randint(0, 3, (total,), generator=g)
    r, w = dist.get_rank(), dist.get_world_size()
    lo, hi = sum(n_per_rank[:r]), sum(n_per_rank[:r + 1])
    la, lv = e_a[lo:hi].clone().requires_grad_(), e_v[lo:hi].clone().requires_grad_()
    both, (all_cls,), valid, offset = gather_rows(torch.cat([la, lv], 1), cls[lo:hi])
    all_a, all_v = both.split(6, 1)
    scale = w / total
    loss = (infonce_sum(la, lv, cls[lo:hi], all_a, all_v, all_cls, valid, offset, 0.1) + agreement_sum(la, lv)) * scale
    loss = loss + 0.0 * both.sum()
    loss.backward()
    out = {"loss": loss.item(), "grad_a": la.grad.tolist(), "grad_v": lv.grad.tolist()}
    dist.barrier()  # a gloo peer may still be sending when this rank is done; tear down together
    dist.destroy_process_group()
    return out


def equivalence(args: dict) -> dict:
    """Loss, teacher masks and full gradients of one micro-step under DeepSpeed ZeRO `stage`."""
    import deepspeed
    from deepspeed.utils import safe_get_full_grad

    from avvp_dist.method.objective import method_losses, teacher_masks

    model, teacher, batch, cfg = build(args["seed"], args["videos"], args.get("unlabelled_first_half", False))
    w, r = args["world"], args["rank"]
    x, mask, y = local_slice(batch, r, w)
    ds_cfg = {"train_micro_batch_size_per_gpu": args["videos"] // w, "gradient_accumulation_steps": 1,
              "zero_optimization": {"stage": args["stage"]}, "steps_per_print": 10**9}
    engine, *_ = deepspeed.initialize(model=model, optimizer=torch.optim.AdamW(model.parameters(), lr=0.0), config=ds_cfg)
    masks = teacher_masks(teacher(x, mask).P, y, mask, cfg)
    out = engine(x, mask)
    result = method_losses(out, y, mask, masks, engine.module.embed, cfg, ramp=1.0)
    engine.backward(result.loss)
    grads = {}
    for name, p in engine.module.named_parameters():
        g = safe_get_full_grad(p) if args["stage"] > 0 else p.grad
        grads[name] = g.detach().reshape(-1).tolist()
    loss = result.loss.detach().clone()
    dist.all_reduce(loss)
    return {"loss": loss.item() / w, "grads": grads, "pos": masks.pos.nonzero().tolist(),
            "pairs": int(masks.pairs.sum()), "terms": {"loss": loss.item(), **{k: float(v) for k, v in result.terms.items()}}}


if __name__ == "__main__":
    args = json.load(open(sys.argv[1]))
    result = {"cma_grad": cma_grad, "equivalence": equivalence}[args["mode"]](args)
    json.dump(result, open(args["out"], "w"))
