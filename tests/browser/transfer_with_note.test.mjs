// An operator transfers the case to the Tuscan desk with a handover note; the Tuscan
// operator accepts it and reads the note, and the person talks on with them.
import { test } from "node:test";
import { startRelay, openBrowser, personStarts, deskLogin, acceptFirst, send, sees, untilState } from "./harness.mjs";

test("transfer to another desk carries the note", async () => {
  const relay = await startRelay();
  const person = await openBrowser({ mobile: true });
  const national = await openBrowser();
  const tuscan = await openBrowser();
  try {
    await deskLogin(national, relay, "operator-national");
    await deskLogin(tuscan, relay, "operator-toscana");
    await personStarts(person, relay.url);
    await acceptFirst(national.page);
    await untilState(person.page, "chat");
    await send(person.page, "I work on a farm near Grosseto");
    await sees(national.page, "I work on a farm near Grosseto");

    const note = "Agricultural exploitation near Grosseto; English; safe after 18:00";
    await national.page.locator("#transfer-desk").selectOption("toscana");
    await national.page.locator("#transfer-note").fill(note);
    await national.page.locator("#transfer").click();

    await acceptFirst(tuscan.page);
    await tuscan.page.locator("#handover-note").getByText(note).waitFor({ timeout: 20_000 });
    await send(tuscan.page, "Buonasera, sono della rete toscana");
    await sees(person.page, "Buonasera, sono della rete toscana");
  } finally {
    for (const b of [person, national, tuscan]) await b.close();
    await relay.stop();
  }
});
