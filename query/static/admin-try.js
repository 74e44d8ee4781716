"use strict";
/* The try box: how every intent scores a query, as POST /v1/admin/intents:test answers it.

   It knows the rest of the page through two events only: it runs again on
   "chatda:catalog-changed" (an edit was saved), and a click on a result row announces
   "chatda:pick-intent" so the editor can open that intent. Its markup is
   templates/admin_try.html; the number and decision cells carry the classes "num" and
   "decision", which keep them on one line. Above the rows, #try-decision says what users
   would get (passed, ambiguous or no match) and why; each row says why that intent is or is
   not in it, from the numbers the API answered (outcome, threshold and its source). */
(() => {
  const {api, esc} = window.chatdaAdmin;
  const SHOWN = 15;
  const input = document.getElementById("try-query");
  const msg = document.getElementById("try-msg");
  const decision = document.getElementById("try-decision");
  const tbody = document.querySelector("#try-results tbody");
  let timer = null;
  let seq = 0;

  function cell(className, html) {
    const td = document.createElement("td");
    td.className = className;
    td.innerHTML = html;
    return td;
  }

  const f3 = x => x.toFixed(3);
  const limit = x => String(+x.toFixed(3));  /* a threshold as the operator typed it: 0.25 */
  const DECISION = {passed: "통과", ambiguous: "모호", no_match: "일치 없음"};
  const VERDICT = {passed: ["pass", "통과"], ambiguous: ["amb", "모호"], below_threshold: ["fail", "미달"],
                   not_shown: ["fail", "미표시"], hidden: ["fail", "숨김"]};

  /* What the threshold applies to, in the rule in force: the confidence, or the raw score. */
  function value(match, res) {
    return res.calibrated ? ["신뢰도", match.confidence] : ["점수", match.score];
  }

  /* Why this intent is or is not in the answer, in words: the numbers that decided it. */
  function why(match, res) {
    const [what, v] = value(match, res);
    const source = match.threshold_source === "override" ? "개별 설정" : "전역";
    const against = `${what} ${f3(v)} ${v >= match.threshold ? "≥" : "<"} 임계값 ${limit(match.threshold)} (${source})`;
    switch (match.outcome) {
      case "ambiguous": {
        const other = res.intents.find(m => m.outcome === "ambiguous" && m.id !== match.id);
        const gap = Math.abs(match.confidence - other.confidence);
        return `${esc(match.rival)}와(과) 신뢰도 차 ${f3(gap)} < 여유 ${limit(res.ambiguity_margin)}, 둘 다 표시`;
      }
      case "not_shown": return res.decision === "ambiguous"
        ? `${against}, 하지만 모호한 답은 상위 두 개만 표시`
        : `${against}, 하지만 1위 ${esc(match.rival)}이(가) 미달이라 일치 없음`;
      case "hidden": return match.open ? "요청한 노출 영역 밖" : "비공개 의도 (open: false)";
      default: return against;
    }
  }

  function row(match, res) {
    const tr = document.createElement("tr");
    tr.dataset.id = match.id;
    tr.dataset.outcome = match.outcome;
    const [cls, label] = VERDICT[match.outcome];
    tr.append(
      cell("", `${esc(match.name)}<div class="path">${esc(match.path)}</div>`
        + `<div class="why ${cls}">${label}: ${why(match, res)}</div>`
        + `<div class="path">힌트: ${esc(match.matched_hint)}</div>`),
      cell("num conf", match.confidence === null ? "–" : f3(match.confidence)),
      cell("num", limit(match.threshold)),
      cell("num dense", f3(match.dense)),
      cell("num fused", f3(match.score)),
      cell("decision", `<span class="${cls}">${label}</span>`),
    );
    return tr;
  }

  /* The answer users would get, and the numbers that decided it. */
  function verdict(res) {
    const [top, second] = res.intents.filter(m => m.outcome !== "hidden");
    const rule = res.calibrated
      ? `규칙: 신뢰도 ≥ ${limit(res.global_threshold)} (전역), 모호 여유 ${limit(res.ambiguity_margin)}`
      : `규칙: 점수 ≥ ${limit(res.global_threshold)} (보정 없음)`;
    let text = "표시할 의도 없음";
    if (res.decision === "ambiguous") {
      text = `${esc(top.name)} / ${esc(second.name)}: ${why(top, res)}`;
    } else if (top) {
      const more = res.intents.filter(m => m.outcome === "passed").length - 1;
      text = `${res.decision === "passed" ? "" : "1위 "}${esc(top.name)}: ${why(top, res)}`
        + (more > 0 ? ` (외 ${more}개 통과)` : "");
    }
    const cls = {passed: "pass", ambiguous: "amb", no_match: "fail"}[res.decision];
    return `<b class="${cls}">${DECISION[res.decision]}</b> (${res.decision}) · ${text}`
      + `<div class="path">${rule} · 카탈로그 v${res.catalog_version} · 상위 ${Math.min(SHOWN, res.intents.length)}개</div>`;
  }

  async function run() {
    const query = input.value.trim();
    const mine = ++seq;
    if (!query) {
      tbody.replaceChildren();
      msg.textContent = "";
      decision.replaceChildren();
      delete decision.dataset.decision;
      return;
    }
    try {
      const res = await api("/v1/admin/intents:test", {method: "POST", body: JSON.stringify({q: query})});
      if (mine !== seq) return;
      msg.className = "msg";
      msg.textContent = "";
      decision.dataset.decision = res.decision;
      decision.innerHTML = verdict(res);
      tbody.replaceChildren(...res.intents.slice(0, SHOWN).map(m => row(m, res)));
    } catch (e) {
      if (mine !== seq) return;
      msg.className = "msg err";
      msg.textContent = e.message;
      decision.replaceChildren();
      delete decision.dataset.decision;
    }
  }

  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 200); });
  document.addEventListener("chatda:catalog-changed", run);
  tbody.addEventListener("click", ev => {
    const tr = ev.target.closest("tr");
    if (tr) document.dispatchEvent(new CustomEvent("chatda:pick-intent", {detail: {id: Number(tr.dataset.id)}}));
  });
})();
