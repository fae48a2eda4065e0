"""Network architectures as plain data, checked before anything is allocated.

An architecture is a JSON-able dict (`{"kind": "tabular" | "lstm" | "tcn", ...}`); `build`
turns it into a torch module. A saved model is this dict plus its weights (safetensors), so a
file can only ask for the layers named here, of bounded sizes: `check` refuses an unknown kind
or field, a wrong type, or a size over LIMITS with a message naming the field, before a single
tensor is created (a crafted "hidden": [10**9] never reaches the allocator).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from core.errors import ArtifactIntegrityError

NORMS = ("layer", "batch", "none")
KINDS = ("tabular", "lstm", "tcn")
LIMITS = {"width": 2048, "layers": 8, "cardinality": 1_000_000, "embedding_dim": 128,
          "features": 10_000, "outputs": 10_000, "window": 512, "parameters": 50_000_000}
# field -> (type, limit key or None); the sequence kinds add SEQUENCE_FIELDS
TABULAR_FIELDS: dict[str, tuple[type, str | None]] = {
    "kind": (str, None), "n_numeric": (int, "features"), "cardinalities": (list, "cardinality"),
    "embedding_dims": (list, "embedding_dim"), "hidden": (list, "width"), "norm": (str, None),
    "dropout": (float, None), "n_outputs": (int, "outputs"),
}
SEQUENCE_FIELDS: dict[str, tuple[type, str | None]] = {
    "n_step": (int, "features"), "window": (int, "window"), "seq_hidden": (int, "width"),
    "seq_layers": (int, "layers"),
}


def _fail(where: str, message: str) -> ArtifactIntegrityError:
    return ArtifactIntegrityError(f"{where}: the network architecture {message}; the file is "
                                  "corrupt or crafted, so it was not loaded.")


def check(arch: Any, where: str = "model") -> dict[str, Any]:
    """The architecture if every field is known, typed and within LIMITS; else an
    ArtifactIntegrityError naming the field."""
    if not isinstance(arch, dict) or arch.get("kind") not in KINDS:
        kind = arch.get("kind") if isinstance(arch, dict) else type(arch).__name__
        raise _fail(where, f"names an unknown layer kind {kind!r} (known: {', '.join(KINDS)})")
    fields = {**TABULAR_FIELDS, **(SEQUENCE_FIELDS if arch["kind"] != "tabular" else {})}
    unknown = sorted(set(arch) - set(fields))
    missing = sorted(set(fields) - set(arch))
    if unknown or missing:
        raise _fail(where, f"has unknown fields {unknown} / lacks fields {missing}")
    for name, (kind, limit) in fields.items():
        value = arch[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise _fail(where, f"field {name!r} is not a {kind.__name__}")
        items = value if isinstance(value, list) else [value] if kind is int else []
        for item in items:
            if not isinstance(item, int) or isinstance(item, bool) or item < (
                    0 if name == "n_numeric" else 1):
                raise _fail(where, f"field {name!r} holds {item!r}, not a positive whole number")
            if limit and item > LIMITS[limit]:
                raise _fail(where, f"field {name!r} asks for {item}, over the limit of "
                                   f"{LIMITS[limit]}")
    if arch["norm"] not in NORMS:
        raise _fail(where, f"names an unknown normalisation {arch['norm']!r}")
    if not 0.0 <= float(arch["dropout"]) < 1.0:
        raise _fail(where, "has a dropout outside [0, 1)")
    if len(arch["cardinalities"]) != len(arch["embedding_dims"]):
        raise _fail(where, "has as many embeddings as embedding sizes")
    if len(arch["hidden"]) > LIMITS["layers"]:
        raise _fail(where, f"has more than {LIMITS['layers']} hidden layers")
    if parameter_count(arch) > LIMITS["parameters"]:
        raise _fail(where, f"would hold {parameter_count(arch):,} parameters, over the limit of "
                           f"{LIMITS['parameters']:,}")
    return arch


def parameter_count(arch: dict[str, Any]) -> int:
    """Roughly how many weights `build(arch)` allocates (exact enough for a size limit)."""
    total = sum(c * d for c, d in zip(arch["cardinalities"], arch["embedding_dims"],
                                      strict=False))
    width = arch["n_numeric"] + sum(arch["embedding_dims"])
    if arch["kind"] != "tabular":
        h, s = arch["seq_hidden"], arch["n_step"]
        per = 4 * h * (s + h + 2) if arch["kind"] == "lstm" else 3 * h * (s + h) + 2 * h
        total += per * arch["seq_layers"]
        width += h
    for h in arch["hidden"]:
        total += (width + 3) * h
        width = h
    return total + (width + 1) * arch["n_outputs"]


def embedding_dim(cardinality: int, cap: int) -> int:
    """fast.ai's rule of thumb: 1.6 * n^0.56, at most `cap`."""
    return max(1, min(cap, round(1.6 * cardinality ** 0.56)))


def _norm(kind: str, width: int) -> nn.Module:
    return {"layer": lambda: nn.LayerNorm(width), "batch": lambda: nn.BatchNorm1d(width),
            "none": nn.Identity}[kind]()


class TabularModule(nn.Module):
    """Numbers plus one learned embedding per categorical column, then Linear → norm → ReLU →
    dropout blocks and a linear head. `extra` more inputs (a sequence summary) may join."""

    def __init__(self, arch: dict[str, Any], extra: int = 0) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(c, d) for c, d in
                                        zip(arch["cardinalities"], arch["embedding_dims"],
                                            strict=True))
        width = arch["n_numeric"] + sum(arch["embedding_dims"]) + extra
        blocks: list[nn.Module] = []
        for h in arch["hidden"]:
            blocks += [nn.Linear(width, h), _norm(arch["norm"], h), nn.ReLU(),
                       nn.Dropout(float(arch["dropout"]))]
            width = h
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(width, arch["n_outputs"])

    def forward(self, num: torch.Tensor, cat: torch.Tensor,
                extra: torch.Tensor | None = None) -> torch.Tensor:
        parts = [num, *(emb(cat[:, j]) for j, emb in enumerate(self.embeddings))]
        if extra is not None:
            parts.append(extra)
        return self.head(self.body(torch.cat(parts, dim=1)))


class CausalConv(nn.Module):
    """One temporal-convolution level: a dilated convolution padded on the left only, so the
    output at step t sees steps ≤ t, plus a residual connection."""

    def __init__(self, channels_in: int, channels: int, dilation: int) -> None:
        super().__init__()
        self.pad = 2 * dilation
        self.conv = nn.Conv1d(channels_in, channels, kernel_size=3, dilation=dilation)
        self.skip = (nn.Conv1d(channels_in, channels, 1) if channels_in != channels
                     else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(nn.functional.pad(x, (self.pad, 0)))
        return torch.relu(out + self.skip(x))


class SequenceModule(nn.Module):
    """A window of earlier rows (LSTM or temporal convolutions, summarised by the last step)
    beside the predicted row's own features (TabularModule)."""

    def __init__(self, arch: dict[str, Any]) -> None:
        super().__init__()
        self.kind = arch["kind"]
        h, layers = arch["seq_hidden"], arch["seq_layers"]
        if self.kind == "lstm":
            self.encoder: nn.Module = nn.LSTM(arch["n_step"], h, num_layers=layers,
                                              batch_first=True)
        else:
            self.encoder = nn.Sequential(*(CausalConv(arch["n_step"] if i == 0 else h, h, 2 ** i)
                                           for i in range(layers)))
        self.row = TabularModule(arch, extra=h)

    def forward(self, num: torch.Tensor, cat: torch.Tensor,
                window: torch.Tensor) -> torch.Tensor:
        if self.kind == "lstm":
            out, _ = self.encoder(window)          # (batch, steps, hidden)
            summary = out[:, -1, :]
        else:
            summary = self.encoder(window.transpose(1, 2))[:, :, -1]
        return self.row(num, cat, summary)


def build(arch: dict[str, Any], where: str = "model") -> nn.Module:
    """The module an (already checked or our own) architecture describes."""
    check(arch, where)
    return TabularModule(arch) if arch["kind"] == "tabular" else SequenceModule(arch)


def receptive_field(levels: int) -> int:
    """Steps a TCN of `levels` levels (kernel 3, dilations 1, 2, 4, …) can see."""
    return 1 + 2 * (2 ** levels - 1)


__all__ = ["KINDS", "LIMITS", "NORMS", "SequenceModule", "TabularModule", "build", "check",
           "embedding_dim", "parameter_count", "receptive_field"]
