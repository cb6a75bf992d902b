// The metric tree (one /metrics/find per opened branch) with a search box.

import { expand, findNodes } from './api.js';

const MAX_DEPTH = 7;
const MAX_RESULTS = 200;

/** Globs for leaves whose path contains `word` in any node, up to MAX_DEPTH nodes deep. */
export function searchGlobs(text) {
  const t = text.trim();
  if (/[*?[{]/.test(t) || t.includes('.')) {
    // A glob or a path prefix: the matches themselves and what lies under them.
    const base = /[*?\]}]$/.test(t) ? t : `${t}*`;
    return [base, `${base}.*`, `${base}.*.*`, `${base}.*.*.*`];
  }
  const word = t.replace(/[^A-Za-z0-9_-]/g, '');
  if (!word) return [];
  const globs = [];
  for (let depth = 1; depth <= MAX_DEPTH; depth++) {
    for (let k = 0; k < depth; k++) {
      const nodes = Array.from({ length: depth }, (_, i) => (i === k ? `*${word}*` : '*'));
      globs.push(nodes.join('.'));
    }
  }
  return globs;
}

export class MetricTree {
  /** `onPick(path)` is called when a metric is chosen. */
  constructor(el, onPick) {
    this.onPick = onPick;
    el.replaceChildren();
    el.classList.add('tree-panel');

    this.search = document.createElement('input');
    this.search.type = 'search';
    this.search.placeholder = 'Search metrics: cpu, servers.*.load…';
    this.search.setAttribute('aria-label', 'Search metrics');
    this.results = document.createElement('div');
    this.results.className = 'search-results';
    this.results.hidden = true;
    this.root = document.createElement('ul');
    this.root.className = 'tree';
    this.root.setAttribute('role', 'tree');
    el.append(this.search, this.results, this.root);

    let timer = 0;
    this.search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.runSearch(this.search.value), 250);
    });
    this.load(this.root, '*');
  }

  async load(ul, query) {
    ul.replaceChildren(this.note('Loading…'));
    let nodes;
    try {
      nodes = await findNodes(query);
    } catch (e) {
      ul.replaceChildren(this.note(`Could not list metrics: ${e.message}`, 'error'));
      return;
    }
    // graphite-web lists tagged series under "_tagged"; they are reached through seriesByTag.
    nodes = nodes.filter((n) => n.id !== '_tagged');
    if (!nodes.length) {
      ul.replaceChildren(this.note(query === '*' ? 'No metrics stored yet.' : 'Empty.'));
      return;
    }
    ul.replaceChildren(...nodes.map((n) => this.node(n)));
  }

  note(text, cls = 'muted') {
    const li = document.createElement('li');
    li.className = `note ${cls}`;
    li.textContent = text;
    return li;
  }

  node(n) {
    const li = document.createElement('li');
    li.setAttribute('role', 'treeitem');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = n.leaf ? 'node leaf' : 'node branch';
    button.dataset.path = n.id;
    button.title = n.leaf ? `Add ${n.id} to the graph` : n.id;
    const twisty = document.createElement('span');
    twisty.className = 'twisty';
    twisty.textContent = n.leaf ? '•' : '▸';
    button.append(twisty, n.text);
    li.append(button);
    if (n.leaf) {
      button.addEventListener('click', () => this.onPick(n.id));
      return li;
    }
    li.setAttribute('aria-expanded', 'false');
    const children = document.createElement('ul');
    children.hidden = true;
    li.append(children);
    let loaded = false;
    button.addEventListener('click', () => {
      const open = children.hidden;
      children.hidden = !open;
      li.setAttribute('aria-expanded', String(open));
      twisty.textContent = open ? '▾' : '▸';
      if (open && !loaded) {
        loaded = true;
        this.load(children, `${n.id}.*`);
      }
    });
    return li;
  }

  async runSearch(text) {
    const globs = searchGlobs(text);
    if (!globs.length) {
      this.results.hidden = true;
      this.root.hidden = false;
      return;
    }
    this.results.hidden = false;
    this.root.hidden = true;
    this.results.replaceChildren(this.note('Searching…'));
    let paths;
    try {
      paths = await expand(globs);
    } catch (e) {
      this.results.replaceChildren(this.note(e.message, 'error'));
      return;
    }
    if (this.search.value !== text) return; // a newer search is running
    paths = paths.filter((p) => !p.startsWith('_tagged.'));
    const list = document.createElement('ul');
    list.className = 'tree';
    for (const p of paths.slice(0, MAX_RESULTS)) {
      list.append(this.node({ id: p, text: p, leaf: true }));
    }
    const count = this.note(
      paths.length > MAX_RESULTS
        ? `${paths.length} metrics; showing the first ${MAX_RESULTS}`
        : `${paths.length} metric${paths.length === 1 ? '' : 's'}`,
    );
    this.results.replaceChildren(count, list);
  }
}
