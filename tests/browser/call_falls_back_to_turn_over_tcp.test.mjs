// UDP blocked: the person's call goes through a real coturn over plain TCP (turn_fallback.mjs).
import { test } from "node:test";
import { callFallsBackToTurn } from "./turn_fallback.mjs";

test("UDP blocked: the person's call goes through TURN over TCP, asked for only after the direct attempt failed", async () => {
  await callFallsBackToTurn({ tls: false });
});
