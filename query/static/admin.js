"use strict";
/* The catalog tree and the editor: browse, search, create, edit and delete intents.

   Every write goes through /v1/admin/intents and is followed by a fresh listing, so the tree
   shows what the store holds, not what the page guessed. After a write the page announces
   "chatda:catalog-changed"; a click elsewhere that names an intent arrives as
   "chatda:pick-intent". Those two events are the only contract with the try box. */
(() => {
  const {api, parse, json, integer} = window.chatdaAdmin;
  const $ = s => document.querySelector(s);
  const EXPANDED_KEY = "chatda.admin.expanded";

  const byId = new Map();     // id -> intent (with path), as last listed
  const kids = new Map();     // parent id (null for roots) -> child ids, in listing order
  let expanded = new Set(parse(localStorage.getItem(EXPANDED_KEY) || "[]"));
  let hits = null;            // ids matching the search, or null when not searching
  let selected = null;        // the id shown in the editor
  let current = null;         // the intent being edited, as the server last returned it
  let mode = null;            // "edit" | "create" | null
  let dirty = false;
  let searchSeq = 0;

  const announce = () => document.dispatchEvent(new CustomEvent("chatda:catalog-changed"));
  const saveExpanded = () => localStorage.setItem(EXPANDED_KEY, json([...expanded]));

  function say(text, kind = "") {
    const msg = $("#edit-msg");
    msg.className = `msg ${kind}`;
    msg.textContent = text;
    msg.title = text;
    $("#reload").hidden = true;
  }

  // Someone saved this intent since it was opened: the edit is kept on screen (to copy from)
  // until the operator reloads the saved one; saving over it again would just be refused.
  function conflict() {
    say("다른 곳에서 이 의도를 먼저 저장했습니다. 고친 내용을 옮겨 적은 뒤 ‘새로 불러오기’로 저장된 내용을 여세요", "err");
    $("#reload").hidden = false;
  }

  // ---- the tree ----

  async function load() {
    const res = await api("/v1/admin/intents");
    byId.clear();
    kids.clear();
    for (const intent of res.intents) byId.set(intent.id, intent);
    for (const intent of res.intents) {
      const parent = byId.has(intent.parent_id) ? intent.parent_id : null;
      if (!kids.has(parent)) kids.set(parent, []);
      kids.get(parent).push(intent.id);
    }
    $("#catalog-version").textContent = res.catalog_version;
    if (hits) hits = new Set([...hits].filter(id => byId.has(id)));
    render();
  }

  function ancestors(id) {
    const out = [];
    for (let p = byId.get(id)?.parent_id; p != null && byId.has(p); p = byId.get(p).parent_id) out.push(p);
    return out;
  }

  function descendants(id) {
    const out = new Set();
    const walk = n => (kids.get(n) || []).forEach(k => { out.add(k); walk(k); });
    walk(id);
    return out;
  }

  function render() {
    const visible = hits && new Set([...hits].flatMap(id => [id, ...ancestors(id)]));
    const node = id => {
      const intent = byId.get(id);
      const children = (kids.get(id) || []).filter(k => !visible || visible.has(k));
      const open = hits ? true : expanded.has(id);
      const li = document.createElement("li");
      li.setAttribute("role", "treeitem");
      li.dataset.id = id;
      const row = document.createElement("div");
      row.className = "node";
      row.tabIndex = 0;
      row.dataset.id = id;
      row.classList.toggle("sel", id === selected);
      if (hits) row.classList.add(hits.has(id) ? "hit" : "context");
      const twisty = document.createElement("button");
      twisty.type = "button";
      twisty.className = children.length ? "twisty" : "twisty leaf";
      twisty.tabIndex = -1;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = intent.name;
      name.title = intent.path;
      row.append(twisty, name);
      if (!intent.open) row.insertAdjacentHTML("beforeend", '<span class="closed">닫힘</span>');
      row.insertAdjacentHTML("beforeend", `<span class="id">#${id}</span>`);
      if (children.length) row.insertAdjacentHTML("beforeend", `<span class="kids">${children.length}</span>`);
      li.append(row);
      if (children.length) {
        const ul = document.createElement("ul");
        ul.setAttribute("role", "group");
        ul.append(...children.map(node));
        li.append(ul);
        setOpen(li, open);
      }
      return li;
    };
    const roots = (kids.get(null) || []).filter(k => !visible || visible.has(k));
    $("#intent-tree").replaceChildren(...roots.map(node));
    $("#tree-empty").hidden = roots.length > 0;
    $("#intent-count").textContent = hits ? `${hits.size} / ${byId.size}` : `${byId.size}`;
  }

  function setOpen(li, open) {
    li.setAttribute("aria-expanded", String(open));
    li.querySelector(":scope > ul").hidden = !open;
    const twisty = li.querySelector(":scope > .node > .twisty");
    twisty.textContent = open ? "▾" : "▸";
    twisty.setAttribute("aria-label", open ? "접기" : "펼치기");
  }

  function toggle(id, open) {
    const li = $(`#intent-tree li[data-id="${id}"]`);
    if (!li || !li.querySelector(":scope > ul")) return;
    const now = open ?? li.getAttribute("aria-expanded") !== "true";
    setOpen(li, now);
    if (!hits) {
      now ? expanded.add(id) : expanded.delete(id);
      saveExpanded();
    }
  }

  function reveal(id) {
    if (!hits) {
      ancestors(id).forEach(a => expanded.add(a));
      saveExpanded();
    }
    render();
    $(`#intent-tree .node[data-id="${id}"]`)?.scrollIntoView({block: "nearest"});
  }

  async function search() {
    const q = $("#search").value.trim();
    const mine = ++searchSeq;
    const url = new URL(location.href);
    q ? url.searchParams.set("q", q) : url.searchParams.delete("q");
    history.replaceState(null, "", url);
    if (!q) {
      hits = null;
      render();
      return;
    }
    try {
      const res = await api(`/v1/admin/intents?q=${encodeURIComponent(q)}`);
      if (mine !== searchSeq) return;
      hits = new Set(res.intents.map(i => i.id));
      render();
    } catch (e) {
      if (mine === searchSeq) say(e.message, "err");
    }
  }

  // ---- the editor ----

  function setMode(next) {
    mode = next;
    $("#edit-panel").classList.toggle("mode-create", next === "create");
    $("#edit-form").hidden = next === null;
    $("#edit-empty").hidden = next !== null;
    $("#save").disabled = next === null;
    $("#delete").disabled = next !== "edit";
    $("#edit-title").textContent = next === "create" ? "새 의도" : "편집";
  }

  function setDirty(value) {
    dirty = value;
    if (value) say("저장하지 않은 변경이 있습니다", "dirty");
  }

  const mayDiscard = () => !dirty || confirm("저장하지 않은 변경이 있습니다. 버리고 계속할까요?");

  function hintRow(text) {
    const row = document.createElement("div");
    row.className = "hint-row";
    row.innerHTML = '<input type="text" class="f-hint" maxlength="500"><button type="button" class="ghost">삭제</button>';
    row.querySelector("input").value = text;
    row.querySelector("button").onclick = () => { row.remove(); setDirty(true); };
    $("#hints").appendChild(row);
  }

  function parentOptions(self, parentId) {
    const banned = self == null ? new Set() : new Set([self, ...descendants(self)]);
    const options = [new Option("(최상위)", "")];
    [...byId.values()]
      .filter(i => !banned.has(i.id))
      .sort((a, b) => a.path.localeCompare(b.path, "ko"))
      .forEach(i => options.push(new Option(`${i.path} · #${i.id}`, String(i.id))));
    $("#f-parent").replaceChildren(...options);
    $("#f-parent").value = parentId == null ? "" : String(parentId);
  }

  function fill(intent) {
    $("#f-name").value = intent.name;
    $("#hints").replaceChildren();
    (intent.hints.length ? intent.hints : [""]).forEach(hintRow);
    $("#f-threshold").value = intent.threshold ?? "";
    $("#f-service").value = intent.service_id ?? "";
    $("#f-open").checked = intent.open;
    $("#f-memo").value = intent.memo;
    document.querySelectorAll(".f-area").forEach(cb => { cb.checked = intent.areas.includes(cb.value); });
  }

  function showCurrent() {
    $("#edit-path").textContent = `${current.path} · #${current.id} · v${current.version}`;
    parentOptions(current.id, current.parent_id);
    fill(current);
  }

  async function select(id, {force = false} = {}) {
    if (!force && !mayDiscard()) return;
    try {
      current = await api(`/v1/admin/intents/${id}`);
    } catch (e) {
      say(e.message, "err");
      return;
    }
    selected = current.id;
    setMode("edit");
    showCurrent();
    setDirty(false);
    say("");
    reveal(selected);
  }

  function startCreate() {
    if (!mayDiscard()) return;
    const parent = mode === "edit" ? current.id : null;
    setMode("create");
    $("#f-id").value = String([...byId.keys()].reduce((top, id) => (BigInt(id) > top ? BigInt(id) : top), 0n) + 1n);
    $("#edit-path").textContent = parent == null ? "최상위에 새 의도" : `${byId.get(parent).path} 아래에 새 의도`;
    parentOptions(null, parent);
    fill({name: "", hints: [], threshold: null, service_id: null, open: true, memo: "", areas: ["SEARCH", "RECO", "SUGGEST"]});
    setDirty(false);
    say("이름과 힌트를 입력하고 저장하세요");
    $("#f-name").focus();
  }

  function cancelCreate() {
    if (!mayDiscard()) return;
    setDirty(false);
    if (selected != null && byId.has(selected)) select(selected, {force: true});
    else { setMode(null); say(""); }
  }

  const numberOrNull = value => (value.trim() === "" ? null : Number(value));

  function fields() {
    return {
      parent_id: integer($("#f-parent").value),
      service_id: integer($("#f-service").value),
      name: $("#f-name").value,
      hints: [...document.querySelectorAll(".f-hint")].map(i => i.value.trim()).filter(Boolean),
      memo: $("#f-memo").value,
      open: $("#f-open").checked,
      areas: [...document.querySelectorAll(".f-area:checked")].map(c => c.value),
      threshold: numberOrNull($("#f-threshold").value),
    };
  }

  async function save(ev) {
    ev.preventDefault();
    if (mode === null) return;
    const body = fields();
    if (!body.name.trim()) { say("이름을 입력하세요", "err"); $("#f-name").focus(); return; }
    if (!body.areas.length) { say("노출 영역을 하나 이상 고르세요", "err"); return; }
    $("#save").disabled = true;
    $("#edit-form").inert = true;  // what is typed meanwhile would be overwritten by the answer
    say("저장 중…");
    try {
      if (mode === "create") {
        const id = integer($("#f-id").value);
        if (!(Number.isInteger(id) || typeof id === "bigint") || id < 1) { say("ID는 1 이상의 정수입니다", "err"); return; }
        current = await api("/v1/admin/intents", {method: "POST", body: json({id, ...body})});
        say(`만들어짐: ${current.name} (#${current.id})`, "ok");
      } else {
        current = await api(`/v1/admin/intents/${current.id}`, {method: "PUT", body: json({...body, version: current.version})});
        say(`저장됨 (v${current.version})`, "ok");
      }
      selected = current.id;
      dirty = false;
      setMode("edit");
      showCurrent();
      await load();
      reveal(selected);
      announce();
    } catch (e) {
      if (e.status === 409 && mode === "edit") conflict();
      else say(e.message, "err");
    } finally {
      $("#edit-form").inert = false;
      $("#save").disabled = mode === null;
    }
  }

  async function remove() {
    if (mode !== "edit") return;
    const children = kids.get(current.id) || [];
    if (children.length) {
      say(`하위 의도 ${children.length}개가 있어 삭제할 수 없습니다. 먼저 옮기거나 삭제하세요`, "err");
      return;
    }
    if (!confirm(`'${current.name}' (#${current.id}) 의도를 삭제할까요?\n${current.path}\n되돌릴 수 없습니다.`)) return;
    const gone = current;
    say("삭제 중…");
    try {
      await api(`/v1/admin/intents/${gone.id}?version=${gone.version}`, {method: "DELETE"});
    } catch (e) {
      say(e.message, "err");
      return;
    }
    current = null;
    selected = null;
    dirty = false;
    setMode(null);
    say(`삭제됨: ${gone.name} (#${gone.id})`, "ok");
    await load();
    announce();
  }

  // ---- wiring ----

  $("#intent-tree").addEventListener("click", ev => {
    const row = ev.target.closest(".node");
    if (!row) return;
    const id = Number(row.dataset.id);
    if (ev.target.closest(".twisty")) toggle(id);
    else select(id);
  });
  $("#intent-tree").addEventListener("keydown", ev => {
    const row = ev.target.closest(".node");
    if (!row) return;
    const id = Number(row.dataset.id);
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(id); }
    else if (ev.key === "ArrowRight") toggle(id, true);
    else if (ev.key === "ArrowLeft") toggle(id, false);
  });
  function setAll(open) {
    expanded = open ? new Set([...kids.keys()].filter(k => k != null)) : new Set();
    saveExpanded();
    document.querySelectorAll("#intent-tree li[aria-expanded]").forEach(li => setOpen(li, open));
  }
  $("#expand-all").onclick = () => setAll(true);
  $("#collapse-all").onclick = () => setAll(false);
  let searchTimer = null;
  $("#search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 150); });
  $("#search-form").addEventListener("submit", ev => { ev.preventDefault(); clearTimeout(searchTimer); search(); });
  $("#new-intent").onclick = startCreate;
  $("#cancel-create").onclick = cancelCreate;
  $("#delete").onclick = remove;
  $("#reload").onclick = () => select(current.id, {force: true});
  $("#add-hint").onclick = () => { hintRow(""); $("#hints").lastChild.querySelector("input").focus(); };
  $("#edit-form").addEventListener("submit", save);
  $("#edit-form").addEventListener("input", () => setDirty(true));
  document.addEventListener("chatda:pick-intent", ev => select(ev.detail.id));
  window.addEventListener("beforeunload", ev => { if (dirty) ev.preventDefault(); });

  load().then(() => { if ($("#search").value.trim()) search(); }).catch(e => say(e.message, "err"));
})();
