// Dashboards: the list, and one dashboard as a grid of graphs with its template variables.

import * as api from './api.js';
import { substitute } from './api.js';
import { el, showImage } from './composer.js';

export class DashboardList {
  constructor(root) {
    this.root = root;
    this.render();
  }

  async render() {
    const list = el('ul', { class: 'dash-list' });
    const form = el('form', { class: 'new-dash' });
    const name = el('input', { type: 'text', placeholder: 'name, e.g. web-servers', 'aria-label': 'Dashboard name', required: '' });
    const title = el('input', { type: 'text', placeholder: 'Title', 'aria-label': 'Dashboard title' });
    const message = el('span', { class: 'status', role: 'status' });
    form.append(name, title, el('button', { type: 'submit', class: 'primary' }, 'Create'), message);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const n = name.value.trim();
      if (!api.validName(n)) {
        message.textContent = 'Use letters, digits, - and _ only.';
        return;
      }
      try {
        await api.saveDashboard(n, { title: title.value.trim() || n, graphs: [] });
        location.hash = `#/dashboard/${n}`;
      } catch (err) {
        message.textContent = err.message;
      }
    });
    this.root.replaceChildren(
      el('section', { class: 'page' },
        el('h1', {}, 'Dashboards'),
        list,
        el('h2', {}, 'New dashboard'),
        form));
    let dashboards;
    try {
      dashboards = await api.listDashboards();
    } catch (e) {
      list.replaceChildren(el('li', { class: 'error' }, e.message));
      return;
    }
    if (!dashboards.length) {
      list.replaceChildren(el('li', { class: 'muted' }, 'No dashboards yet. Create one below, or add a graph from the composer.'));
      return;
    }
    list.replaceChildren(...dashboards.map((d) => el('li', {},
      el('a', { href: `#/dashboard/${d.name}` }, d.title || d.name),
      el('span', { class: 'muted' }, d.error ? ` — ${d.error}` : ` — ${d.name}, ${d.graphs} graph${d.graphs === 1 ? '' : 's'}`))));
  }
}

export class DashboardView {
  /** `ctx`: {range(), setUrl(params), setDefaults(range), tz}. */
  constructor(root, ctx, name, q) {
    this.root = root;
    this.ctx = ctx;
    this.name = name;
    this.q = q;
    this.values = {};
    this.panels = [];
    this.load();
  }

  async load() {
    this.root.replaceChildren(el('p', { class: 'muted page' }, 'Loading…'));
    try {
      this.dash = await api.loadDashboard(this.name);
    } catch (e) {
      this.root.replaceChildren(el('section', { class: 'page' },
        el('h1', {}, this.name),
        el('p', { class: 'error-box' }, e.message),
        el('p', {}, el('a', { href: '#/dashboards' }, 'All dashboards'))));
      return;
    }
    this.ctx.setDefaults({ from: this.dash.from, until: this.dash.until, refresh: this.dash.refresh });
    for (const v of this.dash.variables || []) {
      this.values[v.name] = this.q.get(`var-${v.name}`) || v.default || '*';
    }
    this.render();
  }

  async save(message) {
    try {
      await api.saveDashboard(this.name, this.dash);
      this.status.textContent = message;
    } catch (e) {
      this.status.textContent = `Not saved: ${e.message}`;
    }
  }

  render() {
    const d = this.dash;
    this.status = el('span', { class: 'status', role: 'status' });
    const columns = el('select', { 'aria-label': 'Columns', title: 'Graphs per row' });
    for (let i = 1; i <= 4; i++) columns.append(el('option', { value: i }, `${i} column${i > 1 ? 's' : ''}`));
    columns.value = String(Math.min(4, Math.max(1, d.columns || 2)));
    columns.addEventListener('change', () => {
      d.columns = Number(columns.value);
      this.grid.style.setProperty('--columns', d.columns);
      this.refresh();
      this.save('Layout saved.');
    });
    const remove = el('button', { type: 'button', class: 'danger' }, 'Delete dashboard');
    remove.addEventListener('click', async () => {
      if (!window.confirm(`Delete the dashboard “${d.title || this.name}”?`)) return;
      try {
        await api.deleteDashboard(this.name);
        location.hash = '#/dashboards';
      } catch (e) {
        this.status.textContent = e.message;
      }
    });
    const add = el('a', { href: `#/?dashboard=${encodeURIComponent(this.name)}&graph=-1`, class: 'button' }, '+ Add graph');

    const vars = el('div', { class: 'variables' });
    for (const v of d.variables || []) vars.append(this.variable(v));

    this.grid = el('div', { class: 'grid' });
    this.grid.style.setProperty('--columns', columns.value);
    this.panels = d.graphs.map((g, i) => this.panel(g, i));
    this.grid.append(...this.panels.map((p) => p.figure));
    if (!d.graphs.length) {
      this.grid.append(el('p', { class: 'muted hint' }, 'This dashboard has no graphs yet. Use “+ Add graph”, or compose one and choose “Add to dashboard”.'));
    }

    this.root.replaceChildren(el('section', { class: 'dashboard' },
      el('div', { class: 'dash-head' },
        el('h1', {}, d.title || this.name),
        vars,
        el('div', { class: 'spacer' }),
        this.status, add, columns, remove),
      d.description ? el('p', { class: 'description' }, d.description) : '',
      this.grid));
    this.refresh();
  }

  variable(v) {
    const select = el('select', { 'aria-label': v.name, name: `var-${v.name}` });
    const current = this.values[v.name];
    select.append(el('option', { value: '*' }, 'All'));
    if (current !== '*') select.append(el('option', { value: current }, current));
    select.value = current;
    api.findNodes(v.query).then((nodes) => {
      select.replaceChildren(el('option', { value: '*' }, 'All'),
        ...nodes.map((n) => el('option', { value: n.text }, n.text)));
      if (current !== '*' && !nodes.some((n) => n.text === current)) {
        select.append(el('option', { value: current }, current));
      }
      select.value = current;
    }).catch(() => {});
    select.addEventListener('change', () => {
      this.values[v.name] = select.value;
      const q = new URLSearchParams();
      for (const [k, val] of Object.entries(this.values)) q.set(`var-${k}`, val);
      this.ctx.setUrl(q);
      this.refresh();
    });
    return el('label', { class: 'variable' }, `${v.name} `, select);
  }

  panel(g, i) {
    const box = el('div', { class: 'panel-body' });
    const title = el('span', { class: 'panel-title' });
    const edit = el('a', { class: 'panel-action', title: 'Edit this graph in the composer' }, 'Edit');
    const remove = el('button', { type: 'button', class: 'icon panel-action', title: 'Remove this graph', 'aria-label': 'Remove this graph' }, '×');
    remove.addEventListener('click', () => {
      if (!window.confirm(`Remove “${title.textContent}” from this dashboard?`)) return;
      this.dash.graphs.splice(i, 1);
      this.render();
      this.save('Graph removed.');
    });
    const figure = el('figure', { class: 'panel' }, el('figcaption', {}, title, edit, remove), box);
    return { figure, box, title, edit, graph: g, index: i };
  }

  refresh() {
    const range = this.ctx.range();
    for (const p of this.panels) {
      const g = p.graph;
      const targets = g.targets.map((t) => substitute(t, this.values));
      p.title.textContent = substitute(g.title || targets.join(', '), this.values);
      const q = new URLSearchParams();
      for (const t of g.targets) q.append('target', t);
      for (const [k, v] of Object.entries(g.params || {})) q.set(k, v);
      if (g.title) q.set('title', g.title);
      for (const [k, v] of Object.entries(this.values)) q.set(`var-${k}`, v);
      q.set('dashboard', this.name);
      q.set('graph', p.index);
      p.edit.href = `#/?${q}`;
      const width = Math.max(200, Math.floor(p.box.clientWidth || 400));
      const height = Math.round(Math.min(360, Math.max(180, width * 0.5)));
      const url = api.renderUrl(targets, {
        ...g.params, width, height, from: range.from, until: range.until, tz: this.ctx.tz,
        _: Date.now(),
      });
      showImage(p.box, url, width, height);
    }
  }
}
