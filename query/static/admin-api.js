"use strict";
/* The admin API as the page calls it: the session cookie (never a token), JSON both ways, and
   the server's {"error": {"message"}} turned into an Error whose message the page shows. */
window.chatdaAdmin = {
  async api(path, opts = {}) {
    const response = await fetch(path, {
      credentials: "same-origin",
      headers: {"content-type": "application/json"},
      ...opts,
    });
    const body = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new Error(body?.error?.message || `${response.status} ${response.statusText}`);
    return body;
  },
  esc(text) {
    return String(text).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  },
};
