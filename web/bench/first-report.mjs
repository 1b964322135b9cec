// How soon a joiner's sync figure ("±3 ms" in the People tab) shows: a host plays a video in a
// room; JOINERS viewers (390x844) open it one after another, each in a browser context of its
// own, and for each the bench times, from opening the page, its own figure in its People tab and
// its figure on the host's page. Prints each joiner's times, then RESULT lines.
//
//   node web/bench/first-report.mjs   (LOCKSTEP_BIN: the server; the debug build by default)

import { addToQueue, createRoom, eventually, launchBrowser, newViewer, startFixtures, startServer } from "../test/e2e/harness.js";

const JOINERS = Number(process.env.JOINERS ?? 8);

const fixtures = await startFixtures();
const server = await startServer(fixtures);
const browser = await launchBrowser();
const own = [];
const onHost = [];
try {
  const host = await newViewer(browser);
  const url = await createRoom(host.page, server.base, "First report");
  await addToQueue(host.page, fixtures.mediaUrl("clip"));
  await host.page.click("#tab-people");
  await eventually(async () => ((await host.page.evaluate(() => window.lockstep?.player?.currentTime ?? 0)) > 3) || null, { what: "playing" });
  const figures = (page, who) => page.waitForFunction(
    (who) => [...document.querySelectorAll("#member-list li")].some((li) => li.textContent.includes(who) && /±\d+ ms/.test(li.textContent)),
    who, { timeout: 30_000, polling: 20 });
  for (let i = 0; i < JOINERS; i++) {
    const { context, page } = await newViewer(browser, { width: 390, height: 844 });
    const opened = performance.now();
    await page.goto(url);
    await page.click("#tab-people");
    await figures(page, "(you)");
    own.push((performance.now() - opened) / 1000);
    const name = await page.evaluate(() => window.lockstep.model.you.name);
    await figures(host.page, name);
    onHost.push((performance.now() - opened) / 1000);
    console.log(`joiner ${i + 1}: its own figure after ${own.at(-1).toFixed(2)} s, on the host's page after ${onHost.at(-1).toFixed(2)} s`);
    await context.close();
    await new Promise((r) => setTimeout(r, 1500));
  }
} finally {
  await browser.close();
  await server.stop();
  fixtures.close();
}
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => sorted(xs)[Math.floor(xs.length / 2)];
console.log(`RESULT first_report_own_p50 ${median(own).toFixed(2)} s`);
console.log(`RESULT first_report_own_max ${Math.max(...own).toFixed(2)} s`);
console.log(`RESULT first_report_host_max ${Math.max(...onHost).toFixed(2)} s`);
