"""Which instances are GPU instances, and which GPU family, on every cloud.

Used twice: by the normalizers (``x_AcceleratorClass`` / ``x_AcceleratorFamily`` of a line item,
from its instance type or SKU) and by the guardrail before it stops anything (from the live
instance type, or the accelerators attached to it). Classes:

* ``gpu``: a GPU instance (NVIDIA or AMD), the only class the guardrail stops by default;
* ``ai-accelerator``: Trainium, Inferentia, Gaudi, TPU: accelerated, but not GPUs;
* ``None``: everything else.

Families are ``<vendor>-<model>`` in lower case (``nvidia-a100``, ``amd-mi300x``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from burnguard.core.clouds import AZURE

GPU = "gpu"
AI_ACCELERATOR = "ai-accelerator"


@dataclass(frozen=True, slots=True)
class Accelerator:
    cls: str
    family: str | None

    @property
    def is_gpu(self) -> bool:
        return self.cls == GPU


# AWS EC2 instance families (the part before the first dot of the instance type).
_AWS_FAMILIES: dict[str, tuple[str, str]] = {
    "p2": (GPU, "nvidia-k80"), "p3": (GPU, "nvidia-v100"), "p3dn": (GPU, "nvidia-v100"),
    "p4d": (GPU, "nvidia-a100"), "p4de": (GPU, "nvidia-a100"), "p5": (GPU, "nvidia-h100"),
    "p5e": (GPU, "nvidia-h200"), "p5en": (GPU, "nvidia-h200"), "p6-b200": (GPU, "nvidia-b200"),
    "p6-b300": (GPU, "nvidia-b300"), "p6e-gb200": (GPU, "nvidia-gb200"),
    "g3": (GPU, "nvidia-m60"), "g3s": (GPU, "nvidia-m60"), "g4dn": (GPU, "nvidia-t4"),
    "g4ad": (GPU, "amd-radeon-pro-v520"), "g5": (GPU, "nvidia-a10g"), "g5g": (GPU, "nvidia-t4g"),
    "g6": (GPU, "nvidia-l4"), "g6f": (GPU, "nvidia-l4"), "gr6": (GPU, "nvidia-l4"), "gr6f": (GPU, "nvidia-l4"),
    "g6e": (GPU, "nvidia-l40s"), "g7e": (GPU, "nvidia-rtx-pro-6000"),
    "inf1": (AI_ACCELERATOR, "aws-inferentia"), "inf2": (AI_ACCELERATOR, "aws-inferentia2"),
    "trn1": (AI_ACCELERATOR, "aws-trainium"), "trn1n": (AI_ACCELERATOR, "aws-trainium"),
    "trn2": (AI_ACCELERATOR, "aws-trainium2"), "dl1": (AI_ACCELERATOR, "intel-gaudi"),
    "dl2q": (AI_ACCELERATOR, "qualcomm-ai100"),
}
# Google Cloud machine series with built-in GPUs.
_GCP_SERIES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^a2-ultragpu"), "nvidia-a100-80gb"), (re.compile(r"^a2-"), "nvidia-a100"),
    (re.compile(r"^a3-ultragpu"), "nvidia-h200"), (re.compile(r"^a3-"), "nvidia-h100"),
    (re.compile(r"^a4x-"), "nvidia-gb200"), (re.compile(r"^a4-"), "nvidia-b200"),
    (re.compile(r"^g2-"), "nvidia-l4"), (re.compile(r"^g4-"), "nvidia-rtx-pro-6000"),
]
_GCP_TPU = re.compile(r"^(ct\d|tpu)", re.IGNORECASE)
# Azure VM sizes: Standard_<family letters><size>... ; the GPU model sits in the name.
_AZURE_MODELS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"MI300X", re.I), "amd-mi300x"), (re.compile(r"GB200", re.I), "nvidia-gb200"),
    (re.compile(r"H200", re.I), "nvidia-h200"), (re.compile(r"H100", re.I), "nvidia-h100"),
    (re.compile(r"A100", re.I), "nvidia-a100"), (re.compile(r"A10\b|A10_|A10$", re.I), "nvidia-a10"),
    (re.compile(r"T4", re.I), "nvidia-t4"), (re.compile(r"V710", re.I), "amd-v710"),
    (re.compile(r"V620", re.I), "amd-v620"),
]
_AZURE_SIZE = re.compile(r"^(?:Standard_|Basic_)?(N[CDVG])([a-z]*)(\d+)([a-z]*)(?:_(.*))?$", re.IGNORECASE)
# GPU SKUs as billing line items name them ("Nvidia Tesla T4 GPU running in Americas",
# "Nvidia L4 GPU attached to Spot Preemptible VMs", Azure meter "NC6s v3").
_SKU_GPU = re.compile(
    r"\b(nvidia|amd)\b[^,]*?\b(tesla\s+)?([a-z]{0,3}\d{1,4}[a-z]?|rtx\s*pro\s*6000)\b(?:\s*\d+gb)?.*\bgpu\b", re.I
)
_SKU_TPU = re.compile(r"\btpu\b", re.I)


def _azure_family(size: str) -> Accelerator | None:
    m = _AZURE_SIZE.match(size.strip().replace(" ", "_"))
    if not m:
        return None
    letter, _mods, _num, _suffix, version = m.groups()
    letter = letter.upper()
    for pattern, family in _AZURE_MODELS:
        if pattern.search(size):
            return Accelerator(GPU, family)
    v = (version or "").lower()
    if letter == "NC":
        fam = {"v2": "nvidia-p100", "v3": "nvidia-v100"}.get(v, "nvidia-k80")
    elif letter == "ND":
        fam = {"v2": "nvidia-v100", "v4": "nvidia-a100", "v5": "nvidia-h100"}.get(v, "nvidia-p40")
    elif letter == "NV":
        fam = {"v4": "amd-mi25"}.get(v, "nvidia-m60")
    else:  # NG
        fam = "amd-v620"
    return Accelerator(GPU, fam)


@lru_cache(maxsize=4096)
def classify_instance_type(cloud: str, instance_type: str | None) -> Accelerator | None:
    """Classify an instance type or machine type or VM size of ``cloud``."""
    if not instance_type:
        return None
    t = instance_type.strip()
    if cloud == "aws":
        family = t.split(".", 1)[0].lower()
        hit = _AWS_FAMILIES.get(family)
        return Accelerator(*hit) if hit else None
    if cloud == "gcp":
        name = t.rsplit("/", 1)[-1].lower()
        for pattern, fam in _GCP_SERIES:
            if pattern.match(name):
                return Accelerator(GPU, fam)
        if _GCP_TPU.match(name):
            return Accelerator(AI_ACCELERATOR, "google-tpu")
        return None
    if cloud == AZURE:
        return _azure_family(t)
    return None


@lru_cache(maxsize=4096)
def classify_sku(text: str | None) -> Accelerator | None:
    """Classify a SKU or meter description that names a GPU or TPU (a GPU billed on its own)."""
    if not text:
        return None
    m = _SKU_GPU.search(text)
    if m:
        vendor = m.group(1).lower()
        model = re.sub(r"\s+", "", m.group(3).lower())
        return Accelerator(GPU, f"{vendor}-{model}")
    if _SKU_TPU.search(text):
        return Accelerator(AI_ACCELERATOR, "google-tpu")
    return None


def classify_gcp_accelerator_type(accelerator_type: str) -> Accelerator:
    """An accelerator attached to a Compute Engine instance (``nvidia-tesla-t4``, ``nvidia-l4``)."""
    name = accelerator_type.rsplit("/", 1)[-1].lower()
    if name.startswith("ct") or "tpu" in name:
        return Accelerator(AI_ACCELERATOR, "google-tpu")
    return Accelerator(GPU, name.replace("tesla-", ""))
