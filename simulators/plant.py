"""A deterministic model of a small cement plant: one clinker line plus utilities (see ``simulators.process``).

``PlantModel`` steps model time in ``step_s`` increments and integrates every counter from its rate. Counters are
the EXACT integrals of the piecewise-linear rate: the rate is sampled at every step boundary and linear in between,
so each step adds ``(r_k + r_k+1) / 2 * step_s`` (trapezoid), in float64. ``true_total(device, counter, t0, t1)``
returns that integral between any two model times (also between step boundaries) and is what a KPI computed
from counter deltas should match.

What a meter *shows* (``values()``) is the true integral plus an offset that faults change: ``reset_counter`` makes
the shown value jump to 0, ``counter_offset`` makes it jump to a given value (e.g. near a register's wrap). The
true integral never jumps. Register wrap itself happens in the encoding (``simulators.image``), not here.

Time is injected: nothing here reads a clock. ``advance_to(t)`` steps to the last step boundary <= t and never
goes back (an earlier t is ignored). The model is not thread-safe; one asyncio loop owns it.

Memory: the true integral of every counter is kept per step (8 bytes per counter per step, ~20 MB per simulated
day at 1 s steps) so ``true_total`` can look back.
"""

from __future__ import annotations

import math
import random
from array import array
from pathlib import Path
from typing import Any

from simulators.groundtruth import GroundTruthWriter
from simulators.process import DEVICE_KINDS, SUB_METERS, PlantProcess

__all__ = ["COUNTERS", "DEVICE_KINDS", "SUB_METERS", "PlantModel", "SteppedClock"]

H = 1.0 / 3600.0
_ELECTRIC = (
    ("energy_import_kwh", "active_power_kw", H),
    ("energy_export_kwh", None, 0.0),
    ("reactive_energy_kvarh", "reactive_power_kvar", H),
    ("reactive_energy_export_kvarh", None, 0.0),
)

# device -> (counter name, rate key in process values or None for a counter that does not move, factor per second)
COUNTERS: dict[str, tuple[tuple[str, str | None, float], ...]] = {
    "main-meter": _ELECTRIC,
    "kiln1-meter": _ELECTRIC,
    "pv-meter": _ELECTRIC,
    "transformer1": _ELECTRIC,
    "compressor1": (*_ELECTRIC, ("run_hours_h", "running", H)),
    "pump1": _ELECTRIC,
    "raw-mill-vfd": (*_ELECTRIC, ("run_hours_h", "running", H)),
    "kiln1": (
        ("production_t", "production_rate_tph", H),
        ("coal_t", "coal_feed_tph", H),
        ("run_hours_h", "running", H),
    ),
    "boiler1": (
        ("steam_t", "steam_flow_tph", H),
        ("gas_m3", "gas_flow_m3h", H),
        ("heat_recovered_gj", "heat_rate_gjh", H),
    ),
    "cement-counter": (("production_t", "production_rate_tph", H),),
    "water-meter": (("water_m3", "water_flow_m3h", H),),
}

# range of a counter's shown value at model start (seeded); others start between 1e5 and 5e6
_INITIAL = {
    "energy_export_kwh": (0.0, 500.0),
    "reactive_energy_export_kvarh": (0.0, 200.0),
    "run_hours_h": (1000.0, 60000.0),
    "production_t": (1e4, 2e6),
    "coal_t": (1e4, 1e6),
}

FAULTS = ("reset_counter", "counter_offset", "outage")


class SteppedClock:
    """A clock for tests: returns ``t`` until told to move. ``clock.advance(60)`` moves it one minute."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


class _Counter:
    __slots__ = ("factor", "history", "offset", "rate_key", "true")

    def __init__(self, rate_key: str | None, factor: float, initial: float) -> None:
        self.rate_key = rate_key
        self.factor = factor
        self.true = 0.0  # integral since model start
        self.offset = initial  # shown = true + offset
        self.history = array("d", [0.0])  # true integral at step k


class PlantModel:
    """The plant. ``values(device)`` is what the device would show at ``now``."""

    def __init__(self, seed: int = 1, start: float = 1_767_225_600.0, step_s: float = 1.0) -> None:
        if not step_s > 0.0:
            raise ValueError(f"step_s must be > 0, got {step_s}")
        self.seed = seed
        self.start = float(start)
        self.step_s = float(step_s)
        self.process = PlantProcess(seed, self.start)
        self._k = 0
        self._rates = self.process.sample(self.start)
        rng = random.Random(f"plant:{seed}:initial")
        self._counters: dict[str, dict[str, _Counter]] = {}
        for device, specs in COUNTERS.items():
            self._counters[device] = {
                name: _Counter(key, factor, round(rng.uniform(*_INITIAL.get(name, (1e5, 5e6))), 2))
                for name, key, factor in specs
            }
        self._silent_until: dict[str, float] = {}
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._writer: GroundTruthWriter | None = None
        self.revision = 0  # changes whenever any shown value may have changed (a step or a fault)

    # --- time ---------------------------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Model time (UNIX s) of the last step boundary reached."""
        return self.start + self._k * self.step_s

    def advance_to(self, t: float) -> None:
        """Step to the last step boundary at or before ``t``; an earlier ``t`` is ignored (never back)."""
        target = math.floor((t - self.start) / self.step_s + 1e-9)
        while self._k < target:
            self._step()
        if self._writer is not None:
            self._writer.flush()

    def _step(self) -> None:
        old = self._rates
        self._k += 1
        self.revision += 1
        new = self.process.sample(self.now)
        half = 0.5 * self.step_s
        for device, counters in self._counters.items():
            r_old, r_new = old[device], new[device]
            for c in counters.values():
                if c.rate_key is not None:
                    c.true += (r_old[c.rate_key] + r_new[c.rate_key]) * half * c.factor
                c.history.append(c.true)
        self._rates = new
        if self._writer is not None:
            self._write_all()

    # --- reading ------------------------------------------------------------------------------------------------

    def device_names(self) -> list[str]:
        return list(DEVICE_KINDS)

    def kind(self, device: str) -> str:
        """Profile category of the device (energy_meter, vfd, kiln, ...)."""
        self._check(device)
        return DEVICE_KINDS[device]

    def values(self, device: str) -> dict[str, float]:
        """Current values, keyed by ``agent.model.Role`` value where a role exists, else by extra names."""
        self._check(device)
        out = dict(self._rates[device])
        for name, c in self._counters[device].items():
            out[name] = c.true + c.offset
        return out

    def silent(self, device: str) -> bool:
        """True while an injected outage keeps the device from answering."""
        return self.now < self._silent_until.get(device, -math.inf)

    def true_total(self, device: str, counter: str, t0: float, t1: float) -> float:
        """Exact integral of the counter's rate between model times t0 <= t1 (both within [start, now])."""
        self._check(device)
        c = self._counters[device].get(counter)
        if c is None:
            raise KeyError(f"{device} has no counter {counter!r}; it has {sorted(self._counters[device])}")
        if not self.start <= t0 <= t1 <= self.now:
            raise ValueError(f"window [{t0}, {t1}] is not inside [{self.start}, {self.now}]")
        return self._true_at(device, c, t1) - self._true_at(device, c, t0)

    def _true_at(self, device: str, c: _Counter, t: float) -> float:
        x = (t - self.start) / self.step_s
        k = min(math.floor(x), self._k)
        frac = x - k
        if frac <= 1e-12 or c.rate_key is None:
            return c.history[k]
        # rate is linear inside the step: integrate r_k + (r_k+1 - r_k) * s for s in [0, frac] steps
        t_k = self.start + k * self.step_s
        r0 = self.process.sample(t_k)[device][c.rate_key]
        r1 = self.process.sample(t_k + self.step_s)[device][c.rate_key]
        return c.history[k] + (r0 * frac + (r1 - r0) * frac * frac / 2.0) * self.step_s * c.factor

    def counters(self, device: str) -> list[str]:
        self._check(device)
        return list(self._counters[device])

    def events(self, device: str) -> list[dict[str, Any]]:
        """Faults injected into the device so far, oldest first."""
        return list(self._events.get(device, []))

    # --- faults -------------------------------------------------------------------------------------------------

    def inject(self, device: str, fault: str, **kw: Any) -> None:
        """Inject a fault at ``now``.

        reset_counter(role): the shown counter jumps to 0 (a meter reset or replacement).
        counter_offset(role, value): the shown counter jumps to ``value`` (e.g. just below a register's wrap).
        outage(seconds): the device does not answer for that long (its counters keep integrating).
        """
        self._check(device)
        event: dict[str, Any] = {"t": self.now, "fault": fault}
        if fault in ("reset_counter", "counter_offset"):
            role = str(kw["role"])
            c = self._counters[device].get(role)
            if c is None:
                raise KeyError(f"{device} has no counter {role!r}; it has {sorted(self._counters[device])}")
            before = c.true + c.offset
            target = 0.0 if fault == "reset_counter" else float(kw["value"])
            c.offset = target - c.true
            event |= {"role": role, "from": before, "to": target}
        elif fault == "outage":
            seconds = float(kw["seconds"])
            self._silent_until[device] = self.now + seconds
            event["seconds"] = seconds
        else:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        self._events.setdefault(device, []).append(event)
        self.revision += 1
        if self._writer is not None:
            self._writer.write(self.now, device, self.values(device), [event], self._true(device))
            self._writer.flush()

    # --- ground truth -------------------------------------------------------------------------------------------

    def record_to(self, path: str | Path) -> GroundTruthWriter:
        """Write one JSON line per device per step from now on (the current state first). Close with close()."""
        if self._writer is not None:
            self._writer.close()
        self._writer = GroundTruthWriter(path)
        self._write_all()
        self._writer.flush()
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _true(self, device: str) -> dict[str, float]:
        return {name: c.true for name, c in self._counters[device].items()}

    def _write_all(self) -> None:
        assert self._writer is not None
        for device in DEVICE_KINDS:
            self._writer.write(self.now, device, self.values(device), [], self._true(device))

    def _check(self, device: str) -> None:
        if device not in DEVICE_KINDS:
            raise KeyError(f"no device {device!r} in the plant; devices: {', '.join(DEVICE_KINDS)}")
