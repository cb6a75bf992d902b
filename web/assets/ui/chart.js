// The interactive chart: series from /render?format=json drawn on a canvas, with a crosshair
// that shows every value at the hovered time and a legend that toggles series.
//
// It draws what the PNG renderer draws (src/graph/line.rs, spec §19) for these graph
// parameters: areaMode, areaAlpha, lineMode, connectedLimit, drawNullAsZero, yMin/yMax (and
// yMinLeft/Right, yMaxLeft/Right with a second axis), lineWidth, hideLegend, logBase and
// yUnitSystem (si, binary, none). The style functions (color, alpha, lineWidth, dashed,
// stacked, secondYAxis, areaBetween, drawAsInfinite) reach it through the `style` object the
// server adds to each series with `styles=1`, a Charcoal extension (src/render.rs): graphite-web's
// JSON carries none of them. Two deliberate differences from the image: series hidden in the
// legend leave their stack, and with areaMode=stacked the stacked() series stack once (the
// PNG adds their running totals to the stack a second time, as graphite-web does).

import { renderJson } from './api.js';

// graphite-web's default colour list, so the chart and the PNG agree.
export const PALETTE = [
  '#6464ff', '#00c800', '#c80032', '#c864ff', '#966432', '#c8c800',
  '#009696', '#afafaf', '#ff00ff', '#ff6464', '#c8c800', '#c896c8',
];

// yUnitSystem prefixes (sec and msec fall back to si here).
const UNITS = {
  si: [[1e15, 'P'], [1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']],
  binary: [[2 ** 50, 'Pi'], [2 ** 40, 'Ti'], [2 ** 30, 'Gi'], [2 ** 20, 'Mi'], [2 ** 10, 'Ki']],
  none: [],
};

/** More series than this hide the legend unless hideLegend=false (LEGEND_MAX_ITEMS). */
const LEGEND_MAX_ITEMS = 10;

export function formatValue(v, units = 'si') {
  if (v === null || v === undefined) return '–';
  const a = Math.abs(v);
  for (const [size, prefix] of UNITS[units] || UNITS.si) {
    if (a >= size) return `${+(v / size).toPrecision(4)}${prefix}`;
  }
  if (a !== 0 && a < 0.001) return v.toExponential(2);
  return `${+v.toPrecision(4)}`;
}

/** A graph parameter read like graphite-web does: '' and 'default' are unset. */
function param(params, key) {
  const s = `${params[key] ?? ''}`.trim();
  if (s === '' || s.toLowerCase() === 'default') return undefined;
  if (/^(true|false)$/i.test(s)) return s.toLowerCase() === 'true';
  if (/^-?(\d+\.?\d*|\.\d+)$/.test(s)) return Number(s);
  return s;
}

function number(params, ...keys) {
  for (const k of keys) {
    const v = param(params, k);
    if (typeof v === 'number') return v;
  }
  return undefined;
}

/** The graph parameters the chart honours, with the PNG's defaults. */
export function graphOptions(params) {
  const text = (k) => `${param(params, k) ?? ''}`.toLowerCase();
  const truthy = (k) => {
    const v = param(params, k);
    return v === undefined ? undefined : v !== false && v !== 0;
  };
  const alpha = param(params, 'areaAlpha');
  const log = param(params, 'logBase');
  const limits = (side) => ({
    min: number(params, `yMin${side}`, ...(side ? [] : ['min'])),
    max: number(params, `yMax${side}`, ...(side ? [] : ['max'])),
  });
  return {
    areaMode: text('areaMode') || 'none',
    // graphite-web: an unreadable areaAlpha means 0.5.
    areaAlpha: alpha === undefined ? null : Math.min(1, Math.max(0, typeof alpha === 'number' ? alpha : 0.5)) || null,
    lineMode: ['staircase', 'connected'].includes(text('lineMode')) ? text('lineMode') : 'slope',
    connectedLimit: number(params, 'connectedLimit') ?? Infinity,
    drawNullAsZero: truthy('drawNullAsZero') === true,
    lineWidth: Math.min(100, Math.max(0, number(params, 'lineWidth', 'thickness') ?? 1.2)),
    hideLegend: truthy('hideLegend'),
    logBase: log === 'e' ? Math.E : typeof log === 'number' && log > 1 ? log : null,
    units: text('yUnitSystem'),
    y: limits(''),
    yLeft: limits('Left'),
    yRight: limits('Right'),
  };
}

/**
 * Chart series from `format=json&styles=1`. The palette goes only to series without a colour
 * of their own (as in the PNG); the running totals of stacked() become each series' own values
 * again (nulls stay null and add nothing), so the chart can restack and the tooltip shows them.
 */
export function seriesFromJson(data) {
  let next = 0;
  const totals = new Map();
  return data.map((s) => {
    const st = s.style || {};
    // Infinite values cannot be placed: the PNG draws them as gaps.
    let values = s.datapoints.map(([v]) => (Number.isFinite(v) ? v : null));
    const times = s.datapoints.map(([, t]) => t);
    if (st.stack !== undefined) {
      const total = totals.get(st.stack) || [];
      totals.set(st.stack, total);
      values = values.map((v, i) => {
        if (v === null) return null;
        const own = v - (total[i] ?? 0);
        total[i] = v;
        return own;
      });
    }
    const color = st.color || PALETTE[next++ % PALETTE.length];
    return {
      name: s.target,
      color,
      times,
      values,
      step: times.length > 1 ? times[1] - times[0] : 60,
      stack: st.stack ?? null,
      area: !!st.area,
      right: !!st.secondYAxis,
      lineWidth: st.lineWidth,
      dashed: st.dashed > 0 ? st.dashed : 0,
      // A colour with its own alpha (#rrggbbaa) ignores alpha(), as in the PNG.
      alpha: color.length === 9 ? 1 : st.alpha ?? 1,
      ownAlpha: color.length === 9,
      invisible: !!st.invisible,
      infinite: !!st.drawAsInfinite,
    };
  });
}

function niceStep(range, count) {
  const raw = range / Math.max(count, 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

/** A Y axis over the plots' drawn values: range, labels and `pos(v)` (0 bottom … 1 top). */
function yAxis(plots, limits, logBase) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of plots) {
    if (p.infinite) continue;
    for (const v of p.drawn) {
      if (v === null || (logBase && v <= 0)) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (logBase) {
    const ln = Math.log(logBase);
    const exp = (v, fallback) => (v > 0 ? Math.log(v) / ln : fallback);
    const a = Math.floor(exp(limits.min, exp(lo, 0)) + 1e-9);
    const b = Math.max(a + 1, Math.ceil(exp(limits.max, exp(hi, 1)) - 1e-9));
    const every = Math.max(1, Math.ceil((b - a) / 8));
    const labels = [];
    for (let k = a; k <= b; k += every) labels.push(logBase ** k);
    return { labels, pos: (v) => (v > 0 ? (Math.log(v) / ln - a) / (b - a) : null) };
  }
  if (!Number.isFinite(lo)) {
    lo = 0;
    hi = 1;
  }
  const fixedLo = limits.min !== undefined;
  const fixedHi = limits.max !== undefined;
  if (fixedLo) lo = limits.min;
  if (fixedHi) hi = limits.max;
  if (!fixedLo && lo > 0 && lo < hi / 2) lo = 0;
  if (hi <= lo) {
    if (fixedHi && !fixedLo) lo = hi - 1;
    else hi = lo + 1;
  }
  const step = niceStep(hi - lo, 5);
  if (!fixedLo) lo = Math.floor(lo / step) * step;
  if (!fixedHi) hi = Math.ceil(hi / step) * step;
  const labels = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) labels.push(k * step);
  // Like the PNG (glyph.py), the plot spans the labels: a yMin between two steps moves up.
  if (labels.length > 1) [lo, hi] = [labels[0], labels[labels.length - 1]];
  return { labels, pos: (v) => (v - lo) / (hi - lo) };
}

/** A plot's path as pieces of [x, y] points, broken at gaps the way lineMode says. */
function pieces(p, mode, limit, X, Y) {
  const out = [];
  let piece = null;
  let nones = 0;
  p.drawn.forEach((v, i) => {
    const y = v === null ? null : Y(v);
    if (y === null || (p.infinite && v > 0)) {
      nones++;
      if (mode !== 'connected') piece = null;
      return;
    }
    if (!piece || nones > limit) {
      piece = [];
      out.push(piece);
    }
    const x = X(p.times[i]);
    piece.push([x, y]);
    if (mode === 'staircase') piece.push([X(p.times[i] + p.step), y]);
    nones = 0;
  });
  return out;
}

const MIN = 60;
const HOUR = 3600;
const DAY = 86400;
const TIME_STEPS = [
  10, 30, MIN, 2 * MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR,
  6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 182 * DAY, 365 * DAY,
];

function pad(n) {
  return String(n).padStart(2, '0');
}

function timeLabel(t, span) {
  const d = new Date(t * 1000);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (span <= DAY) return hm;
  const md = `${pad(d.getMonth() + 1)}/${pad(d.getDate())}`;
  if (span <= 7 * DAY) return `${d.toLocaleDateString(undefined, { weekday: 'short' })} ${hm}`;
  if (span <= 400 * DAY) return md;
  return `${md}/${d.getFullYear()}`;
}

export class Chart {
  constructor(container, height = 320) {
    this.container = container;
    this.height = height;
    this.series = [];
    this.options = graphOptions({});
    this.hidden = new Set();
    container.replaceChildren();
    container.classList.add('chart');
    this.canvas = document.createElement('canvas');
    // Areas are painted here first, each erasing what it covers of later ones, so an
    // earlier area wins where they overlap (the PNG's fillAreaAndClip).
    this.layer = document.createElement('canvas');
    this.tip = document.createElement('div');
    this.tip.className = 'chart-tip';
    this.tip.hidden = true;
    this.legend = document.createElement('div');
    this.legend.className = 'chart-legend';
    this.message = document.createElement('div');
    this.message.className = 'chart-message';
    container.append(this.canvas, this.tip, this.message, this.legend);
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => {
      this.tip.hidden = true;
      this.cursor = null;
      this.draw();
    });
  }

  width() {
    return Math.max(200, Math.floor(this.container.clientWidth || 600));
  }

  async load(targets, params) {
    // Only the newest request draws: an older, slower answer is dropped.
    const request = (this.requests = (this.requests || 0) + 1);
    try {
      const data = await renderJson(targets, { ...params, maxDataPoints: this.width(), styles: 1 });
      if (request !== this.requests) return;
      this.options = graphOptions(params);
      this.series = seriesFromJson(data);
      this.message.textContent = this.series.length ? '' : 'No data';
    } catch (e) {
      if (request !== this.requests) return;
      this.series = [];
      this.message.textContent = e.message;
    }
    this.renderLegend();
    this.draw();
  }

  renderLegend() {
    this.legend.hidden = this.options.hideLegend ?? this.series.length > LEGEND_MAX_ITEMS;
    this.legend.replaceChildren(
      ...this.series.map((s) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = this.hidden.has(s.name) ? 'off' : '';
        const sw = document.createElement('span');
        sw.className = 'swatch';
        sw.style.background = s.color;
        b.append(sw, s.name);
        b.title = 'Show or hide this series';
        b.addEventListener('click', () => {
          if (this.hidden.has(s.name)) this.hidden.delete(s.name);
          else this.hidden.add(s.name);
          this.renderLegend();
          this.draw();
        });
        return b;
      }),
    );
  }

  /**
   * The visible series as the PNG draws them: areas first (stable), areaMode applied, stacks
   * summed in that order with nulls adding nothing, then drawNullAsZero.
   */
  plots() {
    const o = this.options;
    const visible = this.series.filter((s) => !this.hidden.has(s.name));
    const second = visible.some((s) => s.right);
    const plots = visible.map((s) => ({ ...s })).sort((a, b) => b.area - a.area);
    const fillable = plots.filter((p) => !p.infinite);
    if (o.areaMode === 'stacked' && !second) {
      for (const p of fillable) {
        p.area = true;
        p.stack = '';
      }
    } else if (o.areaMode === 'first' && plots.length) {
      plots[0].area = true;
    } else if (o.areaMode === 'all') {
      for (const p of fillable) p.area = true;
    }
    const totals = new Map();
    for (const p of plots) {
      if (p.stack === null) continue;
      const total = totals.get(p.stack) || [];
      totals.set(p.stack, total);
      p.values = p.values.map((v, i) => (v === null ? null : (total[i] = (total[i] ?? 0) + v)));
    }
    for (const p of plots) p.drawn = p.values.map((v) => (v === null && o.drawNullAsZero ? 0 : v));
    return { plots, second };
  }

  /** Scales and plot area for the current data. */
  layout() {
    const o = this.options;
    const { plots, second } = this.plots();
    let mode = o.lineMode;
    if (mode === 'slope' && plots.some((p) => p.values.length === 1)) mode = 'staircase';
    let t0 = Infinity;
    let t1 = -Infinity;
    for (const p of plots) {
      if (!p.times.length) continue;
      t0 = Math.min(t0, p.times[0]);
      t1 = Math.max(t1, p.times[p.times.length - 1] + (mode === 'staircase' ? p.step : 0));
    }
    const left = yAxis(plots.filter((p) => !p.right), second ? o.yLeft : o.y, o.logBase);
    const right = second ? yAxis(plots.filter((p) => p.right), o.yRight, o.logBase) : null;
    const ctx = this.canvas.getContext('2d');
    ctx.font = '11px sans-serif';
    const widest = (axis) => Math.max(0, ...axis.labels.map((v) => ctx.measureText(formatValue(v, o.units)).width));
    const x0 = 14 + widest(left);
    const x1 = this.width() - 12 - (right ? widest(right) + 6 : 0);
    return { plots, mode, t0, t1, left, right, x0, x1, y0: 10, y1: this.height - 24 };
  }

  draw() {
    const w = this.width();
    const h = this.height;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = w * ratio;
    this.canvas.height = h * ratio;
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const L = this.layout();
    this.L = L;
    const o = this.options;
    // For tests and tools: the plot rectangle and the axis labels as drawn.
    const labels = (axis) => axis.labels.map((v) => formatValue(v, o.units)).join(' ');
    this.canvas.dataset.plot = [L.x0, L.y0, L.x1, L.y1].join(' ');
    this.canvas.dataset.axisLeft = labels(L.left);
    if (L.right) this.canvas.dataset.axisRight = labels(L.right);
    else delete this.canvas.dataset.axisRight;
    if (!L.plots.length || !Number.isFinite(L.t0)) return;
    const span = Math.max(L.t1 - L.t0, 1);
    const X = (t) => L.x0 + ((t - L.t0) / span) * (L.x1 - L.x0);
    const Y = (axis) => (v) => {
      const pos = axis.pos(v);
      return pos === null ? null : L.y1 - pos * (L.y1 - L.y0);
    };
    ctx.font = '11px sans-serif';
    ctx.lineWidth = 1;
    // Horizontal grid and value labels; the right axis has labels only.
    ctx.textBaseline = 'middle';
    for (const [axis, side] of [[L.left, 'left'], [L.right, 'right']]) {
      if (!axis) continue;
      ctx.textAlign = side === 'left' ? 'right' : 'left';
      for (const v of axis.labels) {
        const y = Math.round(Y(axis)(v)) + 0.5;
        if (side === 'left') {
          ctx.strokeStyle = '#e4e4ea';
          ctx.beginPath();
          ctx.moveTo(L.x0, y);
          ctx.lineTo(L.x1, y);
          ctx.stroke();
        }
        ctx.fillStyle = '#555';
        ctx.fillText(formatValue(v, o.units), side === 'left' ? L.x0 - 6 : L.x1 + 6, y);
      }
    }
    // Time grid and labels.
    const target = span / Math.max(2, Math.floor((L.x1 - L.x0) / 110));
    const step = TIME_STEPS.find((s) => s >= target) || TIME_STEPS[TIME_STEPS.length - 1];
    const offset = new Date(L.t0 * 1000).getTimezoneOffset() * 60;
    let t = Math.ceil((L.t0 - offset) / step) * step + offset;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (; t <= L.t1; t += step) {
      const x = Math.round(X(t)) + 0.5;
      ctx.strokeStyle = '#eeeef2';
      ctx.beginPath();
      ctx.moveTo(x, L.y0);
      ctx.lineTo(x, L.y1);
      ctx.stroke();
      ctx.fillStyle = '#555';
      ctx.fillText(timeLabel(t, span), x, L.y1 + 6);
    }
    ctx.strokeStyle = '#bbb';
    ctx.strokeRect(L.x0 + 0.5, L.y0 + 0.5, L.x1 - L.x0, L.y1 - L.y0);
    ctx.save();
    ctx.beginPath();
    ctx.rect(L.x0, L.y0, L.x1 - L.x0, L.y1 - L.y0);
    ctx.clip();
    this.drawPlots(ctx, L, X, Y, ratio);
    ctx.restore();
    if (this.cursor !== null && this.cursor !== undefined) {
      const x = Math.round(X(this.cursor)) + 0.5;
      ctx.strokeStyle = '#888';
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(x, L.y0);
      ctx.lineTo(x, L.y1);
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  /** Areas first (down to the zero line, or the bottom), then lines, as the PNG does. */
  drawPlots(ctx, L, X, Y, ratio) {
    const o = this.options;
    const axisOf = (p) => (p.right && L.right) || L.left;
    const path = (p) => pieces(p, L.mode, o.connectedLimit, X, Y(axisOf(p)));
    const areas = L.plots.filter((p) => p.area);
    if (areas.length) {
      const layer = this.layer;
      layer.width = this.canvas.width;
      layer.height = this.canvas.height;
      const lc = layer.getContext('2d');
      lc.setTransform(ratio, 0, 0, ratio, 0, 0);
      for (const p of [...areas].reverse()) {
        const zero = Y(axisOf(p))(0);
        const base = zero === null ? L.y1 : Math.min(L.y1, Math.max(L.y0, zero));
        const shape = new Path2D();
        for (const piece of path(p)) {
          shape.moveTo(piece[0][0], base);
          for (const [x, y] of piece) shape.lineTo(x, y);
          shape.lineTo(piece[piece.length - 1][0], base);
          shape.closePath();
        }
        const alpha = o.areaAlpha !== null && !p.ownAlpha ? o.areaAlpha : p.alpha;
        if (p.invisible || p.ownAlpha || alpha < 1) {
          // Only what shows through needs erasing; erasing under an opaque fill would leave
          // a faint seam along anti-aliased edges.
          lc.globalCompositeOperation = 'destination-out';
          lc.globalAlpha = 1;
          lc.fill(shape);
          lc.globalCompositeOperation = 'source-over';
        }
        if (p.invisible) continue;
        lc.globalAlpha = alpha;
        lc.fillStyle = p.color;
        lc.fill(shape);
      }
      ctx.drawImage(layer, 0, 0, layer.width / ratio, layer.height / ratio);
    }
    // With areaAlpha the areas also get their outline, in the default width.
    const outlined = o.areaAlpha === null ? []
      : areas.map((p) => ({ ...p, lineWidth: undefined, dashed: 0, alpha: 1, invisible: false }));
    ctx.lineJoin = 'round';
    for (const p of [...L.plots.filter((q) => !q.area), ...outlined]) {
      const width = p.lineWidth ?? o.lineWidth;
      if (p.invisible || width <= 0) continue;
      ctx.lineWidth = width;
      ctx.strokeStyle = p.color;
      ctx.globalAlpha = p.alpha;
      ctx.setLineDash(p.dashed ? [p.dashed, p.dashed] : []);
      ctx.beginPath();
      for (const piece of path(p)) {
        piece.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      }
      if (p.infinite) {
        // drawAsInfinite: a full-height line at every positive point.
        p.drawn.forEach((v, i) => {
          if (v === null || v <= 0) return;
          ctx.moveTo(X(p.times[i]), L.y1);
          ctx.lineTo(X(p.times[i]), L.y0);
        });
      }
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    ctx.setLineDash([]);
  }

  hover(e) {
    const L = this.L;
    if (!L || !L.plots.length) return;
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const span = Math.max(L.t1 - L.t0, 1);
    const t = L.t0 + ((x - L.x0) / (L.x1 - L.x0)) * span;
    let best = null;
    for (const s of L.plots) {
      for (const ts of s.times) {
        if (best === null || Math.abs(ts - t) < Math.abs(best - t)) best = ts;
      }
    }
    this.cursor = best;
    this.draw();
    // Each series' own value, in legend order: never a stack's running total.
    const rows = this.series.filter((s) => !this.hidden.has(s.name)).map((s) => {
      const i = s.times.indexOf(best);
      return [s, i < 0 ? null : s.values[i]];
    });
    const when = new Date(best * 1000);
    this.tip.replaceChildren();
    const head = document.createElement('div');
    head.className = 'tip-time';
    head.textContent = when.toLocaleString();
    this.tip.append(head);
    for (const [s, v] of rows) {
      const row = document.createElement('div');
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = s.color;
      const value = document.createElement('b');
      value.textContent = formatValue(v, this.options.units);
      row.append(sw, `${s.name}: `, value);
      this.tip.append(row);
    }
    this.tip.hidden = false;
    const left = Math.min(x + 14, this.width() - this.tip.offsetWidth - 4);
    this.tip.style.left = `${Math.max(4, left)}px`;
    this.tip.style.top = '12px';
  }
}
