// The admin page: polls /admin/overview.json (the session cookie goes along) and draws what it says.
// Every value is put in with textContent, never as HTML: user names and error lines come from outside.

const POLL_MS = 2_000;
const SVG = "http://www.w3.org/2000/svg";
const CHART = { height: 140, left: 28, bottom: 18, top: 8 };

const $ = (id) => document.getElementById(id);

function seconds(value) {
  if (value === null || value === undefined) return "unknown";
  if (value < 60) return `${value.toFixed(value < 10 ? 1 : 0)} s`;
  return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  row.append(td);
  return td;
}

function fillTable(id, rows, columns, empty) {
  const body = $(id);
  body.replaceChildren();
  if (rows === null || rows === undefined) {
    const row = body.insertRow();
    cell(row, "Not available on this server yet.", "muted").colSpan = columns;
    return;
  }
  if (!Array.isArray(rows)) {
    const row = body.insertRow();
    cell(row, rows.error || "Could not read this section.", "error-text").colSpan = columns;
    return;
  }
  if (rows.length === 0) {
    const row = body.insertRow();
    cell(row, empty, "muted").colSpan = columns;
    return;
  }
  return body;
}

function workerState(worker) {
  const span = document.createElement("span");
  const state = !worker.alive ? "gone" : worker.busy > 0 ? "busy" : "idle";
  span.className = `state state-${state}`;
  span.textContent = state;
  return span;
}

function drawWorkers(queue) {
  const body = fillTable("workers", queue.workers, 6, "No worker is alive.");
  if (!body) return;
  for (const worker of queue.workers) {
    const row = body.insertRow();
    cell(row, worker.name);
    cell(row, "").append(workerState(worker));
    const busy = worker.slots > 1 ? `${worker.busy} of ${worker.slots}` : worker.busy ? "yes" : "no";
    cell(row, worker.running_seconds !== null && worker.running_seconds !== undefined ? `${busy} (${seconds(worker.running_seconds)})` : busy);
    cell(row, worker.jobs_done);
    cell(row, worker.seen_seconds_ago === null || worker.seen_seconds_ago === undefined ? "now" : `${seconds(worker.seen_seconds_ago)} ago`);
    cell(row, worker.last_error || "", "error-text");
  }
}

function drawChart(perMinute) {
  const box = $("throughput");
  const peak = Math.max(1, ...perMinute);
  const width = Math.max(240, box.clientWidth); // drawn at the box's own width: text is never stretched
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${CHART.height}`);
  const plotWidth = width - CHART.left;
  const plotHeight = CHART.height - CHART.bottom - CHART.top;
  const step = plotWidth / perMinute.length;
  const add = (name, attributes, text) => {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
    if (text !== undefined) element.textContent = text;
    svg.append(element);
    return element;
  };
  add("line", { class: "axis", x1: CHART.left, x2: width, y1: CHART.top + plotHeight, y2: CHART.top + plotHeight });
  add("text", { x: 0, y: CHART.top + 8 }, String(peak));
  add("text", { x: 0, y: CHART.top + plotHeight }, "0");
  add("text", { x: CHART.left, y: CHART.height - 4 }, "60 min ago");
  add("text", { x: width - 22, y: CHART.height - 4 }, "now");
  perMinute.forEach((count, index) => {
    const height = (count / peak) * plotHeight;
    const bar = add("rect", {
      class: "bar",
      x: CHART.left + index * step + 1,
      y: CHART.top + plotHeight - height,
      width: Math.max(1, step - 2),
      height,
    });
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${count} jobs, ${perMinute.length - 1 - index} min ago`;
    bar.append(title);
  });
  box.replaceChildren(svg);
  const total = perMinute.reduce((sum, count) => sum + count, 0);
  $("throughput-total").textContent = `${total} jobs`;
}

function drawUsers(users) {
  const body = fillTable("top-users", users, 3, "Nobody has sent anything today.");
  if (!body) return;
  for (const usage of users) {
    const row = body.insertRow();
    cell(row, usage.user);
    cell(row, usage.used);
    cell(row, usage.limit > 0 ? `${Math.max(0, usage.limit - usage.used)} left of ${usage.limit}` : "no budget");
  }
}

function drawBans(bans) {
  const body = fillTable("bans", bans, 4, "Nobody is banned.");
  if (!body) return;
  for (const ban of bans) {
    const row = body.insertRow();
    cell(row, ban.target);
    cell(row, ban.admin);
    cell(row, when(ban.since));
    cell(row, ban.reason || "");
  }
}

function drawAudit(entries) {
  const body = fillTable("audit", entries, 5, "No admin action yet.");
  if (!body) return;
  for (const entry of entries) {
    const row = body.insertRow();
    cell(row, when(entry.at));
    cell(row, entry.admin);
    cell(row, entry.action);
    cell(row, entry.target);
    cell(row, entry.detail || "");
  }
}

function draw(data) {
  const queue = data.queue;
  $("mode").textContent = queue.mode === "cluster" ? `cluster: ${queue.worker_hosts} worker host${queue.worker_hosts === 1 ? "" : "s"}` : "one box";
  $("updated").textContent = new Date(data.generated_at * 1000).toLocaleTimeString();
  $("queue-depth").textContent = queue.queue_depth;
  $("running").textContent = queue.running;
  $("wait").textContent = queue.queue_depth === 0 && queue.running < queue.workers_alive ? "none" : seconds(queue.wait_seconds);
  $("mean").textContent = seconds(queue.mean_seconds);
  $("workers-alive").textContent = queue.workers_alive;
  $("outcomes").textContent = `${queue.counts.done ?? 0} / ${(queue.counts.failed ?? 0) + (queue.counts.timed_out ?? 0)}`;
  $("last-error").textContent = queue.last_error ? `Latest error: ${queue.last_error}` : "";
  drawWorkers(queue);
  drawChart(queue.per_minute);
  drawUsers(data.top_users);
  drawBans(data.bans);
  drawAudit(data.audit);
}

async function poll() {
  try {
    const response = await fetch("/admin/overview.json", { credentials: "same-origin", cache: "no-store" });
    if (response.status === 403) {
      window.location.assign("/admin");
      return;
    }
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    draw(await response.json());
    $("admin-error").hidden = true;
  } catch (error) {
    $("admin-error").textContent = `Could not update: ${error.message}`;
    $("admin-error").hidden = false;
  }
  setTimeout(poll, POLL_MS);
}

poll();
