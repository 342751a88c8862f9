// The monitoring page in a real browser: sign in, start a sync, see its
// progress move and its counts match the source's ground truth, see a dead
// letter, and see nothing with another tenant's token.
// Run by scripts/browser-test.sh, which starts `ferry serve` and the simulators.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const { FERRY_URL, SIM_URL, TOKEN, OTHER_TOKEN, ARTIFACTS, CHROMIUM } = process.env;
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

async function signIn(page, token) {
  await page.goto(FERRY_URL + "/");
  await page.fill("#token", token);
  await page.click("#token-form button");
  await page.waitForSelector("#pipelines-section:not([hidden])");
}

test("a sync started from the page shows live progress, the right counts and its dead letters", { timeout: 180_000 }, async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
    await signIn(page, TOKEN);
    await page.waitForSelector('tr[data-pipeline="browser-orders"]');
    await page.click('[data-testid="start-browser-orders"]');
    // Progress moves while it runs.
    await page.waitForFunction(() => Number(document.querySelector("#live-success")?.textContent || 0) > 0, null, { timeout: 90_000 });
    const seen = Number(await page.textContent("#live-success"));
    // The run finishes with the counts of the ground truth.
    await page.waitForFunction(() => ["succeeded", "partial"].includes(document.querySelector("#command")?.dataset.status), null, { timeout: 120_000 });
    const truth = await (await fetch(SIM_URL + "/__sim/truth")).json();
    const confirmed = truth.orders.filter((o) => o.status === "Confirmed");
    const ok = confirmed.filter((o) => o.items.length >= 2).length;
    const bad = confirmed.length - ok;
    assert.ok(ok > seen || seen === ok, `progress was seen mid-run (${seen} of ${ok})`);
    assert.ok(bad > 0, "the pipeline's mapping fails some records on purpose");
    const command = await page.textContent("#command");
    assert.match(command, new RegExp(`success ${ok}, failed ${bad}, total ${confirmed.length}`));
    // A dead letter with its reason, plugin digest and raw input.
    await page.waitForSelector("#dead tbody tr");
    assert.match(await page.textContent("#dead tbody tr td:nth-child(2)"), /items\[1\]\.sku_id/);
    assert.match(await page.textContent("#dead tbody tr td:nth-child(3)"), /^[0-9a-f]{12}$/);
    // The run appears among recent runs, the plugin among plugin history.
    await page.waitForSelector("#runs tbody tr");
    assert.match(await page.textContent("#plugins tbody"), /declarative/);
    await page.screenshot({ path: `${ARTIFACTS}/dashboard.png`, fullPage: true });

    // Another tenant sees none of it.
    const other = await browser.newPage();
    await signIn(other, OTHER_TOKEN);
    await other.waitForTimeout(1500);
    assert.equal(await other.locator("#pipelines tbody tr").count(), 0);
    await other.screenshot({ path: `${ARTIFACTS}/dashboard-other-tenant.png` });
  } finally {
    await browser.close();
  }
});

test("the panels at 800 px: schedule, Start while busy, dead letters by reason and paged, raw kept open, failures summarised, one pipeline's command only", { timeout: 180_000 }, async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 800, height: 1000 } });
    await signIn(page, TOKEN);
    await page.waitForSelector('tr[data-pipeline="browser-orders-second"]');
    // The scheduled pipeline says when it runs next; the other runs on demand.
    await page.waitForFunction(() => /every 3600 s, next /.test(document.querySelector('[data-testid="schedule-browser-orders-second"]')?.textContent || ""));
    assert.equal(await page.textContent('[data-testid="schedule-browser-orders"]'), "on demand");

    // Start is disabled while the pipeline's sync is queued or running, and again enabled after.
    const start = '[data-testid="start-browser-orders"]';
    await page.waitForSelector(start + ":not([disabled])");
    await page.click(start);
    await page.waitForSelector(start + ":disabled", { timeout: 5_000 });
    await page.waitForFunction(() => ["succeeded", "partial"].includes(document.querySelector("#command")?.dataset.status), null, { timeout: 120_000 });
    await page.waitForSelector(start + ":not([disabled])", { timeout: 10_000 });
    const ownCommand = (await page.textContent("#command")).match(/command ([0-9a-f-]{36})/)[1];

    // Dead letters grouped by reason, with counts that add up to the total, and paged.
    await page.waitForSelector("#dead-reasons tbody tr");
    const total = Number(await page.textContent('tr[data-pipeline="browser-orders"] td:nth-child(7)'));
    const counts = await page.$$eval("#dead-reasons tbody tr td:nth-child(2)", (tds) => tds.map((td) => Number(td.textContent)));
    assert.equal(counts.reduce((a, b) => a + b, 0), total, "the reasons count every dead letter");
    assert.ok(total > 50, `more dead letters than one page (${total})`);
    assert.equal(await page.textContent("#dead-page"), `1–50 of ${total}`);
    await page.click("#dead-next");
    await page.waitForFunction((t) => document.querySelector("#dead-page").textContent === `51–${Math.min(100, t)} of ${t}`, total);
    await page.click("#dead-prev");
    await page.waitForFunction((t) => document.querySelector("#dead-page").textContent === `1–50 of ${t}`, total);

    // An opened raw record stays open across refreshes.
    const first = await page.getAttribute("#dead tbody tr details", "data-id");
    await page.click("#dead tbody tr details summary");
    await page.waitForTimeout(2500);
    assert.equal(await page.$eval(`#dead details[data-id="${first}"]`, (d) => d.open), true, "still open after refreshes");

    // A command's failed records are summarised by reason (the first run's: the one just started found nothing new).
    const rows = await page.$$eval("#commands tbody tr", (trs) => trs.map((tr) => Number(tr.children[4].textContent)));
    const row = rows.findIndex((n) => n > 0);
    assert.ok(row >= 0, `a command with failed records is listed: ${rows}`);
    await page.click(`#commands tbody tr:nth-child(${row + 1}) td:first-child`);
    await page.waitForSelector("#task-reasons tbody tr");
    const failed = await page.$$eval("#task-reasons tbody tr td:nth-child(2)", (tds) => tds.reduce((a, td) => a + Number(td.textContent), 0));
    assert.equal(failed, rows[row], "the reasons count every failed record of the command");

    // The chart has axes: the y axis line is drawn left of the plot.
    const axis = await page.$eval("#chart", (c) => c.getContext("2d").getImageData(56, 40, 1, 1).data[3]);
    assert.ok(axis > 0, "the y axis is drawn");
    await page.screenshot({ path: `${ARTIFACTS}/dashboard-800.png`, fullPage: true });
    await page.screenshot({ path: `${ARTIFACTS}/dashboard-800-top.png` });
    // Nothing wider than the window.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no horizontal scroll at 800 px");

    // The other pipeline's panel never shows this pipeline's command.
    await page.click('[data-testid="details-browser-orders-second"]');
    await page.waitForFunction(() => document.querySelector("#command").dataset.pipeline === "browser-orders-second");
    await page.waitForTimeout(2500);
    const other = await page.textContent("#command");
    assert.ok(!other.includes(ownCommand), `the second pipeline's panel shows its own command, not ${ownCommand}: ${other}`);
    assert.match(await page.textContent("#details-title"), /^browser-orders-second/);
    await page.screenshot({ path: `${ARTIFACTS}/dashboard-second-pipeline.png`, fullPage: true });
  } finally {
    await browser.close();
  }
});
