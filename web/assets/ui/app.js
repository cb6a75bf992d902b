// Charcoal's browser UI: a hash router over three views (composer, dashboard list, one
// dashboard), the shared time range in the top bar, and auto-refresh.
//
// URLs: #/?target=…&from=-6h            the composer with a graph
//       #/dashboards                    the list
//       #/dashboard/<name>?var-host=web1&from=-1d&refresh=1m

import { Composer } from './composer.js';
import { DashboardList, DashboardView } from './dashboard.js';
import { TimeRange, refreshMillis } from './timerange.js';

const view = document.getElementById('view');
const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
let current = null;
let timer = 0;
let route = { path: '/', q: new URLSearchParams() };

function parseHash() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  return { path, q: new URLSearchParams(query) };
}

/** Rewrites the hash query without a new history entry or a re-render. */
function writeUrl() {
  const q = route.q.toString();
  history.replaceState(null, '', `#${route.path}${q ? `?${q}` : ''}`);
}

const range = new TimeRange(document.getElementById('timerange'), (value) => {
  for (const [k, v] of Object.entries(value)) {
    if (v) route.q.set(k, v);
    else route.q.delete(k);
  }
  writeUrl();
  schedule();
  current?.refresh?.();
});

function schedule() {
  clearInterval(timer);
  const ms = refreshMillis(range.value.refresh);
  if (ms) timer = setInterval(() => current?.refresh?.(), ms);
}

const ctx = {
  tz,
  range: () => range.value,
  /** Replaces the view's own URL parameters, keeping the time range. */
  setUrl(params) {
    const keep = ['from', 'until', 'refresh'].filter((k) => route.q.has(k)).map((k) => [k, route.q.get(k)]);
    route.q = new URLSearchParams(params);
    for (const [k, v] of keep) route.q.set(k, v);
    writeUrl();
  },
  /** A dashboard's own default range, used when the URL names none. */
  setDefaults(d) {
    range.set({
      from: route.q.get('from') || d.from,
      until: route.q.get('until') || d.until,
      refresh: route.q.get('refresh') || d.refresh,
    });
    schedule();
  },
};

function show() {
  route = parseHash();
  range.set({ from: route.q.get('from'), until: route.q.get('until'), refresh: route.q.get('refresh') });
  schedule();
  const dash = /^\/dashboard\/([A-Za-z0-9_-]+)$/.exec(route.path);
  const section = dash || route.path === '/dashboards' ? 'dashboards' : 'compose';
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === section);
  }
  if (dash) {
    document.title = `${dash[1]} · Charcoal`;
    current = new DashboardView(view, ctx, dash[1], route.q);
  } else if (route.path === '/dashboards') {
    document.title = 'Dashboards · Charcoal';
    current = new DashboardList(view);
  } else {
    document.title = 'Charcoal';
    current = new Composer(view, ctx, route.q);
  }
}

window.addEventListener('hashchange', show);
let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => current?.refresh?.(), 300);
});
show();
