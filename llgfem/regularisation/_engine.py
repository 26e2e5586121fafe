"""The shared iteration loop of all Landweber-type drivers (private).

One sub-step k of the (accelerated) Landweber-Kaczmarz iteration, paper eqs. (13)-(17):

    j = j(k)                                   cyclic, or shuffled per cycle from a seed
    r_k = F_j(x_k) - y_j                       (reused from the previous step when possible)
    skip (w_k = 0) if ||r_k|| <= tau delta_j   (16); stop after n consecutive skips (17)
    z_k = x_k + lambda_c (x_k - x_{k-n})       momentum rule, at the first sub-step of each
                                               cycle c = k div n only (lambda = 0: Landweber)
    x_{k+1} = z_k - mu_k F_j'(z_k)*(F_j(z_k) - y_j)   step rule (15)

All norms come from the operators' (global) inner products; nothing branches on the MPI rank.

Notation: as in :mod:`llgfem.regularisation.core`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..operators.protocols import domain_norm, range_norm
from .callbacks import History
from .checkpoint import Checkpoint
from .core import IterationInfo, Result, require_finite
from .momentum import Momentum, MomentumContext, NoMomentum
from .steps import StepOutcome, StepRule, StepTrial
from .stopping import StoppingRule


class Problem:
    """Sub-problems F_j with data y_j.

    Args:
        ops: Forward operators F_0, ..., F_{n-1} on a common domain.
        data: Data y_0^delta, ..., y_{n-1}^delta (local parts).
        seed: None for the cyclic order j(k) = k mod n, else the seed of a fresh random
            permutation per cycle (a pure function of (seed, cycle), identical on all ranks).
    """

    def __init__(self, ops: Sequence, data: Sequence[np.ndarray], seed: int | None = None):
        if len(ops) == 0 or len(ops) != len(data):
            raise ValueError(f"need as many data as sub-problems (>= 1), got {len(ops)} "
                             f"operators and {len(data)} data")
        self.ops = list(ops)
        self.data = [np.asarray(y, dtype=float) for y in data]
        self.seed = None if seed is None else int(seed)
        self.n = len(self.ops)

    def index(self, k: int) -> int:
        """Return j(k)."""
        cycle, pos = divmod(k, self.n)
        if self.seed is None or self.n == 1:
            return pos
        return int(np.random.default_rng([self.seed, cycle]).permutation(self.n)[pos])

    def residual(self, j: int, x: np.ndarray) -> tuple[np.ndarray, float]:
        """Return F_j(x) - y_j and its range norm."""
        r = np.asarray(self.ops[j](x), dtype=float) - self.data[j]
        return r, range_norm(self.ops[j], r)


@dataclass
class State:
    """Mutable driver state (everything a checkpoint must hold)."""

    x: np.ndarray
    x_prev: np.ndarray  # iterate at the start of the previous cycle (x_{k-1} if n = 1)
    cycle_start: np.ndarray  # iterate at the start of the current cycle
    latest: list[float]
    k: int = 0
    skips: int = 0
    mu: float | None = None
    initial_total: float = math.inf
    cache: tuple[int, np.ndarray, float] | None = field(default=None, repr=False)

    def total(self) -> float:
        """sqrt(sum_j latest_j^2) (inf until every sub-problem was evaluated)."""
        return math.sqrt(sum(v * v for v in self.latest))

    def note(self, j: int, rn: float) -> None:
        """Record the latest residual norm of sub-problem j."""
        self.latest[j] = rn
        if math.isinf(self.initial_total) and all(math.isfinite(v) for v in self.latest):
            self.initial_total = self.total()


@dataclass
class Engine:
    """The configured loop; :meth:`run` executes it."""

    problem: Problem
    step: StepRule
    stop: StoppingRule
    momentum: Momentum
    callbacks: list
    history: History
    checkpoint: Checkpoint | None
    driver: str

    def residual(self, st: State, j: int) -> tuple[np.ndarray, float]:
        """Residual of sub-problem j at st.x (cached if available); raises on NaN/Inf."""
        if st.cache is not None and st.cache[0] == j:
            return st.cache[1], st.cache[2]
        r, rn = self.problem.residual(j, st.x)
        require_finite(rn, f"residual norm of sub-problem {j}", st.k)
        st.cache = (j, r, rn)
        return r, rn

    def info(self, st: State, j: int, rn: float, *, skips: int | None = None,
             **kw) -> IterationInfo:
        """Build the info record of the current state (``skips`` overrides st.skips)."""
        return IterationInfo(
            iteration=st.k, x=st.x, residual_norm=rn, step_size=st.mu, subproblem=j,
            n_subproblems=self.problem.n, consecutive_skips=st.skips if skips is None else skips,
            total_residual_norm=st.total(), initial_residual_norm=st.initial_total, **kw)

    def notify(self, info: IterationInfo) -> None:
        """Call all callbacks."""
        for cb in self.callbacks:
            cb(info)

    def run(self, x0: np.ndarray) -> Result:
        """Iterate from x0 (or the checkpoint) until a rule stops; return the Result."""
        st = self.start(x0)
        reason = None
        while reason is None:
            reason = self.substep(st)
            if reason is None and self.checkpoint is not None and self.checkpoint.due(st.k):
                self.save(st)
        if self.checkpoint is not None:
            self.save(st)
        result = self.result(st, reason)
        for cb in self.callbacks:
            getattr(cb, "finish", lambda _: None)(result)
        return result

    def start(self, x0: np.ndarray) -> State:
        """Fresh state from x0 (initial callback), or the restored checkpoint state."""
        x = np.array(x0, dtype=float, copy=True)
        st = State(x=x, x_prev=x, cycle_start=x, latest=[math.inf] * self.problem.n)
        restored = None if self.checkpoint is None else self.checkpoint.load(
            self.driver, expect={"seed": self.problem.seed, "shape:x": list(x.shape)})
        if restored is not None:
            self.restore(st, *restored)
            return st
        require_finite(domain_norm(self.problem.ops[0], x), "norm of the initial guess", 0)
        j = self.problem.index(0)
        _, rn = self.residual(st, j)
        st.note(j, rn)
        self.notify(self.info(st, j, rn))
        return st

    def substep(self, st: State) -> str | None:
        """Perform sub-step k; return a reason string to stop, else None."""
        j = self.problem.index(st.k)
        r, rn = self.residual(st, j)
        st.note(j, rn)
        within = self.stop.within_discrepancy(j, rn)
        skips = st.skips + 1 if within else 0
        reason = self.stop.check(self.info(st, j, rn, skips=skips, skipped=within))
        if reason is not None:
            return reason
        new_cycle = st.k % self.problem.n == 0
        anchors = (st.cycle_start, st.x) if new_cycle else (st.x_prev, st.cycle_start)
        if within:
            st.x_prev, st.cycle_start = anchors
            st.k, st.skips = st.k + 1, skips
            self.notify(self.info(st, j, rn, skipped=True))
            return None
        ext, outcome = self.update(st, j, r, rn, anchors[0] if new_cycle else None)
        if not outcome.accepted:
            self.notify(self.info(st, j, rn, accepted=False, rejections=outcome.rejections,
                                  momentum=ext.weight))
            return outcome.message
        st.x_prev, st.cycle_start = anchors
        self.accept(st, j, outcome)
        self.notify(self.info(st, j, outcome.residual_norm, rejections=outcome.rejections,
                              momentum=ext.weight))
        return None

    def update(self, st: State, j: int, r: np.ndarray, rn: float,
               x_prev: np.ndarray | None):
        """Extrapolate from (x_prev, st.x) (no momentum if x_prev is None); step from z_k."""
        op = self.problem.ops[j]

        def evaluate(x: np.ndarray) -> tuple[np.ndarray, float]:
            return self.problem.residual(j, x)

        momentum = NoMomentum() if x_prev is None else self.momentum
        ext = momentum.extrapolate(MomentumContext(
            k=st.k // self.problem.n, x=st.x, x_prev=st.x if x_prev is None else x_prev,
            residual=r, residual_norm=rn,
            evaluate=evaluate,
            within=lambda v: self.stop.within_discrepancy(j, v),
            norm_domain=lambda v: domain_norm(op, v)))
        require_finite(ext.residual_norm, f"residual norm at the extrapolated point (j={j})",
                       st.k)
        L = op.derivative(ext.z)
        s = np.asarray(L.adjoint(ext.residual), dtype=float)
        trial = StepTrial(z=ext.z, direction=s, residual_norm=ext.residual_norm,
                          evaluate=evaluate, linearised=L, inner_domain=op.inner_domain,
                          inner_range=op.inner_range)
        return ext, self.step.take(trial)

    def accept(self, st: State, j: int, outcome: StepOutcome) -> None:
        """Commit an accepted step after checking the new residual and iterate."""
        require_finite(outcome.residual_norm, f"residual norm of sub-problem {j}", st.k + 1)
        require_finite(domain_norm(self.problem.ops[j], outcome.x), "iterate norm", st.k + 1)
        st.x = outcome.x
        st.k, st.skips, st.mu = st.k + 1, 0, outcome.step_size
        st.cache = (j, outcome.residual, outcome.residual_norm)
        st.note(j, outcome.residual_norm)

    def result(self, st: State, reason: str) -> Result:
        """Evaluate every sub-problem at the final x and build the Result."""
        norms = tuple(self.residual(st, j)[1] for j in range(self.problem.n))
        return Result(x=st.x, iterations=st.k, reason=reason, history=self.history,
                      residual_norm=math.sqrt(sum(v * v for v in norms)),
                      subproblem_residual_norms=norms)

    def save(self, st: State) -> None:
        """Write the complete state to the checkpoint."""
        cache_j, cache_norm = (None, None) if st.cache is None else (st.cache[0], st.cache[2])
        meta = {
            "driver": self.driver, "iteration": st.k, "skips": st.skips, "mu": st.mu,
            "latest": st.latest, "initial_total": st.initial_total, "cache_j": cache_j,
            "cache_norm": cache_norm,
            "seed": self.problem.seed, "step": self.step.state_dict(),
            "momentum": self.momentum.state_dict(), "history": self.history.state_dict(),
            "extra_states": [obj.state_dict() for obj in self.stateful()],
        }
        arrays = {"x": st.x, "x_prev": st.x_prev, "cycle_start": st.cycle_start,
                  "cache_r": None if st.cache is None else st.cache[1]}
        self.checkpoint.save(arrays, meta)

    def restore(self, st: State, arrays: dict, meta: dict) -> None:
        """Load the state written by :meth:`save`."""
        if arrays["x"].shape != st.x.shape:
            raise ValueError(f"checkpoint iterate has shape {arrays['x'].shape}, x0 has "
                             f"{st.x.shape}")
        if meta["seed"] != self.problem.seed:
            raise ValueError(f"checkpoint seed {meta['seed']} != seed {self.problem.seed}")
        st.x, st.x_prev, st.cycle_start = arrays["x"], arrays["x_prev"], arrays["cycle_start"]
        st.k, st.skips, st.mu = int(meta["iteration"]), int(meta["skips"]), meta["mu"]
        st.latest, st.initial_total = [float(v) for v in meta["latest"]], meta["initial_total"]
        if meta["cache_j"] is not None:
            st.cache = (int(meta["cache_j"]), arrays["cache_r"], float(meta["cache_norm"]))
        self.step.load_state_dict(meta["step"])
        self.momentum.load_state_dict(meta["momentum"])
        self.history.load_state_dict(meta["history"])
        extra = meta.get("extra_states", [])
        for obj, state in zip(self.stateful(), extra, strict=False):
            obj.load_state_dict(state)

    def stateful(self) -> list:
        """Stopping rules and callbacks (besides the history) whose state a checkpoint holds:
        those with ``state_dict()``/``load_state_dict(state)`` (e.g. an error trace)."""
        objs = [self.stop, *getattr(self.stop, "rules", ()),
                *(cb for cb in self.callbacks if cb is not self.history)]
        return [o for o in objs if hasattr(o, "state_dict") and hasattr(o, "load_state_dict")]


def build_engine(problem: Problem, *, step: StepRule, stop: StoppingRule, momentum: Momentum,
                 callbacks: Iterable, checkpoint: Checkpoint | None, driver: str) -> Engine:
    """Validate the arguments and assemble an :class:`Engine`.

    The step and momentum rules are deep-copied, so the caller's objects keep their initial
    state and can be reused for another run. The first :class:`History` in ``callbacks`` is
    the run's history (a default one is added otherwise).
    """
    if not isinstance(step, StepRule):
        raise TypeError(f"step must be a StepRule (e.g. ConstantStep(mu)), got {step!r}")
    if not isinstance(stop, StoppingRule):
        raise TypeError(f"stop must be a StoppingRule, got {stop!r}")
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"checkpoint must be a Checkpoint or None, got {checkpoint!r}")
    cbs = list(callbacks)
    history = next((cb for cb in cbs if isinstance(cb, History)), None)
    if history is None:
        history = History()
        cbs.insert(0, history)
    return Engine(problem=problem, step=copy.deepcopy(step), stop=stop,
                  momentum=copy.deepcopy(momentum), callbacks=cbs, history=history,
                  checkpoint=checkpoint, driver=driver)
