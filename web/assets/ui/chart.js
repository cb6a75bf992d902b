// The interactive chart: series from /render?format=json drawn on a canvas, with a crosshair
// that shows every value at the hovered time and a legend that toggles series.

import { renderJson } from './api.js';

// graphite-web's default colour list, so the chart and the PNG agree.
export const PALETTE = [
  '#6464ff', '#00c800', '#c80032', '#c864ff', '#966432', '#c8c800',
  '#009696', '#afafaf', '#ff00ff', '#ff6464', '#c8c800', '#c896c8',
];

const SI = [[1e15, 'P'], [1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];

export function formatValue(v) {
  if (v === null || v === undefined) return '–';
  const a = Math.abs(v);
  for (const [size, prefix] of SI) {
    if (a >= size) return `${+(v / size).toPrecision(4)}${prefix}`;
  }
  if (a !== 0 && a < 0.001) return v.toExponential(2);
  return `${+v.toPrecision(4)}`;
}

function niceStep(range, count) {
  const raw = range / Math.max(count, 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
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
    this.hidden = new Set();
    container.replaceChildren();
    container.classList.add('chart');
    this.canvas = document.createElement('canvas');
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
      const data = await renderJson(targets, { ...params, maxDataPoints: this.width() });
      if (request !== this.requests) return;
      this.series = data.map((s, i) => ({
        name: s.target,
        color: PALETTE[i % PALETTE.length],
        points: s.datapoints,
      }));
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

  /** Scales and plot area for the current data. */
  layout() {
    const visible = this.series.filter((s) => !this.hidden.has(s.name));
    let t0 = Infinity;
    let t1 = -Infinity;
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of visible) {
      for (const [v, t] of s.points) {
        t0 = Math.min(t0, t);
        t1 = Math.max(t1, t);
        if (v !== null) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
    }
    if (!Number.isFinite(lo)) {
      lo = 0;
      hi = 1;
    }
    if (lo > 0 && lo < hi / 2) lo = 0;
    if (hi === lo) hi = lo + 1;
    const step = niceStep(hi - lo, 5);
    lo = Math.floor(lo / step) * step;
    hi = Math.ceil(hi / step) * step;
    const labels = [];
    for (let v = lo; v <= hi + step / 2; v += step) labels.push(v);
    const ctx = this.canvas.getContext('2d');
    ctx.font = '11px sans-serif';
    const left = 8 + Math.max(...labels.map((v) => ctx.measureText(formatValue(v)).width));
    return {
      visible, t0, t1, lo, hi, labels,
      x0: left + 6, x1: this.width() - 12, y0: 10, y1: this.height - 24,
    };
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
    if (!L.visible.length || !Number.isFinite(L.t0)) return;
    const span = Math.max(L.t1 - L.t0, 1);
    const X = (t) => L.x0 + ((t - L.t0) / span) * (L.x1 - L.x0);
    const Y = (v) => L.y1 - ((v - L.lo) / (L.hi - L.lo)) * (L.y1 - L.y0);
    ctx.font = '11px sans-serif';
    ctx.lineWidth = 1;
    // Horizontal grid and value labels.
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const v of L.labels) {
      const y = Math.round(Y(v)) + 0.5;
      ctx.strokeStyle = '#e4e4ea';
      ctx.beginPath();
      ctx.moveTo(L.x0, y);
      ctx.lineTo(L.x1, y);
      ctx.stroke();
      ctx.fillStyle = '#555';
      ctx.fillText(formatValue(v), L.x0 - 6, y);
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
    // Series; nulls break the line.
    ctx.save();
    ctx.beginPath();
    ctx.rect(L.x0, L.y0, L.x1 - L.x0, L.y1 - L.y0);
    ctx.clip();
    ctx.lineWidth = 1.5;
    ctx.lineJoin = 'round';
    for (const s of L.visible) {
      ctx.strokeStyle = s.color;
      ctx.beginPath();
      let pen = false;
      for (const [v, ts] of s.points) {
        if (v === null) {
          pen = false;
          continue;
        }
        if (pen) ctx.lineTo(X(ts), Y(v));
        else ctx.moveTo(X(ts), Y(v));
        pen = true;
      }
      ctx.stroke();
    }
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

  hover(e) {
    const L = this.L;
    if (!L || !L.visible.length) return;
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const span = Math.max(L.t1 - L.t0, 1);
    const t = L.t0 + ((x - L.x0) / (L.x1 - L.x0)) * span;
    let best = null;
    for (const s of L.visible) {
      for (const [, ts] of s.points) {
        if (best === null || Math.abs(ts - t) < Math.abs(best - t)) best = ts;
      }
    }
    this.cursor = best;
    this.draw();
    const rows = L.visible.map((s) => {
      const p = s.points.find(([, ts]) => ts === best);
      return [s, p ? p[0] : null];
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
      value.textContent = formatValue(v);
      row.append(sw, `${s.name}: `, value);
      this.tip.append(row);
    }
    this.tip.hidden = false;
    const left = Math.min(x + 14, this.width() - this.tip.offsetWidth - 4);
    this.tip.style.left = `${Math.max(4, left)}px`;
    this.tip.style.top = '12px';
  }
}
