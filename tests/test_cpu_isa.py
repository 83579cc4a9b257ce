"""oneDNN's AMX bf16 kernels diverged the re-ID training here (runtime/cpu_isa.py): the project caps the
ISA at AVX512-BF16 on AMX CPUs unless the user chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runtime.cpu_isa import CAP, cap_amx, cpu_flags, cpu_flags_say_native_bf16, cpu_has_amx


def test_an_amx_cpu_is_capped_at_avx512_bf16():
    env: dict[str, str] = {}
    assert cap_amx(env, has_amx=True) == CAP and env == {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}


def test_nothing_changes_without_amx_or_when_the_user_chose():
    plain: dict[str, str] = {}
    assert cap_amx(plain, has_amx=False) is None and plain == {}
    for env in ({"PONA_ALLOW_AMX": "1"}, {"ONEDNN_MAX_CPU_ISA": "ALL"}, {"DNNL_MAX_CPU_ISA": "AVX2"}):
        before = dict(env)
        assert cap_amx(env, has_amx=True) is None and env == before


def test_amx_is_read_from_the_cpu_flags(tmp_path):
    (tmp_path / "amx").write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    (tmp_path / "epyc").write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert cpu_has_amx(tmp_path / "amx") and not cpu_has_amx(tmp_path / "epyc")
    assert not cpu_has_amx(tmp_path / "missing")


def test_importing_the_project_sets_the_cap_before_any_convolution():
    code = "import os, runtime; print(os.environ.get('ONEDNN_MAX_CPU_ISA', '-'))"
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "PONA_ALLOW_AMX")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == (CAP if cpu_has_amx() else "-")


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    """An AVX512 Xeon without AVX512-BF16 emulates bf16 (slower than fp32 there): not native."""
    cases = {
        "xeon": ("flags\t\t: fpu avx2 avx512f avx512bw avx512_vnni avx512_vbmi2\n", False),
        "epyc": ("flags\t\t: fpu avx512f avx512_bf16\n", True),
        "amx": ("flags\t\t: fpu avx512f amx_bf16 amx_tile\n", True),
        "arm": ("Features\t: fp asimd sve bf16 i8mm\n", True),
        "arm-old": ("Features\t: fp asimd crc32\n", False),
    }
    for name, (text, native) in cases.items():
        (tmp_path / name).write_text("processor\t: 0\n" + text)
        assert cpu_flags_say_native_bf16(tmp_path / name) is native, name
    assert cpu_flags(tmp_path / "xeon") >= {"avx512f", "avx512_vnni"}
    assert cpu_flags_say_native_bf16(tmp_path / "missing") is None and cpu_flags(tmp_path / "missing") is None


def test_auto_precision_follows_the_flags_not_onednns_emulation(monkeypatch):
    import torch

    from runtime import device

    if not torch.backends.mkldnn.is_available():
        pytest.skip("torch built without oneDNN: cpu_has_bf16 is False whatever the flags")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(device, "cpu_flags_say_native_bf16", lambda: False)
    assert not device.cpu_has_bf16()
    assert device.resolve_precision("auto", torch.device("cpu")) == torch.float32
    monkeypatch.setattr(device, "cpu_flags_say_native_bf16", lambda: True)
    assert device.resolve_precision("auto", torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(device, "cpu_flags_say_native_bf16", lambda: None)  # flags unreadable: oneDNN decides
    assert device.cpu_has_bf16()
