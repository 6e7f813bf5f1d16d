// UDP blocked and only TLS on TCP gets out (the `turns:` URL a deployment serves on 443): the
// person's call goes through a real coturn over TLS (turn_fallback.mjs).
import { test } from "node:test";
import { callFallsBackToTurn } from "./turn_fallback.mjs";

test("UDP blocked: the person's call goes through TURN over TLS, asked for only after the direct attempt failed", async () => {
  await callFallsBackToTurn({ tls: true });
});
