// Accessibility checks shared by the a11y_* tests: axe-core run inside the page, the
// computed size of every visible text, the visible h1s, and a tour that brings the
// person's page and the desk through every state they have, calling a check at each.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import {
  startRelay, openBrowser, deskLogin, deskLanguage, personStarts, acceptFirst, untilState,
  send, sees, safetyCode,
} from "./harness.mjs";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** WCAG 2.0, 2.1 and 2.2 levels A and AA, and axe's best practices: every rule of those. */
export const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"];

/**
 * axe-core's violations on the page as it is now, of any impact, one line per failing
 * node. The engine is evaluated through the DevTools protocol (as Playwright's
 * `evaluate` does), which the page's CSP does not govern: the pages keep their strict
 * policy and no `bypassCSP` is needed.
 */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (tags) => {
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: tags },
      resultTypes: ["violations"],
    });
    return result.violations.flatMap((v) => v.nodes.map((n) =>
      `${v.id} (${v.impact}) ${n.target.join(" ")}: ${n.failureSummary.replace(/\s+/g, " ")}`));
  }, AXE_TAGS);
}

/**
 * Every visible element that carries text of its own (a non-blank text node child, or a
 * form control showing a value or placeholder), with its computed font size in px.
 */
export async function textSizes(page) {
  return page.evaluate(() => {
    const shown = (el) => {
      if (el.checkVisibility && !el.checkVisibility({ visibilityProperty: true, opacityProperty: false })) return false;
      const r = el.getBoundingClientRect();
      return r.width > 1 && r.height > 1;
    };
    const own = (el) => [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.data.trim() !== "")
      || (/^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) && el.type !== "checkbox" && el.type !== "radio");
    return [...document.body.querySelectorAll("*")].filter((el) => own(el) && shown(el)).map((el) => ({
      el: el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.classList.length ? "." + [...el.classList].join(".") : ""),
      text: (el.value || el.textContent).trim().slice(0, 40),
      px: parseFloat(getComputedStyle(el).fontSize),
    }));
  });
}

/** The text of every h1 a sighted person can see now. */
export async function visibleH1s(page) {
  return page.evaluate(() => [...document.querySelectorAll("h1")]
    .filter((h) => h.checkVisibility({ visibilityProperty: true }) && h.getBoundingClientRect().height > 1)
    .map((h) => h.textContent.trim()));
}

// A state is settled when no script work is pending: two animation frames after the last
// change the test made (the pages draw synchronously on each event).
const settle = (page) => page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok))));

// Leave the call if this page is still in it (the other side leaving may end it first).
async function hangUp(page) {
  const view = page.locator("#call-view");
  if (await view.isVisible()) await page.locator("#hang-up").click({ timeout: 5_000 }).catch(() => {});
  await view.waitFor({ state: "hidden", timeout: 20_000 });
}

/**
 * Walk the person's page and the desk through all their states, calling
 * `check(page, name)` at each: `person` for the person's states (in Arabic, so right to
 * left), `desk` for the operator's, interpreter's and coordinator's (each in Italian and in
 * English). Either may be omitted to skip that side.
 */
export async function tourStates({ person: personCheck, desk: deskCheck }) {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true, media: true });
  const operator = await openBrowser({ media: true });
  const interpreter = await openBrowser();
  const coordinator = await openBrowser();
  const atPerson = async (name) => { if (personCheck) { await settle(person.page); await personCheck(person.page, name); } };
  const atDesk = async (name, b = operator) => {
    if (!deskCheck) return;
    for (const lang of ["it", "en"]) {
      await deskLanguage(b, lang);
      await settle(b.page);
      await deskCheck(b.page, `${name} (${lang})`);
    }
  };
  try {
    // The desk's sign-in and the person's first screens.
    await operator.page.goto(`${relay.url}/desk`);
    await operator.page.waitForFunction(() => document.querySelector("#login").textContent.trim() !== "");
    await atDesk("login");
    await deskLogin(operator, relay, "operator-national");
    await deskLogin(interpreter, relay, "interpreter");
    await atDesk("empty queue");
    await atDesk("interpreter, no invitation", interpreter);

    await person.page.goto(`${relay.url}/`);
    await atPerson("language");
    await person.page.locator('#languages [data-lang="ar"]').click();
    await untilState(person.page, "intake");
    await atPerson("intake");
    await person.page.locator('input[name="who"][value="worker"]').check();
    await atPerson("intake, a worker reporting");
    await person.page.locator('input[name="activator"][value="street-unit"]').check();
    await person.page.locator("#start").click();
    await untilState(person.page, "waiting");
    await person.page.locator("#queue-position").getByText(/\d/).waitFor({ timeout: 20_000 });
    await atPerson("waiting");

    await operator.page.locator("#queue button[data-session]").first().waitFor({ timeout: 20_000 });
    await atDesk("queue with a waiting person");
    await acceptFirst(operator.page);
    await untilState(person.page, "chat");
    await send(person.page, "Hello, I need help");
    await sees(operator.page, "Hello, I need help");
    await send(operator.page, "I am here. You are safe to write.");
    await sees(person.page, "I am here. You are safe to write.");
    // Enough quick replies that the desk's conversation scrolls.
    for (const id of ["interpreter", "safe-to-talk", "not-in-trouble", "take-your-time"]) {
      await operator.page.locator(`#quick-reply-list button[data-reply="${id}"]`).click();
    }
    await person.page.waitForFunction(() => document.querySelectorAll("#messages .msg").length >= 6);
    await safetyCode(person.page);
    await safetyCode(operator.page);
    await atPerson("conversation");
    await atDesk("conversation with quick replies");

    await person.page.locator("#safety-code").click();
    await atPerson("safety code explained");
    await person.page.locator("#safety-code").click();

    // "End conversation" asks first; Cancel keeps the conversation.
    await person.page.locator("#end").click();
    await person.page.locator("#end-confirm").waitFor({ state: "visible" });
    await atPerson("end confirmation");
    await person.page.locator("#end-cancel").click();

    // An interpreter is invited and joins.
    await operator.page.locator("#invite-language").selectOption("ar");
    await operator.page.locator("#invite").click();
    await interpreter.page.locator("#invitations button[data-session]").first().waitFor({ timeout: 20_000 });
    await atDesk("interpreter, invited", interpreter);
    await interpreter.page.locator("#invitations button[data-session]").first().click();
    await interpreter.page.locator("#chat").waitFor({ state: "visible" });
    await send(interpreter.page, "Interpreter here");
    await sees(person.page, "Interpreter here");
    await sees(operator.page, "Interpreter here");
    await atPerson("conversation with an interpreter");
    await atDesk("interpreter in the conversation", interpreter);

    await operator.page.locator("#close-case").click();
    await operator.page.locator("#record-form").waitFor({ state: "visible" });
    await atDesk("invite, transfer and the record form");
    await operator.page.locator("#close-case").click();

    // A call: the person is invited, answers with voice only.
    await interpreter.page.locator("#leave-session").click();
    await operator.page.locator("#start-call").click();
    await operator.page.locator("#call-view").waitFor({ state: "visible", timeout: 20_000 });
    await person.page.locator("#call-invite").waitFor({ state: "visible", timeout: 20_000 });
    await atPerson("call invitation");
    await person.page.locator("#voice-call").click();
    await person.page.locator("#call-view").waitFor({ state: "visible", timeout: 20_000 });
    await atPerson("voice call");
    await atDesk("call");
    await hangUp(person.page);
    await hangUp(operator.page);

    // A call the person starts: "calling the helpline…" until staff join.
    await person.page.locator("#voice-call").click();
    await person.page.locator("#call-calling").waitFor({ state: "visible", timeout: 20_000 });
    await atPerson("calling the helpline");
    await hangUp(person.page);

    await person.page.locator("#not-safe").click();
    await person.page.locator("#neutral").waitFor({ state: "visible" });
    await operator.page.locator("#not-safe").waitFor({ state: "visible", timeout: 20_000 });
    await atPerson("not safe: the neutral view");
    await atDesk("the person cannot talk freely");
    await person.page.locator("#neutral").click();

    // The operator files the case's record, which ends the conversation for everyone.
    await operator.page.locator("#close-case").click();
    await operator.page.locator('#record-form [name="outcome"]').selectOption("referral");
    await operator.page.locator("#record-submit").click();
    await untilState(person.page, "ended");
    await operator.page.locator("#ended-note").waitFor({ state: "visible", timeout: 20_000 });
    await atPerson("ended");
    await atDesk("ended conversation");

    await person.page.locator("#exit").click();
    await person.page.waitForURL((u) => u.pathname === "/exit");
    await atPerson("after a quick exit");

    if (deskCheck) {
      // The coordinator's observatory, with the case just filed.
      await deskLogin(coordinator, relay, "coordinator");
      await atDesk("coordinator", coordinator);
      await coordinator.page.locator("#load-observatory").click();
      await coordinator.page.locator("#observatory-csv").waitFor({ timeout: 20_000 });
      await atDesk("coordinator's observatory tables", coordinator);
      // Narrow, the tables scroll sideways (as a year of months does at any width).
      await coordinator.page.setViewportSize({ width: 360, height: 740 });
      const scrolling = await coordinator.page.evaluate(() =>
        [...document.querySelectorAll(".obs-section")].filter((e) => e.scrollWidth > e.clientWidth).length);
      if (!scrolling) throw new Error("no observatory table scrolls sideways at 360 px: that state would check nothing");
      await atDesk("coordinator's observatory tables, scrolling sideways", coordinator);
    }
  } finally {
    for (const b of [person, operator, interpreter, coordinator]) await b.close();
    await relay.stop();
  }
}
