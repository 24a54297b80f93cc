// Drives Warden's approval console in real Chromium (playwright-core + Debian chromium).
//
//   node approve.cjs BASE_URL APPROVER_TOKEN OUTSIDER_TOKEN SCREENSHOT_DIR
//
// 1. Logs in as the approver and as an outsider (each in its own fresh profile).
// 2. Prints READY; the caller then makes an agent call that needs approval.
// 3. Waits (without reloading) for the pending request to appear on both pages.
// 4. The outsider sees it and clicks Approve: the server must refuse (403).
// 5. The approver approves with a reason. Prints one JSON line with what it saw.
// NODE_PATH must point at target/deps/approvals/node_modules.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const [base, approverToken, outsiderToken, shots] = process.argv.slice(2);

async function open(token) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "warden-console-profile-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  await page.goto(`${base}/console/login?token=${encodeURIComponent(token)}`);
  await page.click("#login");
  await page.waitForURL(`${base}/console/`);
  return { ctx, page, profile };
}

(async () => {
  const out = {};
  const approver = await open(approverToken);
  const outsider = await open(outsiderToken);
  out.whoami = await approver.page.textContent("#whoami");
  out.pending_before = await approver.page.textContent("#pending-count");
  const loadsBefore = await approver.page.evaluate(() => performance.getEntriesByType("navigation").length);
  console.log("READY");

  // The request appears without a reload.
  const card = approver.page.locator("section.approval").first();
  await card.waitFor({ timeout: 60000 });
  out.reloaded = (await approver.page.evaluate(() => performance.getEntriesByType("navigation").length)) !== loadsBefore
    || (await approver.page.evaluate(() => document.getElementById("flash") !== null));
  out.id = await card.getAttribute("data-id");
  out.card_text = await card.innerText();
  await approver.page.screenshot({ path: path.join(shots, "console-pending.png"), fullPage: true });

  // The outsider sees it too, but the server refuses the approval.
  const ocard = outsider.page.locator(`section.approval[data-id="${out.id}"]`);
  await ocard.waitFor({ timeout: 60000 });
  out.outsider_sees = true;
  out.outsider_warning = await ocard.locator(".ineligible").innerText();
  await ocard.locator("textarea[name=reason]").fill("I think it is fine");
  const [resp] = await Promise.all([
    outsider.page.waitForResponse((r) => r.url().includes(`/approvals/${out.id}/approve`)),
    ocard.locator("button.approve").click(),
  ]);
  out.outsider_status = resp.status();
  out.outsider_message = await outsider.page.textContent("#message");

  // The approver approves with a reason.
  await card.locator("textarea[name=reason]").fill("customer verified by phone");
  await Promise.all([approver.page.waitForURL(/done=/), card.locator("button.approve").click()]);
  out.flash = await approver.page.textContent("#flash");
  await approver.page.screenshot({ path: path.join(shots, "console-approved.png"), fullPage: true });

  for (const s of [approver, outsider]) {
    await s.ctx.close();
    fs.rmSync(s.profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
