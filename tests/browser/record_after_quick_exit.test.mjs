// The person leaves by quick exit before the operator has filed the case; the desk still
// lets the operator file the observatory record, and the coordinator sees it.
import { test } from "node:test";
import { startRelay, openBrowser, personStarts, deskLogin, acceptFirst, send, sees, untilState, deskLanguage } from "./harness.mjs";

test("the record can be filed after the person left", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  const operator = await openBrowser();
  const coordinator = await openBrowser();
  try {
    await deskLogin(operator, relay, "operator-national");
    await deskLanguage(operator, "en");
    await personStarts(person, relay.url);
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    await send(person.page, "I have to go");
    await sees(operator.page, "I have to go");
    await person.page.locator("#exit").click();
    await person.page.waitForURL((u) => u.pathname === "/exit");
    await operator.page.locator("#ended-note").waitFor({ state: "visible", timeout: 20_000 });

    await operator.page.locator("#close-case").click();
    const form = operator.page.locator("#record-form");
    await form.waitFor({ state: "visible" });
    await form.locator('[name="gender"]').selectOption("male");
    await form.locator('[name="age"]').selectOption("26-35");
    await form.locator('input[name="exploitation"][value="labour-agriculture"]').check();
    await form.locator('[name="outcome"]').selectOption("counselling");
    await operator.page.locator("#record-submit").click();
    await operator.page.locator("#messages").getByText("Observatory record filed").waitFor({ timeout: 20_000 });

    await deskLogin(coordinator, relay, "coordinator");
    await deskLanguage(coordinator, "en");
    await coordinator.page.locator("#load-observatory").click();
    await coordinator.page.locator("#observatory").getByText(/agricultur/i).first().waitFor({ timeout: 20_000 });
  } finally {
    for (const b of [person, operator, coordinator]) await b.close();
    await relay.stop();
  }
});
