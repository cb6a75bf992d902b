// End-to-end test of Charcoal's browser UI in headless Chromium, driven by playwright-core.
// Started by tests/it/browser.rs with:
//   CHARCOAL_URL        base URL of a running server whose store has servers.web{1,2}.* data
//   CHARCOAL_ARTIFACTS  directory for screenshots
//   CHARCOAL_PLAYWRIGHT directory holding node_modules/playwright-core
//   CHARCOAL_CHROMIUM   the browser executable (Debian's chromium; never a downloaded one)
// Prints one line per step; exits non-zero on the first failure.
'use strict';

const path = require('path');
const fs = require('fs');
const os = require('os');
const { chromium } = require(path.join(process.env.CHARCOAL_PLAYWRIGHT, 'node_modules', 'playwright-core'));

const base = process.env.CHARCOAL_URL.replace(/\/$/, '');
const artifacts = process.env.CHARCOAL_ARTIFACTS;
const problems = [];

function step(text) {
  console.log(`step: ${text}`);
}

function check(ok, text) {
  if (!ok) throw new Error(`check failed: ${text}`);
}

async function shot(page, name, fullPage = false) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage });
  console.log(`screenshot: ${name}.png`);
}

/** Strongly coloured pixels (series, not grey grid or black text) in the upper 75 % of an image. */
async function colouredPixels(page, selector) {
  return page.evaluate((sel) => {
    const img = document.querySelector(sel);
    if (!img || !img.complete || !img.naturalWidth) return -1;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, Math.floor(c.height * 0.75)).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 100) n++;
    }
    return n;
  }, selector);
}

/**
 * Pixels of the interactive chart's canvas matching each colour (±12 per channel): their
 * count and mean row in the plot column at `at` (0–1 across the plot), and their count in
 * the whole plot.
 */
async function chartColours(page, colours, at = 0.5) {
  return page.evaluate(([hexes, where]) => {
    const canvas = document.querySelector('.chart canvas');
    const [x0, y0, x1, y1] = canvas.dataset.plot.split(' ').map(Number);
    const r = canvas.width / canvas.clientWidth;
    const ctx = canvas.getContext('2d');
    const px = (v) => Math.round(v * r);
    const all = ctx.getImageData(px(x0) + 2, px(y0) + 2, px(x1 - x0) - 4, px(y1 - y0) - 4);
    const column = Math.round((all.width - 1) * where);
    return hexes.map((hex) => {
      const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
      const out = { inColumn: 0, meanRow: 0, inPlot: 0 };
      for (let i = 0; i < all.data.length; i += 4) {
        if (want.some((c, k) => Math.abs(all.data[i + k] - c) > 12)) continue;
        out.inPlot++;
        if ((i / 4) % all.width === column) {
          out.inColumn++;
          out.meanRow += Math.floor(i / 4 / all.width);
        }
      }
      out.meanRow = out.inColumn ? out.meanRow / out.inColumn : -1;
      return out;
    });
  }, [colours, at]);
}

/** Every panel of the dashboard shows its image (no "Drawing…", no error box). */
async function allPanelsDrawn(page) {
  await page.waitForFunction(() => {
    const panels = document.querySelectorAll('.panel');
    const imgs = [...document.querySelectorAll('.panel img.graph')];
    return panels.length > 0 && imgs.length === panels.length
      && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, null, { timeout: 60000 });
}

async function imageLoaded(page, selector) {
  await page.waitForFunction((sel) => {
    const img = document.querySelector(sel);
    return img && img.complete && img.naturalWidth > 0;
  }, selector, { timeout: 60000 });
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'charcoal-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHARCOAL_CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  // Debug builds draw on a shared, loaded machine: generous waits, failures still fail.
  page.setDefaultTimeout(60000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  try {
    await run(page);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  if (problems.length) throw new Error(problems.join('\n'));
}

async function run(page) {
  step('open the UI');
  await page.goto(`${base}/`);
  await page.locator('.tree .node.branch[data-path="servers"]').waitFor();
  await shot(page, '01-composer-empty');

  step('browse the tree to servers.web1.cpu.total and add two metrics');
  for (const p of ['servers', 'servers.web1', 'servers.web1.cpu', 'servers.web1.cpu.total']) {
    await page.locator(`.tree .node.branch[data-path="${p}"]`).click();
  }
  await page.locator('.tree .node.leaf[data-path="servers.web1.cpu.total.user"]').click();
  await page.locator('.tree .node.leaf[data-path="servers.web1.cpu.total.system"]').click();
  await page.waitForFunction(() => document.querySelectorAll('.target-row').length === 2);
  await imageLoaded(page, '.preview img.graph');
  check((await colouredPixels(page, '.preview img.graph')) > 500, 'the graph shows data');
  check(page.url().includes('target=servers.web1.cpu.total.user'), 'the graph is in the URL');

  step('apply a function and set a title');
  await page.locator('.target-row').nth(0).locator('select.fn').selectOption('movingAverage');
  const first = page.locator('.target-row').nth(0).locator('input');
  check((await first.inputValue()) === "movingAverage(servers.web1.cpu.total.user, '5min')", 'function applied');
  await page.fill('input[name="title"]', 'CPU user and system');
  await page.locator('input[name="title"]').press('Tab');
  await page.waitForFunction(() => {
    const img = document.querySelector('.preview img.graph');
    return img && img.src.includes('title=CPU') && img.complete && img.naturalWidth > 0;
  });
  check((await colouredPixels(page, '.preview img.graph')) > 500, 'the new graph shows data');
  await shot(page, '02-composer-graph');

  step('interactive chart with a hover tooltip');
  await page.getByRole('button', { name: 'Interactive' }).click();
  await page.waitForFunction(() => document.querySelectorAll('.chart-legend button').length === 2);
  const canvas = page.locator('.chart canvas');
  const box = await canvas.boundingBox();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.4);
  await page.locator('.chart-tip').waitFor({ state: 'visible' });
  const tip = await page.locator('.chart-tip').innerText();
  check(tip.includes('servers.web1.cpu.total.system'), `tooltip lists the series: ${tip}`);
  await shot(page, '03-composer-interactive');
  // A slow answer for three targets, overtaken by the edit back to two, must not be drawn.
  let releaseThree;
  const threeHeld = new Promise((resolve) => { releaseThree = resolve; });
  const threeTargets = (url) => url.pathname === '/render' && url.searchParams.getAll('target').length === 3;
  const holdThree = async (route) => {
    await threeHeld;
    await route.continue();
  };
  await page.route(threeTargets, holdThree);
  await page.fill('input[aria-label="New target"]', 'servers.web2.load.load1');
  await page.locator('input[aria-label="New target"]').press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('.target-row').length === 3);
  await page.locator('.target-row').nth(2).locator('button').click();
  await page.waitForFunction(() => document.querySelectorAll('.target-row').length === 2);
  const threeDone = page.waitForResponse((r) => new URL(r.url()).searchParams.getAll('target').length === 3);
  releaseThree();
  await threeDone;
  await page.waitForTimeout(300);
  const legend = await page.locator('.chart-legend button').count();
  check(legend === 2, `the chart keeps the later two series, not the slower three: ${legend}`);
  await page.unroute(threeTargets, holdThree);
  await page.getByRole('button', { name: 'Image' }).click();
  await imageLoaded(page, '.preview img.graph');

  step('search the tree');
  await page.fill('.tree-panel input[type="search"]', 'load1');
  const hit = page.locator('.search-results .node.leaf[data-path="servers.web2.load.load1"]');
  await hit.waitFor();
  await shot(page, '04-search');
  await hit.click();
  await page.waitForFunction(() => document.querySelectorAll('.target-row').length === 3);
  await page.locator('.target-row').nth(2).locator('button').click();
  await page.waitForFunction(() => document.querySelectorAll('.target-row').length === 2);

  step('time range picker');
  await page.selectOption('select[aria-label="Time range"]', '-1h');
  await page.waitForFunction(() => location.hash.includes('from=-1h'));
  await page.waitForFunction(() => {
    const img = document.querySelector('.preview img.graph');
    return img && img.src.includes('from=-1h') && img.complete && img.naturalWidth > 0;
  });

  step('a slow answer to an earlier range does not replace the later graph');
  // The -3h render is held back until after the -12h one has been drawn.
  let releaseSlow;
  const slowHeld = new Promise((resolve) => { releaseSlow = resolve; });
  const holdSlow = async (route) => {
    await slowHeld;
    await route.continue();
  };
  const threeHours = (url) => url.pathname === '/render' && url.searchParams.get('from') === '-3h';
  await page.route(threeHours, holdSlow);
  await page.selectOption('select[aria-label="Time range"]', '-3h');
  await page.selectOption('select[aria-label="Time range"]', '-12h');
  await page.waitForFunction(() => {
    const img = document.querySelector('.preview img.graph');
    return img && img.src.includes('from=-12h') && img.complete && img.naturalWidth > 0;
  });
  const slowDone = page.waitForResponse((r) => new URL(r.url()).searchParams.get('from') === '-3h');
  releaseSlow();
  await slowDone;
  await page.waitForTimeout(300);
  const shown = await page.locator('.preview img.graph').getAttribute('src');
  check(shown.includes('from=-12h'), `the later range stays on screen: ${shown}`);
  await page.unroute(threeHours, holdSlow);
  await page.selectOption('select[aria-label="Time range"]', '-1h');
  await page.waitForFunction(() => {
    const img = document.querySelector('.preview img.graph');
    return img && img.src.includes('from=-1h') && img.complete && img.naturalWidth > 0;
  });

  step('save the graph to a new dashboard');
  await page.selectOption('select[aria-label="Dashboard"]', '');
  await page.fill('input[aria-label="New dashboard name"]', 'e2e-board');
  await page.getByRole('button', { name: 'Add to dashboard' }).click();
  const saved = page.locator('.status a', { hasText: 'e2e-board' });
  await saved.waitFor();
  await saved.click();

  step('the dashboard shows the graph, also after a reload');
  for (const when of ['after saving', 'after reload']) {
    await page.waitForFunction(() => location.hash.startsWith('#/dashboard/e2e-board'));
    await imageLoaded(page, '.panel img.graph');
    check((await page.locator('.panel').count()) === 1, `one panel ${when}`);
    check((await page.locator('.panel-title').innerText()) === 'CPU user and system', `panel title ${when}`);
    check((await colouredPixels(page, '.panel img.graph')) > 300, `panel shows data ${when}`);
    if (when === 'after saving') {
      await shot(page, '05-dashboard-saved');
      await page.reload();
    }
  }
  const stored = await page.evaluate(() => fetch('api/dashboards/e2e-board').then((r) => r.json()));
  check(stored.graphs[0].targets[0].startsWith('movingAverage('), 'stored on the server');

  step('a shipped dashboard with a variable, loaded by URL');
  await page.goto(`${base}/dashboard/host-overview`);
  await page.waitForFunction(() => location.hash === '#/dashboard/host-overview');
  await page.goto(`${base}/#/dashboard/host-overview?var-host=web1&from=-3h`);
  await allPanelsDrawn(page);
  check((await page.locator('.panel').count()) === 10, 'ten panels');
  check((await colouredPixels(page, '.panel:nth-child(1) img.graph')) > 300, 'CPU panel shows data');
  check((await page.locator('select[aria-label="Time range"]').inputValue()) === '-3h', 'range from the URL');
  await shot(page, '06-host-overview', true);
  await page.selectOption('select[name="var-host"]', 'web2');
  await page.waitForFunction(() => location.hash.includes('var-host=web2'));
  await page.waitForFunction(() => {
    const img = document.querySelector('.panel img.graph');
    return img && img.src.includes('servers.web2') && img.complete && img.naturalWidth > 0;
  });

  step('self-monitoring board');
  await page.goto(`${base}/#/dashboard/statsd-carbon`);
  await allPanelsDrawn(page);
  await shot(page, '07-statsd-carbon', true);

  step('the dashboard list, and deleting a dashboard');
  await page.goto(`${base}/#/dashboards`);
  await page.locator('.dash-list a', { hasText: 'e2e-board' }).waitFor();
  await shot(page, '08-dashboard-list');
  await page.locator('.dash-list a', { hasText: 'e2e-board' }).click();
  await imageLoaded(page, '.panel img.graph');
  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Delete dashboard' }).click();
  await page.waitForFunction(() => location.hash === '#/dashboards');
  await page.locator('.dash-list a', { hasText: 'Host overview' }).waitFor();
  check((await page.locator('.dash-list a', { hasText: 'e2e-board' }).count()) === 0, 'deleted');

  step('interactive chart: stacked() areas, colours and a second Y axis, as in the image');
  const [green, red, blue] = ['#00c800', '#c80032', '#6464ff'];
  const user = 'servers.web1.cpu.total.user';
  const system = 'servers.web1.cpu.total.system';
  const styled = new URLSearchParams([
    ['target', `color(stacked(${user}),'00c800')`],
    ['target', `color(stacked(${system}),'c80032')`],
    ['target', 'secondYAxis(servers.web1.memory.available)'],
    ['mode', 'interactive'],
    ['from', '-3h'],
  ]);
  await page.goto(`${base}/#/?${styled}`);
  await page.waitForFunction(() => {
    const c = document.querySelector('.chart canvas');
    return c && c.dataset.axisRight && document.querySelectorAll('.chart-legend button').length === 3;
  });
  const axes = await page.locator('.chart canvas').evaluate((c) => [c.dataset.axisLeft, c.dataset.axisRight]);
  const leftMax = Math.max(...axes[0].split(' ').map(Number));
  check(leftMax >= 14 && leftMax <= 100, `left axis fits the CPU stack: ${axes[0]}`);
  check(axes[1].split(' ').every((l) => /^\d+(\.\d+)?G$/.test(l)), `right axis in gigabytes: ${axes[1]}`);
  let [g, r, b] = await chartColours(page, [green, red, blue]);
  check(g.inColumn > 15 && r.inColumn > 8, `both stacked areas are filled: ${JSON.stringify([g, r])}`);
  check(r.meanRow < g.meanRow, `the second series is stacked above the first: ${JSON.stringify([g, r])}`);
  check(b.inPlot > 100, `the right-axis series is drawn in the first palette colour: ${JSON.stringify(b)}`);
  await shot(page, '09-interactive-stacked');
  const chartBox = await page.locator('.chart canvas').boundingBox();
  await page.mouse.move(chartBox.x + chartBox.width * 0.6, chartBox.y + chartBox.height * 0.5);
  await page.locator('.chart-tip').waitFor({ state: 'visible' });
  const rows = (await page.locator('.chart-tip').innerText()).split('\n');
  const row = rows.find((l) => l.startsWith(`stacked(${system}): `));
  const own = Number(row && row.split(': ')[1]);
  // The seeded system CPU stays within 4–10 and user within 10–34: a stacked sum is ≥ 14.
  check(own >= 3.9 && own <= 10.1, `the tooltip shows the series' own value, not the stack: ${rows.join(' | ')}`);

  step('interactive chart: areaMode=stacked and hideLegend from the graph options');
  const stackedMode = new URLSearchParams([
    ['target', user], ['target', system], ['areaMode', 'stacked'], ['hideLegend', 'true'],
    ['mode', 'interactive'], ['from', '-3h'],
  ]);
  await page.goto(`${base}/#/?${stackedMode}`);
  await page.waitForFunction(() => {
    const c = document.querySelector('.chart canvas');
    const legend = document.querySelector('.chart-legend');
    return c && c.dataset.plot && !c.dataset.axisRight && legend && legend.hidden
      && legend.querySelectorAll('button').length === 2;
  });
  check((await page.locator('select[name="areaMode"]').inputValue()) === 'stacked', 'the option is shown');
  [b, g] = await chartColours(page, [blue, green], 0.4);
  check(b.inColumn > 15 && g.inColumn > 8, `both areas are filled: ${JSON.stringify([b, g])}`);
  check(g.meanRow < b.meanRow, `the second series is stacked above the first: ${JSON.stringify([b, g])}`);
  await shot(page, '10-interactive-area-mode');
}

main().then(
  () => console.log('ok: all steps passed'),
  (e) => {
    console.error(e.stack || String(e));
    process.exit(1);
  },
);
