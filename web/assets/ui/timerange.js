// The time-range picker and auto-refresh selector in the top bar.

const PRESETS = [
  ['-15min', 'Last 15 minutes'],
  ['-1h', 'Last hour'],
  ['-3h', 'Last 3 hours'],
  ['-6h', 'Last 6 hours'],
  ['-12h', 'Last 12 hours'],
  ['-1d', 'Last 24 hours'],
  ['-2d', 'Last 2 days'],
  ['-7d', 'Last 7 days'],
  ['-30d', 'Last 30 days'],
  ['-90d', 'Last 90 days'],
  ['-1y', 'Last year'],
];

const REFRESH = [
  ['off', 'Auto-refresh off'],
  ['10s', 'Every 10 s'],
  ['30s', 'Every 30 s'],
  ['1m', 'Every minute'],
  ['5m', 'Every 5 minutes'],
  ['15m', 'Every 15 minutes'],
];

/** Milliseconds of a refresh setting ('30s', '1m', ...); 0 for off. */
export function refreshMillis(value) {
  const m = /^(\d+)(s|m|h)$/.exec(value || '');
  if (!m) return 0;
  return Number(m[1]) * { s: 1000, m: 60000, h: 3600000 }[m[2]];
}

function option(value, text) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

export class TimeRange {
  /** Renders into `el`; `onChange({from, until, refresh})` fires on every user change. */
  constructor(el, onChange) {
    this.onChange = onChange;
    this.value = { from: '-6h', until: 'now', refresh: 'off' };
    el.replaceChildren();

    this.preset = document.createElement('select');
    this.preset.title = 'Time range';
    this.preset.setAttribute('aria-label', 'Time range');
    for (const [v, t] of PRESETS) this.preset.append(option(v, t));
    this.preset.append(option('custom', 'Custom range…'));

    this.custom = document.createElement('span');
    this.custom.className = 'custom-range';
    this.from = document.createElement('input');
    this.until = document.createElement('input');
    for (const [input, label, hint] of [
      [this.from, 'From', '-3h, 20260101, 14:00_20260101'],
      [this.until, 'Until', 'now, -1h'],
    ]) {
      input.size = 12;
      input.placeholder = label.toLowerCase();
      input.title = `${label} (Graphite time: ${hint})`;
      input.setAttribute('aria-label', label);
    }
    const apply = document.createElement('button');
    apply.textContent = 'Apply';
    apply.type = 'button';
    this.custom.append(this.from, '–', this.until, apply);

    this.refresh = document.createElement('select');
    this.refresh.title = 'Auto-refresh';
    this.refresh.setAttribute('aria-label', 'Auto-refresh');
    for (const [v, t] of REFRESH) this.refresh.append(option(v, t));

    const now = document.createElement('button');
    now.type = 'button';
    now.textContent = '⟳';
    now.title = 'Refresh now';
    now.className = 'icon';

    el.append(this.preset, this.custom, this.refresh, now);

    this.preset.addEventListener('change', () => {
      if (this.preset.value === 'custom') {
        this.custom.hidden = false;
        this.from.focus();
        return;
      }
      this.change({ from: this.preset.value, until: 'now' });
    });
    const applyCustom = () => {
      const from = this.from.value.trim();
      if (from) this.change({ from, until: this.until.value.trim() || 'now' });
    };
    apply.addEventListener('click', applyCustom);
    for (const input of [this.from, this.until]) {
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') applyCustom();
      });
    }
    this.refresh.addEventListener('change', () => this.change({ refresh: this.refresh.value }));
    now.addEventListener('click', () => this.change({}));
    this.show();
  }

  change(patch) {
    this.value = { ...this.value, ...patch };
    this.show();
    this.onChange(this.value);
  }

  /** Sets the value without firing onChange (e.g. from the URL). */
  set(value) {
    this.value = {
      from: value.from || '-6h',
      until: value.until || 'now',
      refresh: value.refresh || 'off',
    };
    this.show();
  }

  show() {
    const { from, until, refresh } = this.value;
    const preset = until === 'now' && PRESETS.some(([v]) => v === from);
    this.preset.value = preset ? from : 'custom';
    this.custom.hidden = preset;
    this.from.value = from;
    this.until.value = until;
    this.refresh.value = REFRESH.some(([v]) => v === refresh) ? refresh : 'off';
  }
}
