"""Symbolic regression of the ITM law behind an engine interface: Operon (default) or PySR.

PySR needs a Julia runtime which it downloads at first import; it is chosen only when one is
already installed (JULIA or PYTHON_JULIAPKG_EXE set) and the `pysr` extra is present. Operon
(pyoperon, C++) installs from the package registry and runs everywhere. Both run in rounds of a
few generations (warm start) so the caller can report progress and stop at its soft time limit
with the best formula found so far.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from domain.errors import InvalidInput, PermanentError

#: Called after each round with (generations done, best R^2 so far); False stops the search.
OnRound = Callable[[int, float], bool]


@dataclass(frozen=True)
class SearchOptions:
    generations: int = 60
    population_size: int = 500
    max_length: int = 25
    generations_per_round: int = 5
    seed: int = 1


@dataclass
class Found:
    """One search's outcome, the same shape whichever engine ran."""

    engine: str
    formula: str
    r2_score: float
    complexity: int
    variables: list[str]
    pareto_front: list[dict[str, Any]] = field(default_factory=list)
    generations: int = 0
    stopped_early: bool = False
    model: Any = None


class Engine(Protocol):
    name: str

    def search(
        self,
        x: np.ndarray,
        y: np.ndarray,
        names: Sequence[str],
        *,
        options: SearchOptions,
        on_round: OnRound,
        interrupts: tuple[type[BaseException], ...] = (),
    ) -> Found: ...


class InsufficientTime(PermanentError):
    """The time limit left no round to complete: there is no formula to return."""


def r2(y: np.ndarray, predicted: np.ndarray) -> float:
    residual = float(np.sum((y - predicted) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - residual / total if total > 0 else 0.0


def used_variables(formula: str, names: Sequence[str]) -> list[str]:
    return [name for name in names if name in formula]


def run_rounds(
    fit: Callable[[], float],
    *,
    rounds: int,
    per_round: int,
    on_round: OnRound,
    interrupts: tuple[type[BaseException], ...],
) -> tuple[int, bool]:
    """Call `fit` (one warm-started round, returning the best R^2) until done or told to stop.

    Returns (rounds completed, stopped early). An interrupt (the soft time limit) ends the
    search with the last completed round's model, which warm start left in place.
    """
    done = 0
    while done < rounds:
        try:
            best = fit()
            done += 1
            go_on = on_round(done * per_round, best)
        except interrupts:
            go_on = False
        if not go_on:
            break
    if done == 0:
        raise InsufficientTime("the search was stopped before its first round finished")
    return done, done < rounds


class OperonEngine:
    name = "operon"

    def search(
        self,
        x: np.ndarray,
        y: np.ndarray,
        names: Sequence[str],
        *,
        options: SearchOptions,
        on_round: OnRound,
        interrupts: tuple[type[BaseException], ...] = (),
    ) -> Found:
        from pyoperon.sklearn import SymbolicRegressor

        model = SymbolicRegressor(
            allowed_symbols="add,sub,mul,constant,variable",
            generations=options.generations_per_round,
            population_size=options.population_size,
            max_length=options.max_length,
            n_threads=1,
            random_state=options.seed,
            warm_start=True,
        )

        def fit() -> float:
            model.fit(x, y)
            return r2(y, model.predict(x))

        rounds, stopped = run_rounds(
            fit,
            rounds=-(-options.generations // options.generations_per_round),
            per_round=options.generations_per_round,
            on_round=on_round,
            interrupts=interrupts,
        )
        formula = model.get_model_string(model.model_, 4, list(names))
        front = [
            {
                "formula": model.get_model_string(entry["tree"], 4, list(names)),
                "complexity": int(entry["complexity"]),
                "mse": float(entry["mean_squared_error"]),
            }
            for entry in model.pareto_front_
        ]
        return Found(
            engine=self.name,
            formula=formula,
            r2_score=r2(y, model.predict(x)),
            complexity=len(model.model_.Nodes),
            variables=used_variables(formula, names),
            pareto_front=sorted(front, key=lambda entry: entry["complexity"]),
            generations=rounds * options.generations_per_round,
            stopped_early=stopped,
            model=model,
        )


class PySREngine:
    name = "pysr"

    def search(
        self,
        x: np.ndarray,
        y: np.ndarray,
        names: Sequence[str],
        *,
        options: SearchOptions,
        on_round: OnRound,
        interrupts: tuple[type[BaseException], ...] = (),
    ) -> Found:
        from pysr import PySRRegressor

        model = PySRRegressor(
            niterations=1,
            binary_operators=["+", "-", "*"],
            populations=8,
            population_size=options.population_size // 8 or 33,
            maxsize=options.max_length,
            warm_start=True,
            random_state=options.seed,
            deterministic=True,
            parallelism="serial",
            verbosity=0,
            progress=False,
        )

        def fit() -> float:
            model.fit(x, y, variable_names=list(names))
            return r2(y, model.predict(x))

        # One PySR iteration evolves every population several cycles: count it as one round.
        rounds, stopped = run_rounds(
            fit,
            rounds=max(options.generations // options.generations_per_round, 1),
            per_round=options.generations_per_round,
            on_round=on_round,
            interrupts=interrupts,
        )
        best = model.get_best()
        front = [
            {
                "formula": str(row.equation),
                "complexity": int(row.complexity),
                "mse": float(row.loss),
            }
            for row in model.equations_.itertuples()
        ]
        formula = str(best["equation"])
        return Found(
            engine=self.name,
            formula=formula,
            r2_score=r2(y, model.predict(x)),
            complexity=int(best["complexity"]),
            variables=used_variables(formula, names),
            pareto_front=front,
            generations=rounds * options.generations_per_round,
            stopped_early=stopped,
            model=None,
        )


def julia_available() -> bool:
    return bool(os.environ.get("JULIA") or os.environ.get("PYTHON_JULIAPKG_EXE"))


def choose_engine(preferred: str = "auto") -> Engine:
    """`auto`: PySR when a Julia runtime and the pysr package are there, otherwise Operon."""
    has_pysr = importlib.util.find_spec("pysr") is not None
    if preferred == "pysr" or (preferred == "auto" and has_pysr and julia_available()):
        if not (has_pysr and julia_available()):
            raise InvalidInput("PySR needs the [pysr] extra and a Julia runtime (JULIA set)")
        return PySREngine()
    if preferred not in ("auto", "operon"):
        raise InvalidInput(f"unknown engine {preferred!r}: use auto, operon or pysr")
    return OperonEngine()
