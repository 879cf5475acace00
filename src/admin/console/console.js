// The tollgate console: reads the admin API with the token kept in this tab's
// sessionStorage and renders its answers every 2 s. Every value from the API is set
// as text (textContent), never as markup: keys, consumers and routes come from
// clients and configs.
"use strict";
(() => {
  const TOKEN = "tollgate-admin-token";
  const EVERY_MS = 2000;
  let windowName = "1m";
  let timer = null;
  const $ = (id) => document.getElementById(id);

  class Unauthorized extends Error {}

  function authorization() {
    const token = sessionStorage.getItem(TOKEN);
    return token ? { Authorization: "Bearer " + token } : {};
  }

  async function call(method, path) {
    const resp = await fetch(path, { method, headers: authorization(), cache: "no-store" });
    if (resp.status === 401) throw new Unauthorized();
    if (resp.status === 404 && method === "GET") return null;
    if (!resp.ok) throw new Error(method + " " + path + ": " + resp.status);
    return resp.json();
  }

  const number = (x, digits) => (x == null ? "–" : Number(x).toFixed(digits));

  function cell(value, numeric) {
    const td = document.createElement("td");
    td.textContent = value == null ? "–" : String(value);
    if (numeric) td.className = "n";
    return td;
  }

  function fill(tableId, rows, empty) {
    const table = $(tableId);
    const body = table.tBodies[0];
    if (!rows.length) {
      const td = cell(empty || "none");
      td.colSpan = table.tHead.rows[0].cells.length;
      const tr = document.createElement("tr");
      tr.className = "empty";
      tr.append(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      tr.append(...cells);
      return tr;
    }));
  }

  const counted = (list) => list.map((e) => [cell(e.key), cell(e.count, true)]);

  function unbanButton(jail, key) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "unban";
    button.className = "unban";
    button.addEventListener("click", async () => {
      button.disabled = true;
      const path = "/jails/" + encodeURIComponent(jail) + "/" + encodeURIComponent(key);
      try {
        await call("DELETE", path);
      } catch (e) {
        showError(e);
      }
      refresh();
    });
    const td = document.createElement("td");
    td.append(button);
    return td;
  }

  function render(stats, jails, upstreams, config, anomalies) {
    $("rate").textContent = number(stats.rate, 2);
    $("requests").textContent = String(stats.requests);
    $("refusals-total").textContent = String(stats.refusals_total);
    $("updated").textContent = new Date(stats.now * 1000).toLocaleTimeString();
    fill("routes", stats.routes.map((r) => [
      cell(r.route === "" ? "(no route)" : r.route),
      cell(number(r.rate, 2), true),
      cell(r.requests, true),
      cell(r.status["2xx"], true),
      cell(r.status["3xx"], true),
      cell(r.status["4xx"], true),
      cell(r.status["5xx"], true),
      cell(number(r.p50_ms, 1), true),
      cell(number(r.p99_ms, 1), true),
    ]));
    fill("refusals", Object.entries(stats.refusals).map(([reason, n]) => [cell(reason), cell(n, true)]));
    fill("refused-clients", counted(stats.top_refused_clients));
    fill("refused-consumers", counted(stats.top_refused_consumers));
    fill("consumers", counted(stats.top_consumers));
    const bans = [];
    for (const [jail, list] of Object.entries(jails)) {
      for (const ban of list) {
        bans.push([cell(jail), cell(ban.key), cell(ban.ends_at), cell(ban.seconds_left, true), unbanButton(jail, ban.key)]);
      }
    }
    fill("bans", bans);
    const deprecated = [];
    for (const route of stats.deprecated) {
      for (const caller of route.callers) {
        deprecated.push([cell(route.route), cell(caller.key), cell(caller.count, true)]);
      }
    }
    fill("deprecated", deprecated);
    const targets = [];
    for (const [name, upstream] of Object.entries(upstreams)) {
      for (const t of upstream.targets) {
        const health = cell(t.healthy ? "up" : "down");
        health.className = t.healthy ? "up" : "down";
        const check = t.last_check ? (t.last_check.ok ? "ok" : t.last_check.error) : "–";
        targets.push([cell(name), cell(t.addr), health, cell(t.in_flight, true), cell(check)]);
      }
    }
    fill("upstreams", targets);
    fill("anomalies", anomalies === null ? [] : anomalies.map((a) => [
      cell(a.at), cell(a.detector), cell(a.subject), cell(number(a.observed, 2), true), cell(number(a.baseline, 2), true),
    ]), anomalies === null ? "anomaly detection is off" : "none");
    $("config-sha256").textContent = config.sha256;
    const source = config.source || {};
    $("config-source").textContent = source.kind === "etcd"
      ? "etcd, cluster " + source.cluster + ", revision " + source.revision
      : "file";
    $("config-loaded").textContent = config.loaded_at;
  }

  function showError(e) {
    $("error").textContent = "The admin API did not answer: " + e.message;
    $("error").hidden = false;
  }

  async function refresh() {
    try {
      const [stats, jails, upstreams, config, anomalies] = await Promise.all([
        call("GET", "/stats?window=" + windowName),
        call("GET", "/jails"),
        call("GET", "/upstreams"),
        call("GET", "/config"),
        call("GET", "/anomalies"),
      ]);
      render(stats, jails, upstreams, config, anomalies);
      $("error").hidden = true;
    } catch (e) {
      if (e instanceof Unauthorized) {
        showLogin(true);
      } else {
        showError(e);
      }
    }
  }

  function showLogin(refused) {
    clearInterval(timer);
    timer = null;
    if (refused) sessionStorage.removeItem(TOKEN);
    $("console").hidden = true;
    $("windows").hidden = true;
    $("login").hidden = false;
    $("login-error").hidden = !refused;
    $("token").focus();
  }

  function showConsole() {
    $("login").hidden = true;
    $("console").hidden = false;
    $("windows").hidden = false;
    refresh();
    clearInterval(timer);
    timer = setInterval(refresh, EVERY_MS);
  }

  async function tryToken() {
    try {
      await call("GET", "/stats?window=1m");
      showConsole();
    } catch (e) {
      if (e instanceof Unauthorized) {
        showLogin(sessionStorage.getItem(TOKEN) !== null);
      } else {
        showError(e);
      }
    }
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN, $("token").value);
    $("token").value = "";
    tryToken();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN);
    showLogin(false);
  });
  for (const button of document.querySelectorAll("#windows [data-window]")) {
    button.addEventListener("click", () => {
      windowName = button.dataset.window;
      for (const b of document.querySelectorAll("#windows [data-window]")) {
        b.classList.toggle("on", b === button);
      }
      refresh();
    });
  }
  tryToken();
})();
