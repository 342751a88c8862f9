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
