/* app.js - shoal's web view (docs/ui.md).
 *
 * Plain JavaScript, no framework, no build step. Every call is the REST API
 * the CLI uses, with the token as "Authorization: Bearer"; the token lives in
 * this tab's sessionStorage only and never goes into a URL. /v1/events is
 * read through fetch() (EventSource cannot send a header) and applied to the
 * in-memory fleet; the screen is redrawn once per animation frame, only the
 * rows and host boxes that changed.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'shoal.token';
  const PAGE = 1000;          /* the API's largest page */
  const CONSOLE_KEEP = 65536; /* console characters kept on screen */

  const S = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    hosts: new Map(),   /* name -> host object */
    insts: new Map(),   /* id -> instance object */
    images: [],
    rows: new Map(),    /* id -> its row in the list */
    sel: new Set(),     /* selected ids */
    filter: '',
    lastEvent: 0,
    loading: false,
    queued: [],         /* events seen while a full load runs */
    dirty: { all: false, ids: new Set(), heads: new Set(), hosts: false, images: false, inst: false },
    segs: new Map(),    /* id -> its two host segments {host, mem, cpu, ...} */
    heads: new Map(),   /* host name -> its box's labels */
    listGen: 0,         /* the list drawing in progress (chunks) */
    listBusy: false,
    listRedo: false,
    frame: 0,
    refresh: new Set(), /* ids whose full object is to be fetched again */
    deleted: new Set(), /* ids an instance.deleted event named */
    refreshTimer: 0,
    detail: null,       /* the instance page's object */
    detailId: '',
    con: null,          /* AbortController of the console stream */
    events: null,       /* AbortController of the event stream */
    plan: null,         /* {kind, host, result} of the last dry run */
  };
  /* what the browser test reads: first paint and event-to-screen times */
  const perf = { listPainted: 0, events: [] };
  window.shoalPerf = perf;

  const $ = (q) => document.querySelector(q);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function cell(row, cls, text) {
    const c = el('span', cls, text);
    row.appendChild(c);
    return c;
  }

  function td(tr, cls, text) {
    const c = el('td', cls, text);
    tr.appendChild(c);
    return c;
  }

  function status(msg, bad) {
    const s = $('#status');
    s.textContent = msg || '';
    s.classList.toggle('err', !!bad);
  }

  function human(bytes) {
    if (bytes == null) return '';
    const u = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (bytes >= 1024 && i < u.length - 1) { bytes /= 1024; i++; }
    return (i ? bytes.toFixed(1) : String(bytes)) + ' ' + u[i];
  }

  /* ---- the REST API ---------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  async function api(method, path, body) {
    const opt = { method, headers: { Authorization: 'Bearer ' + S.token }, cache: 'no-store' };
    if (body !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    const r = await fetch(path, opt);
    if (r.status === 204) return null;
    const text = await r.text();
    let j = null;
    try { j = JSON.parse(text); } catch (e) { j = null; }
    if (!r.ok) {
      const msg = j && j.error ? j.error.code + ': ' + j.error.message : 'HTTP ' + r.status;
      if (r.status === 401) signOut('the token was refused (' + msg + ')');
      throw new ApiError(r.status, msg);
    }
    return j;
  }

  /* every page of a list, PAGE items a request */
  async function listAll(path) {
    let items = [];
    let after = null;
    do {
      const q = path + (path.includes('?') ? '&' : '?') + 'limit=' + PAGE +
        (after ? '&after=' + encodeURIComponent(after) : '');
      const j = await api('GET', q);
      items = items.concat(j.items);
      after = j.next;
    } while (after);
    return items;
  }

  /* ---- sign in --------------------------------------------------------- */

  function signOut(why) {
    S.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    if (S.events) S.events.abort();
    if (S.con) S.con.abort();
    S.hosts.clear(); S.insts.clear(); S.rows.clear(); S.sel.clear();
    $('#hosts').textContent = '';
    $('#inst-rows').textContent = '';
    show('login');
    $('#login-err').textContent = why || '';
    $('#token').value = '';
    $('#token').focus();
  }

  async function signIn(ev) {
    ev.preventDefault();
    const t = $('#token').value.trim();
    if (!t) return;
    S.token = t;
    $('#login-err').textContent = '';
    try {
      await api('GET', '/v1/hosts?limit=1');
    } catch (e) {
      S.token = '';
      $('#login-err').textContent = e.message;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, t);
    $('#token').value = '';
    start();
  }

  /* ---- views ----------------------------------------------------------- */

  const VIEWS = ['login', 'view-fleet', 'view-instance', 'view-images', 'view-plan'];

  function show(id) {
    for (const v of VIEWS) $('#' + v).hidden = v !== id;
    const inApp = id !== 'login';
    $('#nav').hidden = !inApp;
    $('#logout').hidden = !inApp;
    $('#live').hidden = !inApp;
  }

  function route() {
    if (!S.token) { show('login'); return; }
    const h = location.hash || '#/';
    if (S.con && !h.startsWith('#/i/')) { S.con.abort(); S.con = null; }
    if (h.startsWith('#/i/')) {
      openInstance(decodeURIComponent(h.slice(4)));
    } else if (h === '#/images') {
      show('view-images');
      loadImages();
    } else if (h === '#/plan') {
      show('view-plan');
      planHosts();
    } else {
      show('view-fleet');
    }
  }

  /* ---- drawing, once per frame ----------------------------------------- */

  function schedule() {
    if (S.frame) return;
    S.frame = requestAnimationFrame(flush);
  }

  function flush() {
    S.frame = 0;
    const d = S.dirty;
    if (d.all) {
      drawList();
      drawHosts();
    } else {
      for (const id of d.ids) { drawRow(id); drawSegs(id); }
      if (d.hosts) drawHosts();
      else for (const name of d.heads) drawHead(name);
      if (d.all) drawList(); /* a new row */
    }
    if (d.images && !$('#view-images').hidden) drawImages();
    if (d.inst && !$('#view-instance').hidden) drawInstance();
    d.all = d.hosts = d.images = d.inst = false;
    d.ids.clear();
    d.heads.clear();
    /* after this frame is painted: the moment the test measures */
    const pending = perf.events.filter((e) => !e.drawn);
    if (pending.length) {
      const t = performance.now();
      setTimeout(() => { for (const e of pending) { e.drawn = t; e.painted = performance.now(); } }, 0);
    }
  }

  function matches(i) {
    if (!S.filter) return true;
    const f = S.filter;
    return i.name.includes(f) || i.state.includes(f) || (i.host || '').includes(f) ||
      (i.image || '').includes(f) || i.id.startsWith(f);
  }

  const byName = new Intl.Collator('en', { numeric: true }); /* web-2 before web-10 */

  function sortedShown() {
    const list = [];
    for (const i of S.insts.values()) if (matches(i)) list.push(i);
    list.sort((a, b) => byName.compare(a.name, b.name));
    return list;
  }

  function portsText(i) {
    const n = i.network;
    if (!n || !n.ports || !n.ports.length) return '';
    return n.ports.map((p) => p.host + '→' + p.guest + (p.protocol === 'udp' ? '/udp' : '')).join(' ');
  }

  function healthText(i) {
    const h = i.health;
    if (!h || !h.status || h.status === 'none') return '';
    return h.status + (h.failures ? ' (' + h.failures + ' failed)' : '');
  }

  /* a row is a grid of spans, not a <tr>: each row is its own layout root
   * (style.css), so changing one does not lay out a thousand-row table */
  function makeRow(i) {
    const tr = el('div', 'row');
    tr.dataset.id = i.id;
    const c = cell(tr, 'c-sel');
    const box = el('input');
    box.type = 'checkbox';
    box.checked = S.sel.has(i.id);
    c.appendChild(box);
    const nc = cell(tr, 'c-name');
    const a = el('a', null, i.name);
    a.href = '#/i/' + encodeURIComponent(i.id);
    nc.appendChild(a);
    cell(tr, 'c-id mono', i.id);
    cell(tr, 'c-state st-' + i.state, i.state);
    cell(tr, 'c-host', i.host || '');
    cell(tr, 'c-image', i.image || '');
    cell(tr, 'c-addr mono', i.network && i.network.enabled ? (i.network.address || '') : '');
    cell(tr, 'c-ports mono', portsText(i));
    cell(tr, 'c-health', healthText(i));
    cell(tr, 'c-restarts num', i.restarts || 0);
    cell(tr, 'c-mem num', i.memory_mib);
    cell(tr, 'c-vcpu num', i.vcpus);
    return tr;
  }

  /* The first FIRST_ROWS rows go in at once (the first screen), the rest in
   * chunks between frames: the first paint does not wait for the layout of
   * a thousand rows (~1 s on a loaded 2-CPU machine). */
  const FIRST_ROWS = 100;
  const CHUNK_ROWS = 300;

  function drawList() {
    const list = sortedShown();
    const body = el('div');
    body.id = 'inst-rows';
    const gen = ++S.listGen;
    S.rows.clear();
    let k = 0;
    const fill = (n) => {
      const end = Math.min(list.length, k + n);
      const frag = document.createDocumentFragment();
      for (; k < end; k++) {
        const i = S.insts.get(list[k].id);
        if (!i) continue;
        const tr = makeRow(i);
        S.rows.set(i.id, tr);
        frag.appendChild(tr);
      }
      body.appendChild(frag);
    };
    const more = () => {
      if (gen !== S.listGen) return;
      fill(CHUNK_ROWS);
      if (k < list.length) { setTimeout(more, 0); return; }
      S.listBusy = false;
      perf.listComplete = perf.listComplete || performance.now();
      drawSelection();
      if (S.listRedo) { S.listRedo = false; S.dirty.all = true; schedule(); }
    };
    fill(FIRST_ROWS);
    $('#inst-rows').replaceWith(body);
    $('#count').textContent = list.length === S.insts.size ? '(' + list.length + ')' :
      '(' + list.length + ' of ' + S.insts.size + ')';
    S.listBusy = k < list.length;
    if (S.listBusy) setTimeout(more, 0);
    else perf.listComplete = perf.listComplete || performance.now();
    drawSelection();
  }

  function drawRow(id) {
    const i = S.insts.get(id);
    const old = S.rows.get(id);
    if (!i) {
      if (old) { old.remove(); S.rows.delete(id); }
      S.sel.delete(id);
      $('#count').textContent = '(' + S.insts.size + ')';
      drawSelection();
      return;
    }
    if (!old) {
      /* a row still to come in a chunk is drawn from S.insts then; a new
       * instance needs its place in the order: the whole list again */
      if (S.listBusy) S.listRedo = true;
      else if (matches(i)) S.dirty.all = true;
      return;
    }
    const tr = makeRow(i);
    old.replaceWith(tr);
    S.rows.set(id, tr);
  }

  /* A host's segment of an instance changes in place when only its state
   * changed (the hidden states take no room); anything else redraws the
   * hosts. */
  function drawSegs(id) {
    const i = S.insts.get(id);
    const g = S.segs.get(id);
    if (!i) {
      if (g) { g.mem.remove(); g.cpu.remove(); S.segs.delete(id); S.dirty.heads.add(g.host); }
      return;
    }
    if (!g || g.host !== i.host || g.memory_mib !== i.memory_mib || g.vcpus !== i.vcpus) {
      S.dirty.hosts = true;
      return;
    }
    g.mem.className = g.cpu.className = 'seg st-' + i.state;
    g.mem.title = g.cpu.title = i.name + ' ' + i.state;
    S.dirty.heads.add(i.host);
  }

  const IDLE = new Set(['stopped', 'exited', 'failed', 'crashed']);

  /* Each host is a box: one strip per resource, each instance a segment as
   * wide as its share of the host's capacity (memory_mib, vcpus); instances
   * not running take no room (their segments are hidden). */
  function drawHosts() {
    const root = $('#hosts');
    const by = new Map();
    for (const h of S.hosts.keys()) by.set(h, []);
    for (const i of S.insts.values()) {
      if (!by.has(i.host)) by.set(i.host, []);
      by.get(i.host).push(i);
    }
    S.segs.clear();
    S.heads.clear();
    const frag = document.createDocumentFragment();
    const names = [...by.keys()].sort();
    for (const name of names) frag.appendChild(hostBox(name, S.hosts.get(name), by.get(name)));
    root.textContent = '';
    root.appendChild(frag);
  }

  function strip(cls, list, field, cap) {
    const all = list.reduce((s, i) => s + (i[field] || 0), 0);
    const total = Math.max(cap || 0, all, 1);
    const bar = el('div', 'bar ' + cls);
    for (const i of list) {
      const w = 100 * (i[field] || 0) / total;
      const s = el('span', 'seg st-' + i.state);
      s.style.width = w + '%';
      if (w < 0.4) s.style.borderRight = '0'; /* a thousand borders would hide the colour */
      s.title = i.name + ' ' + i.state;
      bar.appendChild(s);
    }
    const lab = el('span', 'barlabel');
    bar.appendChild(lab);
    return bar;
  }

  function hostBox(name, h, list) {
    const box = el('div', 'host');
    box.dataset.host = name;
    const state = h ? h.state : 'unknown';
    if (h && h.cordoned) box.classList.add('cordoned');
    if (state !== 'up') box.classList.add('down');
    const head = el('div', 'hhead');
    head.appendChild(el('b', null, name));
    head.appendChild(el('span', 'badge st-' + state, state));
    if (h && h.cordoned) head.appendChild(el('span', 'badge cordon', 'cordoned'));
    const info = el('span', 'muted');
    head.appendChild(info);
    box.appendChild(head);
    const cap = h && h.capacity ? h.capacity : {};
    const mem = strip('mem', list, 'memory_mib', cap.memory_mib);
    const cpu = strip('cpu', list, 'vcpus', cap.vcpus);
    list.forEach((i, k) => S.segs.set(i.id, {
      host: name, memory_mib: i.memory_mib, vcpus: i.vcpus,
      mem: mem.children[k], cpu: cpu.children[k],
    }));
    box.appendChild(mem);
    box.appendChild(cpu);
    if (h && h.used) {
      box.appendChild(el('div', 'muted small', 'charged ' + h.used.memory_mib + ' MiB' +
        (h.usage && h.usage.model ? ' (' + h.usage.model + ')' : '') + ' at the last host refresh'));
    }
    S.heads.set(name, { h, info, memLab: mem.lastChild, cpuLab: cpu.lastChild });
    drawHead(name);
    return box;
  }

  /* a host's counts: instances, running, memory and vCPUs they take */
  function drawHead(name) {
    const e = S.heads.get(name);
    if (!e) return;
    let n = 0, running = 0, mem = 0, cpu = 0;
    for (const i of S.insts.values()) {
      if (i.host !== name) continue;
      n++;
      if (i.state === 'running') running++;
      if (!IDLE.has(i.state)) { mem += i.memory_mib || 0; cpu += i.vcpus || 0; }
    }
    const cap = e.h && e.h.capacity ? e.h.capacity : {};
    e.info.textContent = n + ' instances, ' + running + ' running' +
      (e.h && e.h.domain_type ? ', ' + e.h.domain_type : '');
    e.memLab.textContent = 'MiB ' + mem + '/' + (cap.memory_mib || '?');
    e.cpuLab.textContent = 'vCPU ' + cpu + '/' + (cap.vcpus || '?');
  }

  function drawSelection() {
    for (const id of S.sel) if (!S.insts.has(id)) S.sel.delete(id);
    const n = S.sel.size;
    $('#selcount').textContent = n + ' selected';
    for (const b of document.querySelectorAll('#view-fleet .toolbar button')) b.disabled = n === 0;
    const shown = S.rows.size;
    $('#sel-all').checked = shown > 0 && n >= shown && [...S.rows.keys()].every((id) => S.sel.has(id));
  }

  /* ---- loading and live events ----------------------------------------- */

  async function loadAll() {
    S.loading = true;
    try {
      const [hosts, insts] = await Promise.all([listAll('/v1/hosts'), listAll('/v1/instances')]);
      S.hosts = new Map(hosts.map((h) => [h.name, h]));
      S.insts = new Map(insts.map((i) => [i.id, i]));
      status('');
    } catch (e) {
      status('loading the fleet failed: ' + e.message, true);
    }
    S.loading = false;
    const q = S.queued;
    S.queued = [];
    for (const ev of q) apply(ev);
    S.dirty.all = true;
    S.dirty.inst = true;
    schedule();
    if (!perf.listPainted) {
      requestAnimationFrame(() => setTimeout(() => {
        perf.listPainted = performance.now();
        perf.rows = S.rows.size;
      }, 0));
    }
  }

  async function loadHosts() {
    try {
      const hosts = await listAll('/v1/hosts');
      S.hosts = new Map(hosts.map((h) => [h.name, h]));
      S.dirty.hosts = true;
      schedule();
      if (!$('#view-plan').hidden) planHosts();
    } catch (e) { status(e.message, true); }
  }

  async function loadImages() {
    try {
      S.images = await listAll('/v1/images');
      S.dirty.images = true;
      schedule();
    } catch (e) { status(e.message, true); }
  }

  /* the full object of instances that events touched, a few at a time */
  function refreshSoon(id) {
    S.refresh.add(id);
    if (!S.refreshTimer) S.refreshTimer = setTimeout(refreshNow, 150);
  }

  async function refreshNow() {
    S.refreshTimer = 0;
    const ids = [...S.refresh];
    S.refresh.clear();
    if (ids.length > 50) { await loadAll(); return; }
    await Promise.all(ids.map(async (id) => {
      try {
        const i = await api('GET', '/v1/instances/' + encodeURIComponent(id));
        if (S.insts.has(id) || !S.deleted.has(id)) {
          S.insts.set(id, i);
          S.dirty.ids.add(id);
          if (id === S.detailId) { S.detail = i; S.dirty.inst = true; }
        }
      } catch (e) {
        if (e.status === 404) {
          S.insts.delete(id);
          S.dirty.ids.add(id);
        }
      }
    }));
    schedule();
  }

  function apply(ev) {
    const t = ev.type || '';
    const id = ev.instance;
    if (t.startsWith('instance.') && id) {
      const i = S.insts.get(id);
      if (t === 'instance.deleted') {
        S.insts.delete(id);
        S.deleted.add(id);
        S.dirty.ids.add(id);
        if (id === S.detailId) S.dirty.inst = true;
        return true;
      }
      if (i && ev.state) {
        i.state = ev.state;
        if (ev.host) i.host = ev.host;
        S.dirty.ids.add(id);
        if (id === S.detailId) { S.dirty.inst = true; }
      }
      refreshSoon(id);
      return !!(i && ev.state);
    }
    if (t.startsWith('host.')) { loadHosts(); return false; }
    if (t.startsWith('image.') || t === 'initrd.pushed') {
      if (!$('#view-images').hidden) loadImages();
      return false;
    }
    if (t === 'bulk.progress' || t === 'batch.progress') status(ev.message || '');
    return false;
  }

  function onEvent(block) {
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('data:')) data += line.slice(line[5] === ' ' ? 6 : 5);
    }
    if (!data) return;
    let ev;
    try { ev = JSON.parse(data); } catch (e) { return; }
    if (ev.id) S.lastEvent = Math.max(S.lastEvent, ev.id);
    const rec = { id: ev.id, type: ev.type, instance: ev.instance, state: ev.state,
      recv: performance.now(), drawn: 0, painted: 0 };
    if (S.loading) { S.queued.push(ev); return; }
    if (apply(ev)) {
      perf.events.push(rec);
      if (perf.events.length > 200) perf.events.splice(0, perf.events.length - 200);
    }
    schedule();
  }

  function setLive(on) {
    const l = $('#live');
    l.textContent = on ? 'live' : 'offline';
    l.classList.toggle('off', !on);
  }

  /* /v1/events as a stream read by fetch, reconnecting with ?since= */
  async function follow() {
    let first = true;
    while (S.token) {
      const ctl = new AbortController();
      S.events = ctl;
      try {
        const q = S.lastEvent ? '?since=' + S.lastEvent : '';
        const r = await fetch('/v1/events' + q, {
          headers: { Authorization: 'Bearer ' + S.token, Accept: 'text/event-stream' },
          cache: 'no-store', signal: ctl.signal,
        });
        if (r.status === 401) { signOut('the token was refused'); return; }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        setLive(true);
        if (!first) loadAll(); /* what happened while we were away */
        first = false;
        const rd = r.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await rd.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let k;
          while ((k = buf.indexOf('\n\n')) >= 0) {
            onEvent(buf.slice(0, k));
            buf = buf.slice(k + 2);
          }
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
      }
      setLive(false);
      await new Promise((res) => setTimeout(res, 1000));
    }
  }

  /* ---- actions --------------------------------------------------------- */

  /* a delete asks twice: the button becomes "Confirm" for 4 s */
  function confirmed(btn) {
    if (btn.dataset.armed === '1') { btn.dataset.armed = ''; btn.textContent = 'Delete'; return true; }
    btn.dataset.armed = '1';
    btn.textContent = 'Confirm delete';
    setTimeout(() => { btn.dataset.armed = ''; btn.textContent = 'Delete'; }, 4000);
    return false;
  }

  async function bulk(ev) {
    const btn = ev.currentTarget;
    const act = btn.dataset.act;
    if (act === 'delete' && !confirmed(btn)) return;
    const ids = [...S.sel];
    const msg = $('#act-msg');
    msg.textContent = act + ' ' + ids.length + '…';
    let ok = 0, failed = 0, first = '';
    try {
      for (let k = 0; k < ids.length; k += 1000) {
        const body = { ids: ids.slice(k, k + 1000) };
        if (act === 'delete') body.force = true;
        const r = await api('POST', '/v1/instances/' + act, body);
        ok += r.succeeded;
        failed += r.failed;
        const bad = r.items.find((x) => !x.ok);
        if (bad && !first) first = (bad.name || bad.key) + ': ' + bad.error.message;
      }
      msg.textContent = act + ': ' + ok + ' done' + (failed ? ', ' + failed + ' failed (' + first + ')' : '');
    } catch (e) {
      msg.textContent = act + ' failed: ' + e.message;
    }
    if (act === 'delete') { S.sel.clear(); drawSelection(); }
  }

  async function single(ev) {
    const btn = ev.currentTarget;
    const act = btn.dataset.act;
    const id = S.detailId;
    if (act === 'delete' && !confirmed(btn)) return;
    const msg = $('#i-msg');
    msg.textContent = act + '…';
    try {
      if (act === 'delete') {
        await api('DELETE', '/v1/instances/' + encodeURIComponent(id) + '?force=true');
        msg.textContent = 'deleted';
        location.hash = '#/';
        return;
      }
      S.detail = await api('POST', '/v1/instances/' + encodeURIComponent(id) + '/' + act, {});
      msg.textContent = act + ': done';
      S.dirty.inst = true;
      schedule();
      if (act !== 'stop') followConsole(id);
    } catch (e) {
      msg.textContent = act + ' failed: ' + e.message;
    }
  }

  /* ---- one instance ---------------------------------------------------- */

  async function openInstance(id) {
    show('view-instance');
    S.detailId = id;
    S.detail = S.insts.get(id) || null;
    drawInstance();
    try {
      S.detail = await api('GET', '/v1/instances/' + encodeURIComponent(id));
      S.detailId = S.detail.id;
      drawInstance();
      followConsole(S.detail.id);
    } catch (e) {
      $('#i-title').textContent = 'instance ' + id + ': ' + e.message;
    }
  }

  function drawInstance() {
    const i = S.detail;
    if (!i) return;
    const gone = !S.insts.has(i.id) && S.deleted.has(i.id);
    $('#i-title').textContent = i.name + ' (' + i.id + ')' + (gone ? ' - deleted' : '');
    const dl = $('#i-fields');
    dl.textContent = '';
    const n = i.network || {};
    const rows = [
      ['state', i.state, 'st-' + i.state],
      ['host', i.host], ['image', i.image + '  ' + (i.image_digest || '').slice(0, 19)],
      ['memory', i.memory_mib + ' MiB'], ['vcpus', i.vcpus],
      ['address', n.enabled ? n.address : 'no network'], ['ports', portsText(i)],
      ['health', healthText(i) + (i.health && i.health.last_result ? '  ' + i.health.last_result : '')],
      ['restarts', (i.restarts || 0) + ' (policy ' + i.restart + ')'],
      ['exit code', i.exit_code == null ? '' : i.exit_code],
      ['last error', i.last_error || ''],
      ['created', i.created], ['started', i.started || ''],
      ['boot / ready', (i.boot_ms == null ? '-' : i.boot_ms + ' ms') + ' / ' +
        (i.ready_ms == null ? '-' : i.ready_ms + ' ms')],
      ['labels', Object.entries(i.labels || {}).map(([k, v]) => k + '=' + v).join(' ')],
    ];
    for (const [k, v, cls] of rows) {
      dl.appendChild(el('dt', null, k));
      const dd = el('dd', cls || null, v);
      if (k === 'state') dd.id = 'i-state';
      dl.appendChild(dd);
    }
    const tb = $('#runs tbody');
    tb.textContent = '';
    for (const r of i.runs || []) {
      const tr = el('tr');
      td(tr, null, r.started || '');
      td(tr, null, r.ended || '');
      td(tr, 'st-' + (r.outcome || ''), r.outcome || '');
      td(tr, 'num', r.exit_code == null ? '' : r.exit_code);
      td(tr, null, r.reason || '');
      tb.appendChild(tr);
    }
  }

  /* the console's tail, then its new output as it comes (the stream of the
   * page shown before, or of the run before, is closed first) */
  async function followConsole(id) {
    if (S.con) S.con.abort();
    const ctl = new AbortController();
    S.con = ctl;
    const pre = $('#console');
    const st = $('#con-state');
    pre.textContent = '';
    st.textContent = '(following)';
    try {
      const r = await fetch('/v1/instances/' + encodeURIComponent(id) + '/console?tail=16384&follow=true', {
        headers: { Authorization: 'Bearer ' + S.token }, cache: 'no-store', signal: ctl.signal,
      });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const rd = r.body.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await rd.read();
        if (done) break;
        let text = pre.textContent + dec.decode(value, { stream: true });
        if (text.length > CONSOLE_KEEP) text = text.slice(text.length - CONSOLE_KEEP);
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent = text;
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      }
      st.textContent = '(ended: the instance is not running)';
    } catch (e) {
      if (!ctl.signal.aborted) st.textContent = '(' + e.message + ')';
    }
    if (S.con === ctl) S.con = null;
  }

  /* ---- images ---------------------------------------------------------- */

  function drawImages() {
    const users = new Map();
    for (const i of S.insts.values()) {
      if (!users.has(i.image_digest)) users.set(i.image_digest, []);
      users.get(i.image_digest).push(i.name);
    }
    const tb = document.createElement('tbody');
    for (const im of S.images) {
      const tr = el('tr');
      tr.dataset.digest = im.digest;
      td(tr, 'c-refs', (im.refs || []).join(' '));
      td(tr, 'mono', im.digest.slice(0, 19));
      td(tr, null, im.kind || '');
      td(tr, null, im.boot || '');
      const sz = td(tr, 'c-size num', human(im.size));
      sz.title = im.size + ' bytes';
      td(tr, 'c-users num', im.instances);
      const u = (users.get(im.digest) || []).sort();
      td(tr, 'small', u.slice(0, 8).join(' ') + (u.length > 8 ? ' … +' + (u.length - 8) : ''));
      td(tr, null, im.created || '');
      tb.appendChild(tr);
    }
    $('#images').replaceChild(tb, $('#images tbody'));
  }

  /* ---- plans ----------------------------------------------------------- */

  function planHosts() {
    const sel = $('#plan-host');
    const cur = sel.value;
    sel.textContent = '';
    for (const name of [...S.hosts.keys()].sort()) {
      const o = el('option', null, name);
      o.value = name;
      sel.appendChild(o);
    }
    if (cur) sel.value = cur;
    sel.hidden = $('#plan-kind').value !== 'drain';
  }

  function planPath(kind, host, dry) {
    const base = kind === 'drain' ? '/v1/hosts/' + encodeURIComponent(host) + '/drain' : '/v1/consolidate';
    return base + (dry ? '?dry_run=true' : '');
  }

  async function runPlan(dry) {
    const kind = $('#plan-kind').value;
    const host = $('#plan-host').value;
    const msg = $('#plan-msg');
    if (!dry && (!S.plan || S.plan.kind !== kind || S.plan.host !== host)) return;
    msg.textContent = dry ? 'planning…' : 'carrying it out…';
    $('#plan-exec').disabled = true;
    try {
      const r = await api('POST', planPath(kind, host, dry), {});
      S.plan = dry ? { kind, host, result: r } : null;
      drawPlan(r);
      msg.textContent = dry ? 'dry run: nothing has moved yet' : 'carried out: ' + r.moves.length + ' moved';
      $('#plan-exec').disabled = !dry || r.moves.length === 0;
      if (!dry) loadAll();
    } catch (e) {
      msg.textContent = (dry ? 'plan' : 'carry out') + ' failed: ' + e.message;
    }
  }

  /* Hosts before and after, each a strip of its instances' memory; moving
   * instances marked, hosts that end empty marked; then the moves. */
  function drawPlan(p) {
    const out = $('#plan-out');
    out.textContent = '';
    const moving = new Map(p.moves.map((m) => [m.instance, m]));
    const before = new Map();
    const after = new Map();
    for (const h of S.hosts.keys()) { before.set(h, []); after.set(h, []); }
    for (const i of S.insts.values()) {
      if (!before.has(i.host)) { before.set(i.host, []); after.set(i.host, []); }
      before.get(i.host).push(i);
      const m = moving.get(i.id);
      const to = m ? m.to : i.host;
      if (!after.has(to)) { after.set(to, []); before.set(to, []); }
      after.get(to).push(i);
    }
    const freed = new Set(p.hosts_freed || []);
    out.appendChild(el('p', null, 'hosts in use: ' + p.hosts_before + ' → ' + p.hosts_after +
      (freed.size ? '; ending empty: ' + [...freed].join(', ') : '') +
      (p.executed ? ' (carried out)' : ' (dry run)')));
    const grid = el('div', 'plan');
    grid.appendChild(el('div', 'phead', 'host'));
    grid.appendChild(el('div', 'phead', 'before'));
    grid.appendChild(el('div', 'phead', 'after'));
    for (const name of [...before.keys()].sort()) {
      const h = S.hosts.get(name);
      const cap = h && h.capacity ? h.capacity.memory_mib : 0;
      const nm = el('div', 'pname' + (freed.has(name) ? ' freed' : ''), name +
        (freed.has(name) ? ' (ends empty)' : ''));
      nm.dataset.host = name;
      grid.appendChild(nm);
      for (const [list, side] of [[before.get(name), 'before'], [after.get(name), 'after']]) {
        /* one tile per instance, so a single move shows on a big host */
        const cell = el('div', 'tiles');
        cell.dataset.side = side;
        let mem = 0;
        for (const i of list) {
          const m = moving.get(i.id);
          const t = el('span', 'tile ' + (m ? (side === 'before' ? 'moving-out' : 'moving-in') : 'st-' + i.state));
          t.title = i.name + ' ' + i.memory_mib + ' MiB' + (m ? ', ' + m.from + ' → ' + m.to : '');
          cell.appendChild(t);
          if (!IDLE.has(i.state)) mem += i.memory_mib;
        }
        cell.appendChild(el('span', 'barlabel', list.length + ' instances, ' + mem + '/' + (cap || '?') + ' MiB'));
        grid.appendChild(cell);
      }
    }
    out.appendChild(grid);
    const t = el('table', 'list');
    t.id = 'plan-moves';
    const hr = el('tr');
    for (const c of ['instance', 'from', '', 'to']) hr.appendChild(el('th', null, c));
    t.appendChild(el('thead')).appendChild(hr);
    const tb = el('tbody');
    for (const m of p.moves) {
      const tr = el('tr');
      const i = S.insts.get(m.instance);
      td(tr, null, i ? i.name + ' (' + m.instance + ')' : m.instance);
      td(tr, null, m.from);
      td(tr, null, '→');
      td(tr, null, m.to);
      tb.appendChild(tr);
    }
    t.appendChild(tb);
    out.appendChild(el('h3', null, p.moves.length + ' moves'));
    out.appendChild(t);
  }

  /* ---- wiring ---------------------------------------------------------- */

  function start() {
    route();
    loadAll();
    follow();
  }

  function init() {
    $('#login-form').addEventListener('submit', signIn);
    $('#logout').addEventListener('click', () => signOut(''));
    window.addEventListener('hashchange', route);
    $('#filter').addEventListener('input', (e) => {
      S.filter = e.target.value.trim();
      S.dirty.all = true;
      schedule();
    });
    $('#inst-table').addEventListener('change', (e) => {
      const box = e.target;
      if (box.id === 'sel-all') {
        for (const id of S.rows.keys()) if (box.checked) S.sel.add(id); else S.sel.delete(id);
        for (const tr of S.rows.values()) tr.firstChild.firstChild.checked = box.checked;
      } else if (box.type === 'checkbox') {
        const id = box.closest('.row').dataset.id;
        if (box.checked) S.sel.add(id); else S.sel.delete(id);
      }
      drawSelection();
    });
    for (const b of document.querySelectorAll('#view-fleet .toolbar button')) b.addEventListener('click', bulk);
    for (const b of document.querySelectorAll('#view-instance .toolbar button')) b.addEventListener('click', single);
    $('#plan-kind').addEventListener('change', () => { S.plan = null; $('#plan-exec').disabled = true; planHosts(); });
    $('#plan-host').addEventListener('change', () => { S.plan = null; $('#plan-exec').disabled = true; });
    $('#plan-run').addEventListener('click', () => runPlan(true));
    $('#plan-exec').addEventListener('click', () => runPlan(false));
    if (S.token) start(); else show('login');
  }

  init();
})();
