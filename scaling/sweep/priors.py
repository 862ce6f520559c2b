"""Priors for the compute-optimal size N_opt(C) = N0 (C / C0)^a: where a planned sweep centres each budget's sizes
before it has measured any minimum (scaling/sweep/plan.py, scaling/sweep/sequential.py). A published law, the
harness's own earlier fit, or a JSON file ``{"C0": ..., "N0": ..., "a": ...}`` (a sweep folder's prior.json, which
the sequential sweep writes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from scaling.config.schema import ConfigError
from scaling.core import forms


@dataclass(frozen=True)
class Prior:
    """N_opt(C) = N0 * (C / C0) ** a: the size each budget's sizes are centred on."""

    name: str
    C0: float
    N0: float
    a: float
    source: str

    def n_opt(self, budget: float) -> float:
        return forms.power_law(budget / self.C0, self.N0, self.a)


def _chinchilla_style(name: str, A: float, B: float, alpha: float, beta: float, source: str) -> Prior:
    # Hoffmann et al. 2022 App. D.2: N_opt = G (C/6)^a, G = (alpha A / (beta B))^(1/(alpha+beta)), a = beta/(alpha+beta)
    a, _ = forms.chinchilla_exponents(alpha, beta)
    return Prior(name, 6.0, forms.chinchilla_g(A, B, alpha, beta), a, source)


PRIORS = {
    # the IsoFLOP minima of the machine-planned isoflop_cpu sweep (Shakespeare + Folio BPE-512, seq 128, head 8):
    # N ~ 3.3e3 at 1.25e11, 1.2e4 at 5e11, 2.1e4 at 1e12 FLOPs (two more budgets were not bracketed). Published laws
    # put these tiny, embedding-heavy models 2-3x larger. The sequential sweep (sweep/sequential.py) corrects it.
    "harness": Prior("harness", 1e12, 2e4, 0.75, "IsoFLOP minima of the planned isoflop_cpu sweep (2026-11)"),
    "chinchilla": _chinchilla_style("chinchilla", 406.4, 410.7, 0.34, 0.28, "Hoffmann et al. 2022, Approach 3"),
    "epoch": _chinchilla_style("epoch", 482.0, 2085.0, 0.348, 0.366, "Besiroglu et al. 2024 (Epoch AI refit)"),
}


def load_prior(spec: str) -> Prior:
    """A named prior (PRIORS) or a JSON file with C0, N0, a (e.g. written by the analysis of an earlier sweep)."""
    if spec in PRIORS:
        return PRIORS[spec]
    path = Path(spec)
    if path.is_dir():
        path = path / "prior.json"
    if not path.exists():
        raise ConfigError(
            f"--prior={spec!r}: must be one of {sorted(PRIORS)} or a JSON file (or a sweep folder with "
            f"prior.json) holding C0, N0, a for N_opt = N0 (C/C0)^a"
        )
    try:
        d = json.loads(path.read_text())
        return Prior(
            str(d.get("name", path)), float(d["C0"]), float(d["N0"]), float(d["a"]), str(d.get("source", path))
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"--prior={spec!r}: {path} must hold numbers C0, N0, a ({type(e).__name__}: {e})") from None
