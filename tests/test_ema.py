"""EMA teacher, both updates (foreach lerp, flat runs): a plain reference, flat layout with one
pass per run, warm-up, buffers, fp32, state; the two updates give the same teacher."""
import copy

import pytest
import torch
from torch import nn

from avvp_dist.method.ema import EMATeacher, contiguous_runs, flatten_parameters_


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 4)
        self.b = nn.Linear(4, 3)
        self.register_buffer("count", torch.zeros(2))

    def forward(self, x):
        return self.b(self.a(x))


@pytest.mark.parametrize("ema", ["foreach", "flat"])
def test_flat_student_matches_reference(ema):
    torch.manual_seed(0)
    student = Net()
    flatten_parameters_(student)
    assert contiguous_runs(list(student.parameters())) == [(0, 4)]
    teacher = EMATeacher(student, decay=0.9, warmup=False, ema=ema)
    ref = {k: v.clone() for k, v in teacher.module.state_dict().items()}
    for step in range(3):
        with torch.no_grad():
            for p in student.parameters():
                p.add_(torch.randn_like(p))
            student.count += 1
        teacher.update(student)
        for (name, t), s in zip(teacher.module.named_parameters(), student.parameters()):
            ref[name] = 0.9 * ref[name] + 0.1 * s.detach()
            torch.testing.assert_close(t, ref[name], rtol=1e-6, atol=1e-7)
    assert len(teacher._pairs) == (1 if ema == "flat" else 0)  # flat: one run, one pass
    assert torch.equal(teacher.module.count, torch.full((2,), 3.0))


@pytest.mark.parametrize("ema", ["foreach", "flat"])
def test_non_flat_student_still_updates_every_parameter(ema):
    student = Net()
    teacher = EMATeacher(student, decay=0.5, warmup=False, ema=ema)
    with torch.no_grad():
        for p in student.parameters():
            p.fill_(1.0)
    before = [t.clone() for t in teacher.module.parameters()]
    teacher.update(student)
    for b, t in zip(before, teacher.module.parameters()):
        torch.testing.assert_close(t, 0.5 * b + 0.5)


def test_warmup_schedule_counts_updates():
    teacher = EMATeacher(Net(), decay=0.99)
    used = [teacher.update(teacher.module) for _ in range(3)]
    assert used == pytest.approx([1 / 10, 2 / 11, 3 / 12]) and teacher.num_updates == 3
    assert teacher.decay_at(10_000) == 0.99


@pytest.mark.parametrize("ema", ["foreach", "flat"])
def test_teacher_is_fp32_eval_and_follows_a_bf16_student(ema):
    student = Net().to(torch.bfloat16)
    teacher = EMATeacher(student, decay=0.0, warmup=False, ema=ema)
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in teacher.module.parameters())
    with torch.no_grad():
        for p in student.parameters():
            p.fill_(0.5)
    teacher.update(student)
    assert all(torch.all(p == 0.5) for p in teacher.module.parameters())
    student.train()
    out = teacher(torch.randn(2, 5))  # the teacher's forward: no graph, eval mode
    assert not out.requires_grad and not teacher.module.training


def test_layout_change_is_followed_and_state_roundtrips():
    student = Net()
    teacher = EMATeacher(student, decay=0.5, warmup=False, ema="flat")
    teacher.update(student)
    flatten_parameters_(student)  # e.g. DeepSpeed re-flattening the student
    with torch.no_grad():
        for p in student.parameters():
            p.fill_(2.0)
    teacher.update(student)
    state = copy.deepcopy(teacher.state_dict())
    other = EMATeacher(Net(), decay=0.5, warmup=False)
    other.load_state_dict(state)
    assert other.num_updates == 2
    for a, b in zip(other.module.parameters(), teacher.module.parameters()):
        torch.testing.assert_close(a, b)


def test_foreach_and_flat_give_the_same_teacher():
    """Bit for bit, over steps of a flat fp32 student and of a bf16 one (upcast)."""
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        student = Net()
        flatten_parameters_(student)
        student = student.to(dtype)
        teachers = [EMATeacher(student, decay=0.9, ema=ema) for ema in ("foreach", "flat")]
        for _ in range(4):
            with torch.no_grad():
                for p in student.parameters():
                    p.add_(torch.randn_like(p))
            for t in teachers:
                t.update(student)
        for a, b in zip(*(t.module.parameters() for t in teachers)):
            assert torch.equal(a, b), dtype
    with pytest.raises(ValueError, match="foreach or flat"):
        EMATeacher(Net(), ema="fused")
