"""Synthetic sources whose exact entropy rate is known, so a fit's irreducible loss E can be checked against the truth.

- ``markov_source``: a sparse order-2 Markov chain (the original synthetic source).
- ``chain_source`` / ``chain_sample``: a sparse order-k chain whose difficulty is dialled through ``CHAIN_DIALS``
  (``data.source="chain:order=2,support=8,tokens=4e7"``), with the exact entropy rate and the exact loss floor of a
  model that sees windows of ``seq_len`` tokens (``window_entropy``).

scaling/data/cache.py turns their tokens into a prepared dataset like any other source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------------------------
# synthetic source with a known entropy rate


def markov_source(vocab_size: int, n_tokens: int, seed: int = 0, order: int = 2, support: int = 6):
    """Sparse order-``order`` Markov chain over ``vocab_size`` symbols. Returns (tokens, entropy rate in nats).

    Each context allows ``support`` next symbols with Dirichlet(0.5) weights, so the entropy rate (the loss of a
    perfect model, the E a fit should recover) is exact: sum over contexts of stationary probability x the entropy
    of the next-symbol distribution. The stationary distribution is found by power iteration.
    """
    rng = np.random.default_rng(seed)
    n_ctx = vocab_size**order
    nxt = np.stack([rng.choice(vocab_size, size=support, replace=False) for _ in range(n_ctx)])
    probs = rng.dirichlet(np.full(support, 0.5), size=n_ctx)
    # context c = (x_{t-order+1}, ..., x_t) encoded base V; next context = (c * V + x_{t+1}) mod V^order
    succ = (np.arange(n_ctx)[:, None] * vocab_size + nxt) % n_ctx
    pi = np.full(n_ctx, 1.0 / n_ctx)
    flat_succ = succ.ravel()
    for _ in range(5000):
        new = np.bincount(flat_succ, weights=(pi[:, None] * probs).ravel(), minlength=n_ctx)
        if np.abs(new - pi).sum() < 1e-13:
            pi = new
            break
        pi = new
    else:
        raise RuntimeError(
            f"markov source (V={vocab_size}, seed={seed}): the stationary distribution did not converge; "
            "its entropy rate would be wrong. Try another seed."
        )
    h_ctx = -(probs * np.log(probs)).sum(axis=1)
    entropy_rate = float((pi * h_ctx).sum())
    cum = np.cumsum(probs, axis=1)
    u = rng.random(n_tokens)
    out = np.empty(n_tokens, dtype=np.int64)
    c = int(rng.integers(n_ctx))
    for t in range(n_tokens):
        k = int(np.searchsorted(cum[c], u[t]))
        k = min(k, support - 1)
        out[t] = nxt[c, k]
        c = int(succ[c, k])
    return out, entropy_rate


# ---------------------------------------------------------------------------------------------------------------
# `chain`: a synthetic source whose difficulty is dialled, with an exact entropy rate and an exact loss floor


CHAIN_DIALS = {  # name: (default, type, lo, hi); e.g. data.source="chain:order=2,support=8,tokens=4e7"
    "order": (1, int, 1, 4),  # context length k: the next symbol depends on the last k symbols
    "support": (16, int, 1, 256),  # successors allowed per context (<= data.vocab_size)
    "zipf": (1.0, float, 0.0, 4.0),  # successors drawn with weight rank^-zipf: heavy-tailed context frequencies
    "alpha": (0.5, float, 1e-3, 1e3),  # Dirichlet concentration of each context's successor probabilities
    "tokens": (20_000_000, int, 100_000, 500_000_000),  # tokens generated (train + validation)
    "seed": (0, int, 0, 2**32 - 1),
}


def parse_chain_source(source: str, vocab_size: int) -> dict:
    """``chain`` or ``chain:key=value,...`` -> every dial with its value (defaults filled in); errors name the dial."""
    kind, _, rest = source.partition(":")
    if kind != "chain":
        raise ValueError(f"data.source={source!r}: not a chain source")
    dials = {k: v[0] for k, v in CHAIN_DIALS.items()}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        key = key.strip()
        if key not in CHAIN_DIALS or not eq:
            raise ValueError(f"data.source={source!r}: {item!r} must be key=value with key one of {list(CHAIN_DIALS)}")
        _, typ, lo, hi = CHAIN_DIALS[key]
        try:
            x = float(value)
            if typ is int and x != int(x):
                raise ValueError
            x = typ(x)
        except ValueError:
            raise ValueError(f"data.source={source!r}: chain dial {key}={value!r} must be {typ.__name__}") from None
        if not lo <= x <= hi:
            raise ValueError(f"data.source={source!r}: chain dial {key}={x} must be in [{lo}, {hi}]")
        dials[key] = x
    if dials["support"] > vocab_size:
        raise ValueError(
            f"data.source={source!r}: chain dial support={dials['support']} must be <= data.vocab_size={vocab_size}"
        )
    if vocab_size ** dials["order"] > 2**22:
        raise ValueError(
            f"data.source={source!r}: data.vocab_size={vocab_size} ** order={dials['order']} = "
            f"{vocab_size ** dials['order']:,} contexts must be <= 2**22 (the chain's tables in memory)"
        )
    return dials


@dataclass(frozen=True)
class Chain:
    """A sparse order-k Markov chain over ``vocab_size`` symbols and what is known about it exactly.

    Context c encodes the last k symbols base V (oldest most significant); from c the chain emits ``succ[c, j]`` with
    probability ``probs[c, j]`` and moves to context ``next_ctx[c, j]``. An order-k chain is a unifilar source (the
    next state is a function of state and symbol), so its entropy rate is the stationary average of each context's
    emission entropy (Cover & Thomas, Elements of Information Theory, 2nd ed., Theorem 4.2.4):
    H = sum_c pi_c * H(probs[c]).
    """

    vocab_size: int
    order: int
    succ: np.ndarray  # (V^k, support) next symbols
    probs: np.ndarray  # (V^k, support) their probabilities
    next_ctx: np.ndarray  # (V^k, support) the context after emitting succ[c, j]
    pi: np.ndarray  # (V^k,) stationary distribution over contexts
    entropy_rate: float  # H, nats/token
    prefix_entropies: tuple[float, ...]  # H(X_j | X_0..X_{j-1}) for j = 0..k-1 under stationarity, nats

    def window_entropy(self, seq_len: int) -> float:
        return window_entropy(self.entropy_rate, self.prefix_entropies, seq_len)


def window_entropy(entropy_rate: float, prefix_entropies, seq_len: int) -> float:
    """Loss floor of a perfect model on windows of ``seq_len`` predictions of an order-k chain.

    A model sees only its window, never the context before it: prediction i has i+1 tokens of context, so for
    i+1 < k its floor is h_{i+1} = H(X_{i+1} | X_0..X_i) > H, and the window's average floor is
    (h_1 + ... + h_{k-1} + (seq_len - k + 1) H) / seq_len. This, not H, is the E that a fit of validation losses
    (averaged over every position of a window) recovers; the two differ by O(1/seq_len).
    """
    head = list(prefix_entropies)[1 : min(len(prefix_entropies), seq_len + 1)]
    return float((sum(head) + (seq_len - len(head)) * entropy_rate) / seq_len)


def chain_source(
    vocab_size: int, order: int = 1, support: int = 16, zipf: float = 1.0, alpha: float = 0.5, seed: int = 0
) -> Chain:
    """Draw a random sparse order-``order`` chain (deterministic from ``seed``) and compute its exact entropies.

    Each context allows ``support`` successors, drawn without replacement with weight (symbol + 1)^-zipf (Gumbel
    top-k), with Dirichlet(``alpha``) probabilities. zipf > 0 makes some symbols, hence some contexts, far more
    frequent than others, so context frequencies are heavy-tailed like natural text's: a model learns the frequent
    contexts first and the rare ones only with more data and more parameters, which is what makes loss keep falling
    with N and D (the quantisation picture of Michaud et al. 2023, "The Quantization Model of Neural Scaling").
    """
    rng = np.random.default_rng([seed, 0x6368])
    V, k = vocab_size, order
    n_ctx = V**k
    log_w = (-zipf * np.log(np.arange(1, V + 1))).astype(np.float32)
    succ = np.empty((n_ctx, support), dtype=np.int64)
    for lo in range(0, n_ctx, 1 << 14):  # blocks keep the (contexts x V) key matrix small
        with np.errstate(divide="ignore"):  # a uniform draw of exactly 0 gives key -inf: never chosen, harmless
            keys = log_w - np.log(-np.log(rng.random((min(n_ctx - lo, 1 << 14), V), dtype=np.float32)))
        succ[lo : lo + len(keys)] = np.argpartition(-keys, support - 1, axis=1)[:, :support]
    probs = rng.dirichlet(np.full(support, alpha), size=n_ctx)
    probs = np.maximum(probs, 1e-300)  # Dirichlet draws can underflow to 0; keep every log finite
    probs /= probs.sum(axis=1, keepdims=True)
    next_ctx = (np.arange(n_ctx)[:, None] * V + succ) % n_ctx
    flat_next = next_ctx.ravel()
    pi = np.full(n_ctx, 1.0 / n_ctx)
    tol = max(1e-14, 1e-16 * n_ctx)  # L1 change per step; rounding alone leaves ~1e-17 per context
    for _ in range(20_000):
        new: np.ndarray = np.bincount(flat_next, weights=(pi[:, None] * probs).ravel(), minlength=n_ctx)
        new = 0.5 * (new + pi)  # the lazy chain: same stationary distribution, and converges even if periodic
        if np.abs(new - pi).sum() < tol:
            pi = new
            break
        pi = new
    else:
        raise RuntimeError(
            f"chain source (V={V}, order={k}, seed={seed}): the stationary distribution did not "
            "converge; its entropy rate would be wrong. Try another seed."
        )
    h_ctx = -(probs * np.log(probs)).sum(axis=1)
    entropy_rate = float(pi @ h_ctx)

    def ngram_entropy(m: int) -> float:  # entropy of the stationary distribution of the last m symbols
        p = np.bincount(np.arange(n_ctx) % V**m, weights=pi, minlength=V**m) if m else np.ones(1)
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    blocks = [ngram_entropy(m) for m in range(k + 1)]
    prefix = tuple(blocks[j + 1] - blocks[j] for j in range(k))
    return Chain(V, k, succ, probs, next_ctx, pi, entropy_rate, prefix)


def chain_sample(chain: Chain, n_tokens: int, seed: int = 0, n_streams: int = 256) -> np.ndarray:
    """``n_tokens`` symbols of the chain, deterministic from ``seed``: ``n_streams`` independent stationary streams
    run side by side (one vectorised step for all) and laid end to end.

    Each stream starts from a context drawn from the stationary distribution, so every token is a draw from the
    stationary process; a join between two streams is a context break once per n_tokens / n_streams tokens
    (about 1 in 47,000 at the default 12M tokens), as harmless as the breaks the validation split's blocks make.
    """
    rng = np.random.default_rng([seed, 0x73616D])
    V, k = chain.vocab_size, chain.order
    length = -(-n_tokens // n_streams)
    out = np.empty((n_streams, length + k), dtype=np.int64)
    c = rng.choice(len(chain.pi), size=n_streams, p=chain.pi / chain.pi.sum())
    for i in range(k):  # the start context's own symbols come first
        out[:, i] = (c // V ** (k - 1 - i)) % V
    cum = np.cumsum(chain.probs, axis=1)
    last = chain.probs.shape[1] - 1
    for t in range(length):
        u = rng.random(n_streams)
        j = np.minimum((cum[c] < u[:, None]).sum(axis=1), last)
        out[:, k + t] = chain.succ[c, j]
        c = chain.next_ctx[c, j]
    return out.ravel()[:n_tokens]
