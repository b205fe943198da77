/* execplanner's web page: the calendar, the question, booking and following, sign-in.
 *
 * Plain JavaScript, no build step, no library. Everything goes through the planner's public
 * HTTP API (GET /calendar, /calendar/version, /nodes, /bookings; POST /accepts, /offersets,
 * /sessions/{uuid}; /uws/jobs), with a bearer token from the site's OpenID Connect issuer
 * (authorization code flow with PKCE) once signed in. docs/web.md describes it.
 */
"use strict";
(() => {
  const config = readConfig();
  const $ = (id) => document.getElementById(id);
  const ROW = 22;                       // px per calendar row
  const BUCKETS = 288;                  // time buckets across the span (5 min at 24 h)
  const POLL_MS = 3000;                 // how often /calendar/version is asked
  const REFETCH_MS = 60000;             // the window moves: the calendar is fetched again at least this often
  const GROUP_THRESHOLD = 30;           // more nodes than this are grouped by default
  const EB_DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml";
  const EB_NOTEBOOK = "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0.yaml";
  const EB_HELM = "uri://kubernetes-helm";
  const EB_SIMPLE_COMPUTE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-1.0.yaml";
  const NOTE_NOTEBOOK = "uri://jupyter-notebook";
  const METRICS = ["cores", "memory", "gpus"];
  const ACTIVE = new Set(["OFFERED", "ACCEPTED", "WAITING", "PREPARING", "RUNNING", "QUEUED", "EXECUTING", "PENDING",
    "BOOKED", "STARTING"]);
  const COLORS = {
    free: "#eef2f7", none: "#f6f8fa", full: "#17306b", mine: "#f59e0b", running: "#22c55e", offer: "#0f766e",
    now: "#dc2626", focus: "#9a3412", text: "#1b1f24", grid: "#d0d7de", label: "#57606a",
  };
  const SHADES = [[0.25, "#cfe0f5", "up to 25 %"], [0.5, "#93bbea", "up to 50 %"], [0.75, "#5491d9", "up to 75 %"],
    [0.995, "#2f6fc4", "more than 75 %"]];

  const state = {
    session: null,         // {token, user, expires}
    calendar: null,        // the last GET /calendar
    nodeInfo: new Map(),   // name -> {labels, ready}
    groupLabels: [],
    model: null,
    rows: [],
    groupBy: null,         // null: not chosen yet (automatic)
    expanded: new Set(),
    metric: "cores",
    spanHours: 24,
    version: null,
    bookings: [],
    candidates: [],        // offers drawn on the calendar: {label, start, end, nodes, cores, memory}
    currentOfferset: null,
    focusRow: 0,
    focusTime: null,
    support: {notebook: false, gpuMin: null, gpuMax: null, brokerGpus: false},
    lastFetch: 0,
    firstPaintMs: null,
    confirming: null,      // the booking whose cancel waits for confirmation
  };

  // -- settings, formatting and units ------------------------------------------------------------------

  function readConfig() {
    try {
      return JSON.parse(document.getElementById("config").textContent) || {};
    } catch (e) {
      return {};
    }
  }

  const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  const fmtDay = new Intl.DateTimeFormat(undefined, {weekday: "short", day: "numeric", month: "short"});
  const fmtClock = new Intl.DateTimeFormat(undefined, {hour: "2-digit", minute: "2-digit"});
  const fmtFull = new Intl.DateTimeFormat(undefined, {weekday: "short", day: "numeric", month: "short",
    hour: "2-digit", minute: "2-digit"});

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function utcText(ms) {
    return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function isoUtc(ms) {
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  function localText(ms) {
    const d = new Date(ms), now = new Date();
    return d.toDateString() === now.toDateString() ? `today ${fmtClock.format(d)}` : fmtFull.format(d);
  }

  function timeEl(iso) {
    if (!iso) return el("span", {class: "muted", text: "—"});
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) return el("span", {text: iso});
    return el("time", {datetime: isoUtc(ms), title: utcText(ms), text: localText(ms)});
  }

  function relative(ms) {
    const s = Math.round((ms - Date.now()) / 1000);
    if (Math.abs(s) < 45) return "now";
    const text = fmtDuration(Math.abs(s));
    return s > 0 ? `in ${text}` : `${text} ago`;
  }

  function fmtDuration(seconds) {
    seconds = Math.round(seconds);
    if (seconds < 60) return `${seconds} s`;
    const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600), m = Math.round(seconds % 3600 / 60);
    const parts = [];
    if (d) parts.push(`${d} d`);
    if (h) parts.push(`${h} h`);
    if (m && d === 0) parts.push(`${m} min`);
    return parts.join(" ") || "0 min";
  }

  const SUFFIX = {"": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30,
    Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60, m: 1e-3, u: 1e-6, n: 1e-9};

  /** A Kubernetes quantity ("64Gi", "500m", "2", 16) as a number (bytes, cores ...); NaN if unreadable. */
  function quantity(v) {
    if (typeof v === "number") return v;
    if (v === null || v === undefined) return 0;
    const m = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Z]*)\s*$/.exec(String(v));
    if (!m || !(m[2] in SUFFIX)) return NaN;
    return parseFloat(m[1]) * SUFFIX[m[2]];
  }

  function fmtCores(c) {
    if (!Number.isFinite(c)) return "? cores";
    const n = +c.toFixed(c < 10 ? 2 : 1);
    return `${n} ${n === 1 ? "core" : "cores"}`;
  }

  function fmtBytes(b) {
    if (!Number.isFinite(b)) return "? bytes";
    const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let i = 0;
    while (Math.abs(b) >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    const n = Number.isInteger(b) ? b : +b.toFixed(b < 10 ? 1 : 0);
    return `${n} ${units[i]}`;
  }

  function fmtGpus(g) {
    return `${g} ${g === 1 ? "GPU" : "GPUs"}`;
  }

  function fmtMetric(metric, v) {
    return metric === "cores" ? fmtCores(v) : metric === "memory" ? fmtBytes(v) : fmtGpus(Math.round(v));
  }

  function sizeText(cores, memory, gpus) {
    const parts = [];
    if (cores !== null && cores !== undefined) parts.push(fmtCores(quantity(cores)));
    if (memory !== null && memory !== undefined) parts.push(fmtBytes(quantity(memory)));
    if (gpus) parts.push(fmtGpus(+gpus));
    return parts.join(" · ");
  }

  /** ISO 8601 durations (PT1H30M) and the note's forms (10m, 9h30m, 60s) in seconds; NaN if neither. */
  function apiSeconds(text) {
    if (typeof text === "number") return text;
    const t = String(text || "").trim();
    let m = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(t);
    if (m && t.length > 1) return (+(m[1] || 0)) * 86400 + (+(m[2] || 0)) * 3600 + (+(m[3] || 0)) * 60 + (+(m[4] || 0));
    return humanSeconds(t);
  }

  /** What people type: "1 h 30 min", "90m", "2 hours", "1.5h", "1d", "45 s"; null if not that. */
  function humanSeconds(text) {
    const t = String(text || "").trim().toLowerCase();
    if (!t) return null;
    const unit = {d: 86400, day: 86400, days: 86400, h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600, m: 60,
      min: 60, mins: 60, minute: 60, minutes: 60, s: 1, sec: 1, secs: 1, second: 1, seconds: 1};
    const re = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/g;
    let total = 0, used = 0, m;
    while ((m = re.exec(t)) !== null) {
      if (!(m[2] in unit)) return null;
      total += parseFloat(m[1]) * unit[m[2]];
      used += m[0].length;
    }
    return used === t.replace(/^\s+/, "").length && used > 0 ? Math.round(total) : null;
  }

  function noteDuration(seconds) {   // the note's own form: 1h30m, 45m, 20s
    const h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    return `${h ? h + "h" : ""}${m ? m + "m" : ""}${s || (!h && !m) ? s + "s" : ""}`;
  }

  function isoDuration(seconds) {
    const h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    return `PT${h ? h + "H" : ""}${m ? m + "M" : ""}${s || (!h && !m) ? s + "S" : ""}`;
  }

  /** Memory as people write it ("4 GiB", "512 MiB", "8 GB", "4") as a quantity; anything else as typed. */
  function memoryQuantity(text) {
    const t = String(text || "").trim();
    if (!t) return null;
    const m = /^(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB|TiB|PiB|Ki|Mi|Gi|Ti|Pi|kB|KB|MB|GB|TB|PB|k|K|M|G|T|P)?$/.exec(t);
    if (!m) return t;
    const map = {KiB: "Ki", MiB: "Mi", GiB: "Gi", TiB: "Ti", PiB: "Pi", kB: "k", KB: "k", K: "k", MB: "M", GB: "G",
      TB: "T", PB: "P"};
    const unit = m[2] === undefined ? "Gi" : (map[m[2]] || m[2]);
    return m[1] + unit;
  }

  function durationText(text) {      // a duration field, for /accepts (the note's form) or as typed
    const t = String(text || "").trim();
    if (!t) return null;
    const s = humanSeconds(t);
    return s ? noteDuration(s) : t;
  }

  function durationIso(text) {
    const t = String(text || "").trim();
    if (!t) return null;
    const s = humanSeconds(t);
    return s ? isoDuration(s) : t;
  }

  function coresValue(text) {
    const t = String(text || "").trim();
    if (!t) return null;
    return /^\d+$/.test(t) ? Number(t) : t;
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  // -- signing in: OpenID Connect authorization code flow with PKCE -----------------------------------

  const SESSION_KEY = "execplanner.session";
  const PKCE_KEY = "execplanner.pkce";

  function b64url(bytes) {
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function randomString(n) {
    const a = new Uint8Array(n);
    crypto.getRandomValues(a);
    return b64url(a);
  }

  async function challengeOf(verifier) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    return b64url(new Uint8Array(digest));
  }

  function claimsOf(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(decodeURIComponent(escape(atob(part + "===".slice((part.length + 3) % 4)))));
    } catch (e) {
      return {};
    }
  }

  function redirectUri() {
    return location.origin + location.pathname;
  }

  function loadSession() {
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      if (s && s.token && (!s.expires || s.expires > Date.now() + 5000)) return s;
    } catch (e) { /* none */ }
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }

  async function signIn(loginHint) {
    const c = config.signIn;
    if (!c) return;
    const verifier = randomString(48), st = randomString(16), nonce = randomString(16);
    sessionStorage.setItem(PKCE_KEY, JSON.stringify({verifier, state: st, nonce}));
    const q = new URLSearchParams({response_type: "code", client_id: c.clientId, redirect_uri: redirectUri(),
      scope: c.scopes || "openid", state: st, nonce, code_challenge: await challengeOf(verifier),
      code_challenge_method: "S256"});
    if (loginHint) q.set("login_hint", loginHint);
    location.assign(c.authorizationUrl + (c.authorizationUrl.includes("?") ? "&" : "?") + q.toString());
  }

  /** Back from the issuer with ?code=&state= (or ?error=): the code for a token, then a clean URL. */
  async function completeSignIn() {
    const q = new URLSearchParams(location.search);
    if (!q.has("code") && !q.has("error")) return;
    let saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null"); } catch (e) { /* none */ }
    sessionStorage.removeItem(PKCE_KEY);
    history.replaceState(null, "", redirectUri());
    const c = config.signIn;
    if (q.has("error")) {
      banner(`Sign-in failed at the issuer: ${q.get("error")}${q.get("error_description") ? " (" + q.get("error_description") + ")" : ""}.`);
      return;
    }
    if (!c || !saved || saved.state !== q.get("state")) {
      banner("Sign-in failed: the issuer's answer does not belong to a sign-in started here. Please sign in again.");
      return;
    }
    let doc;
    try {
      const r = await fetch(c.tokenUrl, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
        body: new URLSearchParams({grant_type: "authorization_code", code: q.get("code"), redirect_uri: redirectUri(),
          client_id: c.clientId, code_verifier: saved.verifier})});
      doc = await r.json();
      if (!r.ok || !doc.access_token) throw new Error(doc.error_description || doc.error || `HTTP ${r.status}`);
    } catch (e) {
      banner(`Sign-in failed: the issuer did not give a token (${e.message}).`);
      return;
    }
    const idClaims = doc.id_token ? claimsOf(doc.id_token) : {};
    if (doc.id_token && idClaims.nonce !== saved.nonce) {
      banner("Sign-in failed: the ID token is not for this sign-in (nonce differs).");
      return;
    }
    const access = claimsOf(doc.access_token);
    const user = idClaims.preferred_username || access.preferred_username || access.sub || idClaims.sub || "you";
    const expires = access.exp ? access.exp * 1000 : Date.now() + (doc.expires_in || 3600) * 1000;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({token: doc.access_token, user, expires}));
  }

  function signOut(reason) {
    sessionStorage.removeItem(SESSION_KEY);
    state.session = null;
    state.bookings = [];
    state.candidates = state.candidates.filter((c) => c.anonymous);
    state.version = null;
    if (reason) banner(reason);
    showAccount();
    renderBookings();
    refresh(true);
  }

  function showAccount() {
    const signedIn = !!state.session;
    $("who").textContent = signedIn ? `Signed in as ${state.session.user}` : "Not signed in";
    $("sign-in").hidden = signedIn || !config.signIn;
    $("sign-out").hidden = !signedIn;
    $("offers-button").hidden = !signedIn;
    $("book-note").textContent = signedIn ? "" : (config.signIn ? "Sign in to book." :
      "Booking needs a bearer token: this page has no sign-in configured.");
    $("mine-note").textContent = signedIn ? "" : "Sign in to book and to see your bookings.";
    $("mine-note").hidden = signedIn;
    if (config.grafanaUrl) {
      $("grafana-link").href = config.grafanaUrl;
      $("grafana-link").hidden = false;
    }
  }

  function banner(text) {
    $("banner").textContent = text;
    $("banner").hidden = !text;
  }

  // -- the API ------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, field) {
      super(message);
      this.status = status;
      this.field = field || null;
    }
  }

  async function api(path, opts = {}) {
    const headers = {Accept: "application/json"};
    if (state.session) headers.Authorization = `Bearer ${state.session.token}`;
    let body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    } else if (opts.form) {
      body = new URLSearchParams(opts.form);
    }
    let r;
    try {
      r = await fetch(path, {method: opts.method || "GET", headers, body, cache: "no-store"});
    } catch (e) {
      throw new ApiError(0, `the planner cannot be reached (${e.message})`);
    }
    if (!r.ok) {
      let doc = {};
      try { doc = await r.json(); } catch (e) { /* not JSON */ }
      const message = doc.error || `${r.status} ${r.statusText}`;
      if (r.status === 401 && state.session) {
        signOut(`Your sign-in is no longer accepted (${message}). Please sign in again.`);
      }
      throw new ApiError(r.status, message, doc.field);
    }
    if (opts.text) return r.text();
    const ctype = r.headers.get("Content-Type") || "";
    return ctype.includes("json") ? r.json() : r.text();
  }

  // -- the calendar: data ----------------------------------------------------------------------------

  async function loadCalendar() {
    const hours = Math.min(state.spanHours, config.horizonHours || 168);
    const [cal, nodes] = await Promise.all([
      api(`/calendar/compact?hours=${hours}`),
      state.nodeInfo.size && Date.now() - state.lastNodes < 300000 ? null : api("/nodes"),
    ]);
    if (nodes) {
      state.nodeInfo = new Map(nodes.nodes.map((n) => [n.name, n]));
      state.groupLabels = nodes.groupLabels || [];
      state.lastNodes = Date.now();
      fillGroupChoices();
    }
    state.calendar = cal;
    state.lastFetch = Date.now();
    if (state.firstPaintMs === null) performance.mark("execplanner:calendar-read");
    state.model = buildModel(cal);
    if (state.firstPaintMs === null) performance.mark("execplanner:calendar-model");
    buildRows();
    if (state.firstPaintMs === null) performance.mark("execplanner:calendar-rows");
    draw();
    if (state.firstPaintMs === null) performance.mark("execplanner:calendar-drawn");
    const mine = new Set(state.model.nodes.flatMap((n) => n.mine.map((b) => `${b.name}|${b.start}`))).size;
    $("cal-status").textContent = `${plural(cal.nodes.length, "node")} · ${state.session ?
      `${plural(mine, "booking")} of yours in view` : "not signed in: no names are shown"} · ` +
      `updated ${fmtClock.format(new Date())}`;
  }

  /** GET /calendar/compact read into per-node use over time (BUCKETS steps) for each metric. */
  function buildModel(cal) {
    const t0 = Date.parse(cal.from) / 1000, t1 = Date.parse(cal.to) / 1000;
    const dt = (t1 - t0) / BUCKETS;
    const scale = [1000, 1, 1];   // millicores to cores
    const nodes = cal.nodes.map((n) => {
      const alloc = n.allocatable.map((v, k) => v / scale[k]);
      const use = n.used.map((v, k) => new Float32Array(BUCKETS).fill(v / scale[k]));
      const node = {name: n.name, ready: n.ready !== false, alloc, use, mine: [], held: [],
        labels: (state.nodeInfo.get(n.name) || {}).labels || {}};
      for (const b of n.bookings) {
        const [s, e] = b;
        const i0 = Math.max(0, Math.floor(s / dt)), i1 = Math.min(BUCKETS, Math.ceil(e / dt));
        for (let k = 0; k < 3; k++) {
          const v = b[2 + k] / scale[k];
          if (!v) continue;
          const arr = use[k];
          for (let i = i0; i < i1; i++) arr[i] += v;
        }
        if (b[6] >= 0) {
          const kind = cal.kinds[b[5]];
          const entry = {start: t0 + s, end: t0 + e, name: cal.names[b[6]], kind, cores: b[2] / 1000, memory: b[3],
            gpus: b[4]};
          (kind === "held" ? node.held : node.mine).push(entry);
        }
      }
      return node;
    });
    return {t0, t1, dt, nodes, byName: new Map(nodes.map((n) => [n.name, n]))};
  }

  function groupKeyOf(node, by) {
    if (by === "@prefix") return node.name.replace(/[-_.]?\d+$/, "") || node.name;
    return node.labels[by] !== undefined ? node.labels[by] : `(no ${by})`;
  }

  function automaticGrouping() {
    const nodes = state.model ? state.model.nodes : [];
    if (nodes.length <= GROUP_THRESHOLD) return "";
    for (const key of state.groupLabels) {
      const values = new Set(nodes.map((n) => n.labels[key]));
      if (values.size >= 2 && values.size <= Math.max(2, nodes.length / 2)) return key;
    }
    const prefixes = new Set(nodes.map((n) => groupKeyOf(n, "@prefix")));
    return prefixes.size < nodes.length / 2 ? "@prefix" : "";
  }

  function fillGroupChoices() {
    const select = $("group-by");
    const present = state.groupLabels.filter((k) => [...state.nodeInfo.values()].some((n) => k in (n.labels || {})));
    const wanted = ["", "@prefix", ...present];
    const have = [...select.options].map((o) => o.value);
    if (wanted.join("\n") === have.join("\n")) return;
    select.replaceChildren(...wanted.map((v) => el("option", {value: v,
      text: v === "" ? "no grouping" : v === "@prefix" ? "name prefix" : `label ${v}`})));
  }

  function buildRows() {
    const model = state.model;
    if (!model) return;
    if (state.groupBy === null) state.groupBy = automaticGrouping();
    $("group-by").value = state.groupBy;
    const rows = [];
    if (!state.groupBy) {
      for (const n of model.nodes) rows.push({type: "node", node: n, flat: true, key: `n:${n.name}`});
    } else {
      const groups = new Map();
      for (const n of model.nodes) {
        const key = groupKeyOf(n, state.groupBy);
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(n);
      }
      for (const [key, members] of [...groups.entries()].sort((a, b) => a[0].localeCompare(b[0], undefined,
        {numeric: true}))) {
        const group = aggregate(key, members);
        const open = state.expanded.has(key);
        rows.push({type: "group", group, open, key: `g:${key}`});
        if (open) for (const n of members) rows.push({type: "node", node: n, key: `n:${n.name}`});
      }
    }
    state.rows = rows;
    state.focusRow = Math.min(state.focusRow, Math.max(0, rows.length - 1));
    $("cal-corner").textContent = state.groupBy ? "Group / node" : "Node";
    layout();
  }

  function aggregate(name, members) {
    const alloc = [0, 0, 0], use = [0, 1, 2].map(() => new Float32Array(BUCKETS));
    const seen = new Set(), mine = [], held = [];
    let ready = 0;
    for (const n of members) {
      if (n.ready) ready++;
      for (let k = 0; k < 3; k++) {
        alloc[k] += n.alloc[k];
        const a = use[k], b = n.use[k];
        for (let i = 0; i < BUCKETS; i++) a[i] += b[i];
      }
      for (const [list, out] of [[n.mine, mine], [n.held, held]]) {
        for (const b of list) {
          const id = `${b.name}|${b.start}|${b.end}`;
          if (!seen.has(id)) { seen.add(id); out.push(b); }
        }
      }
    }
    return {name, members, alloc, use, mine, held, ready: ready > 0, readyCount: ready};
  }

  // -- the calendar: drawing ---------------------------------------------------------------------------

  const canvas = () => $("cal-canvas");
  let hatch = null;

  function layout() {
    const scroll = $("cal-scroll");
    const total = state.rows.length * ROW;
    $("cal-inner").style.height = `${total}px`;
    $("cal-labels").style.height = `${total}px`;
    scroll.style.height = `${Math.max(ROW * 2, Math.min(total, window.innerHeight * 0.62))}px`;
    sizeCanvases();
  }

  function sizeCanvases() {
    const scroll = $("cal-scroll"), labelWidth = $("cal-labels").offsetWidth || 220;
    const width = Math.max(100, scroll.clientWidth - labelWidth);
    const height = scroll.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    for (const [c, h] of [[canvas(), height], [$("cal-axis"), 30]]) {
      c.style.width = `${width}px`;
      c.style.height = `${h}px`;
      c.width = Math.round(width * dpr);
      c.height = Math.round(h * dpr);
    }
    state.plot = {width, height, dpr};
  }

  function shade(fraction, alloc) {
    if (!(alloc > 0)) return COLORS.none;
    if (fraction <= 0.001) return COLORS.free;
    for (const [limit, color] of SHADES) if (fraction <= limit) return color;
    return COLORS.full;
  }

  function metricIndex() {
    return METRICS.indexOf(state.metric);
  }

  function xOf(t) {
    const m = state.model;
    return (t - m.t0) / (m.t1 - m.t0) * state.plot.width;
  }

  function draw() {
    if (!state.model || !state.plot) return;
    const {width, height, dpr} = state.plot;
    const ctx = canvas().getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const top = $("cal-scroll").scrollTop;
    const first = Math.max(0, Math.floor(top / ROW)), last = Math.min(state.rows.length, Math.ceil((top + height) / ROW));
    const k = metricIndex(), bw = width / BUCKETS;
    if (!hatch) hatch = makeHatch(ctx);
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    for (let r = first; r < last; r++) {
      const row = state.rows[r], y = r * ROW - top;
      const item = row.type === "group" ? row.group : row.node;
      const alloc = item.alloc[k], use = item.use[k];
      // usage, merged into runs of one shade
      let runStart = 0, runColor = null;
      for (let i = 0; i <= BUCKETS; i++) {
        const color = i < BUCKETS ? shade(use[i] / alloc, alloc) : null;
        if (color !== runColor) {
          if (runColor) {
            ctx.fillStyle = runColor;
            ctx.fillRect(Math.floor(runStart * bw), y, Math.ceil((i - runStart) * bw) + 1, ROW - 1);
          }
          runStart = i;
          runColor = color;
        }
      }
      if (!item.ready) {
        ctx.fillStyle = hatch;
        ctx.fillRect(0, y, width, ROW - 1);
      }
      if (row.type === "group") {  // a group's top edge, to tell it from its nodes
        ctx.fillStyle = "rgba(15, 23, 42, .35)";
        ctx.fillRect(0, y, width, 1);
      }
      if (row.type === "group") drawStrip(ctx, item.mine, y);
      else drawBars(ctx, item.mine, y);
      for (const c of state.candidates) {
        const on = row.type === "group" ? c.nodes.some((n) => row.group.members.some((m) => m.name === n))
          : c.nodes.includes(row.node.name);
        if (on) drawCandidate(ctx, c, y);
      }
      if (r === state.focusRow && document.activeElement === $("cal-scroll")) {
        ctx.strokeStyle = COLORS.focus;
        ctx.lineWidth = 2;
        ctx.setLineDash([]);
        ctx.strokeRect(1, y + 1, width - 2, ROW - 3);
      }
    }
    const nowX = xOf(Date.now() / 1000);
    if (nowX >= 0 && nowX <= width) {
      ctx.fillStyle = COLORS.now;
      ctx.fillRect(Math.round(nowX) - 1, 0, 2, height);
    }
    if (state.focusTime !== null && document.activeElement === $("cal-scroll")) {
      ctx.fillStyle = COLORS.focus;
      ctx.fillRect(Math.round(xOf(state.focusTime)), 0, 1, height);
    }
    drawAxis();
    renderLabels(first, last, top);
    if (state.firstPaintMs === null) {
      requestAnimationFrame(() => setTimeout(() => {
        if (state.firstPaintMs !== null) return;
        state.firstPaintMs = performance.now();
        performance.mark("execplanner:calendar-painted");
      }, 0));
    }
  }

  function makeHatch(ctx) {
    const c = document.createElement("canvas");
    c.width = c.height = 6;
    const g = c.getContext("2d");
    g.strokeStyle = "rgba(87, 96, 106, .45)";
    g.beginPath();
    g.moveTo(0, 6);
    g.lineTo(6, 0);
    g.stroke();
    return ctx.createPattern(c, "repeat");
  }

  function clip(t) {
    return Math.min(Math.max(t, state.model.t0), state.model.t1);
  }

  /** A node's own bookings, named: by start, each drawn over the one before; its name shows on
   * the part that stays in view. */
  function drawBars(ctx, bars, y) {
    const sorted = bars.slice().sort((a, b) => a.start - b.start);
    sorted.forEach((b, i) => {
      const x0 = xOf(clip(b.start)), x1 = xOf(clip(b.end));
      if (x1 - x0 < 1) return;
      ctx.fillStyle = b.kind === "running" ? COLORS.running : COLORS.mine;
      ctx.fillRect(x0, y + 3, Math.max(2, x1 - x0), ROW - 7);
      ctx.strokeStyle = "rgba(0, 0, 0, .45)";
      ctx.lineWidth = 1;
      ctx.setLineDash([]);
      ctx.strokeRect(x0 + .5, y + 3.5, Math.max(2, x1 - x0) - 1, ROW - 8);
      const next = sorted[i + 1], visible = Math.min(x1, next ? xOf(clip(next.start)) : x1);
      if (visible - x0 > 24) {
        ctx.save();
        ctx.beginPath();
        ctx.rect(x0 + 3, y, visible - x0 - 6, ROW);
        ctx.clip();
        ctx.fillStyle = COLORS.text;
        ctx.fillText(b.name, x0 + 4, y + ROW / 2);
        ctx.restore();
      }
    });
  }

  /** A group's own bookings: a strip along the row's foot wherever one of them is (the nodes' rows
   * name them). */
  function drawStrip(ctx, bars, y) {
    for (const b of bars) {
      const x0 = xOf(clip(b.start)), x1 = xOf(clip(b.end));
      if (x1 - x0 < 1) continue;
      ctx.fillStyle = b.kind === "running" ? COLORS.running : COLORS.mine;
      ctx.fillRect(x0, y + ROW - 7, Math.max(2, x1 - x0), 5);
    }
  }

  function drawCandidate(ctx, c, y) {
    const x0 = xOf(clip(c.start)), x1 = xOf(clip(c.end));
    if (x1 - x0 < 1) return;
    ctx.strokeStyle = COLORS.offer;
    ctx.lineWidth = 2;
    ctx.setLineDash([5, 3]);
    ctx.strokeRect(x0 + 1, y + 2, Math.max(3, x1 - x0 - 2), ROW - 5);
    ctx.setLineDash([]);
    ctx.fillStyle = "rgba(15, 118, 110, .12)";
    ctx.fillRect(x0 + 1, y + 2, Math.max(3, x1 - x0 - 2), ROW - 5);
    if (x1 - x0 > 40) {
      ctx.save();
      ctx.beginPath();
      ctx.rect(x0 + 3, y, x1 - x0 - 6, ROW);
      ctx.clip();
      ctx.fillStyle = COLORS.offer;
      ctx.font = "600 12px system-ui, sans-serif";
      ctx.fillText(c.label, x0 + 5, y + ROW / 2);
      ctx.restore();
    }
  }

  const STEPS = [300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];

  function drawAxis() {
    const c = $("cal-axis"), {width, dpr} = state.plot, m = state.model;
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, 30);
    const span = m.t1 - m.t0;
    const step = STEPS.find((s) => s / span * width >= 70) || 172800;
    const offset = -new Date(m.t0 * 1000).getTimezoneOffset() * 60;   // align ticks to local time
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "top";
    for (let t = Math.ceil((m.t0 + offset) / step) * step - offset; t <= m.t1; t += step) {
      const x = xOf(t), d = new Date(t * 1000);
      const midnight = d.getHours() === 0 && d.getMinutes() === 0;
      ctx.fillStyle = COLORS.grid;
      ctx.fillRect(Math.round(x), midnight ? 0 : 18, 1, midnight ? 30 : 12);
      ctx.fillStyle = midnight ? COLORS.text : COLORS.label;
      const text = step >= 86400 || midnight ? fmtDay.format(d) : fmtClock.format(d);
      if (x + 4 < width - 20) ctx.fillText(text, x + 3, 3);
    }
    const nowX = xOf(Date.now() / 1000);
    if (nowX >= 0 && nowX <= width) {
      ctx.fillStyle = COLORS.now;
      ctx.fillRect(Math.round(nowX) - 1, 14, 2, 16);
      ctx.font = "600 11px system-ui, sans-serif";
      ctx.fillText("now", Math.min(nowX + 4, width - 26), 16);
    }
  }

  const labelEls = new Map();

  function renderLabels(first, last) {
    const container = $("cal-labels");
    const keep = new Set();
    for (let r = first; r < last; r++) {
      const row = state.rows[r];
      keep.add(row.key);
      let e = labelEls.get(row.key);
      if (!e) {
        e = labelFor(row);
        labelEls.set(row.key, e);
        container.append(e);
      }
      e.style.top = `${r * ROW}px`;
      e.classList.toggle("focused", r === state.focusRow && document.activeElement === $("cal-scroll"));
      if (row.type === "group") {
        const button = e.querySelector("button");
        button.setAttribute("aria-expanded", String(row.open));
        button.firstChild.textContent = row.open ? "▾" : "▸";
      }
    }
    for (const [key, e] of labelEls) {
      if (!keep.has(key)) {
        e.remove();
        labelEls.delete(key);
      }
    }
  }

  function labelFor(row) {
    if (row.type === "group") {
      const g = row.group;
      const count = g.readyCount === g.members.length ? plural(g.members.length, "node")
        : `${g.members.length} nodes, ${g.members.length - g.readyCount} not ready`;
      const button = el("button", {type: "button", class: "group", "aria-expanded": String(row.open),
        title: `${g.name}: ${count}`, onclick: () => toggleGroup(g.name)},
      el("span", {"aria-hidden": "true", text: row.open ? "▾" : "▸"}), el("span", {class: "name", text: g.name}),
      el("span", {class: "count", text: `(${count})`}));
      return el("div", {class: "cal-row group-row", "data-key": row.key}, button);
    }
    const n = row.node;
    return el("div", {class: `cal-row node${row.flat ? " flat" : ""}${n.ready ? "" : " notready"}`,
      title: n.ready ? n.name : `${n.name} (not ready)`, "data-key": row.key, "data-node": n.name},
    el("span", {class: "name", text: n.name}));
  }

  function toggleGroup(name, open) {
    const isOpen = state.expanded.has(name);
    if (open === undefined ? isOpen : !open) state.expanded.delete(name);
    else state.expanded.add(name);
    buildRows();
    draw();
  }

  // -- the calendar: reading it (hover, keys) ----------------------------------------------------------

  function describe(row, t) {
    const m = state.model, k = metricIndex();
    const i = Math.min(BUCKETS - 1, Math.max(0, Math.floor((t - m.t0) / m.dt)));
    const item = row.type === "group" ? row.group : row.node;
    const alloc = item.alloc[k], used = item.use[k][i];
    const lines = [];
    const title = row.type === "group" ? `${item.name} (${plural(item.members.length, "node")})` : item.name;
    lines.push(el("strong", {text: title}));
    lines.push(el("div", {}, localText(t * 1000), " ", el("span", {class: "utc", text: `(${utcText(t * 1000)})`})));
    if (!item.ready) lines.push(el("div", {text: "not ready: nothing is placed here"}));
    if (alloc > 0) {
      const pct = Math.round(100 * used / alloc);
      lines.push(el("div", {text: `${fmtMetric(state.metric, used)} of ${fmtMetric(state.metric, alloc)} in use (${pct} %)`}));
    } else {
      lines.push(el("div", {text: state.metric === "gpus" ? "no GPUs here" : `no ${state.metric} here`}));
    }
    for (const b of item.mine) {
      if (b.start <= t && t < b.end) {
        lines.push(el("div", {text: `Yours: ${b.name} (${b.kind}), ${fmtClock.format(new Date(b.start * 1000))}–` +
          `${fmtClock.format(new Date(b.end * 1000))}, ${sizeText(b.cores, b.memory, b.gpus)}`}));
      }
    }
    for (const c of state.candidates) {
      const on = row.type === "group" ? c.nodes.some((n) => item.members.some((mm) => mm.name === n))
        : c.nodes.includes(item.name);
      if (on && c.start <= t && t < c.end) {
        lines.push(el("div", {text: `${c.label}: ${sizeText(c.cores, c.memory, c.gpus)}, ` +
          `${fmtClock.format(new Date(c.start * 1000))}–${fmtClock.format(new Date(c.end * 1000))}`}));
      }
    }
    return lines;
  }

  function showTip(row, t, x, y) {
    const tip = $("cal-tip");
    if (!row || !state.model) {
      tip.hidden = true;
      return;
    }
    tip.replaceChildren(...describe(row, t));
    tip.hidden = false;
    const box = $("calendar").getBoundingClientRect();
    const left = Math.min(x + 14, box.width - tip.offsetWidth - 8);
    const top = y + 18 + tip.offsetHeight > box.height ? y - tip.offsetHeight - 10 : y + 18;
    tip.style.left = `${Math.max(4, left)}px`;
    tip.style.top = `${Math.max(4, top)}px`;
  }

  function onHover(ev) {
    if (!state.model) return;
    const rect = canvas().getBoundingClientRect(), box = $("calendar").getBoundingClientRect();
    const x = ev.clientX - rect.left, y = ev.clientY - rect.top;
    const r = Math.floor((y + $("cal-scroll").scrollTop) / ROW);
    const t = state.model.t0 + x / state.plot.width * (state.model.t1 - state.model.t0);
    showTip(state.rows[r], t, ev.clientX - box.left, ev.clientY - box.top);
  }

  function onKey(ev) {
    if (!state.rows.length || ev.target !== $("cal-scroll")) return;  // a group's own button handles its keys
    const m = state.model, stepT = (m.t1 - m.t0) / 24;
    if (state.focusTime === null) state.focusTime = Math.max(m.t0, Math.min(m.t1, Date.now() / 1000));
    let handled = true;
    switch (ev.key) {
      case "ArrowDown": state.focusRow = Math.min(state.rows.length - 1, state.focusRow + 1); break;
      case "ArrowUp": state.focusRow = Math.max(0, state.focusRow - 1); break;
      case "PageDown": state.focusRow = Math.min(state.rows.length - 1, state.focusRow + 10); break;
      case "PageUp": state.focusRow = Math.max(0, state.focusRow - 10); break;
      case "Home": state.focusRow = 0; break;
      case "End": state.focusRow = state.rows.length - 1; break;
      case "ArrowRight": state.focusTime = Math.min(m.t1 - 1, state.focusTime + stepT); break;
      case "ArrowLeft": state.focusTime = Math.max(m.t0, state.focusTime - stepT); break;
      case "Enter": case " ": {
        const row = state.rows[state.focusRow];
        if (row && row.type === "group") toggleGroup(row.group.name);
        break;
      }
      case "Escape": $("cal-tip").hidden = true; return;
      default: handled = false;
    }
    if (!handled) return;
    ev.preventDefault();
    const scroll = $("cal-scroll"), y = state.focusRow * ROW;
    if (y < scroll.scrollTop) scroll.scrollTop = y;
    else if (y + ROW > scroll.scrollTop + scroll.clientHeight) scroll.scrollTop = y + ROW - scroll.clientHeight;
    draw();
    const labelWidth = $("cal-labels").offsetWidth;
    showTip(state.rows[state.focusRow], state.focusTime, labelWidth + xOf(state.focusTime),
      30 + state.focusRow * ROW - scroll.scrollTop);
  }

  function renderLegend() {
    const items = [["free", COLORS.free], ...SHADES.map(([, color, text]) => [text, color]), ["full", COLORS.full]];
    const legend = $("legend");
    legend.replaceChildren(
      ...items.map(([text, color]) => el("li", {}, swatch({color}), `${text} ${
        text === "free" ? "" : "in use"}`.trim())),
      el("li", {}, swatch({class: "swatch mine"}), "your booking (named)"),
      el("li", {}, swatch({class: "swatch running"}), "yours, running"),
      el("li", {}, swatch({class: "swatch offer"}), "offer (a candidate slot)"),
      el("li", {}, swatch({class: "swatch now"}), "now"),
      el("li", {}, swatch({class: "swatch notready"}), "node not ready"),
      el("li", {}, "Others' bookings show as use, never whose."));
    $("tz-name").textContent = TZ;
  }

  function swatch(attrs) {
    const s = el("span", {class: attrs.class || "swatch", "aria-hidden": "true"});
    if (attrs.color) s.style.background = attrs.color;   // CSSOM: allowed by the page's CSP
    return s;
  }

  // -- keeping up ------------------------------------------------------------------------------------

  let refreshing = null;

  async function refresh(force) {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      try {
        // The version is asked first (sent first, answered first): what is read with it is at least as new.
        const load = () => Promise.all([loadCalendar(), state.session ? loadBookings() : null]);
        if (force) {
          const [v] = await Promise.all([api("/calendar/version"), load()]);
          state.version = v.version;
          return;
        }
        const v = await api("/calendar/version");
        if (v.version === state.version && Date.now() - state.lastFetch < REFETCH_MS) return;
        await load();
        state.version = v.version;
      } catch (e) {
        showCalendarError(e);
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  function showCalendarError(e) {
    const status = $("cal-status");
    if (e.status === 401) {
      status.textContent = config.signIn ? "Sign in to see the calendar (this planner does not show it to anonymous visitors)."
        : "This planner does not show the calendar without a bearer token.";
    } else if (e.status === 503) {
      status.textContent = `The planner is starting: ${e.message}`;
    } else {
      status.textContent = `The calendar could not be read: ${e.message}`;
    }
  }

  // -- asking ----------------------------------------------------------------------------------------

  const FIELD_INPUTS = [
    [/^(tasktype|executable\.type)$/, "tasktype"],
    [/^(taskinfo\.image|executable\.image)/, "image"],
    [/^(taskinfo|executable)\.location/, "location"],
    [/^taskinfo\.chart$|^executable\.chart/, "chart"],
    [/^taskinfo\.repository$|^executable\.repository/, "repository"],
    [/^taskinfo\.version$|^executable\.version/, "version"],
    [/^name$/, "name"],
    [/maxcores$|cores\.requested\.max$/, "cores-max"],
    [/mincores$|cores(\.requested(\.min)?)?$/, "cores-min"],
    [/maxmemory$|memory\.requested\.max$/, "memory-max"],
    [/minmemory$|memory(\.requested(\.min)?)?$/, "memory-min"],
    [/gpu/, "gpus"],
    [/maxduration$|duration\.max$/, "duration-max"],
    [/minduration$|duration(\.min)?$/, "duration-min"],
    [/maxstartup$/, "latest"],
    [/minstartup$|schedule\.requested\.start/, "earliest"],
  ];
  const INPUT_IDS = ["tasktype", "image", "location", "chart", "repository", "version", "name", "cores-min",
    "cores-max", "memory-min", "memory-max", "gpus", "duration-min", "duration-max", "earliest", "latest"];

  function clearErrors() {
    for (const id of INPUT_IDS) {
      $(`err-${id}`).textContent = "";
      $(id).removeAttribute("aria-invalid");
    }
    $("err-form").textContent = "";
  }

  function fieldError(id, message) {
    $(`err-${id}`).textContent = message;
    $(id).setAttribute("aria-invalid", "true");
  }

  /** An error from the API next to the field it names (in the API's names), else under the form. */
  function showError(e) {
    const field = e.field || "";
    const match = FIELD_INPUTS.find(([re]) => re.test(field));
    if (match && !$(match[1]).closest("[hidden]")) {
      const text = e.message.startsWith(`${field}: `) ? e.message.slice(field.length + 2) : e.message;
      fieldError(match[1], `${text} (${field})`);
      $(match[1]).focus();
    } else {
      $("err-form").textContent = e.status === 401 && !state.session
        ? `${e.message}: sign in first.` : e.message;
    }
  }

  function taskKind() {
    const t = $("tasktype").value;
    return t === "uri://kubernetes-helm" ? "chart" : t === NOTE_NOTEBOOK ? "notebook" : "container";
  }

  function showTaskFields() {
    const kind = taskKind();
    for (const row of document.querySelectorAll("[data-for]")) {
      row.hidden = !row.dataset.for.split(" ").includes(kind);
    }
    $("image").placeholder = kind === "notebook" ? "the notebook server's image (optional)" : "busybox:1.36";
  }

  function windowOf() {   // the start window: [earliest ms, latest ms], either may be null
    const e = $("earliest").value ? new Date($("earliest").value).getTime() : null;
    const l = $("latest").value ? new Date($("latest").value).getTime() : null;
    if (l !== null && l < Date.now()) {
      fieldError("latest", "is in the past");
      return null;
    }
    if (e !== null && l !== null && l < e) {
      fieldError("latest", "must not be before the earliest start");
      return null;
    }
    return [e, l];
  }

  function gpuCount() {
    const t = $("gpus").value.trim();
    if (!t) return 0;
    if (!/^\d+$/.test(t)) {
      fieldError("gpus", "a whole number of GPUs");
      return null;
    }
    return Number(t);
  }

  function noteBody(win, gpus) {
    const kind = taskKind(), v = (id) => $(id).value.trim();
    const taskinfo = kind === "chart" ? {chart: v("chart") || undefined, repository: v("repository") || undefined,
      version: v("version") || undefined}
      : kind === "notebook" ? {location: v("location") || undefined, image: v("image") || undefined}
        : {image: v("image") || undefined};
    const r = {};
    const put = (key, value) => { if (value !== null && value !== undefined && value !== "") r[key] = value; };
    put("mincores", v("cores-min") || null);
    put("maxcores", v("cores-max") || null);
    put("minmemory", memoryQuantity(v("memory-min")));
    put("maxmemory", memoryQuantity(v("memory-max")));
    put("minduration", durationText(v("duration-min")));
    put("maxduration", durationText(v("duration-max")));
    const now = Date.now();
    if (win[0] !== null) put("minstartup", `${Math.max(0, Math.round((win[0] - now) / 1000))}s`);
    if (win[1] !== null) put("maxstartup", `${Math.max(0, Math.round((win[1] - now) / 1000))}s`);
    if (gpus && state.support.gpuMin) {
      put(state.support.gpuMin, gpus);
      if (state.support.gpuMax) put(state.support.gpuMax, gpus);
    }
    return {tasktype: $("tasktype").value, taskinfo, resources: r};
  }

  function brokerBody(win, gpus) {
    const kind = taskKind(), v = (id) => $(id).value.trim();
    let executable;
    if (kind === "chart") {
      executable = {type: EB_HELM, chart: v("chart"), repository: v("repository") || undefined,
        version: v("version") || undefined};
    } else if (kind === "notebook") {
      executable = {type: EB_NOTEBOOK, location: v("location"), image: v("image") || undefined};
    } else {
      executable = {type: EB_DOCKER, image: v("image")};
    }
    const compute = {type: EB_SIMPLE_COMPUTE};
    const minmax = (lo, hi) => {
      const out = {};
      if (lo !== null) out.min = lo;
      if (hi !== null) out.max = hi;
      return Object.keys(out).length ? {requested: out} : undefined;
    };
    compute.cores = minmax(coresValue(v("cores-min")), coresValue(v("cores-max")));
    compute.memory = minmax(memoryQuantity(v("memory-min")), memoryQuantity(v("memory-max")));
    if (gpus && state.support.brokerGpus) compute.gpus = {requested: {min: gpus, max: gpus}};
    const lo = durationIso(v("duration-min")), hi = durationIso(v("duration-max"));
    const requested = {};
    if (lo && hi) requested.duration = {min: lo, max: hi};
    else if (lo || hi) requested.duration = lo || hi;
    if (win[0] !== null || win[1] !== null) {
      const from = win[0] !== null ? win[0] : Date.now();
      const to = win[1] !== null ? win[1] : from + (config.horizonHours || 168) * 3600000;
      requested.start = [`${isoUtc(from)}/${isoUtc(to)}`];
    }
    const name = v("name") || (kind === "chart" ? v("chart") : kind === "notebook" ? v("location") : v("image")) ||
      "from the web page";
    return {name: name.slice(0, 200), executable, resources: {compute: [compute]}, schedule: {requested}};
  }

  async function ask(ev) {
    ev.preventDefault();
    clearErrors();
    const win = windowOf(), gpus = gpuCount();
    if (!win || gpus === null) return;
    if (gpus && !state.support.gpuMin) {
      fieldError("gpus", "this planner's /accepts does not take GPUs yet; leave it empty");
      return;
    }
    const button = $("ask-button");
    button.disabled = true;
    $("answer").replaceChildren(el("p", {class: "hint", text: "Asking…"}));
    try {
      const a = await api("/accepts", {method: "POST", json: noteBody(win, gpus)});
      renderAnswer(a);
    } catch (e) {
      $("answer").replaceChildren();
      showError(e);
    } finally {
      button.disabled = false;
    }
  }

  function renderAnswer(a) {
    const word = a.responseword || a.reponseword;
    const box = el("div", {class: `verdict ${word === "YES" ? "yes" : "no"}`, "data-answer": word});
    state.candidates = state.candidates.filter((c) => !c.anonymous);
    if (word === "YES") {
      const start = a.start ? Date.parse(a.start) : Date.now();
      const res = a.resources || {};
      const seconds = apiSeconds(res.maxduration || res.minduration) || 3600;
      const nodes = a.nodes || [];
      box.append(el("span", {class: "word", text: "YES"}),
        "It can start ", timeEl(a.start), ` (${relative(start)})`,
        nodes.length ? ` on ${nodes.join(", ")}` : "",
        `, for up to ${fmtDuration(seconds)}, with up to ${sizeText(res.maxcores, res.maxmemory)}.`,
        el("p", {class: "hint", text: state.session ? "Drawn on the calendar as a candidate slot. Nothing is booked yet: " +
          "“Find offers to book” holds offers for you to choose from."
          : "Drawn on the calendar as a candidate slot. Sign in to book it."}));
      state.candidates.push({label: "candidate", anonymous: true, start: start / 1000, end: start / 1000 + seconds,
        nodes, cores: res.maxcores, memory: res.maxmemory});
    } else {
      const reasons = ((a.responseinfo || a.reponseinfo || {}).reasons || []).map((r) => r.text).filter(Boolean);
      box.append(el("span", {class: "word", text: "NO"}), "It cannot run as asked.",
        el("ul", {class: "reasons"}, ...(reasons.length ? reasons : ["no reason was given"]).map((t) => el("li", {text: t}))));
    }
    $("answer").replaceChildren(box);
    draw();
  }

  async function findOffers() {
    clearErrors();
    const win = windowOf(), gpus = gpuCount();
    if (!win || gpus === null) return;
    if (gpus && !state.support.brokerGpus) {
      fieldError("gpus", "this planner's /offersets does not book GPUs yet; leave it empty");
      return;
    }
    const button = $("offers-button");
    button.disabled = true;
    $("offers").replaceChildren(el("p", {class: "hint", text: "Asking for offers… (each holds its capacity for a while)"}));
    try {
      let doc = await api("/offersets", {method: "POST", json: brokerBody(win, gpus)});
      for (let i = 0; doc.result === "PENDING" && i < 30; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        doc = await api(doc.href.replace(/^https?:\/\/[^/]+/, ""));
      }
      state.currentOfferset = doc;
      await loadBookings();
      renderOffers();
      refresh(true);
    } catch (e) {
      $("offers").replaceChildren();
      showError(e);
    } finally {
      button.disabled = false;
    }
  }

  function offersOf(osid) {
    return state.bookings.filter((b) => b.source === "offerset" && b.offerset === osid && b.state === "OFFERED");
  }

  function offerLabel(b) {
    const siblings = state.bookings.filter((o) => o.offerset === b.offerset && o.source === "offerset")
      .map((o) => String(o.offer)).sort((x, y) => x.localeCompare(y, undefined, {numeric: true}));
    return `Offer ${siblings.indexOf(String(b.offer)) + 1}`;
  }

  function renderOffers() {
    const doc = state.currentOfferset;
    const box = $("offers");
    if (!doc) {
      box.replaceChildren();
      return;
    }
    if (doc.result === "NO" || doc.result === "PENDING") {
      const messages = doc.messages && doc.messages.length ? doc.messages : ["no offer could be made"];
      box.replaceChildren(el("div", {class: "verdict no", "data-offers": doc.result}, el("span", {class: "word", text: "NO"}),
        "No offer could be made.", el("ul", {}, ...messages.map((t) => el("li", {text: t})))));
      return;
    }
    const offers = offersOf(doc.uuid);
    if (!offers.length) {
      box.replaceChildren(el("p", {class: "hint", text: "The offers have lapsed or were decided; see My bookings."}));
      return;
    }
    box.replaceChildren(
      el("h3", {text: `Offers for “${doc.name}”`}),
      el("ul", {class: "offer-list", "data-offerset": doc.uuid}, ...offers.map((b) => {
        const start = Date.parse(b.start), end = Date.parse(b.end);
        return el("li", {"data-session": b.session},
          el("div", {class: "what"},
            el("span", {class: "label", text: offerLabel(b)}),
            el("span", {}, "starts ", timeEl(b.start), ` (${relative(start)}), for ${fmtDuration((end - start) / 1000)}`),
            el("span", {text: `${sizeText(b.cores, b.memory, b.gpus)} on ${b.nodes.join(", ") || "?"}`}),
            b.expires ? el("span", {class: "hint"}, "held for you until ", timeEl(b.expires)) : null),
          el("button", {type: "button", class: "primary", onclick: () => book(b)}, `Book ${offerLabel(b).toLowerCase()}`));
      })),
      el("button", {type: "button", class: "quiet", onclick: () => discard(offers)}, "Discard these offers"));
  }

  async function book(b) {
    try {
      const s = await api(b.href.replace(/^https?:\/\/[^/]+/, ""), {method: "POST",
        json: {update: {type: "uri:enum-value-update", path: "state", value: "ACCEPTED"}}});
      $("offers").replaceChildren(el("div", {class: "verdict yes", "data-booked": b.session},
        el("span", {class: "word", text: "Booked"}), `“${b.name}”: `, timeEl(b.start), ` (${relative(Date.parse(b.start))}), `,
        `now ${s.state}. It is in My bookings and on the calendar.`));
      state.currentOfferset = null;
      await refresh(true);
    } catch (e) {
      $("err-form").textContent = `Booking failed: ${e.message}`;
      await refresh(true);
    }
  }

  async function discard(offers) {
    for (const b of offers) {
      try {
        await api(b.href.replace(/^https?:\/\/[^/]+/, ""), {method: "POST",
          json: {update: {type: "uri:enum-value-update", path: "state", value: "REJECTED"}}});
      } catch (e) { /* lapsed meanwhile */ }
    }
    state.currentOfferset = null;
    $("offers").replaceChildren(el("p", {class: "hint", text: "The offers were discarded; their capacity is free again."}));
    await refresh(true);
  }

  // -- my bookings -------------------------------------------------------------------------------------

  async function loadBookings() {
    if (!state.session) return;
    const doc = await api("/bookings");
    state.bookings = doc.bookings || [];
    state.candidates = state.candidates.filter((c) => c.anonymous).concat(
      state.bookings.filter((b) => b.state === "OFFERED").map((b) => ({
        label: offerLabel(b), start: Date.parse(b.start) / 1000, end: Date.parse(b.end) / 1000, nodes: b.nodes,
        cores: b.cores, memory: b.memory, gpus: b.gpus})));
    renderBookings();
    if (state.currentOfferset) renderOffers();
  }

  function renderBookings() {
    const table = $("mine-table"), rows = $("mine-rows");
    if (!state.session) {
      table.hidden = true;
      rows.replaceChildren();
      return;
    }
    const all = state.bookings.slice().sort((a, b) => (a.start || "").localeCompare(b.start || ""));
    const shown = $("show-finished").checked ? all : all.filter((b) => ACTIVE.has(b.state));
    table.hidden = false;
    if (!shown.length) {
      rows.replaceChildren(el("tr", {}, el("td", {colspan: "7", class: "hint",
        text: all.length ? "Nothing active; tick “Show finished ones” for the rest." : "No bookings yet."})));
      return;
    }
    rows.replaceChildren(...shown.map((b) => {
      const actions = [];
      if (b.state === "OFFERED") {
        actions.push(el("button", {type: "button", class: "primary", onclick: () => book(b)}, "Book"));
        actions.push(el("button", {type: "button", onclick: () => discard([b])}, "Discard"));
      }
      if (b.cancel) {
        if (state.confirming === key(b)) {
          actions.push(el("button", {type: "button", class: "danger", onclick: () => cancel(b)}, "Yes, cancel it"));
          actions.push(el("button", {type: "button", onclick: () => { state.confirming = null; renderBookings(); }},
            "Keep it"));
        } else {
          actions.push(el("button", {type: "button", class: "danger", onclick: () => {
            state.confirming = key(b);
            renderBookings();
          }}, "Cancel"));
        }
      }
      if (b.log) actions.push(el("button", {type: "button", onclick: () => showLog(b)}, "Log"));
      const nodes = b.nodes || [];
      const nodesText = nodes.length > 3 ? `${nodes.slice(0, 3).join(", ")} … (+${nodes.length - 3})` : nodes.join(", ");
      return el("tr", {"data-plan": b.plan, "data-state": b.state},
        el("td", {}, b.name, b.state === "OFFERED" ? el("span", {class: "hint", text: ` (${offerLabel(b).toLowerCase()})`}) : null),
        el("td", {}, el("span", {class: `state ${b.state}`, title: b.message || b.phase, text: b.state})),
        el("td", {}, timeEl(b.start)), el("td", {}, timeEl(b.end)),
        el("td", {text: sizeText(b.cores, b.memory, b.gpus)}),
        el("td", {title: nodes.join(", "), text: nodesText || "—"}),
        el("td", {class: "actions-cell"}, ...actions));
    }));
  }

  function key(b) {
    return `${b.plan}#${b.offer}`;
  }

  async function cancel(b) {
    state.confirming = null;
    try {
      const path = b.cancel.replace(/^https?:\/\/[^/]+/, "");
      if (b.source === "uws") await api(path, {method: "POST", form: {PHASE: "ABORT"}});
      else await api(path, {method: "POST", json: {update: {type: "uri:enum-value-update", path: "state", value: "CANCELLED"}}});
      banner("");
    } catch (e) {
      banner(`Cancelling “${b.name}” failed: ${e.message}`);
    }
    await refresh(true);
  }

  async function showLog(b) {
    $("log-title").textContent = `Log of “${b.name}”`;
    $("log-text").textContent = "Reading…";
    $("log-view").hidden = false;
    try {
      $("log-text").textContent = await api(b.log.replace(/^https?:\/\/[^/]+/, ""), {text: true}) || "(empty)";
    } catch (e) {
      $("log-text").textContent = e.message;
    }
    $("log-text").focus();
  }

  // -- what this planner's API takes (its OpenAPI document) ---------------------------------------------

  function valuesOf(schema, schemas, depth = 0) {
    if (!schema || depth > 6) return [];
    if (schema.$ref) return valuesOf(schemas[schema.$ref.split("/").pop()], schemas, depth + 1);
    const out = [];
    if (schema.const !== undefined) out.push(schema.const);
    if (Array.isArray(schema.enum)) out.push(...schema.enum);
    for (const k of ["anyOf", "oneOf", "allOf"]) for (const s of schema[k] || []) out.push(...valuesOf(s, schemas, depth + 1));
    return out;
  }

  async function detectSupport() {
    try {
      const doc = await api("/openapi.json");
      const schemas = (doc.components || {}).schemas || {};
      const tasktype = ((schemas.AcceptsRequest || {}).properties || {}).tasktype;
      state.support.notebook = valuesOf(tasktype, schemas).includes(NOTE_NOTEBOOK);
      const note = Object.keys((schemas.NoteResources || {}).properties || {});
      state.support.gpuMin = note.find((k) => /^min.*gpu/i.test(k)) || null;
      state.support.gpuMax = note.find((k) => /^max.*gpu/i.test(k)) || null;
      state.support.brokerGpus = "gpus" in ((schemas.Compute || {}).properties || {});
    } catch (e) { /* the defaults: containers and charts, no GPUs */ }
    if (state.support.notebook && ![...$("tasktype").options].some((o) => o.value === NOTE_NOTEBOOK)) {
      $("tasktype").append(el("option", {value: NOTE_NOTEBOOK, text: "a Jupyter notebook"}));
    }
    const gpus = $("gpus");
    gpus.disabled = !state.support.gpuMin;
    $("hint-gpus").textContent = state.support.gpuMin ? "" :
      "This planner's API does not take GPUs in questions yet; the calendar shows GPU use (Show: GPUs).";
  }

  // -- for scripts and tests: the page's state in words ---------------------------------------------------

  window.execplanner = {
    get firstPaintMs() { return state.firstPaintMs; },
    get user() { return state.session ? state.session.user : null; },
    summary() {
      const m = state.model;
      if (!m) return null;
      const bars = [];
      for (const n of m.nodes) for (const b of n.mine) bars.push({node: n.name, name: b.name, kind: b.kind, start: b.start, end: b.end});
      return {nodes: m.nodes.length, rows: state.rows.length, groupBy: state.groupBy, from: m.t0, to: m.t1,
        groups: state.rows.filter((r) => r.type === "group").map((r) => ({name: r.group.name, nodes: r.group.members.length, open: r.open})),
        mine: bars, candidates: state.candidates.map((c) => ({label: c.label, nodes: c.nodes, start: c.start, end: c.end}))};
    },
    /** {used, allocatable} of `metric` on a node at an instant (seconds), as the calendar shades it. */
    usage(node, t, metric = "cores") {
      const m = state.model, n = m && m.byName.get(node);
      if (!n) return null;
      const k = METRICS.indexOf(metric), i = Math.min(BUCKETS - 1, Math.max(0, Math.floor((t - m.t0) / m.dt)));
      return {used: n.use[k][i], allocatable: n.alloc[k]};
    },
    refresh: () => refresh(true),
    rowIndex(name) { return state.rows.findIndex((r) => (r.type === "group" ? r.group.name : r.node.name) === name); },
  };

  // -- start -------------------------------------------------------------------------------------------

  async function start() {
    renderLegend();
    showTaskFields();
    const hint = new URLSearchParams(location.search).get("login_hint");
    await completeSignIn();
    state.session = loadSession();
    if (hint && !state.session && config.signIn) {
      await signIn(hint);    // the "signed-in link": the issuer signs this user in
      return;
    }
    if (hint) history.replaceState(null, "", redirectUri());
    showAccount();
    const spans = [...$("span").options];
    for (const o of spans) o.disabled = +o.value > (config.horizonHours || 168);
    $("sign-in").addEventListener("click", () => signIn());
    $("sign-out").addEventListener("click", () => signOut());
    $("metric").addEventListener("change", (e) => { state.metric = e.target.value; draw(); });
    $("span").addEventListener("change", (e) => { state.spanHours = +e.target.value; refresh(true); });
    $("group-by").addEventListener("change", (e) => { state.groupBy = e.target.value; state.expanded.clear(); buildRows(); draw(); });
    $("expand-all").addEventListener("click", () => {
      for (const r of state.rows) if (r.type === "group") state.expanded.add(r.group.name);
      buildRows(); draw();
    });
    $("collapse-all").addEventListener("click", () => { state.expanded.clear(); buildRows(); draw(); });
    $("cal-scroll").addEventListener("scroll", () => requestAnimationFrame(draw), {passive: true});
    $("cal-scroll").addEventListener("keydown", onKey);
    $("cal-scroll").addEventListener("focus", () => draw());
    $("cal-scroll").addEventListener("blur", () => { $("cal-tip").hidden = true; draw(); });
    canvas().addEventListener("mousemove", onHover);
    canvas().addEventListener("mouseleave", () => { $("cal-tip").hidden = true; });
    $("tasktype").addEventListener("change", showTaskFields);
    $("ask-form").addEventListener("submit", ask);
    $("offers-button").addEventListener("click", findOffers);
    $("show-finished").addEventListener("change", renderBookings);
    $("log-close").addEventListener("click", () => { $("log-view").hidden = true; });
    new ResizeObserver(() => { if (state.model) { layout(); draw(); } }).observe($("calendar"));
    await refresh(true);
    detectSupport();
    setInterval(() => { if (!document.hidden) refresh(false); }, POLL_MS);
    setInterval(() => { if (!document.hidden) draw(); }, 15000);
  }

  start();
})();
