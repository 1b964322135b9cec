import { chromium } from "playwright-core";
import { startServer } from "./test/e2e/harness.js";
try {
  const server = await startServer({ base: "http://127.0.0.1:9" }, {});
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium" });
  for (const [w, h] of [[1366, 768], [390, 844]]) {
    const page = await browser.newPage({ viewport: { width: w, height: h } });
    await page.goto(`${server.base}/uploads`);
    const t0 = Date.now();
    await page.setInputFiles("#file-input", "/tmp/mk/hdr-pq.mp4");
    for (let i = 0; i < 120; i++) {
      const done = await page.$$eval(".upload.card .job-done", (e) => e.length);
      if (done >= 3) break;
      await page.waitForTimeout(500);
    }
    console.log(w, "all jobs done after", (Date.now() - t0) / 1000, "s");
    await page.waitForTimeout(500);
    await page.screenshot({ path: `/tmp/uc-hdr-${w}.png`, fullPage: true });
    console.log(w, await page.$$eval(".upload.card", (els) => els.map((e) => e.querySelector(".upload-head .sub").textContent + " | " + [...e.querySelectorAll(".job")].map((j) => j.dataset.kind + ":" + j.querySelector(".job-state").textContent).join(","))));
    await page.close();
  }
  await browser.close();
  await server.stop();
  process.exit(0);
} catch (e) { console.error(e); process.exit(1); }
