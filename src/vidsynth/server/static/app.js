// vidsynth studio: the page over the /v1 API. Plain JS, no build step.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const NUMBER_FIELDS = [
    "seed", "steps", "guidance", "candidates", "frames", "fps", "width", "height",
    "clip_strength",
  ];
  const INTEGER_FIELDS = new Set(["seed", "steps", "candidates", "frames", "width", "height"]);
  // guidance intervals, typed as the CLI takes them: "LO" or "LO,HI" (noise levels sigma)
  const INTERVAL_FIELDS = ["guidance_interval", "first_frame_guidance_interval"];
  const FORM_KEY = "vidsynth.form";
  const CURRENT_KEY = "vidsynth.current";
  const PAGE = 12;

  let current = null; // the job shown in the player
  let events = null; // its EventSource while it runs
  let cursor = null; // the gallery's next page

  class ApiError extends Error {
    constructor(message, status, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  async function api(path, options = {}) {
    const response = await fetch(path, options);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new ApiError(
        body.detail || `${response.status} ${response.statusText}`,
        response.status,
        response.headers.get("Retry-After"),
      );
    }
    return body;
  }

  function newKey() {
    // randomUUID needs a secure context; 127.0.0.1 is one, a LAN address over http is not
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
      b.toString(16).padStart(2, "0"),
    ).join("");
  }

  // -- the form -------------------------------------------------------------------------
  function readParams() {
    const params = { prompt: $("prompt").value.trim() };
    const negative = $("negative_prompt").value.trim();
    if (negative) params.negative_prompt = negative;
    for (const name of NUMBER_FIELDS) {
      const text = $(name).value.trim();
      if (text === "") continue;
      const value = Number(text);
      if (!Number.isFinite(value) || (INTEGER_FIELDS.has(name) && !Number.isInteger(value))) {
        throw new ApiError(`${name} must be a ${INTEGER_FIELDS.has(name) ? "whole " : ""}number`);
      }
      params[name] = value;
    }
    for (const name of INTERVAL_FIELDS) {
      const text = $(name).value.trim();
      if (text === "" || $(name).closest(".field").hidden) continue;
      const parts = text.split(",").map((part) => part.trim());
      if (parts.length === 2 && parts[1] === "") parts.pop(); // "0.7," is "0.7"
      const values = parts.map(Number);
      if (parts.length > 2 || parts.some((part) => part === "") || !values.every(Number.isFinite)) {
        throw new ApiError(`${name} must be LO or LO,HI (noise levels, e.g. 0.7), not "${text}"`);
      }
      params[name] = values;
    }
    return params;
  }

  // an interval as the field shows it: [lo, null] -> "lo", [lo, hi] -> "lo,hi"
  function intervalText(interval) {
    return interval[1] === null ? String(interval[0]) : `${interval[0]},${interval[1]}`;
  }

  function isEveryStep(interval) {
    return !interval || (interval[0] === 0 && interval[1] === null);
  }

  function saveForm() {
    const saved = {};
    for (const name of ["prompt", "negative_prompt", ...NUMBER_FIELDS, ...INTERVAL_FIELDS]) {
      saved[name] = $(name).value;
    }
    localStorage.setItem(FORM_KEY, JSON.stringify(saved));
  }

  function restoreForm() {
    try {
      const saved = JSON.parse(localStorage.getItem(FORM_KEY) || "{}");
      for (const [name, value] of Object.entries(saved)) if ($(name)) $(name).value = value;
    } catch {
      localStorage.removeItem(FORM_KEY);
    }
  }

  function showError(message) {
    $("form-error").textContent = message;
    $("form-error").hidden = !message;
  }

  async function submit(event) {
    event.preventDefault();
    showError("");
    let params;
    try {
      params = readParams();
    } catch (err) {
      showError(err.message);
      return;
    }
    saveForm();
    $("generate").disabled = true;
    const key = newKey(); // a retry after a network error gets the same job, not a second one
    const request = {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": key },
      body: JSON.stringify({ task: "text-to-video", params }),
    };
    try {
      let job;
      try {
        job = await api("/v1/jobs", request);
      } catch (err) {
        if (err instanceof ApiError && err.status) throw err;
        job = await api("/v1/jobs", request); // network error: retry once, safely
      }
      follow(job);
      refreshGallery();
      // one column (a phone): the progress bar is below the form, out of sight; bring it up
      // (focus stays on the form, so a keyboard user is not moved)
      if (matchMedia("(max-width: 760px)").matches) {
        document.querySelector("section.result").scrollIntoView({ block: "start" });
      }
    } catch (err) {
      const wait = err.retryAfter ? ` (try again in ${err.retryAfter} s)` : "";
      showError(`${err.message}${wait}`);
    } finally {
      $("generate").disabled = false;
    }
  }

  // -- one job: progress and the player -----------------------------------------------------
  function describe(job) {
    const p = job.progress;
    switch (job.status) {
      case "queued":
        return `Queued — position ${job.position}`;
      case "running":
        if (p.stage === "denoise") return `Denoising — step ${p.step} of ${p.total}`;
        if (p.stage === "decode") return "Decoding frames…";
        if (p.stage === "save") return "Saving video…";
        return "Starting…";
      case "succeeded": {
        const secs = (new Date(job.finished_at) - new Date(job.started_at)) / 1000;
        return `Done in ${secs.toFixed(1)} s.`;
      }
      case "failed":
        return `Failed: ${job.error}`;
      default:
        return "Cancelled.";
    }
  }

  function fraction(job) {
    const p = job.progress;
    if (job.status === "succeeded") return 1;
    if (job.status !== "running" || !p.total) return 0;
    if (p.stage === "denoise") return 0.9 * (p.step / p.total);
    return p.stage === "decode" ? 0.93 : p.stage === "save" ? 0.97 : 0;
  }

  function render(job) {
    current = job;
    localStorage.setItem(CURRENT_KEY, job.id);
    $("status").textContent = describe(job);
    const bar = $("progress");
    if (job.status === "queued") bar.removeAttribute("value"); // indeterminate while waiting
    else bar.value = fraction(job);
    const active = job.status === "queued" || job.status === "running";
    $("cancel").hidden = !active;
    const p = job.params;
    $("meta").textContent =
      `“${p.prompt || "(no prompt)"}” · seed ${job.seed} · ${p.frames} frames at ` +
      `${p.fps} fps · ${p.width}×${p.height} · ${p.steps} steps · guidance ${p.guidance}` +
      (isEveryStep(p.guidance_interval) ? "" : ` above σ ${intervalText(p.guidance_interval)}`) +
      (p.candidates > 1 ? ` · best of ${p.candidates} first frames` : "");
    const player = $("player");
    if (job.status === "succeeded") {
      if (player.getAttribute("src") !== job.video_url) {
        player.src = job.video_url;
        player.play().catch(() => {}); // autoplay may be refused; the controls remain
      }
      $("download").href = `${job.video_url}?download=true`;
      $("download").hidden = false;
      $("placeholder").hidden = true;
    } else {
      player.removeAttribute("src");
      player.load();
      $("download").hidden = true;
      $("placeholder").hidden = false;
      $("placeholder").textContent = active ? "Generating…" : "No video.";
    }
    markCurrent();
  }

  function follow(job) {
    if (events) events.close();
    events = null;
    render(job);
    if (job.status !== "queued" && job.status !== "running") return;
    events = new EventSource(job.events_url);
    const update = (e) => {
      const next = JSON.parse(e.data);
      if (current && current.id === next.id) render(next);
      updateCard(next);
    };
    events.addEventListener("progress", update);
    events.addEventListener("end", (e) => {
      events.close();
      events = null;
      update(e);
    });
  }

  async function cancel() {
    if (!current) return;
    try {
      follow(await api(`/v1/jobs/${current.id}`, { method: "DELETE" }));
      refreshGallery();
    } catch (err) {
      showError(err.message);
    }
  }

  // -- history --------------------------------------------------------------------------
  function card(job) {
    const li = document.createElement("li");
    li.dataset.id = job.id;
    const button = document.createElement("button");
    button.type = "button";
    li.append(button);
    fillCard(li, job);
    return li;
  }

  function fillCard(li, job) {
    const button = li.querySelector("button");
    let thumb;
    if (job.status === "succeeded") {
      thumb = document.createElement("video");
      thumb.src = `${job.video_url}#t=0.01`; // a frame to show without playing
      thumb.muted = true;
      thumb.preload = "metadata";
      thumb.setAttribute("aria-hidden", "true");
      thumb.tabIndex = -1;
    } else {
      thumb = document.createElement("div");
      thumb.textContent = job.status;
    }
    thumb.className = "thumb";
    const caption = document.createElement("span");
    caption.className = "caption";
    caption.textContent = job.params.prompt || "(no prompt)";
    const badge = document.createElement("span");
    badge.className = `badge ${job.status}`;
    badge.textContent = `${job.status} · seed ${job.seed}`;
    button.setAttribute("aria-label", `${job.params.prompt || "no prompt"}, ${job.status}`);
    button.replaceChildren(thumb, caption, badge);
    li.dataset.status = job.status;
    button.onclick = () => follow(job);
  }

  function updateCard(job) {
    const li = $("gallery").querySelector(`li[data-id="${job.id}"]`);
    if (li && li.dataset.status !== job.status) fillCard(li, job);
  }

  function markCurrent() {
    for (const li of $("gallery").children) {
      li.classList.toggle("current", current !== null && li.dataset.id === current.id);
    }
  }

  async function refreshGallery(more = false) {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (more && cursor) query.set("cursor", cursor);
    let page;
    try {
      page = await api(`/v1/jobs?${query}`);
    } catch (err) {
      showError(`history: ${err.message}`);
      return [];
    }
    const items = page.jobs.map(card);
    if (more) $("gallery").append(...items);
    else $("gallery").replaceChildren(...items);
    cursor = page.next_cursor;
    $("more").hidden = !cursor;
    $("gallery-empty").hidden = $("gallery").children.length > 0;
    markCurrent();
    return page.jobs;
  }

  // -- start ----------------------------------------------------------------------------
  async function loadServerInfo() {
    try {
      const { models } = await api("/v1/models");
      const model = models[0];
      const d = model.defaults;
      for (const name of NUMBER_FIELDS.filter((n) => n !== "seed")) {
        $(name).placeholder = String(d[name]);
      }
      for (const name of INTERVAL_FIELDS) $(name).placeholder = intervalText(d[name]);
      // only a model that draws first frames has a use for their interval
      $("first-frame-interval").hidden = !model.first_frames;
      $("clip-strength").hidden = !model.first_frames;
      const l = model.limits;
      $("frames").max = l.max_frames;
      $("width").max = l.max_width;
      $("height").max = l.max_height;
      $("steps").max = l.max_steps;
      $("candidates").max = l.max_candidates;
      $("prompt").maxLength = l.max_prompt_chars;
      // a local folder's full path is long and says little; its name is enough (full on hover)
      const local = model.id.startsWith("/") || /^[A-Za-z]:[\\/]/.test(model.id);
      const name = local ? model.id.split(/[\\/]/).filter(Boolean).pop() : model.id;
      $("server-info").textContent = `model: ${name} · ${model.device}`;
      $("server-info").title = model.id;
    } catch (err) {
      $("server-info").textContent = `server unavailable: ${err.message}`;
    }
  }

  async function start() {
    restoreForm();
    $("gen-form").addEventListener("submit", submit);
    $("gen-form").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("gen-form").requestSubmit();
    });
    $("dice").addEventListener("click", () => {
      $("seed").value = String(crypto.getRandomValues(new Uint32Array(1))[0] & 0x7fffffff);
      $("seed").focus();
    });
    $("cancel").addEventListener("click", cancel);
    $("refresh").addEventListener("click", () => refreshGallery());
    $("more").addEventListener("click", () => refreshGallery(true));
    await loadServerInfo();
    const jobs = await refreshGallery();
    // after a reload, pick up where we were: the last job shown, else the newest
    const id = localStorage.getItem(CURRENT_KEY);
    const job = jobs.find((j) => j.id === id) || jobs[0];
    if (id && !jobs.some((j) => j.id === id)) {
      try {
        follow(await api(`/v1/jobs/${id}`));
        return;
      } catch {
        localStorage.removeItem(CURRENT_KEY);
      }
    }
    if (job) follow(job);
  }

  start();
})();
