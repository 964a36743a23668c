"""KPI section of the site file (``kpi:``). Owned by the KPI engine work (issue 4).

Example::

    kpi:
      windows: [15m, 1h, shift, day]
      shifts: ["00:00", "08:00", "16:00"]
      coverage_min: 0.9
      factors: {grid_year: 2023, grid_scope: inner_mongolia}
      lines:
        - name: kiln1
          indicator: cement_clinker
          production: [{device: kiln1, role: production_t}]
          electricity: [{device: kiln1-meter, role: energy_import_kwh}]
          fuels: [{device: kiln1, role: coal_t, carrier: raw_coal, lhv_gj_per_unit: 22.5}]
          corrections: {altitude_m: 1650}            # inputs of the level row's corrections
        - name: bof1
          indicator: converter
          production: [{device: bof1, role: production_t}]
          electricity: [{device: bof1-meter, role: energy_import_kwh}]
          credits:                                   # recovered / exported energy, subtracted
            - {device: bof1, role: gas_m3, carrier: converter_gas, co2: none}
            - {device: trt, role: energy_export_kwh, carrier: electricity, co2: grid}
      equipment:
        - {kind: boiler, name: b1, device: boiler1, steam_state: saturated, steam_dryness: 0.98,
           fuel: {device: boiler1, role: gas_m3, carrier: natural_gas}}
      demand: [{name: site, meters: [{device: main-meter, role: energy_import_kwh}], contracted_kw: 8000}]
      park: {name: park}                             # totals over the lines for dual control

One module per part of the section: ``refs`` (point references, fuels, credits, production), ``lines``,
``baselines``, ``levels``, ``equipment``, ``demand`` (and power factor), ``park`` (renewable share, balances, park
totals), ``custom`` and its ``formula`` syntax, ``windows`` (window and shift names), ``section`` (the section
itself) and ``names`` (the KPI names each declaration produces). Config knows nothing of the engine: the checks of
references against devices, profiles and the level and factor tables are ``agent.kpi.check``, run by the compile
step (agent.runtime.compile).
"""

from __future__ import annotations

from agent.config.kpi.baselines import (
    BaselineConfig as BaselineConfig,
)
from agent.config.kpi.baselines import (
    BaselineVariableConfig as BaselineVariableConfig,
)
from agent.config.kpi.custom import (
    CustomKpiConfig as CustomKpiConfig,
)
from agent.config.kpi.demand import (
    DemandConfig as DemandConfig,
)
from agent.config.kpi.demand import (
    PowerFactorConfig as PowerFactorConfig,
)
from agent.config.kpi.equipment import (
    BoilerConfig as BoilerConfig,
)
from agent.config.kpi.equipment import (
    CompressorConfig as CompressorConfig,
)
from agent.config.kpi.equipment import (
    EquipmentConfig as EquipmentConfig,
)
from agent.config.kpi.equipment import (
    KilnConfig as KilnConfig,
)
from agent.config.kpi.equipment import (
    MotorConfig as MotorConfig,
)
from agent.config.kpi.equipment import (
    PumpConfig as PumpConfig,
)
from agent.config.kpi.equipment import (
    TransformerConfig as TransformerConfig,
)
from agent.config.kpi.levels import (
    LevelOverrideConfig as LevelOverrideConfig,
)
from agent.config.kpi.lines import (
    LineConfig as LineConfig,
)
from agent.config.kpi.lines import (
    ProcessCo2Config as ProcessCo2Config,
)
from agent.config.kpi.names import (
    EQUIPMENT_KPIS as EQUIPMENT_KPIS,
)
from agent.config.kpi.names import (
    LINE_KPIS as LINE_KPIS,
)
from agent.config.kpi.names import (
    PARK_KPIS as PARK_KPIS,
)
from agent.config.kpi.names import (
    RENAMED_KPIS as RENAMED_KPIS,
)
from agent.config.kpi.names import (
    declared_kpis as declared_kpis,
)
from agent.config.kpi.park import (
    BalanceConfig as BalanceConfig,
)
from agent.config.kpi.park import (
    ParkConfig as ParkConfig,
)
from agent.config.kpi.park import (
    RenewableConfig as RenewableConfig,
)
from agent.config.kpi.refs import (
    NAME as NAME,
)
from agent.config.kpi.refs import (
    RATE_ROLES as RATE_ROLES,
)
from agent.config.kpi.refs import (
    CreditConfig as CreditConfig,
)
from agent.config.kpi.refs import (
    FuelConfig as FuelConfig,
)
from agent.config.kpi.refs import (
    Issue as Issue,
)
from agent.config.kpi.refs import (
    OwnCoverageMin as OwnCoverageMin,
)
from agent.config.kpi.refs import (
    OwnWindows as OwnWindows,
)
from agent.config.kpi.refs import (
    Path as Path,
)
from agent.config.kpi.refs import (
    PointRefConfig as PointRefConfig,
)
from agent.config.kpi.refs import (
    ProductionRefConfig as ProductionRefConfig,
)
from agent.config.kpi.section import (
    FactorsConfig as FactorsConfig,
)
from agent.config.kpi.section import (
    KpiSectionConfig as KpiSectionConfig,
)
