// Quick replies: short pre-translated messages (web-client/quick-replies.json, which a
// deployment may edit) that an operator sends in the person's language before an
// interpreter arrives. The button reads in the desk's language; the text sent is the
// session's language, or English when a reply lacks it.
import { h, fetchJSON } from "/common.js";

let replies = [];

/** Load the deployment's quick replies once; resolves when they are in. */
export async function loadQuickReplies() {
  const q = await fetchJSON("/quick-replies.json");
  replies = Array.isArray(q.replies) ? q.replies.filter((r) => r && r.id && r.text) : [];
}

/** Whether there is any quick reply to show. */
export const haveQuickReplies = () => replies.length > 0;

/** What the reply `id` sends to a person writing in `language`. */
export function quickReplyText(id, language) {
  const r = replies.find((x) => x.id === id);
  return r ? r.text[language] || r.text.en || "" : "";
}

/** One button per reply, labelled in `deskLanguage`, showing what it sends as its tooltip. */
export const quickReplyButtons = (language, deskLanguage) => replies.map((r) =>
  h("button", { type: "button", class: "quick", dataset: { reply: r.id }, title: quickReplyText(r.id, language),
    text: r.text[deskLanguage] || r.text.en || r.id }));
