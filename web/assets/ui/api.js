// Talking to the server: the Graphite API (/metrics/find, /render) and the dashboard API.
// Every URL is relative, so the UI also works behind a proxy that adds a path prefix.

async function request(url, options = {}) {
  const response = await fetch(url, options);
  if (!response.ok) {
    const text = (await response.text()).trim();
    throw new Error(text || `${response.status} ${response.statusText}`);
  }
  return response;
}

async function json(url, options) {
  return (await request(url, options)).json();
}

/** One level of the metric tree: [{text, id, leaf}] (branches first). */
export async function findNodes(query) {
  const nodes = await json(`metrics/find?query=${encodeURIComponent(query)}`);
  return nodes.map((n) => ({ text: n.text, id: n.id, leaf: n.leaf === 1 }));
}

/** Leaf metrics matching any of the globs, sorted. */
export async function expand(globs) {
  const q = globs.map((g) => `query=${encodeURIComponent(g)}`).join('&');
  const body = await json(`metrics/expand?leavesOnly=1&${q}`);
  return body.results;
}

/** Query string of a /render request (targets, time range, image parameters). */
export function renderQuery(targets, params) {
  const q = new URLSearchParams();
  for (const t of targets) {
    if (t.trim()) q.append('target', t);
  }
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && `${v}` !== '') q.set(k, v);
  }
  return q.toString();
}

export function renderUrl(targets, params) {
  return `render?${renderQuery(targets, params)}`;
}

/**
 * Series as [{target, tags, datapoints: [[value, ts]]}] for the interactive chart; with
 * `styles: 1` in params each also has Charcoal's `style` object (src/render.rs).
 */
export async function renderJson(targets, params) {
  return json(`render?${renderQuery(targets, { ...params, format: 'json' })}`);
}

export async function listDashboards() {
  return json('api/dashboards');
}

export async function loadDashboard(name) {
  return json(`api/dashboards/${encodeURIComponent(name)}`);
}

export async function saveDashboard(name, dashboard) {
  return json(`api/dashboards/${encodeURIComponent(name)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(dashboard),
  });
}

export async function deleteDashboard(name) {
  await request(`api/dashboards/${encodeURIComponent(name)}`, { method: 'DELETE' });
}

/** Dashboard names: letters, digits, '-' and '_' (the server refuses anything else). */
export function validName(name) {
  return /^[A-Za-z0-9_-]{1,100}$/.test(name);
}

/** `$name` → value for every dashboard variable, in targets and titles. */
export function substitute(text, values) {
  return text.replace(/\$([A-Za-z0-9_]+)/g, (m, name) => (name in values ? values[name] : m));
}
