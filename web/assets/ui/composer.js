// The graph composer: pick metrics from the tree, edit targets, wrap them in functions, set
// graph options, and watch the PNG (or the interactive chart) update. The state lives in the
// URL, so a composed graph is a link.

import * as api from './api.js';
import { Chart } from './chart.js';
import { MetricTree } from './tree.js';

// Functions offered for one click; arguments get defaults the user edits in the target box.
const FUNCTIONS = [
  ['Combine', [
    ['sumSeries', (t) => `sumSeries(${t})`],
    ['averageSeries', (t) => `averageSeries(${t})`],
    ['maxSeries', (t) => `maxSeries(${t})`],
    ['groupByNode', (t) => `groupByNode(${t}, 1, 'sum')`],
    ['asPercent', (t) => `asPercent(${t})`],
  ]],
  ['Transform', [
    ['scale', (t) => `scale(${t}, 1)`],
    ['perSecond', (t) => `perSecond(${t})`],
    ['nonNegativeDerivative', (t) => `nonNegativeDerivative(${t})`],
    ['integral', (t) => `integral(${t})`],
    ['summarize', (t) => `summarize(${t}, '1h', 'sum')`],
    ['timeShift', (t) => `timeShift(${t}, '1d')`],
    ['keepLastValue', (t) => `keepLastValue(${t})`],
    ['transformNull', (t) => `transformNull(${t}, 0)`],
  ]],
  ['Calculate', [
    ['movingAverage', (t) => `movingAverage(${t}, '5min')`],
    ['nPercentile', (t) => `nPercentile(${t}, 95)`],
  ]],
  ['Filter', [
    ['highestCurrent', (t) => `highestCurrent(${t}, 5)`],
    ['highestMax', (t) => `highestMax(${t}, 5)`],
    ['removeBelowValue', (t) => `removeBelowValue(${t}, 0)`],
    ['sortByMaxima', (t) => `sortByMaxima(${t})`],
  ]],
  ['Name', [
    ['alias', (t) => `alias(${t}, 'name')`],
    ['aliasByNode', (t) => `aliasByNode(${t}, 1)`],
    ['aliasByMetric', (t) => `aliasByMetric(${t})`],
    ['legendValue', (t) => `legendValue(${t}, 'last', 'avg')`],
  ]],
  ['Style', [
    ['color', (t) => `color(${t}, 'red')`],
    ['lineWidth', (t) => `lineWidth(${t}, 2)`],
    ['dashed', (t) => `dashed(${t})`],
    ['stacked', (t) => `stacked(${t})`],
    ['secondYAxis', (t) => `secondYAxis(${t})`],
  ]],
];

// Graph options shown as form fields: [param, label, kind, choices].
const OPTIONS = [
  ['title', 'Title', 'text'],
  ['vtitle', 'Y label', 'text'],
  ['areaMode', 'Area', 'select', ['', 'first', 'all', 'stacked']],
  ['lineMode', 'Lines', 'select', ['', 'staircase', 'connected']],
  ['yMin', 'Y min', 'number'],
  ['yMax', 'Y max', 'number'],
  ['logBase', 'Log base', 'select', ['', '2', '10', 'e']],
  ['yUnitSystem', 'Units', 'select', ['', 'binary', 'none']],
  ['lineWidth', 'Line width', 'number'],
  ['hideLegend', 'Hide legend', 'check'],
  ['drawNullAsZero', 'Nulls as zero', 'check'],
];
const OPTION_KEYS = OPTIONS.map(([k]) => k);

/** The params of a graph the composer edits, read from URL parameters. */
export function graphFromParams(q) {
  const params = {};
  for (const k of OPTION_KEYS) {
    if (q.get(k)) params[k] = q.get(k);
  }
  return { targets: q.getAll('target'), params };
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

export class Composer {
  /** `ctx`: {range(), setUrl(params), tz}. `q`: URLSearchParams of the route. */
  constructor(root, ctx, q) {
    this.ctx = ctx;
    const g = graphFromParams(q);
    this.targets = g.targets;
    this.params = g.params;
    this.mode = q.get('mode') === 'interactive' ? 'interactive' : 'image';
    // Set when editing a graph of a dashboard ("Edit" on a panel).
    this.dashboard = q.get('dashboard') || '';
    this.graphIndex = q.has('graph') ? Number(q.get('graph')) : -1;
    // Dashboard variables ($host …) of a graph being edited, substituted when drawing.
    this.vars = {};
    for (const [k, v] of q) {
      if (k.startsWith('var-')) this.vars[k.slice(4)] = v;
    }

    const tree = el('aside', { class: 'sidebar' });
    this.preview = el('div', { class: 'preview' });
    this.imageButton = el('button', { type: 'button', onclick: () => this.setMode('image') }, 'Image');
    this.chartButton = el('button', { type: 'button', onclick: () => this.setMode('interactive') }, 'Interactive');
    this.targetList = el('div', { class: 'targets' });
    this.newTarget = el('input', {
      type: 'text',
      placeholder: 'Type a target, e.g. sumSeries(servers.*.load.load1), and press Enter',
      'aria-label': 'New target',
      class: 'target-input',
    });
    this.newTarget.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && this.newTarget.value.trim()) {
        this.targets.push(this.newTarget.value.trim());
        this.newTarget.value = '';
        this.changed();
      }
    });
    this.status = el('span', { class: 'status', role: 'status' });
    this.links = el('span', { class: 'links' });
    this.saveArea = el('div', { class: 'save-area' });

    root.replaceChildren(
      el('section', { class: 'composer' },
        tree,
        el('div', { class: 'work' },
          el('div', { class: 'card' },
            el('div', { class: 'card-head' },
              el('h2', {}, 'Graph'),
              el('div', { class: 'toggle', role: 'group', 'aria-label': 'View' }, this.imageButton, this.chartButton),
              this.links),
            this.preview),
          el('div', { class: 'card' },
            el('div', { class: 'card-head' }, el('h2', {}, 'Targets')),
            this.targetList, this.newTarget),
          el('div', { class: 'card' },
            el('div', { class: 'card-head' }, el('h2', {}, 'Options')),
            this.optionsForm()),
          el('div', { class: 'card' },
            el('div', { class: 'card-head' }, el('h2', {}, 'Save'), this.status),
            this.saveArea))));

    new MetricTree(tree, (path) => {
      this.targets.push(path);
      this.changed();
    });
    this.renderTargets();
    this.renderSave();
    this.setMode(this.mode);
  }

  optionsForm() {
    const form = el('form', { class: 'options', onsubmit: (e) => e.preventDefault() });
    for (const [key, label, kind, choices] of OPTIONS) {
      let input;
      if (kind === 'select') {
        input = el('select', { name: key });
        for (const c of choices) input.append(el('option', { value: c }, c || 'default'));
        input.value = this.params[key] || '';
      } else if (kind === 'check') {
        input = el('input', { type: 'checkbox', name: key });
        input.checked = this.params[key] === 'true';
      } else {
        input = el('input', { type: 'text', name: key, inputmode: kind === 'number' ? 'decimal' : 'text' });
        input.value = this.params[key] || '';
      }
      input.addEventListener('change', () => {
        const v = kind === 'check' ? (input.checked ? 'true' : '') : input.value.trim();
        if (v) this.params[key] = v;
        else delete this.params[key];
        this.changed();
      });
      form.append(el('label', { class: kind === 'check' ? 'check' : '' }, label, input));
    }
    return form;
  }

  renderTargets() {
    if (!this.targets.length) {
      this.targetList.replaceChildren(
        el('p', { class: 'muted hint' }, 'Pick metrics in the tree on the left, or type a target below.'));
      return;
    }
    this.targetList.replaceChildren(...this.targets.map((t, i) => {
      const input = el('input', { type: 'text', class: 'target-input', 'aria-label': `Target ${i + 1}` });
      input.value = t;
      input.addEventListener('change', () => {
        this.targets[i] = input.value.trim();
        if (!this.targets[i]) this.targets.splice(i, 1);
        this.changed();
      });
      const fn = el('select', { class: 'fn', 'aria-label': `Apply a function to target ${i + 1}` },
        el('option', { value: '' }, 'ƒ Apply function…'));
      for (const [group, list] of FUNCTIONS) {
        const og = el('optgroup', { label: group });
        for (const [name] of list) og.append(el('option', { value: name }, name));
        fn.append(og);
      }
      fn.addEventListener('change', () => {
        const entry = FUNCTIONS.flatMap(([, l]) => l).find(([n]) => n === fn.value);
        if (entry) {
          this.targets[i] = entry[1](this.targets[i]);
          this.changed();
        }
      });
      const remove = el('button', {
        type: 'button', class: 'icon', title: 'Remove this target', 'aria-label': `Remove target ${i + 1}`,
        onclick: () => { this.targets.splice(i, 1); this.changed(); },
      }, '×');
      return el('div', { class: 'target-row' }, input, fn, remove);
    }));
  }

  setMode(mode) {
    this.mode = mode;
    this.imageButton.classList.toggle('on', mode === 'image');
    this.chartButton.classList.toggle('on', mode === 'interactive');
    this.chart = null;
    this.changed(false);
  }

  /** Re-renders after an edit and writes the state into the URL. */
  changed(targetsToo = true) {
    if (targetsToo) this.renderTargets();
    const q = new URLSearchParams();
    for (const t of this.targets) q.append('target', t);
    for (const [k, v] of Object.entries(this.params)) q.set(k, v);
    if (this.mode !== 'image') q.set('mode', this.mode);
    for (const [k, v] of Object.entries(this.vars)) q.set(`var-${k}`, v);
    if (this.dashboard) {
      q.set('dashboard', this.dashboard);
      q.set('graph', this.graphIndex);
    }
    this.ctx.setUrl(q);
    this.refresh();
  }

  refresh() {
    const range = this.ctx.range();
    const targets = this.targets.filter((t) => t.trim()).map((t) => api.substitute(t, this.vars));
    if (!targets.length) {
      this.chart = null;
      this.preview.replaceChildren(el('div', { class: 'empty' }, 'No targets yet'));
      this.links.replaceChildren();
      return;
    }
    const width = Math.max(300, Math.floor(this.preview.clientWidth || 800));
    const params = { ...this.params, from: range.from, until: range.until, tz: this.ctx.tz };
    const png = api.renderUrl(targets, { ...params, width, height: 360 });
    this.links.replaceChildren(
      el('a', { href: png, target: '_blank', rel: 'noopener' }, 'PNG'),
      el('a', { href: api.renderUrl(targets, { ...params, format: 'json' }), target: '_blank', rel: 'noopener' }, 'JSON'),
      el('a', { href: api.renderUrl(targets, { ...params, format: 'csv' }), target: '_blank', rel: 'noopener' }, 'CSV'));
    if (this.mode === 'interactive') {
      if (!this.chart) {
        const box = el('div');
        this.preview.replaceChildren(box);
        this.chart = new Chart(box, 360);
      }
      this.chart.load(targets, params);
      return;
    }
    showImage(this.preview, `${png}&_=${Date.now()}`, width, 360);
  }

  async renderSave() {
    const choose = el('select', { 'aria-label': 'Dashboard' });
    const name = el('input', { type: 'text', placeholder: 'new-dashboard-name', 'aria-label': 'New dashboard name', class: 'short' });
    const button = el('button', { type: 'button', class: 'primary' }, 'Add to dashboard');
    const parts = [choose, name, button];
    let list = [];
    try {
      list = await api.listDashboards();
    } catch (e) {
      this.status.textContent = `Dashboards unavailable: ${e.message}`;
    }
    this.known = new Set(list.map((d) => d.name));
    for (const d of list.filter((d) => !d.error)) {
      choose.append(el('option', { value: d.name }, d.title ? `${d.title} (${d.name})` : d.name));
    }
    choose.append(el('option', { value: '' }, 'New dashboard…'));
    choose.value = this.dashboard && list.some((d) => d.name === this.dashboard) ? this.dashboard : (list[0]?.name || '');
    const sync = () => { name.hidden = choose.value !== ''; };
    choose.addEventListener('change', sync);
    sync();
    button.addEventListener('click', () => this.addToDashboard(choose.value || name.value.trim(), -1));
    if (this.dashboard && this.graphIndex >= 0) {
      const update = el('button', { type: 'button', class: 'primary' }, `Update graph in “${this.dashboard}”`);
      update.addEventListener('click', () => this.addToDashboard(this.dashboard, this.graphIndex));
      parts.unshift(update, el('span', { class: 'muted' }, ' or '));
    }
    this.saveArea.replaceChildren(...parts);
  }

  /** Appends the graph to dashboard `name` (replaces graph `index` when ≥ 0) and saves. */
  async addToDashboard(name, index) {
    const targets = this.targets.filter((t) => t.trim());
    if (!targets.length) {
      this.status.textContent = 'Add a target first.';
      return;
    }
    if (!api.validName(name)) {
      this.status.textContent = 'Dashboard names are letters, digits, - and _.';
      return;
    }
    const range = this.ctx.range();
    let dash;
    if (this.known?.has(name)) {
      try {
        dash = await api.loadDashboard(name);
      } catch (e) {
        this.status.textContent = `Not saved: ${e.message}`;
        return;
      }
    } else {
      // A new dashboard opens with the range the graph was composed in.
      dash = { title: name, from: range.from, until: range.until, graphs: [] };
    }
    const { title = '', ...params } = this.params;
    const graph = { title: title || targets.join(', '), targets, params };
    if (index >= 0 && index < dash.graphs.length) dash.graphs[index] = graph;
    else dash.graphs.push(graph);
    try {
      await api.saveDashboard(name, dash);
    } catch (e) {
      this.status.textContent = `Not saved: ${e.message}`;
      return;
    }
    this.known?.add(name);
    const q = new URLSearchParams({ from: range.from, until: range.until });
    this.status.replaceChildren('Saved to ', el('a', { href: `#/dashboard/${name}?${q}` }, dash.title || name), '.');
  }
}

// The image each box is waiting for: a slower answer to an earlier request must not replace
// the graph of a later one (edits and range changes come faster than renders).
const latestImage = new WeakMap();

/** Shows a PNG in `box`; on failure shows the server's error text instead. */
export function showImage(box, url, width, height) {
  const img = new Image(width, height);
  img.alt = 'graph';
  img.className = 'graph';
  latestImage.set(box, img);
  const current = () => latestImage.get(box) === img;
  img.addEventListener('load', () => {
    if (current()) box.replaceChildren(img);
  });
  img.addEventListener('error', async () => {
    let text = 'Could not draw this graph.';
    try {
      const r = await fetch(url);
      text = (await r.text()).trim() || text;
    } catch {
      // keep the generic text
    }
    if (current()) box.replaceChildren(el('div', { class: 'error-box' }, text));
  });
  img.src = url;
  if (!box.querySelector('img.graph')) box.replaceChildren(el('div', { class: 'loading' }, 'Drawing…'));
}

export { el };
