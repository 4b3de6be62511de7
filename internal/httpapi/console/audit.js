// The Audit screen: GET /v1/audit, filtered, a page at a time. Values are
// rendered with textContent only.

import { api, el, when, rowOf, guard } from "./console.js";

const $ = (id) => document.getElementById(id);
let auditPage = { query: null, cursor: "", n: 0 };

async function loadAudit(cursor) {
  const q = new URLSearchParams({ limit: "50" });
  for (const f of ["actor", "action", "target"]) {
    const v = $("audit-" + f).value.trim();
    if (v) q.set(f, v);
  }
  if (cursor) q.set("cursor", cursor);
  const page = await api("/v1/audit?" + q);
  auditPage = { cursor: page.next_cursor || "", n: cursor ? auditPage.n + 1 : 1 };
  $("audit-summary").textContent = `Page ${auditPage.n}: ${page.entries.length} entr${page.entries.length === 1 ? "y" : "ies"}${page.next_cursor ? "" : ", the last page"}.`;
  const body = $("audit-entries").tBodies[0];
  body.replaceChildren(...page.entries.map((e) => {
    const tr = el("tr");
    tr.append(el("td", when(e.time)), el("td", e.actor), el("td", e.action), el("td", e.target || ""),
      el("td", e.result, "result-" + e.result), el("td", e.detail || ""), el("td", e.client_ip || ""),
      el("td", `${e.instance} #${e.seq}`));
    return tr;
  }));
  if (!page.entries.length) body.append(rowOf("No entries match.", 8));
  $("audit-next").hidden = !page.next_cursor;
}

document.addEventListener("DOMContentLoaded", () => {
  const tab = document.querySelector('#tabs button[data-tab="audit"]');
  tab.addEventListener("click", () => { loadAudit("").catch((e) => { $("error").textContent = e.message; $("error").hidden = false; }); });
  $("audit-form").addEventListener("submit", guard(() => loadAudit("")));
  $("audit-next").addEventListener("click", guard(() => loadAudit(auditPage.cursor)));
});
