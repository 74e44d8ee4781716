"use strict";
/* The admin API as the page calls it: the session cookie (never a token), JSON both ways, and
   the server's {"error": {"message"}} turned into an Error whose message the page shows.
   Integers are 64-bit (ids, service ids): one past 2^53 is read as a BigInt from its source
   text and written back as the same digits, where a Number would round 9007199254740993 to
   …992 and a save of any other field would store the rounded value. */
const exactIntegers = (key, value, context) =>
  typeof value === "number" && !Number.isSafeInteger(value) && /^-?\d+$/.test(context?.source ?? "")
    ? BigInt(context.source)
    : value;
const rawIntegers = (key, value) => (typeof value === "bigint" ? JSON.rawJSON(String(value)) : value);

window.chatdaAdmin = {
  async api(path, opts = {}) {
    const response = await fetch(path, {
      credentials: "same-origin",
      headers: {"content-type": "application/json"},
      ...opts,
    });
    const text = response.status === 204 ? "" : await response.text();
    let body = null;
    try { body = text ? window.chatdaAdmin.parse(text) : null; } catch { body = null; }
    if (!response.ok) {
      const error = new Error(body?.error?.message || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return body;
  },
  parse: text => JSON.parse(text, exactIntegers),
  json: value => JSON.stringify(value, rawIntegers),
  /* A typed integer: a Number while exact, else a BigInt; null when empty; anything else is
     sent as typed, so the server names the field in its 422. */
  integer(text) {
    const t = text.trim();
    if (t === "") return null;
    if (!/^-?\d+$/.test(t)) return t;
    return Number.isSafeInteger(Number(t)) ? Number(t) : BigInt(t);
  },
  esc(text) {
    return String(text).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  },
};
