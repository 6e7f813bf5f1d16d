// The person's page works at 360 px wide by touch alone: nothing overflows sideways,
// every control is a comfortable tap target, and a whole conversation can be had by taps.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startRelay, openBrowser, deskLogin, acceptFirst, sees, untilState } from "./harness.mjs";

async function fitsAndTaps(page) {
  const m = await page.evaluate(() => {
    const small = [...document.querySelectorAll("button, input, select, textarea, a[href]")]
      .filter((e) => e.offsetParent !== null && e.type !== "radio" && e.type !== "checkbox")
      .map((e) => ({ id: e.id || e.textContent.trim().slice(0, 20), h: e.getBoundingClientRect().height }))
      .filter((e) => e.h < 40);
    return { scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth, small };
  });
  assert.ok(m.scrollWidth <= m.width, `horizontal overflow: ${m.scrollWidth} > ${m.width}`);
  assert.deepEqual(m.small, [], "tap targets under 40 px");
}

test("the person's page at 360 px, by touch", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser();
  try {
    await deskLogin(operator, relay, "operator-national");
    const page = person.page;
    await page.goto(`${relay.url}/`);
    await fitsAndTaps(page);
    await page.locator('#languages [data-lang="ur"]').tap();
    await untilState(page, "intake");
    assert.equal(await page.evaluate(() => document.documentElement.dir), "rtl", "Urdu reads right to left");
    await fitsAndTaps(page);
    await page.locator("#start").tap();
    await page.waitForFunction(() => ["waiting", "chat"].includes(document.body.dataset.state));
    await acceptFirst(operator.page);
    await untilState(page, "chat");
    await fitsAndTaps(page);
    await page.locator("#message-input").tap();
    await page.keyboard.type("مدد");
    await page.locator("#send").tap();
    await sees(operator.page, "مدد");
  } finally {
    await person.close();
    await operator.close();
    await relay.stop();
  }
});
