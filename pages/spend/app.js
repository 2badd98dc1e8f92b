// The spend page: reads the plugin's JSON through the dashboard's bridge and draws it.
// No libraries: the chart is an SVG built here.
const bridge = window.AstrBotPluginPage;
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

const STATES = {
  ok: ["正常", "state-ok"],
  untested: ["正常（尚未使用）", "state-ok"],
  "cooling down": ["限流冷却中", "state-warn"],
  "out of credits": ["额度用尽", "state-bad"],
  invalid: ["无效（401）", "state-bad"],
};

function usd(amount) {
  if (amount === null || amount === undefined) return "未知";
  if (amount >= 100) return "$" + amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  if (amount >= 1 || amount === 0) return "$" + amount.toFixed(2);
  const digits = amount.toFixed(4).replace(/0+$/, "");
  return "$" + (digits.split(".")[1].length >= 2 ? digits : amount.toFixed(2));
}

// A total's spend: unknown when no generation reported a cost, flagged when some did not.
function spend(t) {
  if (t.generations && t.unknown === t.generations) return "未知";
  return usd(t.cost) + (t.unknown ? `（${t.unknown} 次未知）` : "");
}

function clock(epoch, withDate) {
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withDate ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}` : time;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fillTable(id, rows, columns, emptyText) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell(tr, emptyText, "empty");
    td.colSpan = columns;
    body.appendChild(tr);
    return body;
  }
  return body;
}

function svg(name, attrs, parent) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const step = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

// Pictures are whole: an axis top that is a multiple of 4 gives whole ticks.
function niceCount(value) {
  return Math.max(4, Math.ceil(niceMax(value) / 4) * 4);
}

function drawChart(days) {
  const W = 900, H = 260, L = 44, R = 56, T = 14, B = 34;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "每天的图片与花费" });
  const plotW = W - L - R, plotH = H - T - B;
  const maxPictures = niceCount(Math.max(...days.map((d) => d.pictures)));
  const maxCost = niceMax(Math.max(...days.map((d) => d.cost)));
  const slot = plotW / days.length;
  for (let i = 0; i <= 4; i++) {
    const y = T + plotH - (plotH * i) / 4;
    svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "axis" }, root);
    svg("text", { x: L - 6, y: y + 4, "text-anchor": "end" }, root).textContent =
      String((maxPictures * i) / 4);
    svg("text", { x: W - R + 6, y: y + 4 }, root).textContent = usd((maxCost * i) / 4);
  }
  const points = [];
  days.forEach((d, i) => {
    const x = L + slot * i;
    const h = (plotH * d.pictures) / maxPictures;
    const bar = svg("rect", {
      x: x + slot * 0.18, y: T + plotH - h, width: slot * 0.64, height: Math.max(h, 0),
      class: "bar", "data-day": d.day, "data-pictures": d.pictures, rx: 2,
    }, root);
    svg("title", {}, bar).textContent = `${d.day}：${d.pictures} 张，${spend(d)}`;
    if (days.length <= 16 || i % 2 === days.length % 2) {
      svg("text", { x: x + slot / 2, y: H - B + 16, "text-anchor": "middle" }, root).textContent = d.day.slice(5);
    }
    if (!(d.generations && d.unknown === d.generations)) {
      points.push([x + slot / 2, T + plotH - (plotH * d.cost) / maxCost, d]);
    }
  });
  if (points.length) {
    svg("polyline", { points: points.map((p) => `${p[0]},${p[1]}`).join(" "), class: "spend-line" }, root);
    for (const [x, y, d] of points) {
      const dot = svg("circle", { cx: x, cy: y, r: 3.5, class: "spend-dot", "data-day": d.day, "data-cost": d.cost }, root);
      svg("title", {}, dot).textContent = `${d.day}：${spend(d)}`;
    }
  }
  $("chart").replaceChildren(root);
}

// A tile shows the known sum big, and how many generations it misses below.
function spendTile(id, t) {
  const allUnknown = t.generations && t.unknown === t.generations;
  $(id).textContent = allUnknown ? "未知" : usd(t.cost);
  $(id + "-note").textContent = t.unknown && !allUnknown ? `另有 ${t.unknown} 次未报告花费` : "";
}

function capsText(caps) {
  const parts = [];
  if (caps.user_daily_limit) parts.push(`每人 ${caps.user_daily_limit} 张`);
  if (caps.group_daily_limit) parts.push(`每群 ${caps.group_daily_limit} 张`);
  if (caps.user_daily_budget_usd) parts.push(`每人 ${usd(caps.user_daily_budget_usd)}`);
  if (caps.group_daily_budget_usd) parts.push(`每群 ${usd(caps.group_daily_budget_usd)}`);
  if (caps.daily_budget_usd) parts.push(`全部 ${usd(caps.daily_budget_usd)}`);
  return parts.length ? parts.join("，") : "未设置";
}

function showOverview(data) {
  $("today-pictures").textContent = `${data.today_totals.pictures} 张`;
  spendTile("today-cost", data.today_totals);
  $("week-pictures").textContent = `${data.week_totals.pictures} 张`;
  spendTile("week-cost", data.week_totals);
  $("caps").textContent = capsText(data.caps);
  $("chart-title").textContent = `近 ${data.days.length} 天每天的图片与花费`;
  drawChart(data.days);
  const rank = (id, rows, name) => {
    const body = fillTable(id, rows, 5, "今天还没有生成图片");
    rows.forEach((r, i) => {
      const tr = document.createElement("tr");
      cell(tr, String(i + 1));
      cell(tr, name(r));
      cell(tr, r.platform);
      cell(tr, `${r.pictures} 张`, "num");
      cell(tr, spend(r), "num");
      body.appendChild(tr);
    });
  };
  rank("top-users", data.top_users, (r) => r.user_id);
  rank("top-groups", data.top_groups, (r) => (r.group_id ? r.group_id : "私聊"));
  $("updated").textContent = `统计日 ${data.today}，更新于 ${clock(data.at, true)}（本机时间，零点重置）`;
}

function showKeys(data) {
  const body = fillTable("keys", data.keys, 7, "插件配置中还没有可用的 API 密钥");
  for (const k of data.keys) {
    const tr = document.createElement("tr");
    cell(tr, k.masked + (k.label ? `（${k.label}）` : ""));
    const [text, cls] = STATES[k.state] || [k.state, ""];
    cell(tr, text + (k.until ? `，${clock(k.until)} 恢复` : ""), cls);
    cell(tr, String(k.successes), "num");
    cell(tr, String(k.failures), "num");
    cell(tr, String(k.in_flight), "num");
    let remaining = "未知";
    if (k.known) remaining = k.limit === null ? "不限额" : `${usd(k.limit_remaining)} / ${usd(k.limit)}`;
    cell(tr, remaining, "num");
    cell(tr, k.known ? usd(k.usage_daily) : "未知", "num");
    body.appendChild(tr);
  }
}

function showLatest(data) {
  const box = $("latest");
  box.replaceChildren();
  if (!data.pictures.length) {
    const p = document.createElement("div");
    p.className = "empty";
    p.textContent = "没有仍在保留期内的图片";
    box.appendChild(p);
    return;
  }
  for (const pic of data.pictures) {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = pic.thumb;
    img.alt = `${pic.user_id} 的图片`;
    fig.appendChild(img);
    const cap = document.createElement("figcaption");
    const where = pic.group_id ? `群 ${pic.group_id}` : "私聊";
    cap.textContent = `${clock(pic.at, true)} · ${pic.user_id} · ${where} · ${usd(pic.cost)}`;
    fig.appendChild(cap);
    box.appendChild(fig);
  }
}

// What the plugin answers when an endpoint fails: an error code (utils/spend/dashboard.py).
const ERRORS = {
  ledger_unavailable: "花费记录暂时无法读取（插件可能正在重载），请稍后刷新。",
  internal_error: "读取统计时出错，请查看 AstrBot 日志。",
};

function showError(error) {
  const box = $("error");
  const message = error && error.message ? error.message : String(error);
  box.style.display = "block";
  box.textContent = `读取失败：${ERRORS[message] || message}`;
}

async function load() {
  $("error").style.display = "none";
  const jobs = [
    bridge.apiGet("spend/overview", { days: 14 }).then(showOverview),
    bridge.apiGet("spend/keys").then(showKeys),
    bridge.apiGet("spend/latest", { limit: 12 }).then(showLatest),
  ];
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) showError(failed.reason);
  document.body.dataset.loaded = "true";
}

$("refresh").addEventListener("click", load);
await bridge.ready();
await load();
