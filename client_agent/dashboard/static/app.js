// The COALESCE dashboard: plain JavaScript over the client's API; live over SSE. Nothing is fetched from elsewhere.
"use strict";
const Coalesce = (() => {
  const key = () => localStorage.getItem("coalesceApiKey");
  const headers = () => (key() ? { Authorization: `Bearer ${key()}` } : {});

  async function api(path) {
    const response = await fetch(path, { headers: headers() });
    if (response.status === 401) {
      const entered = prompt("This client needs an API key");
      if (entered) { localStorage.setItem("coalesceApiKey", entered); return api(path); }
    }
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  // Server-sent events over fetch, so that the API key can travel in a header (EventSource cannot send one).
  async function follow(path, onEvent, onState, keepGoing = () => true) {
    while (keepGoing()) {
      try {
        const response = await fetch(path, { headers: { ...headers(), Accept: "text/event-stream" } });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        onState(true);
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
            const frame = buffer.slice(0, cut);
            buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
            const data = frame.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
            if (data) onEvent(JSON.parse(data));
          }
        }
      } catch (error) {
        console.warn("event stream:", error);
      }
      onState(false);
      if (keepGoing()) await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  const $ = (id) => document.getElementById(id);
  const text = (value) => (value === null || value === undefined ? "-" : String(value));
  const money = (value) => (value === null || value === undefined ? "-" : `$${Number(value).toFixed(5)}`);
  const share = (value) => (value === null || value === undefined ? "-" : `${(100 * value).toFixed(1)}%`);
  function cell(row, value, className) {
    const td = row.insertCell();
    td.textContent = text(value);
    if (className) td.className = className;
    return td;
  }
  function link(row, href, label) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    row.insertCell().appendChild(a);
  }
  function liveBadge(on) {
    const badge = $("live");
    badge.textContent = on ? "live" : "reconnecting";
    badge.className = `badge ${on ? "live" : "offline"}`;
  }

  // ------------------------------------------------------------ the market page

  function chart(points) {
    const svg = $("chart");
    svg.replaceChildren();
    if (points.length < 1) return;
    const series = [{ spentUsd: 0, allLocalEstimateUsd: 0 }, ...points]; // both lines start at zero
    const top = Math.max(...series.map((p) => Math.max(p.spentUsd, p.allLocalEstimateUsd)), 1e-9);
    const x = (i) => (i / (series.length - 1)) * 790 + 5;
    const y = (v) => 195 - (v / top) * 185;
    for (const [field, color] of [["allLocalEstimateUsd", "#6b7482"], ["spentUsd", "#2563eb"]]) {
      const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      line.setAttribute("points", series.map((p, i) => `${x(i)},${y(p[field])}`).join(" "));
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", color);
      line.setAttribute("stroke-width", "2");
      line.dataset.series = field;
      svg.appendChild(line);
    }
  }

  async function refreshStats() {
    const stats = await api("/v1/stats");
    $("t-subtasks").textContent = stats.subtasks;
    $("t-spent").textContent = money(stats.spentUsd);
    $("t-probes").textContent = money(stats.probeUsd);
    $("t-lost").textContent = money(stats.valueLostUsd);
    const q = stats.quality || {};
    $("t-quality").textContent = `${share(q.estimated)}; ${q.graded === null ? "-" : share(q.graded)} (${q.gradedSubtasks ?? 0})`;
    $("t-per-correct").textContent = money(stats.costPerCorrectUsd);
    $("t-local").textContent = money(stats.allLocalEstimateUsd);
    $("t-outsourced").textContent = share(stats.outsourcingShare);
    $("t-exploration").textContent = share(stats.explorationShare);
    $("t-failures").textContent = stats.failures;
    $("t-refunds").textContent = `${stats.refunds} (${money(stats.refundedUsd)})`;
    chart(stats.series);
  }

  const names = new Map();
  async function refreshMarket() {
    const market = await api("/v1/market");
    for (const c of market.contractors) names.set(c.id, c.name);
    $("strategy").textContent = `strategy: ${market.strategy}`;
    const body = $("contractors").tBodies[0];
    body.replaceChildren();
    for (const c of market.contractors) {
      const row = body.insertRow();
      row.dataset.contractor = c.id;
      cell(row, c.name);
      cell(row, c.skills.join(", "));
      cell(row, c.quoteUsd === null ? null : Number(c.quoteUsd).toFixed(5), "num");
      const load = c.load || {};
      cell(row, `${load.running ?? 0}+${load.queued ?? 0}/${load.maxConcurrent ?? "?"}`, "num");
      cell(row, Number(c.reliability).toFixed(3), "num");
      cell(row, c.hires, "num");
      cell(row, c.signingKey ? "yes" : "no");
      cell(row, c.endToEnd ? "yes" : "no");
      cell(row, (c.provenSkills || []).join(", ") || "-");
    }
    competenceTable([market.local, ...market.contractors]);
  }

  function competenceTable(agents) {
    const body = $("competence").tBodies[0];
    body.replaceChildren();
    for (const agent of agents) {
      for (const skill of agent.competence || []) {
        const row = body.insertRow();
        row.dataset.agent = agent.id;
        row.dataset.skill = skill.skill;
        cell(row, agent.name);
        cell(row, skill.skill);
        cell(row, Number(skill.quality).toFixed(3), "num");
        const [low, high] = skill.interval;
        const bar = document.createElement("div");
        bar.className = "interval";
        const span = document.createElement("span");
        span.style.left = `${low * 100}%`;
        span.style.width = `${Math.max((high - low) * 100, 1)}%`;
        span.title = `${low.toFixed(3)} to ${high.toFixed(3)}`;
        bar.appendChild(span);
        row.insertCell().appendChild(bar);
        const evidence = Object.entries(skill.evidence || {}).map(([k, v]) => `${k} ${v}`).join(", ");
        cell(row, evidence || "none yet");
      }
    }
  }

  const taskRows = new Map();
  function taskRow(id) {
    if (!taskRows.has(id)) {
      const row = $("tasks").tBodies[0].insertRow(0);
      row.dataset.task = id;
      link(row, `/dashboard/tasks/${encodeURIComponent(id)}`, id.slice(0, 8));
      cell(row, "submitted").className = "status";
      cell(row, "-").className = "stage";
      cell(row, "").className = "description";
      taskRows.set(id, row);
      while ($("tasks").tBodies[0].rows.length > 50) {
        const last = $("tasks").tBodies[0].lastElementChild;
        taskRows.delete(last.dataset.task);
        last.remove();
      }
    }
    return taskRows.get(id);
  }
  function setStatus(row, status) {
    const td = row.querySelector(".status");
    td.textContent = status;
    td.className = `status status-${status}`;
  }

  async function loadTasks() {
    const listing = await api("/v1/tasks?limit=50");
    for (const t of listing.tasks.reverse()) {
      const row = taskRow(t.id);
      setStatus(row, t.status);
      row.querySelector(".description").textContent = t.description;
    }
  }

  function addDecision(taskId, d) {
    const body = $("decisions").tBodies[0];
    const row = body.insertRow(0);
    link(row, `/dashboard/tasks/${encodeURIComponent(taskId)}`, (d.subtask || "").slice(0, 8));
    cell(row, d.action + (d.exploration ? " (explore)" : ""));
    cell(row, d.contractor ? names.get(d.contractor) || d.contractor.slice(0, 8) : "local");
    cell(row, d.topsisScore === null || d.topsisScore === undefined ? null : Number(d.topsisScore).toFixed(3), "num");
    cell(row, d.reason);
    while (body.rows.length > 50) body.deleteRow(-1);
  }

  const STAGES = { decomposition: "decomposed", decision: "decided", dispatch: "dispatched", contractor: "at contractor",
    local: "running locally", verification: "verified", settlement: "settled", "input-required": "waiting for input" };

  function onMarketEvent(event) {
    const row = taskRow(event.task);
    if (event.kind === "submitted") row.querySelector(".description").textContent = event.data.description || "";
    if (STAGES[event.kind]) row.querySelector(".stage").textContent = STAGES[event.kind];
    if (["submitted", "working", "completed", "failed", "canceled"].includes(event.kind)) setStatus(row, event.kind);
    if (event.kind === "decision") addDecision(event.task, event.data);
    if (["settlement", "subtask", "completed", "failed", "canceled"].includes(event.kind)) scheduleRefresh();
  }

  let refreshTimer = null;
  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(async () => {
      refreshTimer = null;
      await Promise.all([refreshStats(), refreshMarket()]).catch(console.warn);
    }, 300);
  }

  async function results() {
    const listing = await api("/dashboard/results");
    if (!listing.folder) return;
    $("results-section").hidden = false;
    $("results-folder").textContent = listing.folder;
    for (const name of listing.files.filter((f) => f.endsWith(".png") || f.endsWith(".svg"))) {
      const img = document.createElement("img");
      img.src = `/dashboard/results/${encodeURIComponent(name)}`;
      img.alt = name;
      $("results").appendChild(img);
    }
  }

  async function market() {
    await Promise.all([refreshStats(), refreshMarket(), loadTasks(), results()]).catch(console.warn);
    setInterval(() => refreshMarket().catch(console.warn), 5000);
    follow("/v1/events", onMarketEvent, liveBadge);
  }

  // ------------------------------------------------------------ the task page

  function pre(parent, value) {
    const block = document.createElement("pre");
    block.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    parent.appendChild(block);
  }

  async function renderTask(id) {
    const task = await api(`/v1/tasks/${encodeURIComponent(id)}`);
    $("task-id").textContent = task.id;
    $("task-status").textContent = task.status;
    $("task-status").className = `badge ${task.status}`;
    $("task-description").textContent = task.description;
    const section = $("subtasks");
    section.replaceChildren();
    for (const sub of task.subtasks) {
      const box = document.createElement("div");
      box.className = "subtask";
      box.dataset.subtask = sub.id;
      const title = document.createElement("h2");
      title.textContent = `${sub.skill || "subtask"}: ${sub.status}`;
      title.className = `status-${sub.status}`;
      box.appendChild(title);
      const summary = document.createElement("p");
      summary.textContent = `${sub.description} | done by ${text(sub.where)} | estimated ${money(sub.cost.estimatedUsd)}, ` +
        `actual ${money(sub.cost.actualUsd)} | A2A task ${text(sub.a2aTaskId)}`;
      box.appendChild(summary);
      for (const [label, value] of [["Decision record", sub.decision], ["Attempts", sub.attempts],
        ["Verification", sub.verification], ["Artifacts", sub.artifacts], ["Excluded contractors", sub.excluded]]) {
        const heading = document.createElement("h3");
        heading.textContent = label;
        box.appendChild(heading);
        pre(box, value ?? "-");
      }
      section.appendChild(box);
    }
    const ledger = await api(`/v1/tasks/${encodeURIComponent(id)}/ledger`);
    const body = $("ledger").tBodies[0];
    body.replaceChildren();
    for (const e of ledger.entries) {
      const row = body.insertRow();
      cell(row, e.seq, "num");
      cell(row, e.kind);
      cell(row, e.account);
      cell(row, Number(e.amountUsd).toFixed(6), "num");
      cell(row, (e.subtaskId || "").slice(0, 8));
      cell(row, e.memo);
    }
    return task.status;
  }

  function task(id) {
    const seen = new Set();
    let finished = false;
    renderTask(id).catch(console.warn);
    follow(`/v1/tasks/${encodeURIComponent(id)}/events`, (event) => {
      if (seen.has(event.seq)) return;
      seen.add(event.seq);
      const row = $("events").tBodies[0].insertRow();
      cell(row, event.seq, "num");
      cell(row, new Date(event.at * 1000).toLocaleTimeString());
      cell(row, event.kind);
      cell(row, JSON.stringify(event.data).slice(0, 300));
      if (["completed", "failed", "canceled"].includes(event.kind)) finished = true;
      if (["decision", "verification", "settlement", "subtask", "completed", "failed", "canceled"].includes(event.kind)) {
        renderTask(id).catch(console.warn);
      }
    }, () => {}, () => !finished);
  }

  return { market, task };
})();
