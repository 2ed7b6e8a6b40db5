// gradient-watcher's page script: the overview refreshes itself from /api/v1, the filters
// apply on change, a dead letter is retried with the token typed in. Text goes in through
// textContent only; the page works without this script (but for those three conveniences).
"use strict";
(() => {
  const all = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const field = (row, name) => row.querySelector(`[data-field="${name}"]`);

  const duration = (s) => {
    if (s === null || s === undefined) return "–";
    s = Math.floor(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const two = (n) => String(n).padStart(2, "0");
    return h ? `${h}h ${two(m)}m ${two(r)}s` : m ? `${m}m ${two(r)}s` : `${r}s`;
  };
  const count = (n) => (n === null || n === undefined ? "–" : n.toLocaleString("en-US"));
  const words = (w) => w.replace(/_/g, " ");

  for (const select of all("form.filters select")) {
    select.addEventListener("change", () => select.form.submit());
  }

  const table = document.querySelector("table[data-refresh]");
  const note = document.querySelector('[data-field="refreshed"]');
  const say = (text) => { if (note) note.textContent = text; };

  const badge = (state) => {
    const span = document.createElement("span");
    span.className = `badge s-${state}`;
    span.textContent = words(state);
    return span;
  };

  const update = (row, kb) => {
    const job = kb.latest_job;
    const state = field(row, "state");
    const parts = [badge(kb.state)];
    if (job && job.stalled) parts.push(" ", Object.assign(document.createElement("span"),
      { className: "muted", textContent: words(job.stalled) }));
    state.replaceChildren(...parts);
    const bar = field(row, "progress").querySelector("progress");
    const label = field(row, "progress-text");
    const total = job && job.progress.total;
    bar.hidden = !total;
    bar.max = total || 1;
    bar.value = total ? job.progress.completed || 0 : 0;
    label.textContent = total ? `${job.progress.completed || 0}/${total}` : "–";
    field(row, "age").textContent = kb.age_s === null ? "–" : `${duration(kb.age_s)} ago`;
    field(row, "duration").textContent = duration(job ? job.duration_s : null);
    field(row, "tokens").textContent = count(job ? job.tokens : null);
    const spark = field(row, "spark").querySelector(".spark");
    spark.replaceChildren(...kb.recent.map((p) => {
      const i = document.createElement("i");
      i.className = `o-${p.state}`;
      return i;
    }));
    const counts = {};
    for (const p of kb.recent) counts[p.state] = (counts[p.state] || 0) + 1;
    const told = Object.entries(counts).sort((a, b) => b[1] - a[1])
      .map(([state, n]) => `${n} ${words(state)}`).join(", ");
    spark.setAttribute("aria-label", kb.recent.length ? `last ${kb.recent.length} jobs: ${told}` : "no jobs");
  };

  const reload = async () => {
    // Knowledge bases came or went: take the server's rendering of the whole page body.
    const answer = await fetch(location.href, { headers: { accept: "text/html" } });
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
    const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
    for (const sel of ["table[data-refresh] tbody", '[data-field="counts"]', "section.health"]) {
      const mine = document.querySelector(sel), theirs = fresh.querySelector(sel);
      if (mine && theirs) mine.replaceWith(document.importNode(theirs, true));
    }
  };

  const refresh = async () => {
    try {
      const answer = await fetch(table.dataset.refresh, { headers: { accept: "application/json" } });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      const data = await answer.json();
      const rows = all("tbody tr[data-uuid]", table);
      const same = rows.length === data.items.length &&
        rows.every((row, i) => row.dataset.uuid === data.items[i].uuid);
      if (same) data.items.forEach((kb, i) => update(rows[i], kb));
      else await reload();
      say(`updated ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      say(`not updated: ${error.message}`);
    }
  };

  if (table) {
    const seconds = Math.max(Number(table.dataset.period) || 10, 2);
    setInterval(() => { if (!document.hidden) refresh(); }, seconds * 1000);
  }

  const token = document.getElementById("token");
  for (const button of all("button[data-retry]")) {
    button.addEventListener("click", async () => {
      const result = field(button.closest("tr"), "retry-result");
      if (!token || !token.value) {
        result.textContent = "type the token first";
        return;
      }
      button.disabled = true;
      const answer = await fetch(`/api/v1/deliveries/${button.dataset.retry}/retry`, {
        method: "POST", headers: { authorization: `Bearer ${token.value.trim()}` },
      }).catch((error) => ({ ok: false, status: 0, json: async () => ({ error: error.message }) }));
      const body = await answer.json().catch(() => ({}));
      result.textContent = answer.ok ? "queued again" : body.error || `HTTP ${answer.status}`;
      button.disabled = answer.ok;
    });
  }
  document.getElementById("token-form")?.addEventListener("submit", (e) => e.preventDefault());
})();
