// How long a room's page takes to be back after its connection to the server was away: one viewer
// plays in a room through a TCP proxy (web/test/e2e/harness.js), and for each outage in OUTAGES
// the proxy drops its connections and refuses new ones for that long. With OFFLINE=1 the browser
// is also told its network is gone for as long (Playwright's setOffline: a laptop's Wi-Fi, a phone
// in a tunnel) and back at the end; without, the browser is not told (a server restarting). Prints,
// per outage, how long after its end the pill left "reconnecting", then RESULT lines.
//
//   node web/bench/reconnect.mjs             (LOCKSTEP_BIN: the server; the debug build by default)
//   OFFLINE=1 node web/bench/reconnect.mjs   (OUTAGES='[2000,5000]' in ms, each in turn)

import { launchBrowser, newViewer, startFixtures, startServer, startProxy, createRoom, addToQueue, eventually } from "../test/e2e/harness.js";

const OFFLINE = process.env.OFFLINE === "1";
const OUTAGES = JSON.parse(process.env.OUTAGES ?? "[2000,5000,2000,5000,2000,5000,2000,5000,2000,5000,2000,5000]");

const fixtures = await startFixtures();
const server = await startServer(fixtures);
const proxy = await startProxy(server.port);
const browser = await launchBrowser();
const back = [];
try {
  const host = await newViewer(browser);
  const url = await createRoom(host.page, server.base, "Reconnect");
  await addToQueue(host.page, fixtures.mediaUrl("clip"));
  await eventually(async () => ((await host.page.evaluate(() => window.lockstep?.player?.currentTime ?? 0)) > 0.5) || null, { what: "playing" });
  const { context, page } = await newViewer(browser);
  await page.goto(url.replace(server.base, proxy.base));
  await page.waitForSelector("#connection[data-state=in-sync]");
  await new Promise((r) => setTimeout(r, 3000));
  for (const out of OUTAGES) {
    if (OFFLINE) await context.setOffline(true);
    proxy.cut(out);
    await new Promise((r) => setTimeout(r, out));
    if (OFFLINE) await context.setOffline(false);
    const end = Date.now();
    await page.waitForSelector("#connection:not([data-state=reconnecting])", { timeout: 30_000 });
    back.push(Date.now() - end);
    console.log(`outage ${out} ms: back ${back.at(-1)} ms after its end`);
    await page.waitForSelector("#connection[data-state=in-sync]", { timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 2000));
  }
} finally {
  await browser.close();
  await proxy.close();
  await server.stop();
  await fixtures.close();
}
const mode = OFFLINE ? "offline" : "refused";
for (const out of [...new Set(OUTAGES)]) {
  const mine = back.filter((_, i) => OUTAGES[i] === out).sort((a, b) => a - b);
  const mean = mine.reduce((a, b) => a + b, 0) / mine.length;
  console.log(`RESULT reconnect_${mode}_${out / 1000}s_mean ${(mean / 1000).toFixed(2)} s`);
  console.log(`RESULT reconnect_${mode}_${out / 1000}s_max ${(mine.at(-1) / 1000).toFixed(2)} s`);
}
process.exit(0);
