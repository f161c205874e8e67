// doorwatch console: plain JavaScript, no build step, no third-party code.
//
// Safety rule for this file: data from the server (door names, holder names, notes, titles)
// only ever reaches the page as text -- through el()/text(), which use createTextNode and
// textContent. Nothing here assigns innerHTML/outerHTML or calls insertAdjacentHTML/eval.
"use strict";

(() => {
  const SEVERITIES = ["info", "low", "medium", "high", "critical"];
  const EVENT_KINDS = [
    "door.opened", "door.closed", "door.forced", "door.held_open", "door.held_warning",
    "door.alarm_cleared", "door.locked", "door.unlocked", "access.granted", "access.denied",
    "access.duress", "exit.request", "device.online", "device.offline", "device.heartbeat",
    "camera.motion", "camera.motion_stopped", "camera.tamper", "camera.tamper_cleared",
    "input.active", "input.inactive", "unknown",
  ];
  const ALERT_FILTERS = {
    open: ["active", "acknowledged"],
    active: ["active"],
    resolved: ["resolved"],
    all: ["active", "acknowledged", "resolved"],
  };
  const EVENT_PAGE = 100;
  // The live event log keeps at most this many rows; older ones stay one click away.
  const EVENT_ROWS_MAX = 500;

  const state = {
    user: null,
    csrf: "",
    alerts: new Map(),       // id -> alert, only those matching the list filter
    doors: new Map(),        // door id -> door
    stream: null,
    refreshing: false,
    refreshAgain: false,     // a refresh was asked for while one ran (e.g. the filter changed)
    loadedOnce: false,       // false until the first picture is in: no beeps for what was there
    buffered: [],            // stream messages that arrived during a refresh
    incident: null,          // the alert id shown in the incident view
    incidentDetail: null,
    oldestEventSeq: null,
    newestEventSeq: 0,       // the newest event the log has considered (shown or filtered out)
    eventFilter: {},         // the filters of the rows shown: door, kind, since/until (ms)
    eventsLoad: 0,           // counts loads of the newest page; an older load's answer is dropped
    eventsLoading: false,
    eventsBuffered: [],      // live "events" messages that arrived while the newest page loaded
    eventsTimer: null,
    reconnectTimer: null,
    beeps: 0,
  };

  // ---- DOM helpers: text only ------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function text(node, value) {
    node.textContent = value === null || value === undefined ? "" : String(value);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  // ---- time ------------------------------------------------------------------------------
  //
  // Every time is shown in the site's zone, which the daemon writes into the page, never in
  // the browser's: a district office or a phone set to another zone must read the school's
  // clock. When the two zones differ, times carry the zone's abbreviation ("2:05:09 PM CST").
  // The filter inputs are read as the site's wall time too.

  const DAY_MS = 86400000;
  const BROWSER_ZONE = new Intl.DateTimeFormat().resolvedOptions().timeZone;
  const ZONE_WANTED = (document.querySelector('meta[name="doorwatch-timezone"]') || {}).content || "";
  const SITE_ZONE = knownZone(ZONE_WANTED) || BROWSER_ZONE;
  const SHOW_ZONE = SITE_ZONE !== BROWSER_ZONE;
  const TIME_FORMAT = new Intl.DateTimeFormat(undefined, {
    timeZone: SITE_ZONE, hour: "2-digit", minute: "2-digit", second: "2-digit",
    ...(SHOW_ZONE ? { timeZoneName: "short" } : {}),
  });
  // dateStyle cannot be combined with timeZoneName; the "long" time style carries the short name.
  const DATE_TIME_FORMAT = new Intl.DateTimeFormat(undefined, {
    timeZone: SITE_ZONE, dateStyle: "short", timeStyle: SHOW_ZONE ? "long" : "medium",
  });
  // Numeric wall-clock fields in the site's zone, for arithmetic (never shown).
  const WALL_FORMAT = new Intl.DateTimeFormat("en-US", {
    timeZone: SITE_ZONE, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
    hour: "numeric", minute: "numeric", second: "numeric",
  });

  function knownZone(name) {
    if (!name) return "";
    try {
      // Also canonicalises aliases ("US/Central" is "America/Chicago"), as the browser's is.
      return new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
    } catch (error) {
      return "";  // A zone this browser does not know: fall back to its own, and say so.
    }
  }

  function wallFields(ms) {
    const fields = {};
    for (const part of WALL_FORMAT.formatToParts(new Date(ms))) fields[part.type] = Number(part.value);
    return fields;
  }

  // The site zone's offset from UTC at an instant, in ms (wall clock minus UTC).
  function offsetAt(ms) {
    const w = wallFields(ms);
    const wall = Date.UTC(w.year, w.month - 1, w.day, w.hour % 24, w.minute, w.second);
    return wall - Math.floor(ms / 1000) * 1000;
  }

  function dayKey(ms) {
    const w = wallFields(ms);
    return `${w.year}-${w.month}-${w.day}`;
  }

  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    const sameDay = dayKey(date.getTime()) === dayKey(Date.now());  // the site's day
    return (sameDay ? TIME_FORMAT : DATE_TIME_FORMAT).format(date);
  }

  function ago(iso) {
    if (!iso) return "";
    const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (seconds < 45) return "just now";
    if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min ago`;
    return `${Math.floor(seconds / 86400)} d ago`;
  }

  // A datetime-local value ("2026-03-08T02:30") read as the site's wall time, as a UTC ISO
  // string. A wall time the clocks skipped (spring forward) is moved on by the gap, as a
  // clock would (02:30 becomes 03:30 daylight time); one they showed twice (fall back) is the
  // first. ``note`` says which happened, for the user.
  function siteWallToUtc(value) {
    const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value || "");
    if (!match) return null;
    const [year, month, day, hour, minute, second, fraction] = match.slice(1).map((p) => Number(p || 0));
    const millis = match[7] ? Math.round(fraction * 10 ** (3 - match[7].length)) : 0;
    const wall = Date.UTC(year, month - 1, day, hour, minute, second, millis);
    if (Number.isNaN(wall)) return null;
    // A zone changes its offset at most once within a day either side of a wall time, so
    // the offsets in force then are the only candidates: keep those that give this wall time.
    const before = offsetAt(wall - DAY_MS);
    const after = offsetAt(wall + DAY_MS);
    const fits = [...new Set([before, after])]
      .map((offset) => wall - offset)
      .filter((instant) => offsetAt(instant) === wall - instant)
      .sort((a, b) => a - b);
    let instant = fits[0];
    let note = "";
    if (fits.length === 0) {
      instant = wall - before;
      note = `${value.replace("T", " ")} did not happen in ${SITE_ZONE} (the clocks went forward); read as ${DATE_TIME_FORMAT.format(new Date(instant))}.`;
    } else if (fits.length > 1) {
      note = `${value.replace("T", " ")} happened twice in ${SITE_ZONE} (the clocks went back); the first, ${DATE_TIME_FORMAT.format(new Date(instant))}, is used.`;
    }
    return { iso: new Date(instant).toISOString(), note };
  }

  // For the browser tests: the conversions the console uses, in the zone it uses.
  window.doorwatchTime = Object.freeze({ zone: SITE_ZONE, when, siteWallToUtc });

  // ---- API -------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options = {}) {
    const init = { method: options.method || "GET", headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" };
    if (init.method !== "GET") {
      init.headers["X-CSRF-Token"] = state.csrf;
      if (options.body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(options.body);
      }
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, "The console cannot reach doorwatch. Check the network.");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (response.status === 401 && !options.loginAttempt) {
      sessionEnded("Your session has ended. Please log in again.");
      throw new ApiError(401, "login required");
    }
    if (!response.ok) {
      throw new ApiError(response.status, (data && data.error) || `HTTP ${response.status}`);
    }
    return data;
  }

  // ---- login and session -----------------------------------------------------------------

  function showLogin(notice) {
    document.body.classList.remove("booting");
    state.user = null;
    state.csrf = "";
    document.body.classList.remove("role-guard", "role-sro", "role-admin");
    show($("app-view"), false);
    show($("incident"), false);
    show($("logout"), false);
    show($("sound"), false);
    show($("conn"), false);
    text($("whoami"), "");
    show($("login-view"), true);
    const box = $("login-notice");
    text(box, notice || "");
    show(box, Boolean(notice));
    text($("login-error"), "");
    $("login-password").value = "";
    $("login-name").focus();
  }

  function sessionEnded(notice) {
    stopStream();
    if (state.user !== null || $("login-view").hidden) showLogin(notice);
  }

  async function startSession(info) {
    document.body.classList.remove("booting");
    state.user = info.user;
    state.csrf = info.csrf_token;
    document.body.classList.remove("role-guard", "role-sro", "role-admin");
    document.body.classList.add(`role-${info.user.role}`);
    text($("whoami"), `${info.user.name} (${info.user.role})`);
    show($("login-view"), false);
    show($("app-view"), true);
    show($("logout"), true);
    updateSoundButton();
    state.alerts.clear();
    state.doors.clear();
    state.loadedOnce = false;
    renderAlerts();
    renderDoors();
    connectStream();  // its "open" handler loads the current picture and the event log
  }

  async function onLogin(event) {
    event.preventDefault();
    ensureAudio();  // a click is the gesture browsers need before sound may play
    const name = $("login-name").value.trim();
    const password = $("login-password").value;
    const button = $("login-submit");
    button.disabled = true;
    text($("login-error"), "");
    try {
      const info = await api("/api/v1/login", { method: "POST", body: { name, password }, loginAttempt: true });
      $("login-password").value = "";
      await startSession(info);
    } catch (error) {
      text($("login-error"), error.message);
    } finally {
      button.disabled = false;
    }
  }

  async function onLogout() {
    try {
      await api("/api/v1/logout", { method: "POST" });
    } catch (error) {
      // Logged out either way.
    }
    stopStream();
    showLogin("You are logged out.");
  }

  // ---- live stream -----------------------------------------------------------------------

  function setConnection(status) {
    const node = $("conn");
    show(node, true);
    node.className = `conn conn-${status}`;
    text(node, { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline" }[status]);
  }

  function connectStream() {
    stopStream();
    setConnection("connecting");
    const source = new EventSource("/api/v1/stream");
    state.stream = source;
    source.addEventListener("open", () => {
      if (state.stream !== source) return;
      setConnection("live");
      // First connection or a reconnection: load the current picture, so nothing that
      // happened while we were away is missed. The stream is subscribed by now, so events
      // journaled after these loads arrive on it.
      refreshAll();
      loadEvents(false);
    });
    source.addEventListener("alert", (message) => onStreamMessage("alert", message.data));
    source.addEventListener("door", (message) => onStreamMessage("door", message.data));
    source.addEventListener("events", (message) => onEventsMessage(message.data));
    source.addEventListener("error", () => {
      if (state.stream !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (the server answered with an error, e.g. 401): find out why.
        setConnection("offline");
        state.stream = null;
        scheduleReconnect();
      } else {
        setConnection("reconnecting");
      }
    });
  }

  function stopStream() {
    if (state.stream) state.stream.close();
    state.stream = null;
    if (state.reconnectTimer) clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
  }

  function scheduleReconnect() {
    if (state.reconnectTimer) return;
    state.reconnectTimer = setTimeout(async () => {
      state.reconnectTimer = null;
      if (!state.user) return;
      try {
        await api("/api/v1/session");  // 401 here sends us to the login form
        connectStream();
      } catch (error) {
        if (error.status !== 401) scheduleReconnect();
      }
    }, 3000);
  }

  function onStreamMessage(topic, raw) {
    let data;
    try {
      data = JSON.parse(raw);
    } catch (error) {
      return;
    }
    if (state.refreshing) {
      state.buffered.push([topic, data]);
      return;
    }
    applyMessage(topic, data, true);
  }

  function applyMessage(topic, data, live) {
    if (topic === "alert") onAlertChange(data, live);
    else if (topic === "door") onDoorChange(data);
  }

  async function refreshAll() {
    if (!state.user) return;
    if (state.refreshing) {
      state.refreshAgain = true;
      return;
    }
    state.refreshing = true;
    state.buffered = [];
    try {
      const filter = $("alert-state").value;
      const [alerts, doors] = await Promise.all([
        api(`/api/v1/alerts?state=${encodeURIComponent(filter)}&limit=500`),
        api("/api/v1/doors"),
      ]);
      // A critical alert raised while the stream was down still sounds once it is caught up.
      const missed = state.loadedOnce && alerts.alerts.some(
        (a) => a.severity === "critical" && a.state === "active" && !state.alerts.has(a.id));
      state.alerts.clear();
      for (const alert of alerts.alerts) state.alerts.set(alert.id, alert);
      if (missed) beep();
      state.loadedOnce = true;
      state.doors.clear();
      for (const door of doors.doors) state.doors.set(door.door, door);
      fillDoorFilter();
    } catch (error) {
      if (error.status === 401) return;
    } finally {
      state.refreshing = false;
      const buffered = state.buffered;
      state.buffered = [];
      // These arrived live while the lists were loading.
      for (const [topic, data] of buffered) applyMessage(topic, data, true);
      renderAlerts();
      renderDoors();
      if (state.incident) loadIncident(state.incident);
      if (state.refreshAgain) {
        state.refreshAgain = false;
        refreshAll();
      }
    }
  }

  // ---- alerts ----------------------------------------------------------------------------

  function matchesFilter(alert) {
    return ALERT_FILTERS[$("alert-state").value].includes(alert.state);
  }

  function onAlertChange(change, live) {
    const alert = change.alert;
    if (!alert || !alert.id) return;
    const previous = state.alerts.get(alert.id);
    if (previous && previous.updated_at && alert.updated_at && alert.updated_at < previous.updated_at) return;
    if (matchesFilter(alert)) state.alerts.set(alert.id, alert);
    else state.alerts.delete(alert.id);
    const becameCritical = alert.severity === "critical" && alert.state === "active"
      && (change.action === "raised" || (change.action === "escalated" && (!previous || previous.severity !== "critical")));
    if (live && becameCritical) beep();
    renderAlerts(live && change.action === "raised" ? alert.id : null);
    if (state.incident === alert.id) loadIncident(alert.id);
  }

  function sortAlerts(list) {
    const stateRank = { active: 0, acknowledged: 1, resolved: 2 };
    return list.sort((a, b) =>
      (stateRank[a.state] - stateRank[b.state])
      || (SEVERITIES.indexOf(b.severity) - SEVERITIES.indexOf(a.severity))
      || String(b.raised_at).localeCompare(String(a.raised_at)));
  }

  function severityLabel(severity) {
    return el("span", `sev sev-${SEVERITIES.includes(severity) ? severity : "info"}`, String(severity || "info").toUpperCase());
  }

  function alertItem(alert, fresh) {
    const severity = SEVERITIES.includes(alert.severity) ? alert.severity : "info";
    const item = el("li", `alert sev-${severity} state-${alert.state}${fresh ? " fresh" : ""}`);
    item.dataset.id = alert.id;
    const button = el("button", "alert-open");
    button.type = "button";
    const meta = [];
    if (alert.door_name || alert.door) meta.push(alert.door_name || alert.door);
    meta.push(when(alert.raised_at));
    if (alert.occurrences > 1) meta.push(`×${alert.occurrences}`);
    const status = alert.state === "active"
      ? (alert.condition_cleared ? "cleared, not acknowledged" : "ACTIVE")
      : alert.state === "acknowledged"
        ? `acknowledged by ${alert.acknowledged_by || "?"}`
        : `resolved${alert.resolved_by ? ` by ${alert.resolved_by}` : ""}`;
    button.append(
      el("span", "alert-top", severityLabel(alert.severity), el("span", "alert-title", alert.title)),
      el("span", "alert-meta", meta.join(" · ")),
      el("span", "alert-status", status),
    );
    button.addEventListener("click", () => openIncident(alert.id));
    item.append(button);
    return item;
  }

  function renderAlerts(freshId) {
    const list = $("alert-list");
    clear(list);
    const alerts = sortAlerts([...state.alerts.values()]);
    for (const alert of alerts) list.append(alertItem(alert, alert.id === freshId));
    const filter = $("alert-state").value;
    text($("alerts-empty"), filter === "open" ? "No open alerts." : "No alerts.");
    show($("alerts-empty"), alerts.length === 0);
    const unacknowledged = alerts.filter((a) => a.state === "active").length;
    text($("alert-count"), unacknowledged ? String(unacknowledged) : "");
    const critical = alerts.some((a) => a.state === "active" && a.severity === "critical");
    document.body.classList.toggle("has-critical", critical);
    document.title = `${unacknowledged ? `(${unacknowledged}) ` : ""}doorwatch · ${document.querySelector(".site").textContent}`;
  }

  // ---- sound -----------------------------------------------------------------------------

  let audio = null;
  let soundWanted = true;

  function ensureAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume().then(updateSoundButton, () => {});
    updateSoundButton();
  }

  function updateSoundButton() {
    const button = $("sound");
    if (!state.user) return;
    show(button, true);
    const running = audio && audio.state === "running" && soundWanted;
    text(button, running ? "Sound on" : "Enable sound");
    button.classList.toggle("warn", !running);
  }

  function beep() {
    state.beeps += 1;
    document.body.dataset.beeps = String(state.beeps);
    if (!audio || !soundWanted) return;
    // Three short square-wave tones: hard to miss, and no audio file to download.
    const start = audio.currentTime + 0.05;
    for (let i = 0; i < 3; i += 1) {
      const at = start + i * 0.3;
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      oscillator.type = "square";
      oscillator.frequency.value = i === 1 ? 1175 : 880;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.22);
    }
  }

  function onSoundButton() {
    if (audio && audio.state === "running" && soundWanted) {
      soundWanted = false;
    } else {
      soundWanted = true;
      ensureAudio();
      beep();
    }
    updateSoundButton();
  }

  // ---- incident view ---------------------------------------------------------------------

  function openIncident(id) {
    state.incident = id;
    state.incidentDetail = null;
    $("incident-note").value = "";
    text($("action-error"), "");
    show($("incident"), true);
    document.body.classList.add("incident-open");
    loadIncident(id);
  }

  function closeIncident() {
    state.incident = null;
    state.incidentDetail = null;
    show($("incident"), false);
    document.body.classList.remove("incident-open");
  }

  async function loadIncident(id) {
    try {
      const detail = await api(`/api/v1/alerts/${encodeURIComponent(id)}`);
      if (state.incident !== id) return;
      state.incidentDetail = detail;
      renderIncident(detail);
    } catch (error) {
      if (state.incident === id && error.status !== 401) text($("action-error"), error.message);
    }
  }

  function fact(list, term, value) {
    if (value === null || value === undefined || value === "") return;
    list.append(el("dt", null, term), el("dd", null, value));
  }

  function renderIncident(detail) {
    const alert = detail.alert;
    const badge = $("incident-severity");
    badge.className = `sev sev-${SEVERITIES.includes(alert.severity) ? alert.severity : "info"}`;
    text(badge, String(alert.severity).toUpperCase());
    text($("incident-title"), alert.title);

    const facts = $("incident-facts");
    clear(facts);
    const door = alert.door ? state.doors.get(alert.door) : null;
    fact(facts, "Door", alert.door_name || (door && door.name) || alert.door);
    if (door) fact(facts, "Door now", doorStatus(door).label + (door.since ? ` since ${when(door.since)}` : ""));
    fact(facts, "Zone", alert.zone);
    fact(facts, "Camera", alert.camera);
    fact(facts, "State", alert.state + (alert.condition_cleared ? " (condition cleared)" : " (condition not cleared)"));
    fact(facts, "Raised", `${when(alert.raised_at)} (${ago(alert.raised_at)})`);
    if (alert.occurrences > 1) fact(facts, "Occurrences", alert.occurrences);
    if (alert.acknowledged_at) fact(facts, "Acknowledged", `${alert.acknowledged_by || "?"} at ${when(alert.acknowledged_at)}`);
    if (alert.resolved_at) fact(facts, "Resolved", `${alert.resolved_by || "automatically"} at ${when(alert.resolved_at)}`);
    fact(facts, "Rule", alert.rule);
    fact(facts, "Alert id", alert.id);

    const box = $("incident-snapshot-box");
    const image = $("incident-snapshot");
    if (alert.has_snapshot) {
      const source = `/api/v1/alerts/${encodeURIComponent(alert.id)}/snapshot`;
      if (image.getAttribute("src") !== source) image.src = source;
      text($("incident-snapshot-caption"), `${alert.camera || "Camera"} at ${when(alert.raised_at)}`);
      show(box, true);
    } else {
      image.removeAttribute("src");
      show(box, false);
    }

    renderActions(alert);

    const notes = $("incident-notes");
    clear(notes);
    for (const note of alert.notes || []) {
      notes.append(el("li", null, el("span", "note-meta", `${note.by} · ${when(note.at)}`), el("span", "note-text", note.text)));
    }
    if (!(alert.notes || []).length) notes.append(el("li", "empty", "No notes."));

    const audit = $("audit-rows");
    clear(audit);
    for (const entry of detail.audit || []) {
      const extra = Object.entries(entry.detail || {})
        .filter(([, value]) => value !== null && value !== undefined)
        .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
        .join("; ");
      audit.append(el("tr", null,
        el("td", null, when(entry.at)), el("td", null, entry.action), el("td", null, entry.actor),
        el("td", null, entry.address || ""), el("td", "detail", extra)));
    }
    const deliveries = $("delivery-rows");
    clear(deliveries);
    for (const delivery of detail.deliveries || []) {
      const sent = delivery.sent_at ? when(new Date(delivery.sent_at * 1000).toISOString()) : "";
      deliveries.append(el("tr", null,
        el("td", null, delivery.target), el("td", null, delivery.state), el("td", null, delivery.attempts),
        el("td", null, sent), el("td", "detail", delivery.last_error || "")));
    }
    if (!(detail.deliveries || []).length) deliveries.append(el("tr", null, el("td", "empty", "None.")));

    const download = $("incident-download");
    if (download.dataset.url) URL.revokeObjectURL(download.dataset.url);
    const url = URL.createObjectURL(new Blob([JSON.stringify(detail, null, 2)], { type: "application/json" }));
    download.dataset.url = url;
    download.href = url;
    download.download = `doorwatch-${alert.id}.json`;
    const one = `alert=${encodeURIComponent(alert.id)}`;
    $("incident-export-csv").href = `/api/v1/alerts/export?format=csv&${one}`;
    $("incident-export-json").href = `/api/v1/alerts/export?format=json&${one}`;
  }

  function isSro() {
    return state.user && (state.user.role === "sro" || state.user.role === "admin");
  }

  function renderActions(alert) {
    const ack = $("ack-button");
    const resolve = $("resolve-button");
    const hint = $("force-hint");
    const open = alert.state !== "resolved";
    show($("action-form"), open);
    ack.disabled = alert.state !== "active";
    resolve.disabled = !open;
    let message = "";
    if (open && !alert.condition_cleared) {
      message = isSro()
        ? "The condition has not cleared yet. Acknowledging or resolving now overrides it and needs a note."
        : "The condition has not cleared yet (the door may still be open). An SRO can override it with a note.";
    }
    text(hint, message);
    show(hint, Boolean(message));
    ack.textContent = open && !alert.condition_cleared && isSro() ? "Force-acknowledge" : "Acknowledge";
  }

  async function act(action) {
    const detail = state.incidentDetail;
    if (!detail) return;
    const alert = detail.alert;
    const note = $("incident-note").value.trim();
    const error = $("action-error");
    text(error, "");
    if (!alert.condition_cleared && isSro() && !note) {
      text(error, "Write a note saying why you override a condition that has not cleared.");
      $("incident-note").focus();
      return;
    }
    const buttons = [$("ack-button"), $("resolve-button")];
    for (const button of buttons) button.disabled = true;
    try {
      const result = await api(`/api/v1/alerts/${encodeURIComponent(alert.id)}/${action}`, {
        method: "POST",
        body: note ? { note } : {},
      });
      $("incident-note").value = "";
      onAlertChange({ action: action === "ack" ? "acknowledged" : "resolved", alert: result.alert }, false);
      await loadIncident(alert.id);
    } catch (failure) {
      if (failure.status !== 401) text(error, failure.message);
      renderActions(alert);
    }
  }

  // ---- door board ------------------------------------------------------------------------

  function doorStatus(door) {
    const alarms = door.alarms || [];
    if (alarms.includes("forced")) return { key: "forced", label: "FORCED" };
    if (alarms.includes("held")) return { key: "held", label: "HELD OPEN" };
    if (alarms.includes("held_warning")) return { key: "held-warning", label: "Held (warning)" };
    if (door.position === "open") return { key: "open", label: "Open" };
    if (door.position === "closed") return { key: "closed", label: "Closed" };
    return { key: "unknown", label: "Unknown" };
  }

  function onDoorChange(door) {
    if (!door || !door.door) return;
    const previous = state.doors.get(door.door);
    state.doors.set(door.door, door);
    if (!previous) fillDoorFilter();
    renderDoors();
  }

  function accessLine(access) {
    if (!access) return "No access recorded";
    const who = access.holder || access.credential || "unknown card";
    const card = access.holder && access.credential ? ` (${access.credential})` : "";
    const verdict = access.granted ? "granted" : access.kind === "access.duress" ? "DURESS" : "denied";
    const direction = access.direction ? `, ${access.direction}` : "";
    return `Last access: ${who}${card} ${verdict}${direction} · ${when(access.at)}`;
  }

  function doorCard(door) {
    const status = doorStatus(door);
    const item = el("li", `door door-${status.key}`);
    item.dataset.door = door.door;
    item.append(
      el("div", "door-head", el("span", "door-name", door.name || door.door), el("span", "door-state", status.label)),
      el("div", "door-zone", [door.zone, door.locked === true ? "locked" : door.locked === false ? "unlocked" : null].filter(Boolean).join(" · ")),
      el("div", "door-since", door.since ? `since ${when(door.since)} (${ago(door.since)})` : "no state yet"),
      el("div", "door-access", accessLine(door.last_access)),
    );
    return item;
  }

  function renderDoors() {
    const board = $("door-board");
    clear(board);
    const rank = { forced: 0, held: 1, "held-warning": 2, open: 3, unknown: 4, closed: 5 };
    const doors = [...state.doors.values()];
    // Alarms first, so a guard's phone shows what matters without scrolling.
    doors.sort((a, b) => rank[doorStatus(a).key] - rank[doorStatus(b).key]);
    for (const door of doors) board.append(doorCard(door));
    show($("doors-empty"), doors.length === 0);
  }

  function fillDoorFilter() {
    const select = $("filter-door");
    const chosen = select.value;
    while (select.options.length > 1) select.remove(1);
    for (const door of state.doors.values()) {
      const option = el("option", null, door.name || door.door);
      option.value = door.door;
      select.append(option);
    }
    select.value = chosen;
  }

  // ---- event log -------------------------------------------------------------------------

  function eventQuery(before) {
    const params = new URLSearchParams({ limit: String(EVENT_PAGE) });
    const door = $("filter-door").value;
    const kind = $("filter-kind").value;
    const since = siteWallToUtc($("filter-since").value);
    const until = siteWallToUtc($("filter-until").value);
    const notes = [since, until].filter((t) => t && t.note).map((t) => t.note);
    text($("filter-note"), notes.join(" "));
    show($("filter-note"), notes.length > 0);
    if (door) params.set("door", door);
    if (kind) params.set("kind", kind);
    if (since) params.set("since", since.iso);
    if (until) params.set("until", until.iso);
    if (before !== null && before !== undefined) params.set("before", String(before));
    const filter = {
      door, kind, since: since ? Date.parse(since.iso) : null, until: until ? Date.parse(until.iso) : null,
    };
    return [params.toString(), filter];
  }

  function eventRow(event, fresh) {
    const door = event.door ? state.doors.get(event.door) : null;
    const kind = `kind-${String(event.kind).replace(/[^a-z_]/g, "-")}`;
    const row = el("tr", fresh ? `${kind} fresh` : kind,
      el("td", null, when(event.received_at)),
      el("td", null, event.kind),
      el("td", "wrap", door ? door.name : event.door || event.door_ref || ""),
      el("td", "wrap", event.holder || ""),
      el("td", null, event.credential || ""),
      el("td", null, event.direction || ""),
      el("td", null, event.source),
    );
    row.dataset.seq = String(event.seq);
    return row;
  }

  async function loadEvents(more) {
    if (!state.user) return;
    const error = $("events-error");
    text(error, "");
    const [query, filter] = eventQuery(more ? state.oldestEventSeq : null);
    if (!more) {
      state.eventsLoad += 1;
      state.eventsLoading = true;
      state.eventsBuffered = [];
    }
    const load = state.eventsLoad;
    try {
      const data = await api(`/api/v1/events?${query}`);
      if (load !== state.eventsLoad) return;  // a newer load of the newest page replaced this
      const rows = $("event-rows");
      if (!more) {
        clear(rows);
        state.eventFilter = filter;
        state.newestEventSeq = data.events.length ? data.events[0].seq : 0;
      }
      for (const event of data.events) rows.append(eventRow(event, false));
      if (data.events.length) state.oldestEventSeq = data.events[data.events.length - 1].seq;
      show($("events-more"), data.events.length === EVENT_PAGE);
      show($("events-empty"), rows.childElementCount === 0);
    } catch (failure) {
      if (failure.status !== 401) text(error, failure.message);
    } finally {
      if (!more && load === state.eventsLoad) {
        state.eventsLoading = false;
        const buffered = state.eventsBuffered;
        state.eventsBuffered = [];
        for (const message of buffered) addLiveEvents(message);
      }
    }
  }

  function eventMatches(event) {
    const filter = state.eventFilter;
    if (filter.door && event.door !== filter.door) return false;
    if (filter.kind && event.kind !== filter.kind) return false;
    const at = Date.parse(event.received_at);
    if (filter.since !== null && filter.since !== undefined && !(at >= filter.since)) return false;
    if (filter.until !== null && filter.until !== undefined && !(at < filter.until)) return false;
    return true;
  }

  function onEventsMessage(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch (error) {
      return;
    }
    if (!message || !Array.isArray(message.events)) return;
    if (state.eventsLoading) state.eventsBuffered.push(message);
    else addLiveEvents(message);
  }

  // New journal events, oldest first, arrive a few times a second: those matching the filters
  // go on top of the log. When the daemon left some out (a burst), the newest page is reloaded.
  function addLiveEvents(message) {
    if (message.omitted > 0) {
      scheduleEventsRefresh();
      return;
    }
    const rows = $("event-rows");
    let added = 0;
    for (const event of message.events) {
      if (!event || !(event.seq > state.newestEventSeq)) continue;  // already in the page
      state.newestEventSeq = event.seq;
      if (!eventMatches(event)) continue;
      rows.prepend(eventRow(event, true));
      added += 1;
    }
    if (!added) return;
    let trimmed = false;
    while (rows.childElementCount > EVENT_ROWS_MAX) {
      rows.lastElementChild.remove();
      trimmed = true;
    }
    if (trimmed) {
      state.oldestEventSeq = Number(rows.lastElementChild.dataset.seq);
      show($("events-more"), true);
    }
    show($("events-empty"), false);
  }

  function scheduleEventsRefresh() {
    // A closed time range in the past gains no new events: nothing to reload.
    const until = state.eventFilter.until;
    if ((until !== null && until !== undefined && until <= Date.now()) || state.eventsTimer) return;
    state.eventsTimer = setTimeout(() => {
      state.eventsTimer = null;
      loadEvents(false);
    }, 1000);
  }

  // ---- views and start-up ----------------------------------------------------------------

  function setView(view) {
    document.body.dataset.view = view;
    for (const button of document.querySelectorAll(".tabs button")) {
      button.classList.toggle("active", button.dataset.view === view);
      button.setAttribute("aria-pressed", String(button.dataset.view === view));
    }
    if (view === "events") loadEvents(false);
  }

  function wire() {
    $("login-form").addEventListener("submit", onLogin);
    $("logout").addEventListener("click", onLogout);
    $("sound").addEventListener("click", onSoundButton);
    for (const button of document.querySelectorAll(".tabs button")) {
      button.addEventListener("click", () => setView(button.dataset.view));
    }
    $("alert-state").addEventListener("change", () => refreshAll());
    $("incident-close").addEventListener("click", closeIncident);
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && state.incident) closeIncident();
    });
    $("ack-button").addEventListener("click", () => act("ack"));
    $("resolve-button").addEventListener("click", () => act("resolve"));
    $("action-form").addEventListener("submit", (event) => event.preventDefault());
    $("event-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      loadEvents(false);
    });
    $("filter-reset").addEventListener("click", () => {
      $("event-filters").reset();
      loadEvents(false);
    });
    $("events-more").addEventListener("click", () => loadEvents(true));
    text($("filter-tz"), SITE_ZONE === knownZone(ZONE_WANTED)
      ? `Times in ${SITE_ZONE}`
      : `Times in ${SITE_ZONE} (this browser does not know the site's zone ${ZONE_WANTED || "?"})`);
    const kinds = $("filter-kind");
    for (const kind of EVENT_KINDS) {
      const option = el("option", null, kind);
      option.value = kind;
      kinds.append(option);
    }
    // Relative times ("3 min ago") age on screen.
    setInterval(() => {
      if (!state.user) return;
      renderDoors();
    }, 30000);
    setView("alerts");
  }

  async function boot() {
    wire();
    try {
      const info = await api("/api/v1/session", { loginAttempt: true });
      await startSession(info);
    } catch (error) {
      showLogin(error.status === 401 ? "" : error.message);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
