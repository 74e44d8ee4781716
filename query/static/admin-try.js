"use strict";
/* The try box: how every intent scores a query, as POST /v1/admin/intents:test answers it.

   It knows the rest of the page through two events only: it runs again on
   "chatda:catalog-changed" (an edit was saved), and a click on a result row announces
   "chatda:pick-intent" so the editor can open that intent. Its markup is
   templates/admin_try.html; the number and decision cells carry the classes "num" and
   "decision", which keep them on one line. */
(() => {
  const {api, esc} = window.chatdaAdmin;
  const SHOWN = 15;
  const input = document.getElementById("try-query");
  const msg = document.getElementById("try-msg");
  const tbody = document.querySelector("#try-results tbody");
  let timer = null;
  let seq = 0;

  function cell(className, html) {
    const td = document.createElement("td");
    td.className = className;
    td.innerHTML = html;
    return td;
  }

  function row(match) {
    const tr = document.createElement("tr");
    tr.dataset.id = match.id;
    tr.append(
      cell("", `${esc(match.name)}<div class="path">${esc(match.path)}</div>`),
      cell("num", match.score.toFixed(3)),
      cell("num", match.threshold.toFixed(2)),
      cell("decision", match.passed ? '<span class="pass">통과</span>' : '<span class="fail">미달</span>'),
      cell("", esc(match.matched_hint)),
    );
    return tr;
  }

  async function run() {
    const query = input.value.trim();
    const mine = ++seq;
    if (!query) {
      tbody.replaceChildren();
      msg.textContent = "";
      return;
    }
    try {
      const res = await api("/v1/admin/intents:test", {method: "POST", body: JSON.stringify({query})});
      if (mine !== seq) return;
      const passed = res.intents.filter(m => m.passed).length;
      msg.className = "msg";
      msg.textContent = `카탈로그 v${res.catalog_version} · 통과 ${passed}개 · 상위 ${Math.min(SHOWN, res.intents.length)}개 표시`;
      tbody.replaceChildren(...res.intents.slice(0, SHOWN).map(row));
    } catch (e) {
      if (mine !== seq) return;
      msg.className = "msg err";
      msg.textContent = e.message;
    }
  }

  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 200); });
  document.addEventListener("chatda:catalog-changed", run);
  tbody.addEventListener("click", ev => {
    const tr = ev.target.closest("tr");
    if (tr) document.dispatchEvent(new CustomEvent("chatda:pick-intent", {detail: {id: Number(tr.dataset.id)}}));
  });
})();
