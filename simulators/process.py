"""The plant's process: every device's instantaneous values as pure functions of model time.

Nothing here has state that changes with time: ``PlantProcess.sample(t)`` gives the same answer for the same seed,
start and ``t`` however it is called, so the counters that ``plant.PlantModel`` integrates from these rates are
reproducible exactly.

The plant (one clinker line plus utilities; names are fixed, other code and tests rely on them):

- ``kiln1``: clinker 200-220 t/h with slow variation, coal ~28.6 t/h in proportion, kiln inlet temperature, main
  drive. With the demo's coal at 22 GJ/t that is 28.6 x 22 / 210 = 3.0 GJ/t = 3,000 kJ/kg clinker, and with the
  kiln section's ~7 MW (x 0.1229) (28.6 x 22 x 34.12 + 7000 x 0.1229) / 210 = 106.5 kgce/t: a typical Chinese
  line, between the benchmark (100) and the baseline (117), not better than any real one.
  Kiln stops: the first begins 30 h after ``start`` and later ones every 50-90 h (seeded), each 2-5 h long, with a
  20 min ramp down and a 60 min ramp up. ``PlantProcess.kiln_stops`` lists them.
- ``kiln1-meter``: the kiln section's electricity (fans, drive, coal mill, cooler): ~7 MW at full output.
- ``raw-mill-vfd``: 3.6 MW raw mill motor on a VFD; stops 18:00-21:00 local time (peak tariff) with 5 min ramps.
- ``transformer1``: 5000 kVA transformer feeding cement grinding and packing (10.5 kV side), ~3-4 MW.
- ``compressor1``: variable-speed screw compressor, 25-40 m3/min at 0.75 MPa, ~6.4 kW/(m3/min).
- ``pump1``: cooling-water pump on a pump curve H = 55 - 6.25e-5 Q^2, efficiency peak 78 % at 420 m3/h.
- ``main-meter``: whole-plant grid import = (kiln1-meter + raw-mill-vfd + transformer1 + compressor1 + pump1)
  x (1 + loss), loss 2-4 % varying slowly (unmetered lighting, offices, cable losses). Same for reactive power.
- ``pv-meter``: the PV plant's generation meter at its own connection point (not behind main-meter): 0 at night,
  a daylight curve 06:00-18:00 local with passing clouds, peak ~2 MW. Generation reads as ``energy_import_kwh``.
- ``boiler1``: gas-fired steam boiler, ~18 t/h at 1.25 MPa (absolute) and 220 °C, feedwater 104 °C, efficiency
  ~91.5 %; gas LHV 35.59 MJ/m3 (1.2143 kgce/m3). Heat output = steam x (h_steam - h_feedwater), enthalpies from
  IAPWS-97 linearised at the operating point (error < 1e-4 over the simulated range).
- ``cement-counter``: cement dispatched, ~150 t/h 08:00-20:00 local and ~30 t/h at night.
- ``water-meter``: make-up water, 50-70 m3/h.

Local time is Asia/Shanghai, UTC+8 with no daylight saving. Values are keyed by ``agent.model.Role`` values where a
role exists, else by the extra names written in ``sample`` (e.g. ``voltage_l1_v``, ``running``, ``efficiency``).
"""

from __future__ import annotations

import math
import random

LOCAL_OFFSET_S = 8 * 3600.0  # Asia/Shanghai: UTC+8, no daylight saving since 1991
GAS_LHV_GJ_M3 = 0.035588  # 1.2143 kgce/m3 x 29.3076 MJ/kgce
SUB_METERS = ("kiln1-meter", "raw-mill-vfd", "transformer1", "compressor1", "pump1")

DEVICE_KINDS: dict[str, str] = {
    "main-meter": "energy_meter",
    "kiln1-meter": "energy_meter",
    "raw-mill-vfd": "vfd",
    "kiln1": "kiln",
    "boiler1": "boiler",
    "compressor1": "compressor",
    "transformer1": "transformer",
    "cement-counter": "production_counter",
    "pv-meter": "energy_meter",
    "water-meter": "flow_meter",
    "pump1": "pump",
}

TWO_PI = 2.0 * math.pi


class Wave:
    """Smooth seeded noise in [-1, 1]: a normalised sum of sinusoids with seeded periods and phases."""

    __slots__ = ("_terms",)

    def __init__(self, rng: random.Random, periods_s: tuple[float, ...]) -> None:
        amps = [rng.uniform(0.5, 1.0) for _ in periods_s]
        total = sum(amps)
        self._terms = tuple(
            (a / total, TWO_PI / (p * rng.uniform(0.8, 1.25)), rng.uniform(0.0, TWO_PI))
            for a, p in zip(amps, periods_s, strict=True)
        )

    def __call__(self, tau: float) -> float:
        return sum(a * math.sin(w * tau + ph) for a, w, ph in self._terms)


def smoothstep(x: float) -> float:
    """0 below 0, 1 above 1, a smooth S in between."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return x * x * (3.0 - 2.0 * x)


def local_hour(t: float) -> float:
    """Hour of the day (0-24, fractional) in Asia/Shanghai."""
    return ((t + LOCAL_OFFSET_S) % 86400.0) / 3600.0


def window(hour: float, start_h: float, end_h: float, ramp_h: float) -> float:
    """1 inside [start_h, end_h] of the day, 0 outside, with smooth ramps of ramp_h hours on both sides."""
    return smoothstep((hour - start_h + ramp_h) / ramp_h) * smoothstep((end_h + ramp_h - hour) / ramp_h)


# IAPWS-IF97 enthalpies (kJ/kg) of the boiler's nominal steam (1.25 MPa, 220 °C) and feedwater (1.35 MPa, 104 °C),
# with their partial derivatives by pressure (per MPa) and temperature (per K): what ``iapws_enthalpy`` gives at
# those points (tests/unit/test_plant.py holds them to it). Kept as figures because importing iapws pulls in scipy,
# a third of a simulator process's start-up CPU, and the suite starts dozens of simulators.
STEAM_NOMINAL = (1.25, 220.0)
FEEDWATER_NOMINAL = (1.35, 104.0)
H_STEAM = (2863.2084839519466, -50.72916085309771, 2.428648220778541)
H_FEEDWATER = (436.9025373209146, 0.7421973525651993, 4.219661694800379)


def iapws_enthalpy(p_mpa: float, t_c: float) -> tuple[float, float, float]:
    """h (kJ/kg) and its partial derivatives by pressure (per MPa) and temperature (per K), IAPWS-97."""
    from iapws import IAPWS97

    h0 = float(IAPWS97(P=p_mpa, T=t_c + 273.15).h)
    dp = float(IAPWS97(P=p_mpa + 0.01, T=t_c + 273.15).h) - h0
    dt = float(IAPWS97(P=p_mpa, T=t_c + 274.15).h) - h0
    return h0, dp / 0.01, dt


def meter(v_ln: float, p_kw: float, pf: float, hz: float, unbalance: tuple[float, float, float]) -> dict[str, float]:
    """A three-phase meter's readings for a load of ``p_kw`` at ``pf`` on a line-to-neutral voltage ``v_ln``.

    ``unbalance`` are small per-phase factors (around 0) applied to voltages and currents.
    """
    s_kva = p_kw / pf if pf > 0.0 else 0.0
    q_kvar = math.sqrt(max(s_kva * s_kva - p_kw * p_kw, 0.0))
    out: dict[str, float] = {}
    i_avg = s_kva * 1000.0 / (3.0 * v_ln)
    for ph, u in zip(("l1", "l2", "l3"), unbalance, strict=True):
        out[f"voltage_{ph}_v"] = v_ln * (1.0 + 0.004 * u)
        out[f"current_{ph}_a"] = i_avg * (1.0 + 0.02 * u)
    out["voltage_v"] = sum(out[f"voltage_{ph}_v"] for ph in ("l1", "l2", "l3")) / 3.0
    out["current_a"] = sum(out[f"current_{ph}_a"] for ph in ("l1", "l2", "l3")) / 3.0
    out["active_power_kw"] = p_kw
    out["reactive_power_kvar"] = q_kvar
    out["apparent_power_kva"] = s_kva
    out["power_factor"] = pf
    out["frequency_hz"] = hz
    return out


class PlantProcess:
    """Instantaneous values of every device at model time ``t`` (UNIX s). Pure: no state changes after __init__."""

    def __init__(self, seed: int, start: float) -> None:
        self.seed = seed
        self.start = start
        self._waves: dict[str, Wave] = {}
        rng = random.Random(f"plant:{seed}:stops")
        stops: list[tuple[float, float]] = []
        t = start + 30 * 3600.0
        for _ in range(64):  # covers > 140 days
            length = rng.uniform(2.0, 5.0) * 3600.0
            stops.append((t, t + length))
            t += length + rng.uniform(50.0, 90.0) * 3600.0
        self.kiln_stops: tuple[tuple[float, float], ...] = tuple(stops)
        self._h_steam = H_STEAM
        self._h_fw = H_FEEDWATER

    def _w(self, name: str, tau: float, periods_s: tuple[float, ...] = (420.0, 1900.0, 7300.0)) -> float:
        wave = self._waves.get(name)
        if wave is None:
            wave = self._waves[name] = Wave(random.Random(f"plant:{self.seed}:{name}"), periods_s)
        return wave(tau)

    def kiln_availability(self, t: float) -> float:
        """1 in normal operation, 0 during a stop, ramping 20 min down before and 60 min up after."""
        a = 1.0
        for begin, end in self.kiln_stops:
            if t < begin - 1200.0:
                break
            if t <= end + 3600.0:
                a = min(a, smoothstep((begin - t) / 1200.0) + smoothstep((t - end) / 3600.0))
        return a

    def sample(self, t: float) -> dict[str, dict[str, float]]:
        """Every device's instantaneous values (rates, states, temperatures; not counters)."""
        tau = t - self.start
        hour = local_hour(t)
        out: dict[str, dict[str, float]] = {}
        self._kiln_line(t, tau, hour, out)
        self._raw_mill(t, tau, hour, out)
        self._transformer(t, tau, hour, out)
        self._compressor(t, tau, hour, out)
        self._pump(t, tau, hour, out)
        self._main_meter(t, tau, hour, out)
        self._pv(t, tau, hour, out)
        self._boiler(t, tau, hour, out)
        self._dispatch_and_water(t, tau, hour, out)
        return out

    def _kiln_line(self, t: float, tau: float, hour: float, out: dict[str, dict[str, float]]) -> None:
        """The clinker kiln and its section meter."""
        w = self._w
        avail = self.kiln_availability(t)
        clinker = avail * (210.0 + 8.0 * w("kiln.rate", tau, (900.0, 5400.0, 21600.0)))
        load = clinker / 210.0
        coal = avail * 28.6 * load * (1.0 + 0.015 * w("kiln.coal", tau, (300.0, 1300.0)))  # 3,000 kJ/kg at 22 GJ/t
        drive = 80.0 * avail + 520.0 * load * (1.0 + 0.03 * w("kiln.drive", tau))
        inlet = 600.0 + 450.0 * avail + 15.0 * w("kiln.inlet", tau)
        out["kiln1"] = {
            "production_rate_tph": clinker,
            "coal_feed_tph": coal,
            "temperature_c": inlet,
            "active_power_kw": drive,
            "running": 1.0 if avail > 0.5 else 0.0,
        }
        kiln_kw = 900.0 + 6100.0 * load * (1.0 + 0.02 * w("kiln1-meter.p", tau))
        out["kiln1-meter"] = meter(6062.0, kiln_kw, 0.93 + 0.01 * w("kiln1-meter.pf", tau), 50.0, self._ub("k", tau))

    def _raw_mill(self, t: float, tau: float, hour: float, out: dict[str, dict[str, float]]) -> None:
        """The raw mill on its VFD: off in the evening peak-tariff hours."""
        w = self._w
        run = 1.0 - window(hour, 18.0, 21.0, 5.0 / 60.0)
        mill_load = run * (0.92 + 0.06 * w("mill.load", tau, (600.0, 2400.0)))
        mill_kw = 3600.0 * mill_load
        motor_eff = 0.955 - 0.06 * (1.0 - mill_load) ** 2 if run > 0.0 else 0.0
        speed = run * 990.0 * (0.85 + 0.15 * mill_load)
        mill = meter(6062.0, mill_kw, 0.95, speed / 990.0 * 50.0, self._ub("m", tau))
        mill |= {
            "speed_rpm": speed,
            "shaft_power_kw": mill_kw * motor_eff,
            "motor_efficiency": motor_eff,
            "running": 1.0 if run > 0.5 else 0.0,
        }
        out["raw-mill-vfd"] = mill

    def _transformer(self, t: float, tau: float, hour: float, out: dict[str, dict[str, float]]) -> None:
        """The cement grinding and packing transformer."""
        w = self._w
        night = window(hour, 22.0, 30.0, 1.0) + window(hour, -2.0, 6.0, 1.0)
        tr_kw = 2800.0 + 800.0 * night + 150.0 * w("tr.p", tau)
        tr = meter(6062.0, tr_kw, 0.91 + 0.015 * w("tr.pf", tau), 50.0, self._ub("t", tau))
        tr["temperature_c"] = 55.0 + 10.0 * (tr_kw / 3600.0) + 2.0 * w("tr.oil", tau, (3600.0, 14400.0))
        tr["load_factor"] = tr["apparent_power_kva"] / 5000.0
        tr["oil_temperature_alarm"] = 1.0 if tr["temperature_c"] > 85.0 else 0.0
        out["transformer1"] = tr

    def _compressor(self, t: float, tau: float, hour: float, out: dict[str, dict[str, float]]) -> None:
        """Compressed air: a variable-speed screw compressor."""
        w = self._w
        fad = 32.5 + 7.5 * w("comp.fad", tau, (240.0, 1100.0, 5000.0))
        comp_kw = 28.0 + 5.55 * fad
        comp = meter(230.0, comp_kw, 0.9, 50.0, self._ub("c", tau))
        comp |= {
            "air_flow_m3min": fad,
            "discharge_pressure_mpa": 0.75 + 0.01 * w("comp.p", tau),
            "specific_power": comp_kw / fad,
            "discharge_temperature_c": 82.0 + 4.0 * w("comp.t", tau),
            "running": 1.0,
        }
        out["compressor1"] = comp

    def _pump(self, t: float, tau: float, hour: float, out: dict[str, dict[str, float]]) -> None:
        """The cooling water pump on its curve."""
        w = self._w
        q = 400.0 + 40.0 * w("pump.q", tau, (600.0, 3000.0))
        head = 55.0 - 6.25e-5 * q * q
        eff = 0.78 - 0.5 * ((q - 420.0) / 420.0) ** 2
        pump_kw = 1000.0 * 9.80665 * (q / 3600.0) * head / eff / 1000.0
        pump = meter(230.0, pump_kw, 0.86, 50.0, self._ub("p", tau))
        pump |= {"flow_m3h": q, "head_m": head, "efficiency": eff}
        out["pump1"] = pump

    def _main_meter(self, t: float, tau: float, hour: float, out: dict[str, dict[str, float]]) -> None:
        """Whole-plant import: the sub-meters plus the unmetered loss (needs them sampled first)."""
        w = self._w
        loss = 0.03 + 0.01 * w("main.loss", tau, (3600.0, 20000.0))
        p_main = sum(out[d]["active_power_kw"] for d in SUB_METERS) * (1.0 + loss)
        q_main = sum(out[d]["reactive_power_kvar"] for d in SUB_METERS) * (1.0 + loss)
        pf_main = p_main / math.hypot(p_main, q_main)
        main = meter(63_509.0, p_main, pf_main, 50.0 + 0.02 * w("grid.hz", tau, (60.0, 300.0)), self._ub("g", tau))
        main["unmetered_loss"] = loss
        out["main-meter"] = main

    def _pv(self, t: float, tau: float, hour: float, out: dict[str, dict[str, float]]) -> None:
        """PV: a daylight curve with passing clouds."""
        w = self._w
        sun = math.sin(math.pi * (hour - 6.0) / 12.0) if 6.0 < hour < 18.0 else 0.0
        cloud = 0.85 + 0.15 * w("pv.cloud", tau, (120.0, 600.0, 2400.0))
        pv_kw = 2000.0 * sun * sun * cloud if sun > 0.0 else 0.0
        out["pv-meter"] = meter(230.0, pv_kw, 0.99 if pv_kw > 0.0 else 1.0, 50.0, self._ub("v", tau))

    def _boiler(self, t: float, tau: float, hour: float, out: dict[str, dict[str, float]]) -> None:
        """The gas-fired steam boiler."""
        w = self._w
        steam = 18.0 + 3.0 * w("boiler.steam", tau, (1200.0, 5400.0))
        (p0, ts0), tfw0 = STEAM_NOMINAL, FEEDWATER_NOMINAL[1]
        p = p0 + 0.02 * w("boiler.p", tau)
        ts = ts0 + 2.0 * w("boiler.ts", tau)
        tfw = tfw0 + 1.0 * w("boiler.tfw", tau)
        h0, dhdp, dhdt = self._h_steam
        hs = h0 + dhdp * (p - p0) + dhdt * (ts - ts0)
        hw = self._h_fw[0] + self._h_fw[2] * (tfw - tfw0)
        heat_gjh = steam * (hs - hw) / 1000.0
        b_eff = 0.915 + 0.01 * w("boiler.eff", tau, (3600.0, 14400.0))
        out["boiler1"] = {
            "steam_flow_tph": steam,
            "steam_pressure_mpa": p,
            "steam_temperature_c": ts,
            "feedwater_temperature_c": tfw,
            "gas_flow_m3h": heat_gjh / b_eff / GAS_LHV_GJ_M3,
            "heat_rate_gjh": heat_gjh,
            "efficiency": b_eff,
            "steam_enthalpy_kjkg": hs,
            "feedwater_enthalpy_kjkg": hw,
            "burner_on": 1.0,
        }

    def _dispatch_and_water(self, t: float, tau: float, hour: float, out: dict[str, dict[str, float]]) -> None:
        """Cement dispatch and make-up water."""
        w = self._w
        day = window(hour, 8.0, 20.0, 0.5)
        out["cement-counter"] = {"production_rate_tph": 30.0 + 120.0 * day + 10.0 * w("cement.rate", tau)}
        out["water-meter"] = {"water_flow_m3h": 60.0 + 8.0 * w("water.q", tau), "temperature_c": 18.0}

    def _ub(self, key: str, tau: float) -> tuple[float, float, float]:
        return (self._w(key + "1", tau), self._w(key + "2", tau), self._w(key + "3", tau))
