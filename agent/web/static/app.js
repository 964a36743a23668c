// The gateway's read-only page: renders the frames the agent pushes over /ws (no build step, no libraries).
"use strict";

const T = {
  en: {
    title: "Energy agent", connecting: "connecting", live: "live", offline: "offline, reconnecting", logout: "log out",
    mqtt: "MQTT", spool: "Spool", agent: "Agent", site_file: "Site file", devices: "Devices", kpis: "KPIs",
    scope: "Scope", kpi: "KPI", window: "Window", value: "Value", unit: "Unit", coverage: "Coverage", final: "Final",
    grade: "Grade", distance: "Distance", trend: "Last hour", commissioning: "Commissioning (read only)",
    validate: "Validate site file", show_site: "Show site file", log: "Warnings and errors",
    ok: "ok", failing: "failing", backing_off: "backing off", waiting: "waiting for first poll", disabled: "disabled",
    last_poll: "last poll", ago: "ago", never: "never", polls: "polls", good: "good", bad: "bad", retries: "retries",
    drops: "drops", requests: "requests", hint: "hint", points: "points", point: "Point", quality: "Quality",
    reason: "Reason", raw: "Raw registers", show_raw: "raw registers", probe: "probe (--orders)", plan: "read plan",
    connected: "connected", down: "down", none: "not configured", inflight: "in flight", waiting_msgs: "waiting",
    published: "published", depth: "messages", version: "version", started: "started", reloaded: "reloaded",
    not_reloaded: "not reloaded", loop_lag: "loop lag p99", yes: "yes", no: "running", running: "running…",
    benchmark: "benchmark 标杆", between: "between", below_baseline: "below baseline 基准", indicative: "indicative",
    no_kpis: "No KPI values yet (KPIs are evaluated every publish interval).", no_log: "No warnings or errors.",
    exit: "exit status", s: "s", uncertain: "uncertain", stale: "stale", all_scopes: "all",
  },
  zh: {
    title: "能源采集网关", connecting: "连接中", live: "实时", offline: "已断开，正在重连", logout: "退出登录",
    mqtt: "MQTT", spool: "本地缓存", agent: "采集程序", site_file: "站点配置文件", devices: "设备", kpis: "能效指标",
    scope: "范围", kpi: "指标", window: "窗口", value: "数值", unit: "单位", coverage: "覆盖率", final: "终值",
    grade: "等级", distance: "差距", trend: "近一小时", commissioning: "调试（只读）",
    validate: "校验配置文件", show_site: "查看配置文件", log: "警告与错误",
    ok: "正常", failing: "故障", backing_off: "退避中", waiting: "等待首次采集", disabled: "已停用",
    last_poll: "最近采集", ago: "前", never: "从未", polls: "采集次数", good: "正常", bad: "异常", retries: "重试",
    drops: "断线", requests: "请求", hint: "提示", points: "测点", point: "测点", quality: "质量",
    reason: "原因", raw: "原始寄存器", show_raw: "原始寄存器", probe: "探测 (--orders)", plan: "读取计划",
    connected: "已连接", down: "未连接", none: "未配置", inflight: "发送中", waiting_msgs: "待发送",
    published: "已发布", depth: "条消息", version: "版本", started: "启动于", reloaded: "重新加载于",
    not_reloaded: "未重新加载", loop_lag: "事件循环延迟 p99", yes: "是", no: "进行中", running: "运行中…",
    benchmark: "标杆 benchmark", between: "标杆与基准之间", below_baseline: "低于基准 below baseline", indicative: "参考",
    no_kpis: "暂无指标（每个发布周期计算一次）。", no_log: "没有警告或错误。",
    exit: "退出码", s: "秒", uncertain: "存疑", stale: "过期", all_scopes: "全部",
  },
};
let lang = localStorage.getItem("lang") || ((navigator.language || "").startsWith("zh") ? "zh" : "en");
const t = (k) => (T[lang] && T[lang][k]) || T.en[k] || k;

const state = { live: null, kpi: null, open: new Set(), raw: {}, lastMessage: 0 };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function fmt(v, digits) {
  if (v === null || v === undefined) return "-";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return "-";
    if (Number.isInteger(v) && digits === undefined) return v.toLocaleString("en-US");
    const d = digits !== undefined ? digits : Math.abs(v) >= 1000 ? 0 : Math.abs(v) >= 100 ? 1 : Math.abs(v) >= 1 ? 2 : 3;
    return v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  }
  return String(v);
}

function age(ts, now) {
  if (!ts) return t("never");
  const s = Math.max(0, now - ts);
  const text = s < 90 ? `${s.toFixed(s < 10 ? 1 : 0)} ${t("s")}` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
  return lang === "zh" ? `${text}${t("ago")}` : `${text} ${t("ago")}`;
}

function clock(ts) { return ts ? new Date(ts * 1000).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB") : "-"; }

function applyLabels() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.getElementById("lang").textContent = lang === "zh" ? "English" : "中文";
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  document.title = t("title");
}

function renderOverview(f) {
  const m = f.meta;
  document.getElementById("site").textContent = `${m.site} / ${m.gateway}`;
  const q = f.mqtt;
  const mq = document.getElementById("mqtt");
  mq.replaceChildren(...[
    el("span", { class: `badge ${q.configured ? (q.connected ? "connected" : "down") : ""}`, id: "mqtt-state",
      "data-state": q.configured ? (q.connected ? "connected" : "down") : "none",
      text: q.configured ? (q.connected ? t("connected") : t("down")) : t("none") }),
    q.configured ? ` ${t("inflight")} ${fmt(q.inflight)} · ${t("published")} ${fmt(q.published)}` : null,
    q.last_error ? el("div", { class: "muted", text: q.last_error }) : null,
  ].filter((c) => c !== null));
  const sp = f.spool;
  const kinds = Object.entries(sp.depth_by_kind || {}).map(([k, n]) => `${k} ${n}`).join(", ");
  document.getElementById("spool").replaceChildren(...[
    el("strong", { id: "spool-depth", text: fmt(sp.depth) }), ` ${t("depth")} ${t("waiting_msgs")}`,
    el("div", { class: "muted", text: `${kinds || "-"} · ${fmt(sp.bytes / 1048576, 1)} / ${fmt(sp.max_bytes / 1048576, 0)} MiB` }),
    sp.disk_fault ? el("div", { class: "reason", text: sp.disk_fault }) : null,
  ].filter((c) => c !== null));
  const lag = f.loop_lag_ms || {};
  document.getElementById("agent").replaceChildren(
    `${t("version")} ${m.version} · ${t("started")} ${clock(m.started_ts)}`,
    el("div", { class: "muted", text: `${m.reloaded_ts ? `${t("reloaded")} ${clock(m.reloaded_ts)}` : t("not_reloaded")} · ${t("loop_lag")} ${fmt(lag.p99, 1)} ms` }),
  );
  document.getElementById("agent").dataset.reloaded = m.reloaded_ts ? String(m.reloaded_ts) : "";
  document.getElementById("sitefile").textContent = m.site_file;
  document.getElementById("logout").hidden = !m.login;
}

function pointsTable(d) {
  const raw = state.raw[d.name];
  const head = el("tr", {}, el("th", { text: t("point") }), el("th", { class: "num", text: t("value") }),
    el("th", { text: t("unit") }), el("th", { text: t("quality") }), el("th", { text: t("reason") }),
    raw ? el("th", { text: t("raw") }) : null);
  const rows = d.points.map((p) => el("tr", { "data-point": p.point },
    el("td", { text: p.point }), el("td", { class: "num", text: fmt(p.value) }), el("td", { text: p.unit }),
    el("td", {}, el("span", { class: `badge ${p.quality}`, text: t(p.quality) })), el("td", { text: p.reason }),
    raw ? el("td", { class: "raw", text: raw[p.point] || "" }) : null));
  return el("div", { class: "scroll" }, el("table", { class: "points" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function renderDevices(f) {
  const box = document.getElementById("devices");
  const cards = f.devices.map((d) => {
    const details = el("details", { "data-open": d.name }, el("summary", { text: `${t("points")} (${d.points.length})` }));
    if (state.open.has(d.name)) details.open = true;
    details.addEventListener("toggle", () => { if (details.open) state.open.add(d.name); else state.open.delete(d.name); });
    details.append(pointsTable(d), d.probe_note ? el("p", { class: "muted", text: d.probe_note }) : "", el("div", { class: "row-actions" },
      d.protocol === "modbus" ? button(t("show_raw"), () => loadRaw(d.name)) : null,
      d.probe_note ? null : button(t("probe"), () => runAction("probe", d.name)),
      d.protocol === "modbus" ? button(t("plan"), () => runAction("plan", d.name)) : null));
    return el("article", { class: `device ${d.state}`, "data-device": d.name, "data-state": d.state,
      "data-last-poll": d.last_poll_ts === null ? "" : String(d.last_poll_ts) },
      el("div", { class: "head" }, el("span", { class: "name", text: d.name }),
        el("span", { class: `badge ${d.state}`, text: t(d.state) })),
      el("div", { class: "muted", text: `${d.protocol} ${d.endpoint} · ${d.interval_s} ${t("s")}` }),
      d.reason ? el("p", { class: "reason", text: d.reason }) : null,
      d.hint ? el("p", { class: "hint", text: `${t("hint")}: ${d.hint}` }) : null,
      el("div", { class: "counts" },
        el("span", { text: `${t("last_poll")} ${age(d.last_poll_ts, f.now)}` }),
        el("span", { text: `${t("polls")} ${fmt(d.polls)}` }),
        el("span", { text: `${t("good")} ${fmt(d.good)} / ${t("bad")} ${fmt(d.bad)}` }),
        el("span", { text: `${t("retries")} ${fmt(d.retries)}` }),
        el("span", { text: `${t("drops")} ${fmt(d.drops)}` }),
        el("span", { text: `${t("requests")} ${fmt(d.requests)}` })),
      details);
  });
  box.replaceChildren(...cards);
}

function trendSvg(points) {
  const W = 120, H = 28, ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "trend"); svg.setAttribute("width", W); svg.setAttribute("height", H);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pts = points.filter((p) => p[1] !== null);
  if (pts.length > 1) {
    const t0 = pts[0][0], t1 = pts[pts.length - 1][0];
    let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
    if (hi === lo) { hi += 1; lo -= 1; }
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.map((p) => `${((p[0] - t0) / (t1 - t0 || 1) * (W - 2) + 1).toFixed(1)},${(H - 2 - (p[1] - lo) / (hi - lo) * (H - 4)).toFixed(1)}`).join(" "));
    svg.append(line);
  }
  return svg;
}

function renderKpis(k) {
  const pick = document.getElementById("kpiscope");
  const scopes = [...new Set(k.kpis.map((r) => r.scope))];
  if ([...pick.options].slice(1).map((o) => o.value).join() !== scopes.join()) {
    const chosen = pick.value;
    pick.replaceChildren(pick.options[0], ...scopes.map((s) => el("option", { value: s, text: s })));
    pick.value = scopes.includes(chosen) ? chosen : "";
  }
  const body = document.querySelector("#kpis tbody");
  body.replaceChildren(...k.kpis.filter((r) => !pick.value || r.scope === pick.value).map((r) => el("tr", { "data-kpi": `${r.scope}/${r.name}/${r.window}`, class: `q-${r.quality}`, title: r.reason || null },
    el("td", { text: r.scope }), el("td", { text: r.name }), el("td", { text: r.window }),
    el("td", { class: "num", text: fmt(r.value) }), el("td", { text: r.unit }),
    el("td", { class: "num", text: `${fmt(r.coverage * 100, 0)} %` }),
    el("td", { text: r.final ? "✓" : t("no") }),
    el("td", {}, r.grade ? el("span", { class: `badge ${r.grade}`, title: r.reference, text: t(r.grade) + (r.grade_indicative ? ` (${t("indicative")})` : "") }) : null),
    el("td", { class: "num", text: r.distance === null ? "" : fmt(r.distance) }),
    el("td", {}, trendSvg(r.trend)))));
  document.getElementById("kpinote").textContent = k.kpis.length ? "" : t("no_kpis");
}

function renderLog(f) {
  const items = f.log.slice().reverse().map((l) => el("li", { class: l.level },
    `${clock(l.ts)} ${l.level} ${l.logger}: ${l.message}`));
  document.getElementById("log").replaceChildren(...(items.length ? items : [el("li", { class: "muted", text: t("no_log") })]));
}

function button(label, onClick) {
  const b = el("button", { type: "button", text: label });
  b.addEventListener("click", onClick);
  return b;
}

async function loadRaw(device, tries = 0) {
  const r = await fetch(`/api/raw/${encodeURIComponent(device)}`, { credentials: "same-origin" });
  if (r.status === 202 && tries < 10) { setTimeout(() => loadRaw(device, tries + 1), 1000); return; }
  state.raw[device] = r.status === 200 ? await r.json() : {};
  state.open.add(device);
  if (state.live) renderDevices(state.live);
}

async function runAction(action, device) {
  const out = document.getElementById("output");
  out.hidden = false;
  out.textContent = t("running");
  out.scrollIntoView({ block: "nearest" });
  const q = device ? `?device=${encodeURIComponent(device)}` : "";
  const r = await fetch(`/api/action/${action}${q}`, { credentials: "same-origin" });
  if (!r.ok) { out.textContent = await r.text(); return; }
  const res = await r.json();
  out.textContent = `$ ${res.command}\n${res.output}\n(${t("exit")} ${res.exit_code})`;
}

async function showSite() {
  const out = document.getElementById("output");
  out.hidden = false;
  const r = await fetch("/api/site", { credentials: "same-origin" });
  out.textContent = await r.text();
}

function setConn(ok) {
  const c = document.getElementById("conn");
  c.className = `badge ${ok ? "connected" : "down"}`;
  c.dataset.i18n = ok ? "live" : "offline";
  c.textContent = t(c.dataset.i18n);
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  const decoder = new TextDecoder();
  ws.onopen = () => setConn(true);
  ws.onmessage = (ev) => {
    const f = JSON.parse(typeof ev.data === "string" ? ev.data : decoder.decode(ev.data));
    state.lastMessage = Date.now();
    if (f.type === "live") {
      state.live = f;
      renderOverview(f); renderDevices(f); renderLog(f);
    } else if (f.type === "kpi") {
      state.kpi = f; renderKpis(f);
    }
  };
  ws.onclose = () => { setConn(false); setTimeout(connect, 2000); };
}

document.addEventListener("DOMContentLoaded", () => {
  applyLabels();
  document.getElementById("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("lang", lang);
    applyLabels();
    if (state.live) { renderOverview(state.live); renderDevices(state.live); renderLog(state.live); }
    if (state.kpi) renderKpis(state.kpi);
  });
  document.getElementById("kpiscope").addEventListener("change", () => { if (state.kpi) renderKpis(state.kpi); });
  document.getElementById("validate").addEventListener("click", () => runAction("validate"));
  document.getElementById("showsite").addEventListener("click", showSite);
  connect();
});
