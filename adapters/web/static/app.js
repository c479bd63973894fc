// The AnimeBot page: choose a photo, pick a style, follow the job's real progress (SSE), compare the result.
// Plain ES module, no build step. Every request has a time limit so the page never hangs.

const API = "/api/v1";
const REQUEST_TIMEOUT_MS = 60_000;     // one upload or download
const STREAM_IDLE_TIMEOUT_MS = 35_000; // the server pings the event stream every 10 s
const STREAM_RETRIES = 3;
const THUMBNAIL_RETRY_MS = 4_000;
const THUMBNAIL_MAX_TRIES = 90;
const QUEUE_WAIT_ALLOWANCE_S = 300;    // how long a job may wait in line before the page gives up

// Where each server stage sits on the progress bar (percent from, percent to).
const STAGE_SPANS = {
  queued: [0, 5],
  decoding: [5, 10],
  finding_faces: [10, 25],
  stylizing: [25, 90],
  finishing: [90, 99],
  done: [100, 100],
};

const $ = (id) => document.getElementById(id);

// The page's sentences in its language: the server puts the catalogue in #texts (msgid -> translation);
// a msgid missing there is shown as it is (English).
const TEXTS = JSON.parse($("texts")?.textContent || "{}");
function t(msgid, params = {}) {
  const text = TEXTS[msgid] || msgid;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

const MESSAGES = {
  offline: t("Can't reach the AnimeBot server. Check that it is still running, then try again."),
  timeout: t("The server took too long to answer. Please try again."),
  slow: t("This is taking much longer than it should, so the page stopped waiting. Please try again."),
  notImage: (kind) => t("That file is not a photo or a video (it is {kind}). Please choose an image or an MP4, MOV, WebM or GIF clip.", { kind }),
  tooBig: (size, limit) => t("This file is {size}; the largest photo accepted is {limit}.", { size, limit }),
  badKey: t("That key was not accepted. Check it and try again."),
  lost: t("The connection to the server was lost while your photo was being made. Please try again."),
};

const state = {
  config: null,
  apiKey: sessionStorage.getItem("animebot-api-key") || "",
  file: null,          // the photo chosen on this page
  previewUrl: null,
  source: null,        // the server's key for the uploaded photo: re-styling sends this instead of the file
  style: null,
  resultUrl: null,
  busy: false,
  batch: [],           // several photos chosen at once
};

class PlainError extends Error {
  // An error whose message is the plain sentence shown to the person.
  constructor(message, status = 0, code = "") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---------------------------------------------------------------- HTTP

function authHeaders() {
  return state.apiKey ? { "X-API-Key": state.apiKey } : {};
}

// The browser's time zone, so a daily budget's refusal says its reset time as the person's clock shows it.
function timeZoneHeader() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return zone ? { "X-Time-Zone": zone } : {};
}

async function request(path, { method = "GET", body = null, timeout = REQUEST_TIMEOUT_MS, headers = {} } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  try {
    const response = await fetch(path, {
      method, body, signal: controller.signal, headers: { ...authHeaders(), ...timeZoneHeader(), ...headers },
    });
    if (!response.ok) throw await errorFrom(response);
    return response;
  } catch (error) {
    if (error instanceof PlainError) throw error;
    throw new PlainError(error.name === "AbortError" ? MESSAGES.timeout : MESSAGES.offline);
  } finally {
    clearTimeout(timer);
  }
}

async function errorFrom(response) {
  let message = t("The server answered with an error ({status}). Please try again.", { status: response.status });
  let code = "";
  try {
    const data = await response.json();
    if (data && data.message) message = data.message;
    if (data && data.error) code = data.error;
  } catch { /* not JSON: keep the generic sentence */ }
  return new PlainError(message, response.status, code);
}

// ---------------------------------------------------------------- small view helpers

function showError(element, message) {
  element.textContent = message;
  element.hidden = false;
}

function clearErrors() {
  for (const id of ["photo-error", "go-error", "key-error"]) $(id).hidden = true;
}

function formatBytes(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} KB`;
}

function setBusy(busy) {
  state.busy = busy;
  updateGoButton();
  for (const button of document.querySelectorAll(".example")) button.disabled = busy;
}

function updateGoButton() {
  const go = $("go");
  go.disabled = state.busy || !state.style || !(state.file || state.source);
  go.textContent = state.busy ? t("Working…")
    : state.batch.length > 1 ? t("Animate my photos")
    : (state.resultUrl ? t("Animate again") : t("Animate my photo"));
}

// ---------------------------------------------------------------- configuration, key, styles, examples

async function loadConfig() {
  const response = await request("/ui/config");
  state.config = await response.json();
  $("limits").textContent = t("Up to {size}; a clip is drawn for its first {seconds} s.", {
    size: formatBytes(state.config.max_upload_bytes),
    seconds: state.config.clip_max_seconds,
  });
  if (state.config.api_key_required && !state.apiKey) {
    $("key-panel").hidden = false;
    $("styles").innerHTML = `<p class="muted">${t("Enter the API key above to see the styles.")}</p>`;
    return false;
  }
  return true;
}

async function loadStyles() {
  let data;
  try {
    data = await (await request(`${API}/styles`)).json();
  } catch (error) {
    if (error.status === 401) {
      $("key-panel").hidden = false;
      showError($("key-error"), MESSAGES.badKey);
      return;
    }
    showError($("go-error"), error.message);
    return;
  }
  $("key-panel").hidden = true;
  const list = $("styles");
  list.replaceChildren();
  for (const style of data.styles) {
    const card = document.createElement("button");
    card.type = "button";
    card.className = "style-card";
    card.dataset.style = style.name;
    card.setAttribute("role", "radio");
    card.setAttribute("aria-checked", "false");
    card.title = style.description;
    const image = document.createElement("img");
    image.alt = "";
    image.width = 96;
    image.height = 96;
    const name = document.createElement("span");
    name.className = "style-name";
    name.textContent = style.title;
    card.append(image, name);
    card.addEventListener("click", () => selectStyle(style.name));
    list.append(card);
    refreshThumbnail(image, style.thumbnail, 0);
  }
  if (data.styles.length === 0) {
    list.innerHTML = '<p class="muted">No styles are installed yet. Run <code>animebot weights pull</code> on the server.</p>';
    return;
  }
  selectStyle(data.default);
}

function selectStyle(name) {
  state.style = name;
  for (const card of document.querySelectorAll(".style-card")) {
    card.setAttribute("aria-checked", String(card.dataset.style === name));
  }
  updateGoButton();
}

// Thumbnails are made by the server in the background; until then it sends a placeholder, so ask again later.
async function refreshThumbnail(image, url, tries) {
  try {
    const response = await fetch(url, { cache: "no-store" });
    const blob = await response.blob();
    const previous = image.src;
    image.src = URL.createObjectURL(blob);
    if (previous.startsWith("blob:")) URL.revokeObjectURL(previous);
    if (response.headers.get("X-Thumbnail") === "ready") return;
  } catch { /* try again below */ }
  if (tries < THUMBNAIL_MAX_TRIES) setTimeout(() => refreshThumbnail(image, url, tries + 1), THUMBNAIL_RETRY_MS);
}

async function loadExamples() {
  const gallery = $("examples");
  let data;
  try {
    data = await (await request("/ui/examples")).json();
  } catch (error) {
    gallery.innerHTML = "";
    showError($("go-error"), error.message);
    return;
  }
  gallery.replaceChildren();
  if (data.examples.length === 0) {
    gallery.innerHTML = '<p class="muted">No example photos are bundled with this server.</p>';
  }
  $("credits").hidden = !data.credits;
  for (const example of data.examples) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "example";
    button.dataset.example = example.name;
    const image = document.createElement("img");
    image.src = example.preview;
    image.alt = "";
    image.loading = "lazy";
    const label = document.createElement("span");
    label.textContent = example.title;
    button.append(image, label);
    button.addEventListener("click", () => runExample(example));
    gallery.append(button);
  }
}

async function runExample(example) {
  clearErrors();
  try {
    const blob = await (await request(example.url)).blob();
    chooseFiles([new File([blob], example.name, { type: blob.type || "image/jpeg" })]);
  } catch (error) {
    showError($("go-error"), error.message);
    return;
  }
  await animate();
}

// ---------------------------------------------------------------- choosing a photo

function isClip(file) {
  return Boolean(file) && (file.type.startsWith("video/") || file.type === "image/gif");
}

function checkFile(file) {
  if (file.type && !file.type.startsWith("image/") && !file.type.startsWith("video/")) {
    return MESSAGES.notImage(describeType(file.type));
  }
  const limit = state.config ? state.config.max_upload_bytes : Infinity;
  if (file.size > limit) return MESSAGES.tooBig(formatBytes(file.size), formatBytes(limit));
  return null;
}

function describeType(mime) {
  if (mime.startsWith("text/")) return t("a text file");
  if (mime === "application/pdf") return t("a PDF");
  if (mime.startsWith("video/")) return t("a video");
  return t("a file of type {mime}", { mime });
}

// Several photos at once: each becomes its own job and its own result card (one after another, so a person's
// photos never crowd the queue). One photo keeps the single-photo flow with its before/after slider.
function chooseFiles(files) {
  state.batch = [];
  if (files.length === 1) {
    chooseFile(files[0]);
    return;
  }
  clearErrors();
  const problems = files.map((file) => [file, checkFile(file)]).filter(([, problem]) => problem);
  const usable = files.filter((file) => !checkFile(file));
  if (problems.length) showError($("photo-error"), problems.map(([file, problem]) => `${file.name}: ${problem}`).join(" "));
  if (!usable.length) return;
  chooseFile(usable[0], { keepErrors: true });
  state.batch = usable;
  const note = $("preview-note");
  note.textContent = t("{count} photos chosen: each gets its own result.", { count: usable.length });
  note.hidden = false;
  updateGoButton();
}

function chooseFile(file, { keepErrors = false } = {}) {
  if (!keepErrors) clearErrors();
  state.batch = [];
  const problem = checkFile(file);
  if (problem) {
    showError($("photo-error"), problem);
    return;
  }
  state.file = file;
  state.source = null; // a new photo: the next job uploads it
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(file);
  const video = file.type.startsWith("video/");
  const preview = $(video ? "preview-video" : "preview");
  $(video ? "preview" : "preview-video").hidden = true;
  preview.src = state.previewUrl;
  preview.hidden = false;
  $("preview-note").hidden = true;
  $("dropzone").classList.add("has-photo");
  updateGoButton();
}

// Some photos (HEIC from iPhones) can be stylized but not shown by this browser: say so instead of a broken image.
function previewFailed() {
  if (!state.file) return;
  $("preview").hidden = true;
  $("preview-video").hidden = true;
  const note = $("preview-note");
  note.textContent = t("{name}: this browser can't show a preview of it, but it can still be animated.", { name: state.file.name });
  note.hidden = false;
}

function wireUpload() {
  const zone = $("dropzone");
  const input = $("file-input");
  $("preview").addEventListener("error", previewFailed);
  $("preview-video").addEventListener("error", previewFailed);
  zone.addEventListener("click", (event) => {
    if (event.target.tagName !== "LABEL") input.click();
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  input.addEventListener("change", () => {
    if (input.files.length) chooseFiles([...input.files]);
    input.value = "";
  });
  // Dropping anywhere on the page counts; without this the browser would open the file and leave the page.
  window.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  window.addEventListener("dragleave", (event) => {
    if (event.relatedTarget === null) zone.classList.remove("dragging");
  });
  window.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const files = event.dataTransfer ? [...event.dataTransfer.files] : [];
    if (files.length) chooseFiles(files);
  });
  document.addEventListener("paste", (event) => {
    const file = event.clipboardData && [...event.clipboardData.files][0];
    if (file) {
      event.preventDefault();
      chooseFile(file);
    }
  });
}

// ---------------------------------------------------------------- running a job

function jobForm(withFile) {
  const form = new FormData();
  if (withFile) form.append("image", state.file, state.file.name || "photo");
  else form.append("source", state.source);
  form.append("style", state.style);
  form.append("strength", String(Number($("strength").value) / 100));
  form.append("faces", $("faces").checked ? "true" : "false");
  return form;
}

async function submitJob() {
  const reuse = Boolean(state.source);
  try {
    return await (await request(`${API}/jobs`, { method: "POST", body: jobForm(!reuse) })).json();
  } catch (error) {
    // The server forgot the photo (it keeps them for a while only): send it again, once.
    if (reuse && error.status === 410 && state.file) {
      state.source = null;
      return await (await request(`${API}/jobs`, { method: "POST", body: jobForm(true) })).json();
    }
    throw error;
  }
}

// The estimated wait as bot/eta.py's wait_phrase says it: "15 s" (steps of 5 s) or "3 min".
function waitPhrase(seconds) {
  if (seconds < 60) return t("{seconds} s", { seconds: Math.max(5, Math.ceil(seconds / 5) * 5) });
  return t("{minutes} min", { minutes: Math.ceil(seconds / 60) });
}

function queuedLabel(ahead, waitSeconds) {
  if (waitSeconds === null || waitSeconds === undefined) {
    return ahead === 0 ? t("Queued: you are next") : t("Queued: {ahead} photos ahead of yours", { ahead });
  }
  const wait = waitPhrase(waitSeconds);
  return ahead === 0
    ? t("Queued: you are next, about {wait} to wait", { wait })
    : t("Queued: {ahead} photos ahead of yours, about {wait} to wait", { ahead, wait });
}

function showProgress(event) {
  const [from, to] = STAGE_SPANS[event.stage] || [0, 0];
  const percent = Math.round(from + (to - from) * Math.min(1, Math.max(0, event.fraction || 0)));
  const bar = $("progress");
  // Stages only move forward; a late event never pulls the bar back.
  const value = Math.max(Number(bar.value), percent);
  bar.value = value;
  bar.textContent = `${value} %`;
  let label = event.label ? t(event.label) : t("Working");
  if (event.stage === "stylizing" && event.frames) {
    label = t("Stylizing frame {frame} of {frames}", { frame: event.frame || 0, frames: event.frames });
  }
  if (event.stage === "queued" && event.position) {
    label = queuedLabel(event.position - 1, event.wait_seconds);
  }
  $("progress-label").textContent = `${label}… ${value} %`;
}

function startProgress() {
  $("progress").value = 0;
  $("progress-label").textContent = t("Sending your photo…");
  $("progress-card").hidden = false;
}

// Reads one server-sent-events stream with fetch (EventSource can't send the API key header).
async function* readEvents(response, controller) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let idle = setTimeout(() => controller.abort(), STREAM_IDLE_TIMEOUT_MS);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(), STREAM_IDLE_TIMEOUT_MS);
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = { event: "message", data: "", id: null };
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue; // a ping
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event.event = text;
          else if (field === "data") event.data += (event.data ? "\n" : "") + text;
          else if (field === "id") event.id = text;
        }
        if (event.data) yield event;
      }
    }
  } finally {
    clearTimeout(idle);
  }
}

// Follows a job to its end; resolves with the finished job's status, throws a PlainError when it failed.
async function followJob(job) {
  const deadline = Date.now() + (state.config.job_timeout + QUEUE_WAIT_ALLOWANCE_S) * 1000;
  let lastId = null;
  for (let attempt = 0; attempt <= STREAM_RETRIES; attempt++) {
    const controller = new AbortController();
    const overall = setTimeout(() => controller.abort(), Math.max(0, deadline - Date.now()));
    try {
      const headers = { ...authHeaders(), Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const response = await fetch(job.events_url, { headers, signal: controller.signal });
      if (!response.ok) throw await errorFrom(response);
      for await (const event of readEvents(response, controller)) {
        if (event.id) lastId = event.id;
        const data = JSON.parse(event.data);
        if (event.event === "progress") showProgress(data);
        else if (event.event === "done") return data;
        else if (event.event === "failed") throw new PlainError(data.message, 0, data.error);
      }
    } catch (error) {
      if (error instanceof PlainError) throw error;
      if (Date.now() >= deadline) throw new PlainError(MESSAGES.slow);
    } finally {
      clearTimeout(overall);
    }
    // The stream ended early (network hiccup, proxy timeout): ask once how the job is, then listen again.
    const status = await (await request(job.status_url)).json();
    if (status.state === "done") return status;
    if (status.state === "failed") throw new PlainError(status.error.message, 0, status.error.error);
  }
  throw new PlainError(MESSAGES.lost);
}

// A clip's result plays in a video element; "Before" shows the original (a GIF original as an image), "After" the result.
function showClip(before) {
  const player = $("clip-player");
  const still = $("clip-before-still");
  const gifBefore = before && state.file && !state.file.type.startsWith("video/");
  const time = player.currentTime || 0;
  still.hidden = !gifBefore;
  player.hidden = gifBefore;
  if (gifBefore) {
    still.src = state.previewUrl;
    player.pause();
  } else {
    player.src = before ? state.previewUrl : state.resultUrl;
    player.addEventListener("loadedmetadata", () => { player.currentTime = Math.min(time, player.duration || 0); }, { once: true });
    player.play().catch(() => { /* autoplay refused: the controls are there */ });
  }
  $("show-before").setAttribute("aria-pressed", String(before));
  $("show-after").setAttribute("aria-pressed", String(!before));
}

async function showResult(job, finished) {
  const blob = await (await request(job.result_url)).blob();
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  const clip = finished.result.mime.startsWith("video/");
  $("compare").hidden = clip;
  $("clip-result").hidden = !clip;
  $("result-title").lastChild.textContent = " " + (clip ? t("Your anime clip") : t("Your anime still"));
  if (clip) {
    $("clip-player").muted = false;
    showClip(false);
  }
  const compare = $("compare");
  compare.style.aspectRatio = `${finished.result.width} / ${finished.result.height}`;
  compare.style.maxWidth = `calc(70vh * ${finished.result.width / finished.result.height})`;
  $("after").src = state.resultUrl;
  $("before").src = state.previewUrl;
  setComparePosition(50);
  const extension = { "image/png": "png", "image/webp": "webp", "video/mp4": "mp4" }[finished.result.mime] || "jpg";
  const download = $("download");
  download.href = state.resultUrl;
  download.download = `anime-${finished.result.style}.${extension}`;
  const notes = $("result-notes");
  notes.textContent = (finished.result.notes || []).map((note) => t(note)).join(" ");
  notes.hidden = !notes.textContent;
  $("progress-card").hidden = true;
  $("result-card").hidden = false;
  $("result-card").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

// A 512 px WEBP of a picture (its long side 512, as chat stickers are), made by the browser itself.
async function stickerOf(blob) {
  const bitmap = await createImageBitmap(blob);
  const scale = 512 / Math.max(bitmap.width, bitmap.height);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return await new Promise((resolve) => canvas.toBlob(resolve, "image/webp", 0.9));
}

function addBatchCard(file, result, blob) {
  const card = document.createElement("figure");
  card.className = "batch-card";
  const image = document.createElement("img");
  image.src = URL.createObjectURL(blob);
  image.alt = t("{name} in anime style", { name: file.name });
  const caption = document.createElement("figcaption");
  caption.textContent = file.name;
  const actions = document.createElement("div");
  actions.className = "result-actions";
  const download = document.createElement("a");
  download.className = "button";
  download.href = image.src;
  download.download = `${file.name.replace(/\.[^.]*$/, "")}-${result.style}.jpg`;
  download.textContent = t("Download");
  const sticker = document.createElement("a");
  sticker.className = "button button-soft";
  sticker.textContent = t("Sticker (512 px WEBP)");
  sticker.download = `${file.name.replace(/\.[^.]*$/, "")}-sticker.webp`;
  stickerOf(blob).then((webp) => { sticker.href = URL.createObjectURL(webp); });
  actions.append(download, sticker);
  card.append(image, caption, actions);
  $("batch-results").append(card);
}

async function animateBatch() {
  clearErrors();
  setBusy(true);
  $("batch-results").innerHTML = "";
  $("batch-card").hidden = false;
  $("result-card").hidden = true;
  const files = state.batch;
  try {
    for (const [index, file] of files.entries()) {
      startProgress();
      $("progress-label").textContent = t("Photo {number} of {total}…", { number: index + 1, total: files.length });
      state.file = file;
      state.source = null;
      try {
        const job = await submitJob();
        showProgress({ stage: "queued", position: job.position, wait_seconds: job.wait_seconds, label: "Queued", fraction: 0 });
        const finished = await followJob(job);
        const blob = await (await request(job.result_url)).blob();
        addBatchCard(file, finished.result, blob);
      } catch (error) {
        showError($("go-error"), `${file.name}: ${error.message ? t(error.message) : MESSAGES.offline}`);
        if (error.status === 401) break;
      }
    }
  } finally {
    $("progress-card").hidden = true;
    state.file = files[0];
    state.source = null;
    setBusy(false);
  }
}

async function animate() {
  if (state.batch.length > 1) return animateBatch();
  if (state.busy || !state.style || !(state.file || state.source)) return;
  clearErrors();
  setBusy(true);
  startProgress();
  try {
    const job = await submitJob();
    state.source = job.source;
    showProgress({ stage: "queued", position: job.position, wait_seconds: job.wait_seconds, label: "Queued", fraction: 0 });
    const finished = await followJob(job);
    showProgress({ stage: "done", fraction: 1, label: "Done" });
    await showResult(job, finished);
  } catch (error) {
    $("progress-card").hidden = true;
    showError($("go-error"), error.message ? t(error.message) : MESSAGES.offline);
    if (error.status === 401) $("key-panel").hidden = false; // the server's key changed since the page loaded
  } finally {
    setBusy(false);
  }
}

// ---------------------------------------------------------------- before/after slider

function setComparePosition(percent) {
  const clamped = Math.min(100, Math.max(0, percent));
  $("compare").style.setProperty("--pos", `${clamped}%`);
  $("compare-range").value = String(Math.round(clamped));
}

function wireCompare() {
  const compare = $("compare");
  const fromPointer = (event) => {
    const box = compare.getBoundingClientRect();
    setComparePosition(((event.clientX - box.left) / box.width) * 100);
  };
  compare.addEventListener("pointerdown", (event) => {
    compare.setPointerCapture(event.pointerId);
    fromPointer(event);
  });
  compare.addEventListener("pointermove", (event) => {
    if (compare.hasPointerCapture(event.pointerId)) fromPointer(event);
  });
  $("compare-range").addEventListener("input", (event) => setComparePosition(Number(event.target.value)));
  $("show-before").addEventListener("click", () => showClip(true));
  $("show-after").addEventListener("click", () => showClip(false));
}

// ---------------------------------------------------------------- start

function wireControls() {
  const strength = $("strength");
  strength.addEventListener("input", () => { $("strength-value").textContent = `${strength.value} %`; });
  $("go").addEventListener("click", animate);
  $("again").addEventListener("click", () => {
    const styles = $("styles");
    styles.scrollIntoView({ behavior: "smooth", block: "center" });
    const next = styles.querySelector('.style-card[aria-checked="false"]') || styles.querySelector(".style-card");
    if (next) next.focus();
  });
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    state.apiKey = $("api-key").value.trim();
    sessionStorage.setItem("animebot-api-key", state.apiKey);
    await loadStyles();
  });
}

async function start() {
  wireUpload();
  wireCompare();
  wireControls();
  loadExamples();
  try {
    if (await loadConfig()) await loadStyles();
  } catch (error) {
    showError($("go-error"), error.message);
  }
}

start();
