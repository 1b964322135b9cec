import { launchBrowser, newViewer, testVideo } from "./harness.js";
const base = "http://127.0.0.1:18080";
const browser = await launchBrowser();
const errors = [];
for (const [w, hgt] of [[1366, 768], [390, 844]]) {
  const v = await newViewer(browser, { width: w, height: hgt });
  v.page.on("pageerror", (e) => errors.push(String(e)));
  v.page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await v.page.goto(`${base}/uploads`);
  await v.page.waitForTimeout(500);
  const input = await v.page.$("input[type=file]");
  await input.setInputFiles(testVideo());
  await v.page.waitForTimeout(2000);
  await v.page.screenshot({ path: `/tmp/shots/upload-new-${w}.png` });
  await v.page.goto(`${base}/`);
  await v.page.fill("#room-name", "Smoke");
  await v.page.click("text=Create room");
  await v.page.waitForURL(/\/r\//);
  await v.page.waitForSelector("#connection[data-state=in-sync]");
  await v.page.click("#tab-queue");
  await v.page.fill("#queue-input", "http://127.0.0.1:18080/x.mp4");
  await v.page.press("#queue-input", "Enter");
  await v.page.waitForTimeout(1000);
  await v.page.screenshot({ path: `/tmp/shots/room-private-url-${w}.png` });
  await v.context.close();
}
console.log("errors:", errors);
await browser.close();
